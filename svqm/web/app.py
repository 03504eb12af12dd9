"""create_app(): the FastAPI application, its lifespan (engine, schemes, store), middleware and routers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from svqm import __version__
from svqm.clock import Clock, SystemClock
from svqm.config import Settings, get_settings
from svqm.credentials.badge import Issuer
from svqm.credentials.keys import load_or_create
from svqm.db import make_engine
from svqm.evidence.storage import BlobStore
from svqm.notify import scheduler as notify_scheduler
from svqm.web import errors, openapi
from svqm.web.api import (
    admin,
    applications,
    auth,
    awards,
    credentials,
    evidence,
    organisations,
    reports,
    schemes,
)
from svqm.web.app_csp import CSP
from svqm.web.deps import LoginRequired
from svqm.web.pages import install as install_pages
from svqm.web.uploads import BodyLimit
from svqm.workflow.schemes import SchemeRegistry, load_registry


class SecurityHeaders:
    """Browser security headers on every response; personal pages are never cached."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"x-frame-options": b"DENY",
                    b"cross-origin-opener-policy": b"same-origin",
                    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
                    b"cache-control": b"public, max-age=3600" if static else b"no-store",
                }
                if self.hsts:
                    extra[b"strict-transport-security"] = b"max-age=31536000; includeSubDomains"
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_headers)


def secret_key(settings: Settings) -> str:
    """The configured secret, or one made once and kept under VAR_DIR (never committed)."""
    if settings.SECRET_KEY:
        return settings.SECRET_KEY
    path = Path(settings.VAR_DIR) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    registry: SchemeRegistry | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the app; tests pass their own settings, engine, schemes and clock."""
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
        app.state.clock = clock or SystemClock()
        app.state.secret_key = secret_key(settings)
        app.state.issuer = Issuer(
            load_or_create(
                settings.ISSUER_KEY_FILE or Path(settings.VAR_DIR) / "keys" / "issuer.pem"
            ),
            settings.BASE_URL,
            settings.ISSUER_NAME,
        )
        app.state.store = BlobStore(
            Path(settings.EVIDENCE_DIR),
            max_bytes=settings.MAX_UPLOAD_BYTES,
            max_unpacked_bytes=settings.MAX_UNPACKED_BYTES,
            max_entries=settings.MAX_ARCHIVE_ENTRIES,
        )
        scheduler = None
        if settings.RUN_SCHEDULER:
            # The embedded case: one process serves and schedules (`--no-scheduler` turns it off).
            scheduler = notify_scheduler.background(
                app.state.engine, app.state.registry, settings, app.state.clock
            )
            scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
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
    openapi.install(app)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = "/login/second-factor" if exc.second_factor else "/login"
        return RedirectResponse(f"{target}?next={exc.next_path}", status_code=303)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    for module in (
        schemes,
        auth,
        organisations,
        applications,
        evidence,
        credentials,
        awards,
        reports,
        admin,
    ):
        app.include_router(module.router)
    install_pages(app, settings)
    app.add_middleware(BodyLimit, max_upload=settings.MAX_UPLOAD_BYTES)
    app.add_middleware(SecurityHeaders, hsts=settings.COOKIE_SECURE)
    return app
