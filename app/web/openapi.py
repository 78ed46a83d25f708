"""The served OpenAPI document tells the truth about errors (SPEC §7): every API answer
other than a success is ``{"error": {"code", "message", "details"}}``, so the document
says so, in place of FastAPI's own ``{"detail": [...]}`` shape that the app never sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
ERROR_RESPONSES = {
    "422": {"description": "Bad input: ``details`` names each field.", "content": _ERROR},
    "4XX": {
        "description": "Refused: not authenticated (401), forbidden (403), not found (404), "
        "conflict (409), too large (413), rate limited (429)…",
        "content": _ERROR,
    },
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the real error answers on every API operation."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components.update(ERROR_SCHEMAS)
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/api/"):
            for operation in operations.values():
                operation.setdefault("responses", {}).update(ERROR_RESPONSES)
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            app.openapi_schema = document_errors(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
