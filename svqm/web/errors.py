"""Maps domain errors to HTTP: JSON `{"error", "detail"[, "unmet"]}` for the API, a page for people.

No traceback ever reaches a user: the last-resort handler logs it with a reference they can quote.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from svqm import errors

log = logging.getLogger("svqm.web")

STATUS: list[tuple[type[errors.SvqmError], int]] = [
    (errors.NotSignedIn, 401),
    (errors.TooManyAttempts, 429),
    (errors.NotFound, 404),
    (errors.PermissionDenied, 403),
    (errors.Conflict, 409),
    (errors.UploadTooLarge, 413),
    (errors.UnsupportedFileType, 415),
    (errors.GuardRefused, 422),
    (errors.InvalidUpload, 422),
    (errors.InvalidInput, 422),
    (errors.PolicyError, 500),
]

TITLES = {
    401: "Sign in to continue",
    403: "You cannot do this",
    404: "Page not found",
    405: "Not allowed",
    409: "This changed since you opened it",
    413: "The file is too large",
    415: "That kind of file is not accepted",
    422: "Check what you entered",
    429: "Too many attempts",
    500: "Sorry, something went wrong",
}


def error_title(status: int) -> str:
    """The heading of an error page for a status."""
    return TITLES.get(status, "There is a problem")


def status_of(exc: errors.SvqmError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 400)


def _answer(
    request: Request,
    status: int,
    code: str,
    detail: str,
    extra: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """JSON for the API; an HTML page for anything a browser navigates to."""
    path = request.url.path
    machine = ("/api/", "/credentials/", "/.well-known/")
    if path.startswith(machine) or path in ("/healthz", "/openapi.json", "/issuer"):
        return JSONResponse(
            {"error": code, "detail": detail, **(extra or {})}, status_code=status, headers=headers
        )
    from svqm.web.pages import render

    context = {
        "title": error_title(status),
        "detail": detail,
        "unmet": (extra or {}).get("unmet", []),
        "home": None,
        "errors": None,
        "flash": None,
    }
    response = render(request, "error.html", context, auth=None, status_code=status)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(errors.SvqmError)
    async def _domain(request: Request, exc: errors.SvqmError) -> Response:
        extra = {"unmet": exc.unmet} if isinstance(exc, errors.GuardRefused) else None
        return _answer(request, status_of(exc), exc.code, exc.detail, extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _answer(request, 422, "invalid_input", "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = {
            401: "not_signed_in",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }.get(exc.status_code, "http_error")
        return _answer(request, exc.status_code, code, str(exc.detail), headers=exc.headers)

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error, reference %s", ref)
        return _answer(
            request, 500, "internal_error", f"something went wrong on our side (reference {ref})"
        )
