"""Server-rendered pages (GOV.UK Design System): static files, templates, and the page routers."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from svqm.config import Settings
from svqm.web.app_csp import csp_with_nonce
from svqm.web.deps import ANON_COOKIE, PageAuth, anon_csrf_token, cookie_name

WEB = Path(__file__).resolve().parent.parent
REPO = WEB.parent.parent
GOVUK_DIST = REPO / "node_modules" / "govuk-frontend" / "dist" / "govuk"
SERVICE_NAME = "Social Value Quality Mark accreditation"


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


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    auth: PageAuth | None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with what every page needs: the person, the form token, the CSP nonce."""
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
        "serviceName": SERVICE_NAME,
        "assetPath": "/static/govuk/assets",
    }
    response = templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status_code
    )
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


def flash_of(word: str | None, messages: dict[str, str]) -> dict[str, str] | None:
    """The success banner for `?done=<word>`; unknown words show nothing (never echoed)."""
    text = messages.get(word or "")
    return {"type": "success", "text": text} if text else None


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the static files and include every page router."""
    from svqm.web.pages import routers

    if GOVUK_DIST.is_dir():
        app.mount("/static/govuk", StaticFiles(directory=GOVUK_DIST), name="govuk")
    app.mount("/static/app", StaticFiles(directory=WEB / "static"), name="static")
    for router in routers.ALL:
        app.include_router(router)
