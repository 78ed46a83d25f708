"""The ONE Jinja environment (with block rendering for htmx fragments)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from jinja2_fragments.fastapi import Jinja2Blocks
from starlette.responses import Response

from app.resources import resource_dir
from app.web.csrf import csrf_token
from app.web.markdown import markdown
from training.schema import FINAL

templates = Jinja2Blocks(directory=str(resource_dir("templates")))
templates.env.globals["csrf_token"] = csrf_token
templates.env.filters["markdown"] = markdown
templates.env.globals["FINAL_STATUSES"] = tuple(status.value for status in FINAL)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a page, or only ``block`` of it (for htmx requests asking for a fragment)."""
    ctx = {"request": request, **(context or {})}
    kwargs: dict[str, Any] = {"status_code": status_code, "headers": headers}
    if block is not None:
        kwargs["block_name"] = block
    return templates.TemplateResponse(request, name, ctx, **kwargs)
