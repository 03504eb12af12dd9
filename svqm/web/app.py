"""create_app(): the FastAPI application, its lifespan (engine, schemes, store), middleware, and
the one list of routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

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
    if GOVUK_DIST.is_dir():
        app.mount("/static/govuk", StaticFiles(directory=GOVUK_DIST), name="govuk")
    app.mount("/static/app", StaticFiles(directory=WEB / "static"), name="static")
    app.add_middleware(BodyLimit, max_upload=settings.MAX_UPLOAD_BYTES)
    app.add_middleware(SecurityHeaders, hsts=settings.COOKIE_SECURE)
    return app
