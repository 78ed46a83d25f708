"""Signed session cookie (HttpOnly, SameSite=Lax, Secure when the request came over https).

A small ASGI middleware in the shape of Starlette's SessionMiddleware, so ``request.session``
works, but the Secure flag follows the request's scheme (uvicorn's proxy headers set it
behind a TLS-terminating proxy). The cookie is written only when the session changed.
"""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from http.cookies import SimpleCookie
from typing import Any

import itsdangerous
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE_NAME = "prefloop_session"


class TrackedSession(dict):
    """A dict that remembers whether it was changed."""

    modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def clear(self) -> None:
        self.modified = True
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        self.modified = True
        return super().pop(key, *default)


class SessionCookieMiddleware:
    def __init__(self, app: ASGIApp, secret_key: str, max_age: int) -> None:
        self.app = app
        self.signer = itsdangerous.TimestampSigner(secret_key, salt="prefloop-session")
        self.max_age = max_age

    def _load(self, scope: Scope) -> TrackedSession:
        for name, value in scope["headers"]:
            if name != b"cookie":
                continue
            morsel = SimpleCookie(value.decode("latin-1")).get(COOKIE_NAME)
            if morsel is None:
                continue
            try:
                raw = self.signer.unsign(morsel.value.encode(), max_age=self.max_age)
                return TrackedSession(json.loads(b64decode(raw)))
            except (itsdangerous.BadSignature, ValueError):
                return TrackedSession()
        return TrackedSession()

    def _cookie(self, session: TrackedSession, secure: bool) -> str:
        flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
        if not session:
            return f"{COOKIE_NAME}=; Max-Age=0{flags}"
        data = self.signer.sign(b64encode(json.dumps(dict(session)).encode())).decode()
        return f"{COOKIE_NAME}={data}; Max-Age={self.max_age}{flags}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = self._load(scope)
        scope["session"] = session

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and session.modified:
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", self._cookie(session, scope["scheme"] == "https"))
            await send(message)

        await self.app(scope, receive, send_wrapper)
