"""Public page: an organisation's commitments (the subject of its awards' credentials)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from svqm.web.deps import CSRF, Id, NowDep, OptionalPageUser, RegistryDep, SessionDep
from svqm.web.ui import render
from svqm.web.views.organisations import organisation_page

router = APIRouter(dependencies=[CSRF], include_in_schema=False)


@router.get("/organisations/{organisation_id}", name="organisation_page")
def organisation(
    request: Request,
    organisation_id: Id,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> HTMLResponse:
    """The organisation, its awards in force and its pledges by theme with their progress."""
    view = organisation_page(session, registry, organisation_id, now)
    return render(
        request,
        "public/organisation.html",
        auth=auth,
        title=view.title,
        organisation=view.organisation,
        awards=view.awards,
        themes=view.themes,
    )
