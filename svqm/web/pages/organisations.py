"""Public page: an organisation's commitments (the subject of its awards' credentials)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from svqm.web.deps import (
    CSRF,
    CharterRulesDep,
    Id,
    NowDep,
    OptionalPageUser,
    RegistryDep,
    SessionDep,
)
from svqm.web.ui import render
from svqm.web.views.org_charter import published_charter
from svqm.web.views.organisations import organisation_page

router = APIRouter(dependencies=[CSRF], include_in_schema=False)


@router.get("/organisations/{organisation_id}", name="organisation_page")
def organisation(
    request: Request,
    organisation_id: Id,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    rules: CharterRulesDep,
    now: NowDep,
) -> HTMLResponse:
    """The organisation, its awards in force, its published charter and its pledges by theme
    with their progress."""
    view = organisation_page(session, registry, organisation_id, now)
    charter = published_charter(session, registry, rules, organisation_id, now)
    return render(
        request,
        "public/organisation.html",
        auth=auth,
        title=view.title,
        organisation=view.organisation,
        awards=view.awards,
        themes=view.themes,
        charter=charter,
    )
