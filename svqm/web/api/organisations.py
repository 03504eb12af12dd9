"""JSON API's organisation resources: the public commitments of an organisation, and the deadline
calendar feed (iCalendar, not JSON)."""

from __future__ import annotations

from fastapi import APIRouter

from svqm.accounts import service as accounts
from svqm.errors import NotFound, PermissionDenied
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, SettingsDep
from svqm.web.schemas import (
    OrganisationAward,
    OrganisationCommitments,
    OrganisationPledge,
    ProgressPublic,
)
from svqm.web.security import CalendarResponse
from svqm.web.views.calendar import organisation_feed
from svqm.workflow import commitments

router = APIRouter(prefix="/api/v1/organisations", tags=["organisations"])


@router.get(
    "/{organisation_id}/calendar.ics",
    response_class=CalendarResponse,
    responses={
        200: {
            "description": "An iCalendar (RFC 5545) feed, one event per open deadline",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        }
    },
)
def calendar(
    organisation_id: Id,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    now: NowDep,
) -> CalendarResponse:
    """The organisation's open deadlines, with their reminders, for its applicants and admins."""
    if user.role not in ("applicant", "admin"):
        raise PermissionDenied(f"a {user.role} may not read an organisation's calendar")
    org = accounts.get_organisation(session, organisation_id)
    # Another organisation's calendar is not found, never forbidden: that would say it exists.
    if org is None or (user.role == "applicant" and user.organisation_id != org.id):
        raise NotFound(f"no organisation {organisation_id}")
    return CalendarResponse(
        organisation_feed(session, registry, org, base_url=settings.BASE_URL, now=now)
    )


@router.get("/{organisation_id}")
def read_organisation(
    organisation_id: Id, session: SessionDep, registry: RegistryDep, now: NowDep
) -> OrganisationCommitments:
    """Public: an organisation holding an award in force, its awards in force and their pledges
    with each target and the figures an assessor accepted."""
    found = commitments.commitments(session, registry, organisation_id, now)
    org = found.organisation
    return OrganisationCommitments(
        id=org.id or 0,
        name=org.name,
        sector=org.sector,
        region=org.region,
        awards=[
            OrganisationAward(
                id=a.id or 0,
                scheme=a.scheme,
                level=a.level,
                state=a.state,
                issued_at=a.issued_at,
                expires_at=a.expires_at,
            )
            for a in found.awards
        ],
        pledges=[
            OrganisationPledge(
                id=p.id,
                theme=p.theme,
                title=p.title,
                indicator=p.indicator,
                unit=p.unit,
                target=p.target,
                due_date=p.due_date,
                progress=[ProgressPublic(period=g.period, actual=g.actual) for g in p.progress],
            )
            for p in found.pledges
        ],
    )
