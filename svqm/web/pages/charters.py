"""Public pages of charters: who has signed, and what they pledged."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from svqm.web.deps import CSRF, IssuersDep, NowDep, OptionalPageUser, RegistryDep, SessionDep
from svqm.web.ui import render
from svqm.web.views.charters import charter_page

router = APIRouter(dependencies=[CSRF], include_in_schema=False)


@router.get("/charters/{scheme_id}")
def charter(
    request: Request,
    scheme_id: str,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    issuers: IssuersDep,
    now: NowDep,
) -> HTMLResponse:
    """A charter: its commitments, its issuer, and every signatory in force with its pledges."""
    view = charter_page(session, registry, issuers, scheme_id[:64], now)
    return render(
        request,
        "public/charter.html",
        auth=auth,
        title=view.policy.name,
        policy=view.policy,
        scheme_id=scheme_id,
        issuer=view.issuer,
        signatories=view.signatories,
    )
