"""Exception handlers: JSON `{"error", "detail"[, "unmet"]}` for the API, the error page for people.

No traceback ever reaches a user: the last-resort handler logs it with a reference they can quote.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from svqm.db import first_line, unreachable
from svqm.errors import GuardRefused, SvqmError
from svqm.web.deps import ActingElsewhere, LoginRequired, signed_in
from svqm.web.errors import HTTP_CODES, status_of
from svqm.web.ui import error_page, render

log = logging.getLogger("svqm.web")
RETRY_AFTER_SECONDS = 30
# A known outage is logged once a minute, briefly.
_OUTAGE_LOG_EVERY = 60.0
_last_outage_log = [float("-inf")]


def _log_outage(exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_outage_log[0] >= _OUTAGE_LOG_EVERY:
        _last_outage_log[0] = now
        log.error(
            "database unreachable, answering 503 (logged once a minute while it lasts): %s",
            first_line(exc),
        )


# Paths a program reads: they answer in JSON; everything else is a page a person navigates to.
_MACHINE_PREFIXES = ("/api/", "/credentials/", "/.well-known/", "/issuers/")
_MACHINE_PATHS = ("/healthz", "/readyz", "/openapi.json", "/issuer")


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(_MACHINE_PREFIXES) or path in _MACHINE_PATHS


def api_error(exc: SvqmError) -> JSONResponse:
    """The API's answer to a domain error, for a route that returns it rather than raising it."""
    body: dict[str, object] = {"error": exc.code, "detail": exc.detail}
    if isinstance(exc, GuardRefused):
        body["unmet"] = exc.unmet
    return JSONResponse(body, status_code=status_of(exc))


# Starlette's own words for an address no route answers, or a method a route does not take,
# in plain words (for people and the API's envelope alike).
PLAIN_DETAILS = {
    "Not Found": "there is no page at this address. If you typed the web address, check it is "
    "correct; if you pasted it, check you copied all of it",
    "Method Not Allowed": "this address does not take that kind of request",
}
# The most of a path parameter sent back in a 404's detail.
_ECHOED = 40


def _no_such(request: Request, error: Mapping[str, object]) -> str:
    """What a 404 for a path parameter off its type says: the page's plain words to a person,
    the object and the value sent (shortened) to a program."""
    if not wants_json(request):
        return PLAIN_DETAILS["Not Found"]
    loc = error.get("loc")
    name = str(loc[-1]) if isinstance(loc, (list, tuple)) and loc else "object"
    value = str(error.get("input", ""))
    value = value if len(value) <= _ECHOED else value[: _ECHOED - 1] + "…"
    return f"no {name.removesuffix('_id').replace('_', ' ')} '{value}'"


def _answer(
    request: Request,
    status: int,
    code: str,
    detail: str,
    unmet: list[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """JSON for the API; the error page for anything a browser navigates to."""
    if wants_json(request):
        body: dict[str, object] = {"error": code, "detail": detail}
        if unmet is not None:
            body["unmet"] = unmet
        return JSONResponse(body, status_code=status, headers=headers)
    # Set by the page dependencies, so a refused request still shows who is signed in.
    auth = signed_in(request)
    if auth is not None and not auth.session.mfa_passed:
        auth = None
    return error_page(request, auth, status, detail, unmet, headers)


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = "/login/second-factor" if exc.second_factor else "/login"
        return RedirectResponse(f"{target}?next={exc.next_path}", status_code=303)

    # A page of another of the person's organisations (a link in an email about one of them):
    # the offer to act for it and come back. A form sent for it is not taken (409): it was
    # filled in for the organisation they acted for then.
    @app.exception_handler(ActingElsewhere)
    async def _elsewhere(request: Request, exc: ActingElsewhere) -> Response:
        auth = signed_in(request)
        if auth is None:  # set by the page dependency that raised this
            return _answer(request, 404, "not_found", f"no {exc.kind}")
        back = request.url.path if request.method == "GET" else ""
        return render(
            request,
            "account/act_for.html",
            auth=auth,
            title=f"Act for {exc.name}",
            status=200 if request.method == "GET" else 409,
            kind=exc.kind,
            organisation=exc.name,
            organisation_id=exc.organisation_id,
            acting=exc.acting,
            next=back,
        )

    @app.exception_handler(SvqmError)
    async def _domain(request: Request, exc: SvqmError) -> Response:
        unmet = exc.unmet if isinstance(exc, GuardRefused) else None
        return _answer(request, status_of(exc), exc.code, exc.detail, unmet)

    # A path parameter that is not of its type (`/organisations/abc`) names no object: the
    # address is wrong, as for one no route answers (404), not what someone entered (422).
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        in_path = [e for e in errors if tuple(e["loc"][:1]) == ("path",)]
        if in_path:
            return _answer(request, 404, "not_found", _no_such(request, in_path[0]))
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors]
        return _answer(request, 422, "invalid_input", "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        detail = PLAIN_DETAILS.get(str(exc.detail), str(exc.detail))
        return _answer(request, exc.status_code, code, detail, headers=exc.headers)

    # A value the database cannot store (an id of 2^63, a NUL character) is bad input, not a fault.
    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        return _answer(
            request,
            422,
            "invalid_input",
            "a value in the request cannot be stored (a number out of range, or a NUL character)",
        )

    # The database is down (or restarting): 503 with a time to retry, and one short line in the
    # log per minute of the outage, not a traceback per request.
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(request: Request, exc: Exception) -> Response:
        if not unreachable(exc):
            return await _unexpected(request, exc)
        _log_outage(exc)
        return _answer(
            request,
            503,
            "unavailable",
            "the service cannot reach its database just now; try again in a minute",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    # The client went away mid-request (a cancelled upload): nobody reads an answer, and it is
    # no fault of ours, so one line, no traceback.
    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error, reference %s", ref)
        return _answer(
            request, 500, "internal_error", f"something went wrong on our side (reference {ref})"
        )
