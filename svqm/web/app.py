"""create_app(): the FastAPI application, its lifespan (engine, schemes, store), middleware, and
the one list of routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

from svqm import __version__
from svqm.clock import Clock, SystemClock
from svqm.config import Settings, get_settings
from svqm.credentials.issuers import build_issuers
from svqm.db import make_engine, ping, session_scope
from svqm.evidence.storage import BlobStore
from svqm.notify import scheduler as notify_scheduler
from svqm.policy.charter import load_charter_rules
from svqm.web import handlers, openapi
from svqm.web.api import (
    admin,
    applications,
    audits,
    auth,
    awards,
    credentials,
    eligibility,
    evidence,
    invoices,
    judgement,
    members,
    messages,
    org_charter,
    organisations,
    pledges,
    reports,
    schemes,
)
from svqm.web.pages import (
    account,
    admin_dashboard,
    admin_ops,
    applicant,
    applicant_awards,
    applicant_pledges,
    application_tasks,
    applying,
    assessor,
    audit_booking,
    award_steps,
    charters,
    consultation,
    finance,
    group,
    memberships,
    moderation,
    panel,
    profile,
    public,
    public_awards,
    report_review,
)
from svqm.web.pages import admin as admin_pages
from svqm.web.pages import (
    eligibility as eligibility_pages,
)
from svqm.web.pages import messages as message_pages
from svqm.web.pages import org_charter as org_charter_pages
from svqm.web.pages import (
    organisations as organisation_pages,
)
from svqm.web.security import BodyLimit, SecurityHeaders, secret_key
from svqm.web.ui import GOVUK_DIST, WEB
from svqm.workflow import evidence_gc
from svqm.workflow.schemes import SchemeRegistry, load_registry

log = logging.getLogger("svqm.web")

try:  # FastAPI >= 0.16x keeps each included router as one route of the app (matched in turn)
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - older FastAPI copies the routes into the app instead
    _IncludedRouter = None  # type: ignore[assignment, misc]

# Every router, in the order they are mounted: the JSON API, then the pages.
ROUTERS: list[APIRouter] = [
    schemes.router,
    auth.router,
    org_charter.router,
    organisations.router,
    applications.router,
    judgement.router,
    audits.router,
    eligibility.router,
    invoices.router,
    pledges.router,
    evidence.router,
    credentials.router,
    awards.router,
    reports.router,
    messages.router,
    admin.router,
    members.router,
    public.router,
    public_awards.router,
    charters.router,
    org_charter_pages.router,
    organisation_pages.router,
    account.router,
    applying.router,
    application_tasks.router,
    applicant.router,
    applicant_awards.router,
    award_steps.router,
    applicant_pledges.router,
    memberships.router,
    group.router,
    audit_booking.router,
    eligibility_pages.router,
    finance.router,
    consultation.router,
    message_pages.router,
    profile.router,
    assessor.router,
    panel.router,
    moderation.router,
    admin_dashboard.router,
    admin_pages.router,
    admin_ops.router,
    report_review.router,
]


def _prefixes(router: APIRouter, prefix: str) -> tuple[str, ...]:
    """The literal beginnings of the paths a router's routes can match when it is included with
    this prefix: each route's path up to its first parameter ("" for a route that could match
    any path). Read off the router's own routes: FastAPI builds an app's copy of a route (its
    dependencies and body model worked out again) only when a request first reaches it, and
    building all 600-odd at once cost each app 0.2 s of CPU (each test's app, and each worker's
    start)."""
    found: list[str] = []
    for route in router.routes:
        if _IncludedRouter is not None and isinstance(route, _IncludedRouter):
            found += _prefixes(route.original_router, prefix + route.include_context.prefix)
            continue
        path = getattr(route, "path", None)
        found.append((prefix + path).split("{", 1)[0] if isinstance(path, str) else "")
    return tuple(sorted(set(found)))


if _IncludedRouter is not None:

    @dataclass(eq=False)
    class _IndexedRouter(_IncludedRouter):
        """An included router that tells at once a path none of its routes can match.

        FastAPI matches a request against every route of every router included before the one
        that answers, each a regular expression and a few scope lookups: about 0.5 ms for a
        page whose router comes last of the 44 (a profile of the review screen). A route's
        regular expression begins with its path's literal text up to the first parameter, so a
        path beginning with none of a router's can match none of its routes; which route
        answers is FastAPI's own choice, in the same order, as before.
        """

        _indexed: tuple[int, tuple[str, ...]] | None = None
        _nested: bool = True

        @classmethod
        def of(cls, included: Any) -> Any:
            return cls(
                original_router=included.original_router,
                include_context=included.include_context,
            )

        def index(self) -> tuple[str, ...]:
            """The routes' literal path beginnings, worked out again when the routes change."""
            router = self.original_router
            # The routes' version, as FastAPI keeps it: the router's own count of changes
            # (cheap to read) unless it includes routers of its own.
            if self._nested:
                version = router._get_routes_version()
            else:
                version = router._routes_version
            if self._indexed is None or self._indexed[0] != version:
                self._nested = any(isinstance(r, _IncludedRouter) for r in router.routes)
                self._indexed = (version, _prefixes(router, self.include_context.prefix))
            return self._indexed[1]

        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            indexed = self.index()
            if scope["type"] in ("http", "websocket") and not get_route_path(scope).startswith(
                indexed
            ):
                return Match.NONE, {}
            match: tuple[Match, Scope] = super().matches(scope)
            return match


def _index_routers(app: FastAPI) -> None:
    """Each included router of the app as an `_IndexedRouter` (nothing else changes)."""
    if _IncludedRouter is None:
        return
    routes = app.router.routes
    indexed = list(routes)
    try:
        for i, route in enumerate(routes):
            if type(route) is _IncludedRouter:
                router = _IndexedRouter.of(route)
                router.index()  # what it reads of FastAPI's internals, read once now
                indexed[i] = router
    except (AttributeError, TypeError) as exc:
        # A FastAPI whose included routers keep other internals: route as FastAPI does, a
        # little slower, rather than fail every request.
        log.warning("routing without the route index (FastAPI's internals differ: %s)", exc)
        return
    routes[:] = indexed


def _clean_evidence_store(engine: Engine, store: BlobStore) -> None:
    """At start, remove what a killed process left in the store (an hour old or more); the
    database being down must not stop the site starting."""
    try:
        with session_scope(engine, write=False) as session:
            found = evidence_gc.collect(session, store, apply=True)
    except (OperationalError, InterfaceError, ProgrammingError, OSError) as exc:
        log.warning("evidence store not cleaned at start: %s", exc.__class__.__name__)
        return
    if found.temp_files or found.orphan_blobs:
        log.info(
            "evidence store: removed %s staged file(s) and %s orphan blob(s) left by a crash",
            len(found.temp_files),
            len(found.orphan_blobs),
        )


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
        app.state.charter_rules = load_charter_rules(settings.CHARTER_FILE)
        app.state.clock = clock or SystemClock()
        app.state.secret_key = secret_key(settings)
        app.state.issuers = build_issuers(
            service_key=settings.ISSUER_KEY_FILE or Path(settings.VAR_DIR) / "keys" / "issuer.pem",
            base_url=settings.BASE_URL,
            name=settings.ISSUER_NAME,
            policies=[s.policy for s in app.state.registry.current.values()],
        )
        app.state.store = BlobStore(
            Path(settings.EVIDENCE_DIR),
            max_bytes=settings.MAX_UPLOAD_BYTES,
            max_unpacked_bytes=settings.MAX_UNPACKED_BYTES,
            max_entries=settings.MAX_ARCHIVE_ENTRIES,
        )
        _clean_evidence_store(app.state.engine, app.state.store)
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
    handlers.install(app)
    openapi.install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (the database is not asked; see /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request) -> dict[str, str]:
        """Readiness: the database answers a query (else 503 with Retry-After)."""
        ping(request.app.state.engine)
        return {"status": "ready"}

    for router in ROUTERS:
        app.include_router(router)
    _index_routers(app)
    if GOVUK_DIST.is_dir():
        app.mount("/static/govuk", StaticFiles(directory=GOVUK_DIST), name="govuk")
    app.mount("/static/app", StaticFiles(directory=WEB / "static"), name="static")
    app.add_middleware(BodyLimit, max_upload=settings.MAX_UPLOAD_BYTES)
    app.add_middleware(SecurityHeaders, hsts=settings.COOKIE_SECURE)
    return app
