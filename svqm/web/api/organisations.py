"""JSON API's organisation resources: the deadline calendar feed (iCalendar, not JSON)."""

from __future__ import annotations

from fastapi import APIRouter

from svqm.accounts import service as accounts
from svqm.errors import NotFound, PermissionDenied
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, SettingsDep
from svqm.web.security import CalendarResponse
from svqm.web.views.calendar import organisation_feed

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
