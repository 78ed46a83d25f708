"""The validation machinery of ``training.config``: ``ConfigError`` and a dataclass base that
checks every field against its type hint, then the kind's own rules."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal


class ConfigError(ValueError):
    """A refused configuration; ``field`` is the offending field (``kind``, ``preset``,
    ``file`` or a config field), and the message starts with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field.split("[", 1)[0]  # lora_target_modules[0] -> lora_target_modules


def _check_value(name: str, value: Any, hint: Any) -> Any:
    """Return ``value`` (ints widened to float where a float is expected) or raise
    ConfigError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(name, value, option)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[-1]
    if origin is Literal:
        if value not in args:
            raise ConfigError(name, f"{name} must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(name, f"{name} must be a list, got {value!r}")
        return [_check_value(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise ConfigError(name, f"{name} must be a number, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(name, f"{name} must be of type {hint.__name__}, got {value!r}")
    return value


def require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ConfigError(name, f"{name} {message}")


@dataclass
class Validated:
    """Base: checks every field's type, then the kind's own rules in ``_validate``."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _check_value(f.name, getattr(self, f.name), hints[f.name]))
        self._validate()

    def _validate(self) -> None:
        """Field-range rules; subclasses extend it."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Distributed = Literal["ddp", "zero2", "zero3", "fsdp"]
"""How a run spreads over processes; each has an accelerate config in training/accelerate/."""


@dataclass
class LaunchFields(Validated):
    """How the worker launches a trainable run: the strategy and at most how many processes
    (default: one per GPU of the worker)."""

    distributed: Distributed = "ddp"
    num_processes: int | None = None
    ONLY_DDP: ClassVar[str | None] = None
    """Set by a kind that runs with ddp only: why (the end of the refusal)."""

    def _validate(self) -> None:
        super()._validate()
        require(
            self.num_processes is None or self.num_processes >= 1, "num_processes", "must be >= 1"
        )
        only = self.ONLY_DDP
        require(only is None or self.distributed == "ddp", "distributed", f"must be 'ddp' {only}")
