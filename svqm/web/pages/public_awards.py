"""Public pages about one award: the verify page, checking a pasted credential, the certificate.

The verify page runs the same checks a third party would on the credential this service hands
out (signature against the published key, validity dates, both status lists), then reads the
award's record for what a credential cannot say by itself: that a renewal superseded it.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from svqm.credentials import service as credentials
from svqm.credentials.issuers import Issuers
from svqm.errors import InvalidInput
from svqm.web.deps import (
    CSRF,
    Id,
    IssuersDep,
    NowDep,
    OptionalPageUser,
    RegistryDep,
    SessionDep,
    finish_reading,
)
from svqm.web.forms import FormDep, field
from svqm.web.pdf import render_pdf
from svqm.web.qr import qr_data_uri
from svqm.web.ui import render, templates
from svqm.web.views.awards import checked_award
from svqm.web.views.issuers import issuer_view
from svqm.workflow import awards as award_queries
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

# A compact JWT of one of our credentials is about 3 KB; far more is not a credential.
MAX_PASTE = 20_000


@router.get("/awards/{award_id}/verify")
def verify(
    request: Request,
    award_id: Id,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    issuers: IssuersDep,
    now: NowDep,
) -> HTMLResponse:
    """Whether an award is valid today: its credential checked as a verifier would."""
    award = award_queries.get_award(session, award_id)
    result = credentials.check_award(session, registry, issuers, award, now)
    return render(
        request,
        "public/verify.html",
        auth=auth,
        title="Check an award",
        issuer=issuer_view(issuers.for_scheme(award.scheme)),
        **checked_award(session, registry, award, result),
    )


@router.get("/awards/verify")
def verify_form(request: Request, auth: OptionalPageUser) -> HTMLResponse:
    """A form to paste a credential (a VC-JWT) someone was given, to check it."""
    title = "Check a credential"
    return render(request, "public/verify_paste.html", auth=auth, title=title, pasted="")


@router.post("/awards/verify")
def verify_pasted(
    request: Request,
    form: FormDep,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    issuers: IssuersDep,
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
        return render(
            request,
            "public/verify_paste.html",
            auth=auth,
            title="Check a credential",
            failure=problem,
            href="#credential",
            pasted=field(form, "credential", limit=MAX_PASTE),
        )
    result, award = credentials.check(session, registry, issuers, pasted, now)
    context: dict[str, Any] = {"verdict": result.verdict, "checks": result.checks, "award": None}
    issuer = issuers.default
    if award is not None:
        context = checked_award(session, registry, award, result)
        issuer = issuers.for_scheme(award.scheme)
    return render(
        request,
        "public/verify_result.html",
        auth=auth,
        title="Credential checked",
        issuer=issuer_view(issuer),
        **context,
    )


def _certificate(
    session: Session, registry: SchemeRegistry, issuers: Issuers, award: Award, now: datetime
) -> dict[str, Any]:
    result = credentials.check_award(session, registry, issuers, award, now)
    issuer = issuers.for_scheme(award.scheme)
    verify_url = issuer.url(f"/awards/{award.id}/verify")
    return {
        **checked_award(session, registry, award, result),
        "verify_url": verify_url,
        "qr": qr_data_uri(verify_url),
        "issuer_name": issuer.name,
        "issuer": issuer_view(issuer),
    }


@router.get("/awards/{award_id}/certificate")
def certificate(
    request: Request,
    award_id: Id,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    issuers: IssuersDep,
    now: NowDep,
) -> HTMLResponse:
    """A printable certificate whose QR code leads to the verify page."""
    award = award_queries.get_award(session, award_id)
    context = _certificate(session, registry, issuers, award, now)
    return render(request, "public/certificate.html", auth=auth, title="Certificate", **context)


# A certificate PDF costs about a second of CPU and anyone may ask for one (SECURITY K4): each is
# rendered once (cached by its HTML, which holds every fact it shows, so a change of status makes
# a new one), through svqm.web.pdf like the invoices, so one render runs at a time for both.
@lru_cache(maxsize=128)
def pdf_of(html: str) -> bytes:
    """The certificate's HTML as a PDF."""
    return render_pdf(html)


@router.get("/awards/{award_id}/certificate.pdf")
def certificate_pdf(
    award_id: Id, session: SessionDep, registry: RegistryDep, issuers: IssuersDep, now: NowDep
) -> Response:
    """The certificate as an A4 PDF (WeasyPrint), the same facts and QR code as the page."""
    award = award_queries.get_award(session, award_id)
    context = _certificate(session, registry, issuers, award, now)
    number = award.certificate_number.replace('"', "")
    # The database connection goes back to the pool before the render, rather than being held
    # while waiting for a turn.
    finish_reading(session)
    html = templates.get_template("public/certificate_print.html").render(context)
    return Response(
        pdf_of(html),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )
