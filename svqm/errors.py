"""Domain errors. They carry no HTTP codes; the web layer maps them (see svqm/web/errors.py)."""

from __future__ import annotations


class SvqmError(Exception):
    """Base of every error a user can cause; its message is one clear line.

    `field` names the input the error is about (`due_date`, `period`), as pydantic's `loc` does,
    so a form can mark that input without reading the message.
    """

    code = "error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(SvqmError):
    """The object does not exist, or the caller may not know that it does."""

    code = "not_found"


class PermissionDenied(SvqmError):
    """The actor's role may not do this."""

    code = "permission_denied"


class InvalidInput(SvqmError):
    """Input that fails validation (a bad field, an unknown id)."""

    code = "invalid_input"


class Conflict(SvqmError):
    """The request conflicts with the current state of the object."""

    code = "conflict"


class TransitionRefused(Conflict):
    """The trigger is not allowed from the subject's current state."""

    code = "transition_refused"


class StaleVersion(Conflict):
    """Someone changed the object since the caller read it."""

    code = "stale_version"


class Reason(str):
    """One unmet requirement, as text; `field` names the input a person fills in to meet it."""

    field: str | None

    def __new__(cls, text: str, *, field: str | None = None) -> Reason:
        reason = super().__new__(cls, text)
        reason.field = field
        return reason


def field_of(reason: str) -> str | None:
    """The input an unmet reason is about, if it names one."""
    return reason.field if isinstance(reason, Reason) else None


class GuardRefused(SvqmError):
    """One or more guards are unmet; `unmet` lists every reason."""

    code = "guard_refused"

    def __init__(self, detail: str, unmet: list[str], *, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.unmet = unmet


class PolicyError(SvqmError):
    """A policy file is invalid; the message names the file, the field and the reason."""

    code = "policy_invalid"


class UploadTooLarge(SvqmError):
    """An upload exceeded the size cap (counted on the bytes, not a declared length)."""

    code = "file_too_large"


class UnsupportedFileType(SvqmError):
    """An upload's content is not one of the allowed types."""

    code = "unsupported_file_type"


class InvalidUpload(SvqmError):
    """An upload is malformed: empty, a bad filename, a broken or oversized archive."""

    code = "invalid_upload"


class NotSignedIn(SvqmError):
    """No valid session or token, or the second factor is still owed."""

    code = "not_signed_in"


class TooManyAttempts(SvqmError):
    """Too many failed sign-ins (or sign-ups) from here recently; `retry_after` seconds to wait."""

    code = "too_many_attempts"

    def __init__(self, detail: str, *, retry_after: int = 60, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.retry_after = max(1, retry_after)
