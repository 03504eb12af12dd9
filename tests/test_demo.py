"""`svqm demo`'s data for trying the Silver journey (issue 18): Kestrel Leisure Trust holds Bronze
and has nothing open, so a person can start Silver themselves; `audit_starts_today` (behind
`svqm demo --audit-starts-today`) brings a confirmed audit forward on a demo database only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation
from svqm.db import session_scope
from svqm.demo import (
    DEMO_ADMIN,
    KESTREL,
    KESTREL_APPLICANT,
    audit_starts_today,
    is_demo,
    seed_demo,
)
from svqm.errors import Conflict, NotFound
from svqm.workflow import audits, guards
from svqm.workflow import service as workflow
from svqm.workflow.invoices import listing
from svqm.workflow.models import Application, AuditEvent, Award

# Tuesday 17 February 2026, 10:00 UTC.
NOW = datetime(2026, 2, 17, 10, 0, tzinfo=UTC)


@pytest.fixture
def demo(engine, registry, tmp_path, monkeypatch):
    """The demo seeded at NOW on this test's database."""
    from svqm.config import get_settings

    monkeypatch.setenv("SVQM_EVIDENCE_DIR", str(tmp_path / "demo-evidence"))
    get_settings.cache_clear()
    with session_scope(engine) as s:
        report = seed_demo(s, registry=registry, now=NOW)
    yield report
    get_settings.cache_clear()


def test_kestrel_holds_bronze_with_nothing_open_and_may_start_silver(engine, registry, demo):
    assert KESTREL_APPLICANT in demo
    with session_scope(engine) as s:
        org = s.exec(select(Organisation).where(Organisation.name == KESTREL)).one()
        (award,) = s.exec(select(Award).where(Award.organisation_id == org.id)).all()
        assert (award.scheme, award.level, award.state) == ("svqm", "bronze", "active")
        apps = s.exec(select(Application).where(Application.organisation_id == org.id)).all()
        assert [(a.level, a.state) for a in apps] == [("bronze", "awarded")]
        # Its Bronze was invoiced and the invoice paid, as the other awarded demo applications.
        (invoice,) = [i for i in listing(s) if i.application_id == apps[0].id]
        assert invoice.status == "paid"
        user = accounts.get_user_by_email(s, KESTREL_APPLICANT)
        assert user is not None
        assert user.name == "Kit Kestrel"
        silver = workflow.open_application(
            s,
            organisation_id=org.id or 0,
            scheme_id="svqm",
            level="Silver",
            actor=workflow.Actor(user.id, user.role, org.id),
            registry=registry,
            now=NOW,
        )
        ctx = guards.GuardContext(
            session=s,
            policy=registry.get("svqm").policy,
            kind="application",
            subject=silver,
            actor_id=user.id,
            actor_role=user.role,
            now=NOW,
            comment="",
        )
        assert guards.evaluate(ctx, ["prerequisite_held"]) == []


def test_a_database_the_demo_did_not_seed_is_refused(engine, registry):
    with session_scope(engine) as s:
        assert not is_demo(s)
        # Even one with an organisation of the marker's name: the demo's admin is missing.
        s.add(Organisation(name="Riverside Community Health NHS Trust", sector="health"))
        s.flush()
        assert not is_demo(s)
        with pytest.raises(Conflict, match="not a demo database"):
            audit_starts_today(s, 1, registry=registry, now=NOW)


def test_an_unknown_or_unconfirmed_audit_is_refused_and_a_confirmed_one_starts_today(
    engine, registry, demo
):
    with session_scope(engine) as s:
        assert is_demo(s)
        with pytest.raises(NotFound, match="no application 99999"):
            audit_starts_today(s, 99999, registry=registry, now=NOW)
        # Harbour House's Silver: dates proposed, none confirmed yet.
        proposal = next(
            p
            for p in s.exec(select(audits.AuditProposal))
            if p.status == audits.PROPOSED and p.confirmed_day is None
        )
        app = s.get(Application, proposal.application_id)
        assert app is not None
        with pytest.raises(Conflict, match="no confirmed audit start date"):
            audit_starts_today(s, app.id or 0, registry=registry, now=NOW)
        admin = accounts.get_user_by_email(s, DEMO_ADMIN)
        assert admin is not None
        audits.confirm(
            s,
            app,
            proposal.days[0],
            actor=workflow.Actor.of(admin),
            registry=registry,
            now=NOW,
        )
        assert app.audit_starts_at is not None
        assert app.audit_starts_at > NOW + timedelta(weeks=7)
        said = audit_starts_today(s, app.id or 0, registry=registry, now=NOW)
        assert said == (
            f"application {app.id}: the audit now starts today, Tuesday 17 February 2026"
        )
        assert app.audit_starts_at == datetime(2026, 2, 17, 0, 0, tzinfo=UTC)
        last = s.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_kind == "application", AuditEvent.subject_id == app.id)
            .order_by(AuditEvent.seq.desc())  # type: ignore[attr-defined]
        ).first()
        assert last is not None
        assert last.trigger == audits.RESCHEDULE
        assert "--audit-starts-today" in last.comment
