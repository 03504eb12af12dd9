"""Demonstration data of a partnership's charter: the Northshore Anchor Charter's signatories.

NHS bodies, councils and voluntary sector organisations of a health and care partnership sign
its charter through the workflow (each with its own pledges), at past dates: one signed again to
renew (its first signature superseded), one withdrew. The partnership issues the credentials.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.accounts.models import User
from svqm.evidence.models import PledgeCreate
from svqm.workflow import actions
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry

SCHEME = "northshore-anchor-charter"
REGION = "North East and North Cumbria"
LEAD_EMAIL = "anchors@northshore-icb.demo.svqm.test"

# (theme, title, indicator, unit, baseline, target)
Pledge = tuple[str, str, str, str, float, str]
_POOL: dict[str, Pledge] = {
    "jobs": (
        "employment",
        "Recruit 50 local people into entry-level jobs",
        "local hires",
        "people",
        8,
        "50",
    ),
    "apprentices": (
        "employment",
        "Offer 20 apprenticeships to Northshore residents",
        "apprentices",
        "people",
        4,
        "20",
    ),
    "guarantee": (
        "employment",
        "Guarantee interviews to care leavers",
        "care leavers interviewed",
        "people",
        0,
        "15",
    ),
    "spend": (
        "procurement",
        "Spend 35% of our budget with Northshore suppliers",
        "share of spend local",
        "%",
        21,
        "35",
    ),
    "sme": (
        "procurement",
        "Open our tenders to small local firms",
        "contracts won by local SMEs",
        "contracts",
        3,
        "12",
    ),
    "rooms": (
        "estates",
        "Open our meeting rooms to community groups for free",
        "hours of community use",
        "hours",
        0,
        "600",
    ),
    "land": (
        "estates",
        "Turn unused land into two community gardens",
        "gardens open",
        "gardens",
        0,
        "2",
    ),
    "carbon": (
        "environment",
        "Cut our building emissions by a third",
        "building emissions",
        "tCO2e",
        900,
        "600",
    ),
    "travel": (
        "environment",
        "Half of our staff travel to work actively or by bus",
        "staff commuting sustainably",
        "%",
        28,
        "50",
    ),
    "voices": (
        "partnership",
        "Hold four community listening events a year",
        "events held",
        "events",
        1,
        "4",
    ),
    "volunteers": (
        "partnership",
        "Give every member of staff a volunteering day",
        "volunteering days taken",
        "days",
        40,
        "400",
    ),
}

# (name, sector, email, person, days since signing, pledges)
_SIGNATORIES: tuple[tuple[str, str, str, str, int, tuple[str, ...]], ...] = (
    (
        "Northshore Integrated Care Board",
        "NHS integrated care board",
        LEAD_EMAIL,
        "Ines Anchor",
        400,
        ("spend", "guarantee", "voices"),
    ),
    (
        "Northshore Teaching Hospitals NHS Foundation Trust",
        "NHS acute trust",
        "anchors@northshore-hospitals.demo.svqm.test",
        "Tomas Teaching",
        380,
        ("jobs", "carbon", "land"),
    ),
    (
        "Northshore Community and Mental Health NHS Trust",
        "NHS mental health and community trust",
        "anchors@northshore-cmh.demo.svqm.test",
        "Maya Minds",
        350,
        ("apprentices", "rooms"),
    ),
    (
        "Northshore Ambulance Service NHS Trust",
        "NHS ambulance trust",
        "anchors@northshore-ambulance.demo.svqm.test",
        "Abe Ambulance",
        300,
        ("travel", "jobs"),
    ),
    (
        "Northshore City Council",
        "local authority",
        "anchors@northshore-city.demo.svqm.test",
        "Cora Council",
        1060,
        ("spend", "sme", "land"),
    ),
    (
        "Saltmarsh Borough Council",
        "local authority",
        "anchors@saltmarsh.demo.svqm.test",
        "Sol Saltmarsh",
        240,
        ("rooms", "carbon"),
    ),
    (
        "Northshore Council for Voluntary Service",
        "voluntary sector infrastructure",
        "anchors@northshore-cvs.demo.svqm.test",
        "Val Voluntary",
        200,
        ("volunteers", "voices"),
    ),
    (
        "Harbourside Carers Centre",
        "charity",
        "anchors@harbourside-carers.demo.svqm.test",
        "Hal Carers",
        150,
        ("guarantee", "voices"),
    ),
    (
        "Northshore Food Network CIC",
        "community interest company",
        "anchors@northshore-food.demo.svqm.test",
        "Fern Food",
        120,
        ("sme", "land"),
    ),
    (
        "St Brigid's Hospice Northshore",
        "hospice (charity)",
        "anchors@stbrigids.demo.svqm.test",
        "Bea Hospice",
        90,
        ("volunteers", "travel"),
    ),
    (
        "Northshore College",
        "further education",
        "anchors@northshore-college.demo.svqm.test",
        "Col College",
        60,
        ("apprentices", "rooms"),
    ),
    (
        "Northshore Homes Housing Association",
        "housing association",
        "anchors@northshore-homes.demo.svqm.test",
        "Hana Homes",
        45,
        ("jobs", "carbon"),
    ),
    (
        "Coastline Community Transport",
        "charity",
        "anchors@coastline-transport.demo.svqm.test",
        "Cal Coastline",
        180,
        ("travel", "volunteers"),
    ),
)
# Signed again to renew, a month ago: its first signature (almost three years old) is superseded.
RENEWED = "Northshore City Council"
# Withdrew from the charter, with its reason: no longer listed.
WITHDREW = "Coastline Community Transport"


def _sign(
    session: Session,
    registry: SchemeRegistry,
    user: User,
    organisation_id: int,
    pledges: tuple[str, ...],
    at: datetime,
) -> Application:
    actor = workflow.Actor(user.id, user.role, organisation_id)
    app = workflow.open_application(
        session,
        organisation_id=organisation_id,
        scheme_id=SCHEME,
        level="signatory",
        actor=actor,
        registry=registry,
        now=at,
    )
    for key in pledges:
        theme, title, indicator, unit, baseline, target = _POOL[key]
        actions.add_pledge(
            session,
            app,
            PledgeCreate(
                theme=theme,
                title=title,
                indicator=indicator,
                unit=unit,
                baseline=baseline,
                target=target,
                due_date=(at + timedelta(days=3 * 365)).date(),
                description=f"{title}, measured as {indicator}.",
            ),
            actor=actor,
            registry=registry,
            now=at,
        )
    workflow.fire(
        session, app, "sign", actor=actor, registry=registry, now=at + timedelta(minutes=20)
    )
    return app


def seed_charter(
    session: Session, *, registry: SchemeRegistry, now: datetime, password: str
) -> str:
    """Sign the demo charter for its organisations (once; nothing if the scheme is not loaded)."""
    if SCHEME not in registry.ids() or accounts.get_user_by_email(session, LEAD_EMAIL):
        return ""
    for name, sector, email, person, days, pledges in _SIGNATORIES:
        org = accounts.create_organisation(session, name=name, sector=sector, region=REGION)
        user = accounts.add_user(
            session,
            email=email,
            role="applicant",
            organisation_id=org.id,
            password=password,
            name=person,
        )
        assert org.id is not None
        _sign(session, registry, user, org.id, pledges, now - timedelta(days=days))
        if name == RENEWED:
            # Signing again carries the first signature's pledges in; then one more.
            _sign(session, registry, user, org.id, ("rooms",), now - timedelta(days=30))
        if name == WITHDREW:
            award = session.exec(
                select(Award)
                .where(Award.organisation_id == org.id)
                .order_by(col(Award.issued_at).desc())
            ).first()
            assert award is not None
            workflow.fire(
                session,
                award,
                "withdraw",
                actor=workflow.Actor(user.id, user.role, org.id),
                registry=registry,
                now=now - timedelta(days=10),
                comment="Our service is merging into the county's transport charity, which "
                "will sign in its own name.",
            )
    listed = len(_SIGNATORIES) - 1
    return (
        f"  charter    /charters/{SCHEME}: {listed} signatories of the Northshore partnership "
        f"(issuer: its own key);\n             {LEAD_EMAIL} signs for the ICB "
        "(withdraw from the award page)"
    )
