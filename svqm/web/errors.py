"""Maps domain errors to HTTP: JSON `{"error", "detail"[, "unmet"]}`; no traceback ever reaches a user."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from svqm import errors

log = logging.getLogger("svqm.web")

STATUS: list[tuple[type[errors.SvqmError], int]] = [
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


def status_of(exc: errors.SvqmError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 400)


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(errors.SvqmError)
    async def _domain(request: Request, exc: errors.SvqmError) -> JSONResponse:
        body: dict[str, object] = {"error": exc.code, "detail": exc.detail}
        if isinstance(exc, errors.GuardRefused):
            body["unmet"] = exc.unmet
        return JSONResponse(body, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(
            {"error": "invalid_input", "detail": "; ".join(problems)}, status_code=422
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {
            401: "not_signed_in",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error, reference %s", ref)
        return JSONResponse(
            {
                "error": "internal_error",
                "detail": f"something went wrong on our side (reference {ref})",
            },
            status_code=500,
        )
