"""Domain errors as HTTP: the status of each error class and the title of its page (a pure table)."""

from __future__ import annotations

from svqm import errors

# The first class an error is an instance of decides its status (subclasses come first).
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
    503: "Sorry, the service is unavailable",
}

# The `error` code of a response Starlette itself refused (a route or method that does not exist).
HTTP_CODES = {401: "not_signed_in", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def status_of(exc: errors.SvqmError) -> int:
    """The HTTP status of a domain error."""
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 400)


def title_of(status: int) -> str:
    """The heading of an error page for a status."""
    return TITLES.get(status, "There is a problem")


def unmet_of(exc: errors.SvqmError) -> list[str]:
    """Every unmet reason a refusal lists (a guard refusal's; none for other errors)."""
    return list(exc.unmet) if isinstance(exc, errors.GuardRefused) else []
