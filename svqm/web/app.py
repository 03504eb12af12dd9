"""create_app(): the FastAPI application, its lifespan (engine, schemes) and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from svqm import __version__
from svqm.config import Settings, get_settings
from svqm.db import make_engine
from svqm.web import errors
from svqm.web.api import schemes
from svqm.workflow.schemes import SchemeRegistry, load_registry


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    registry: SchemeRegistry | None = None,
) -> FastAPI:
    """Build the app; tests pass their own settings, engine and schemes."""
    settings = settings or get_settings()
    production = settings.ENV == "production"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        app.state.settings = settings
        app.state.engine = engine or make_engine(
            settings.DATABASE_URL, busy_timeout_ms=settings.SQLITE_BUSY_TIMEOUT_MS
        )
        app.state.registry = registry or load_registry(settings.POLICIES_DIR)
        try:
            yield
        finally:
            if own_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="svqm",
        version=__version__,
        description="Accreditation workflow engine for the Social Value Quality Mark.",
        lifespan=lifespan,
        # API documentation is for development; production serves none of it (ASVS 13.4.5).
        docs_url=None if production else "/docs",
        redoc_url=None,
        openapi_url=None if production else "/openapi.json",
    )
    errors.install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    app.include_router(schemes.router)
    return app
