"""The application factory: ``create_app(settings)``. Nothing is built at import time."""

from __future__ import annotations

import gc
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.db.engine import make_engine, make_sessionmaker
from app.resources import resource_dir
from app.services.unit_of_work import DbSession
from app.settings import Settings
from app.web import api, errors, openapi, routes
from app.web.body_limit import BodyLimitMiddleware
from app.web.hot_lane import HotLane
from app.web.inputs import nul_guard
from app.web.session_cookie import SessionCookieMiddleware

STATIC_DIR = resource_dir("static")


def _routers(package) -> list:
    """Every ``router`` in the modules of a package, in module-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "router"):
            found.append(module.router)
    return found


def create_app(settings: Settings, sessions: Callable[[], DbSession] | None = None) -> FastAPI:
    """Build the app for these settings; ``settings.database_url`` must be set (the CLI
    starts the embedded PostgreSQL first when it is not). Requests open their sessions
    with ``app.state.sessionmaker``: one on a new engine, or ``sessions`` when given (the
    tests': sessions inside a transaction that is rolled back)."""
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if sessions is not None:
            app.state.sessionmaker = sessions
            yield
            return
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        app.state.sessionmaker = make_sessionmaker(engine)
        # What was built to start (modules, models, routes: ~10^5 objects) lives as long
        # as the process: out of the collector's sight, a full collection no longer
        # stops every request for ~0.1 s to walk it.
        gc.freeze()
        try:
            yield
        finally:
            engine.dispose()

    logging.getLogger("prefloop").setLevel(settings.log_level.upper())
    app = FastAPI(
        title="Prefloop",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
        dependencies=[Depends(nul_guard)],
    )
    app.state.settings = settings
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        SessionCookieMiddleware, secret_key=settings.secret_key, max_age=settings.session_max_age
    )
    app.add_middleware(HotLane, max_body_bytes=settings.max_body_bytes)  # outermost of ours
    errors.install(app)
    openapi.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in _routers(api) + _routers(routes):
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (the CLI has set DATABASE_URL)."""
    return create_app(Settings())
