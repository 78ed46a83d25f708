"""The validation machinery of ``training.config``: ``ConfigError`` and a dataclass base that
checks every field against its type hint and its ``Bounds`` (declared with ``bound(...)``),
then the kind's own rules (those between fields). ``training.config_schema`` turns the same
hints and bounds into the JSON schema the API documents."""

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
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)  # JSON's 3.0 is the integer 3 (as JSON Schema's "integer" says)
    if hint in (int, float) and isinstance(value, bool):
        raise ConfigError(name, f"{name} must be a number, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(name, f"{name} must be of type {hint.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class Bounds:
    """The range of a number field (``None``: no bound on that side); ``also``: values
    allowed outside it (``max_steps``: -1); ``message``: the refusal, when not the range's."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    also: tuple[float, ...] = ()
    message: str | None = None

    def holds(self, value: float) -> bool:
        return value in self.also or (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def text(self) -> str:
        if self.message:
            return self.message
        low, high = self.ge if self.gt is None else self.gt, self.le if self.lt is None else self.lt
        if high is None:
            text = f"must be {'>=' if self.gt is None else '>'} {low}"
        elif low is None:
            text = f"must be {'<=' if self.lt is None else '<'} {high}"
        else:
            left, right = "[" if self.gt is None else "(", "]" if self.lt is None else ")"
            text = f"must be in {left}{low}, {high}{right}"
        return text + "".join(f" (or {value})" for value in self.also)


BOUNDS = "bounds"
"""The key of a field's ``Bounds`` in its metadata."""


def bound(default: Any, **bounds: Any) -> Any:
    """A dataclass field with ``default`` and these ``Bounds`` (``ge``, ``gt``, ``le``, ``lt``,
    ``also``, ``message``)."""
    return dataclasses.field(default=default, metadata={BOUNDS: Bounds(**bounds)})


def _check_bounds(name: str, value: Any, bounds: Bounds | None) -> None:
    if bounds is not None and value is not None and not bounds.holds(value):
        raise ConfigError(name, f"{name} {bounds.text()}")


def require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ConfigError(name, f"{name} {message}")


@dataclass
class Validated:
    """Base: checks every field's type, then the kind's own rules in ``_validate``."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _check_value(f.name, getattr(self, f.name), hints[f.name])
            _check_bounds(f.name, value, f.metadata.get(BOUNDS))
            setattr(self, f.name, value)
        self._validate()

    def _validate(self) -> None:
        """Rules between fields; subclasses extend it."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Distributed = Literal["ddp", "zero2", "zero3", "fsdp"]
"""How a run spreads over processes; each has an accelerate config in training/accelerate/."""


@dataclass
class LaunchFields(Validated):
    """How the worker launches a trainable run: the strategy and at most how many processes
    (default: one per GPU of the worker)."""

    distributed: Distributed = "ddp"
    num_processes: int | None = bound(None, ge=1)
    ONLY_DDP: ClassVar[str | None] = None
    """Set by a kind that runs with ddp only: why (the end of the refusal)."""

    def _validate(self) -> None:
        super()._validate()
        only = self.ONLY_DDP
        require(only is None or self.distributed == "ddp", "distributed", f"must be 'ddp' {only}")
