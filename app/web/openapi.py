"""The served OpenAPI document (``/api/v1/openapi.json``) tells the truth (SPEC §7, issue 11):

- every API answer other than a success is ``{"error": {"code", "message", "details"}}``,
  declared for 401, 403, 404, 409, 413, 422 and 503 on every operation (and ``4XX`` for
  the rest), in place of FastAPI's ``{"detail": [...]}`` shape that the app never sends;
- the bearer token (and the session cookie) are its ``securitySchemes``;
- every free string refuses NUL (``pattern``), as the server does (``inputs.nul_guard``);
- the objects a service validates itself (project ``settings``, export ``filters``, a run's
  ``config``) are documented with schemas made from the definitions that validate them
  (``ProjectSettings``, ``ExportFilters.json_schema``, ``training.config_schema``), named in
  ``OBJECT_SCHEMAS`` and referred to with ``documented_as``;
- ``allowed_methods`` gives the ``Allow`` header of a 405 from the same document."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import WithJsonSchema

from app.domain.export_filters import ExportFilters
from app.services.project_settings import ProjectSettings
from training.config_schema import config_schemas

ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorDetail": {
        "type": "object",
        "title": "ErrorDetail",
        "description": "One problem: ``line`` is the 1-based line of an imported file.",
        "properties": {
            "line": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "field": {"type": "string"},
            "message": {"type": "string"},
        },
        "required": ["line", "field", "message"],
    },
    "Error": {
        "type": "object",
        "title": "Error",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {
                        "anyOf": [
                            {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/ErrorDetail"},
                            },
                            {"type": "null"},
                        ]
                    },
                },
                "required": ["code", "message", "details"],
            }
        },
        "required": ["error"],
    },
}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_ERRORS = {
    "401": "No valid credentials: a bearer token or a logged-in session.",
    "403": "Known caller, not allowed (e.g. a labeler on an admin operation).",
    "404": "Not found, or not visible to the caller.",
    "409": "Conflict with the current state (taken name, closed project, …).",
    "413": "The body is larger than the limit (MAX_BODY_BYTES; imports: their own).",
    "422": "Bad input: ``details`` names each field (and line, for imports).",
    "4XX": "Another refusal (405 method not allowed, 429 rate limited, …).",
    "503": "The database is unavailable (restarting, crashed): try again after Retry-After.",
}
ERROR_RESPONSES = {code: {"description": text, "content": _ERROR} for code, text in _ERRORS.items()}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (pfl_…)."},
    "session": {"type": "apiKey", "in": "cookie", "name": "prefloop_session"},
}
NO_NUL = "^[^\\u0000]*$"
"""The pattern of a string without NUL, which PostgreSQL cannot store."""
_NUL_FREE_REF = {"$ref": "#/components/schemas/NulFreeJson"}
NUL_FREE_JSON = {
    "description": "Any JSON value without NUL in a string or a key: the server refuses NUL "
    "anywhere in a body (in a field it ignores too).",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _NUL_FREE_REF},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": _NUL_FREE_REF,
        },
    ],
}
"""What an object's other properties may hold (the server ignores them, NUL aside)."""
_FIXED = ("pattern", "enum", "const", "format")


_REF = "#/components/schemas/{model}"


def _object_schemas() -> dict[str, Any]:
    settings = ProjectSettings.model_json_schema(ref_template=_REF)
    return {
        **settings.pop("$defs", {}),
        "ProjectSettings": settings,
        "ExportFilters": ExportFilters.json_schema(),
        **config_schemas(),
    }


OBJECT_SCHEMAS = _object_schemas()
"""The components of the objects a service validates (and those they refer to)."""


def documented_as(*names: str, nullable: bool = False, description: str = "") -> WithJsonSchema:
    """The schema of a ``dict`` field the service validates: one of these components (or
    null). The field stays a ``dict``: the service names each refused field itself."""
    options = [{"$ref": _REF.format(model=name)} for name in names]
    options += [{"type": "null"}] if nullable else []
    schema = {"allOf": options} if len(options) == 1 else {"anyOf": options}
    return WithJsonSchema({**schema, **({"description": description} if description else {})})


def documented(schema: dict[str, Any], nullable: bool = False) -> WithJsonSchema:
    """The schema of a field the service checks itself (answering a 422 that names it)."""
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]} if nullable else schema)


def one_of(values: Iterable[str], nullable: bool = False) -> WithJsonSchema:
    """A ``str`` field the service checks against these values."""
    return documented({"type": "string", "enum": list(values)}, nullable)


def _refuse_nul(node: Any) -> None:
    """Give every free string schema inside ``node`` the NUL-free pattern, and every open
    object NUL-free property names and values (``nul_guard`` refuses NUL in keys too)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "string" and not any(k in item for k in _FIXED):
                item["pattern"] = NO_NUL
            if item.get("type") == "object" and item.get("additionalProperties") is not False:
                item.setdefault("propertyNames", {"pattern": NO_NUL})
                if item.get("additionalProperties", True) is True:
                    item["additionalProperties"] = _NUL_FREE_REF
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the real error answers on every API operation."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components.update(copy.deepcopy(OBJECT_SCHEMAS), NulFreeJson=copy.deepcopy(NUL_FREE_JSON))
    _refuse_nul(components)
    components.update(ERROR_SCHEMAS)
    schema["components"]["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/api/"):
            for operation in operations.values():
                _refuse_nul(operation.get("parameters", []))
                operation.setdefault("responses", {}).update(ERROR_RESPONSES)
                operation["security"] = [{"bearer": []}, {"session": []}]
    return schema


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the document gives for ``path`` (None when it is not an API path)."""
    patterns = getattr(app.state, "openapi_patterns", None)
    if patterns is None:
        patterns = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), list(operations))
            for template, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.openapi_patterns = patterns
    methods = {m.upper() for rx, ops in patterns if rx.match(path) for m in ops}
    return sorted(methods) or None


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            app.openapi_schema = document_errors(copy.deepcopy(schema))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
