"""Pages: the templates, the one render wrapper, the error page, success banners, post/redirect/get."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from svqm.config import Settings
from svqm.errors import SvqmError
from svqm.evidence.pledges import figure
from svqm.web.deps import PageAuth
from svqm.web.errors import status_of, title_of, unmet_of
from svqm.web.format import day, file_kind, file_size, file_title, moment, reference
from svqm.web.security import ANON_COOKIE, anon_csrf_token, cookie_name, csp_with_nonce

WEB = Path(__file__).resolve().parent
REPO = WEB.parent.parent
GOVUK_DIST = REPO / "node_modules" / "govuk-frontend" / "dist" / "govuk"
Errors = list[dict[str, str]] | None
Flash = dict[str, str] | None


class _PageUndefined(jinja2.ChainableUndefined):
    """Optional params can be tested (the GOV.UK macros do); printing a missing value still fails."""

    def __str__(self) -> str:
        self._fail_with_undefined_error()
        return ""

    __html__ = __str__


templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(WEB / "templates"),
                jinja2.PrefixLoader(
                    {"govuk_frontend_jinja": jinja2.PackageLoader("govuk_frontend_jinja")}
                ),
            ]
        ),
        # Every template is HTML; escape everything, whatever its name (SECURITY B6).
        autoescape=True,
        undefined=_PageUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the code: a restart picks up an edit, as it does for policies, and
        # no render stats every template file on disk.
        auto_reload=False,
    )
)


templates.env.filters["file_kind"] = file_kind
templates.env.filters["file_size"] = file_size
# An evidence file's own title, "" when the applicant gave it none: `i.title|file_title(s.title)`.
templates.env.filters["file_title"] = file_title
# Dates and times as every page shows them: in Europe/London, a time labelled "UK time".
templates.env.filters["uk_day"] = day
# Figures and targets read the same on every page (svqm.evidence.pledges.figure).
templates.env.filters["figure"] = figure
templates.env.filters["uk_moment"] = moment
# An application as people quote it (APP-000042), on pages and in emails alike.
templates.env.filters["reference"] = reference


def error_list(exc: SvqmError, href: str = "#main-content") -> list[dict[str, str]]:
    """A GOV.UK error summary list: the refusal, then every unmet reason."""
    return [{"text": text, "href": href} for text in [exc.detail, *unmet_of(exc)]]


# The one step a person takes on one page and sees the result of on another: acting for
# another of their organisations, then back on the page that offered it (any page).
SWITCHED = "You are now acting for this organisation."


def render(
    request: Request,
    name: str,
    *,
    auth: PageAuth | None,
    title: str,
    status: int = 200,
    errors: Errors = None,
    flash: Flash = None,
    failure: SvqmError | None = None,
    href: str = "#main-content",
    **context: Any,
) -> HTMLResponse:
    """Render a page with what every page needs: the person, the form token, the CSP nonce.

    A domain error given as `failure` becomes the page's error summary (linked to `href`) and
    its status.
    """
    if failure is not None:
        errors, status = error_list(failure, href), status_of(failure)
    if flash is None and auth is not None and request.query_params.get("done") == "switched":
        flash = {"type": "success", "text": SWITCHED}
    nonce = secrets.token_urlsafe(16)
    settings: Settings = request.app.state.settings
    anon_value = None
    if auth is not None:
        csrf = auth.session.csrf_token
    else:
        anon_value = request.cookies.get(
            cookie_name(settings, ANON_COOKIE)
        ) or secrets.token_urlsafe(24)
        csrf = anon_csrf_token(request.app.state.secret_key, anon_value)
    base = {
        "request": request,
        "auth": auth,
        "user": auth.user if auth else None,
        "csrf_token": csrf,
        "cspNonce": nonce,
        "serviceName": settings.SERVICE_NAME,
        "assetPath": "/static/govuk/assets",
        "title": title,
        "errors": errors,
        "flash": flash,
    }
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers["Content-Security-Policy"] = csp_with_nonce(nonce)
    if anon_value is not None:
        response.set_cookie(
            cookie_name(settings, ANON_COOKIE),
            anon_value,
            httponly=True,
            secure=settings.COOKIE_SECURE,
            samesite="lax",
            path="/",
        )
    return response


def error_page(
    request: Request,
    auth: PageAuth | None,
    status: int,
    detail: str,
    unmet: list[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The one error page: what went wrong, with the status the API would give."""
    response = render(
        request,
        "error.html",
        auth=auth,
        title=title_of(status),
        status=status,
        detail=detail,
        unmet=unmet or [],
        home=auth.home if auth else None,
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def flash_of(word: str | None, messages: dict[str, str]) -> Flash:
    """The success banner for `?done=<word>`; unknown words show nothing (never echoed)."""
    text = messages.get(word or "")
    return {"type": "success", "text": text} if text else None


def with_done(path: str, word: str) -> str:
    """A path on this site with `?done=<word>` (in place of any `done` it had)."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "done"]
    return urlunsplit(("", "", parts.path, urlencode([*query, ("done", word)]), parts.fragment))


def after_post(url: str, word: str, anchor: str = "") -> RedirectResponse:
    """Post/redirect/get, with a word that picks a fixed success message."""
    return RedirectResponse(f"{url}?done={word}{anchor}", status_code=303)
