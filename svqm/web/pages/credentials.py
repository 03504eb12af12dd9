"""Public pages about one award: the verify page, checking a pasted credential, the certificate.

The verify page runs the same checks a third party would on the credential this service hands
out (signature against the published key, validity dates, both status lists), then reads the
award's record for what a credential cannot say by itself: that a renewal superseded it.
"""

from __future__ import annotations

import threading
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, select

from svqm.credentials import service as credentials
from svqm.credentials.badge import Issuer
from svqm.credentials.verification import Verification
from svqm.errors import InvalidInput, NotFound
from svqm.web.api.awards import award_public
from svqm.web.deps import (
    Id,
    IssuerDep,
    NowDep,
    OptionalPageUser,
    RegistryDep,
    SessionDep,
    verify_csrf,
)
from svqm.web.pages import templates
from svqm.web.pages.public import FormDep, error_page, field, show
from svqm.web.qr import qr_data_uri
from svqm.workflow import queries
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

# A compact JWT of one of our credentials is about 3 KB; far more is not a credential.
MAX_PASTE = 20_000


def successor_of(session: Session, award: Award) -> Award | None:
    """The award that superseded this one (a renewal or an upgrade), if any."""
    return session.exec(select(Award).where(Award.supersedes_id == award.id)).first()


def verdict_of(
    result: Verification, session: Session, registry: SchemeRegistry, award: Award | None
) -> str:
    """The credential's verdict, unless the record says a newer award replaced it (superseded) or
    it left force early (expired: a lapsed or ended award whose dates have not run out)."""
    if result.verdict != "valid" or award is None:
        return result.verdict
    workflow = registry.for_subject(session, award).policy.workflows.award
    if workflow.state(award.state).in_force:
        return "valid"
    # A newer award supersedes an older one by firing `renew` on it (the issue_award effect).
    superseded = {t.dest for t in workflow.transitions if t.trigger == "renew"}
    return "superseded" if award.state in superseded else "expired"


def _award_context(
    session: Session, registry: SchemeRegistry, award: Award, result: Verification
) -> dict[str, Any]:
    policy = registry.for_subject(session, award).policy
    successor = successor_of(session, award)
    return {
        "award": award_public(session, award, registry),
        "scheme_name": policy.name,
        "state_title": policy.workflows.award.state(award.state).title,
        "verdict": verdict_of(result, session, registry, award),
        "checks": result.checks,
        "successor": successor.id if successor else None,
    }


@router.get("/awards/{award_id}/verify")
def verify(
    request: Request,
    award_id: Id,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    issuer: IssuerDep,
    now: NowDep,
) -> HTMLResponse:
    """Whether an award is valid today: its credential checked as a verifier would."""
    try:
        award = queries.get_award(session, award_id)
    except NotFound as exc:
        return error_page(request, exc, auth)
    result = credentials.check_award(session, registry, issuer, award, now)
    return show(
        request,
        "public/verify.html",
        auth,
        "Check an award",
        issuer=issuer,
        **_award_context(session, registry, award, result),
    )


@router.get("/awards/verify")
def verify_form(request: Request, auth: OptionalPageUser) -> HTMLResponse:
    """A form to paste a credential (a VC-JWT) someone was given, to check it."""
    return show(request, "public/verify_paste.html", auth, "Check a credential", pasted="")


@router.post("/awards/verify")
def verify_pasted(
    request: Request,
    form: FormDep,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    issuer: IssuerDep,
    now: NowDep,
) -> HTMLResponse:
    """The checks of a pasted credential, and the award it names if it is one of ours."""
    raw = form.get("credential")
    pasted = raw.strip() if isinstance(raw, str) else ""
    problem = None
    if not pasted:
        problem = InvalidInput("Paste the credential: the text that starts with eyJ")
    elif len(pasted) > MAX_PASTE:
        problem = InvalidInput(f"That is longer than a credential (over {MAX_PASTE:,} characters)")
    if problem is not None:
        return show(
            request,
            "public/verify_paste.html",
            auth,
            "Check a credential",
            failure=problem,
            href="#credential",
            pasted=field(form, "credential", limit=MAX_PASTE),
        )
    result, award = credentials.check(session, registry, issuer, pasted, now)
    context: dict[str, Any] = {"verdict": result.verdict, "checks": result.checks, "award": None}
    if award is not None:
        context = _award_context(session, registry, award, result)
    return show(
        request, "public/verify_result.html", auth, "Credential checked", issuer=issuer, **context
    )


def _certificate_context(
    session: Session, registry: SchemeRegistry, issuer: Issuer, award: Award, now: datetime
) -> dict[str, Any]:
    result = credentials.check_award(session, registry, issuer, award, now)
    verify_url = issuer.url(f"/awards/{award.id}/verify")
    return {
        **_award_context(session, registry, award, result),
        "verify_url": verify_url,
        "qr": qr_data_uri(verify_url),
        "issuer_name": issuer.name,
    }


@router.get("/awards/{award_id}/certificate")
def certificate(
    request: Request,
    award_id: Id,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    issuer: IssuerDep,
    now: NowDep,
) -> HTMLResponse:
    """A printable certificate whose QR code leads to the verify page."""
    try:
        award = queries.get_award(session, award_id)
    except NotFound as exc:
        return error_page(request, exc, auth)
    context = _certificate_context(session, registry, issuer, award, now)
    return show(request, "public/certificate.html", auth, "Certificate", **context)


@cache
def _pdf_renderer() -> Any:
    # Imported on first use: WeasyPrint loads pango and its fonts, which most requests never need.
    import weasyprint

    return weasyprint


# A certificate PDF costs about a second of CPU and anyone may ask for one (SECURITY K4): each is
# rendered once (cached by its HTML, which holds every fact it shows, so a change of status makes
# a new one) and one render runs at a time, so a flood of PDF requests cannot take every core.
_ONE_RENDER_AT_A_TIME = threading.Lock()


@lru_cache(maxsize=128)
def pdf_of(html: str) -> bytes:
    """The certificate's HTML as a PDF."""
    weasyprint = _pdf_renderer()
    # The embedded QR code (a data: URL) is all it may load: no files, nothing over the network.
    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"], fail_on_errors=True)
    with _ONE_RENDER_AT_A_TIME:
        pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    return pdf


@router.get("/awards/{award_id}/certificate.pdf")
def certificate_pdf(
    request: Request, award_id: Id, registry: RegistryDep, issuer: IssuerDep, now: NowDep
) -> Response:
    """The certificate as an A4 PDF (WeasyPrint), the same facts and QR code as the page."""
    # Its own short session: the database connection goes back to the pool before the render,
    # rather than being held while waiting for a turn.
    with Session(request.app.state.engine) as session:
        award = queries.get_award(session, award_id)
        context = _certificate_context(session, registry, issuer, award, now)
        number = award.certificate_number.replace('"', "")
    html = templates.get_template("public/certificate_print.html").render(context)
    return Response(
        pdf_of(html),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )
