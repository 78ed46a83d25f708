"""The JSON schema of each run kind's config (the API documents ``config`` with it), built
from the same dataclass fields, type hints and ``Bounds`` that validate it
(``training.config_base``): one source, so the schema cannot drift from the checks.

The rules between fields (``_validate``: ``mini_batch_size`` divides
``rollout_batch_size``, ``dev_fraction`` needs ``eval_steps``, …) are not in it: a body the
schema allows can still be refused, with a 422 naming the field."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from training.config import CONFIG_CLASSES
from training.config_base import BOUNDS, Bounds

_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _type_schema(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if hint is type(None):
        return {"type": "null"}
    return {"type": _TYPES[hint]}


def _bounds_schema(bounds: Bounds) -> dict[str, Any]:
    keys = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
    found = {keys[k]: getattr(bounds, k) for k in keys if getattr(bounds, k) is not None}
    if not bounds.also:
        return found
    return {"anyOf": [found, {"enum": list(bounds.also)}]}


def _with_bounds(schema: dict[str, Any], bounds: Bounds | None) -> dict[str, Any]:
    """The bounds go on the number in the schema (not on its ``null`` alternative)."""
    if bounds is None:
        return schema
    if "anyOf" in schema:
        options = [
            o if o.get("type") == "null" else _with_bounds(o, bounds) for o in schema["anyOf"]
        ]
        return {"anyOf": options}
    return {**schema, **_bounds_schema(bounds)}


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def config_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of ``cls``'s fields: every field optional (the rest are defaults)."""
    hints = typing.get_type_hints(cls)
    properties = {}
    for f in dataclasses.fields(cls):
        schema = _with_bounds(_type_schema(hints[f.name]), f.metadata.get(BOUNDS))
        properties[f.name] = {**schema, "default": _default(f)}
    if getattr(cls, "ONLY_DDP", None):
        properties["distributed"] = {"enum": ["ddp"], "default": "ddp"}
    return {
        "type": "object",
        "title": cls.__name__,
        "description": (cls.__doc__ or "").strip(),
        "properties": properties,
        "additionalProperties": False,
    }


def config_schemas() -> dict[str, dict[str, Any]]:
    """Each kind's config schema, by the config class's name."""
    return {cls.__name__: config_schema(cls) for cls in CONFIG_CLASSES.values()}
