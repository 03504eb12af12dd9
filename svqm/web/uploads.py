"""Request bodies: a byte-counting limit on every body, and the evidence and report upload forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from svqm.errors import InvalidInput, UploadTooLarge

# Room for the multipart envelope and the small text fields around the file.
FORM_OVERHEAD = 64 * 1024
_UPLOAD_SUFFIXES = ("/evidence", "/reports")


class BodyLimit:
    """Counts the bytes of each request body as they arrive and stops at the limit.

    Starlette and FastAPI set no body limit, and a Content-Length can lie (or be absent with a
    chunked body), so the count is on the bytes themselves. Upload routes may carry a file.
    """

    def __init__(self, app: ASGIApp, *, max_upload: int, max_other: int = 1024 * 1024) -> None:
        self.app = app
        self.max_upload = max_upload + FORM_OVERHEAD
        self.max_other = max_other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.max_upload if path.endswith(_UPLOAD_SUFFIXES) else self.max_other
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise UploadTooLarge(
                        f"the request is larger than the {limit // (1024 * 1024)} MiB limit"
                    )
            return message

        await self.app(scope, counted, send)


@dataclass
class UploadForm:
    file: IO[bytes]
    filename: str
    requirement: str
    pledge_id: int | None
    title: str
    _upload: UploadFile

    def close(self) -> None:
        self._upload.file.close()


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _file_form(request: Request) -> tuple[Any, UploadFile]:
    """The multipart form and its one `file` part (refused as invalid input otherwise)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data with a 'file' field")
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        # Any other file part is closed now, not left to the garbage collector.
        await form.close()
        raise InvalidInput("the form has no 'file' field with a file in it")
    return form, upload


async def read_upload_form(request: Request) -> UploadForm:
    """Parse an evidence upload: `file`, and `requirement` or `pledge_id`, optional `title`."""
    form, upload = await _file_form(request)
    requirement, pledge = _text(form, "requirement"), _text(form, "pledge_id")
    if not requirement and not pledge:
        upload.file.close()
        raise InvalidInput(
            "name the evidence requirement ('requirement') or the pledge ('pledge_id')"
        )
    if pledge and (not pledge.isdigit() or not 1 <= int(pledge) <= 2_147_483_647):
        upload.file.close()
        raise InvalidInput("pledge_id must be a whole number (a pledge's id)")
    return UploadForm(
        file=upload.file,
        filename=upload.filename or "",
        requirement=requirement,
        pledge_id=int(pledge) if pledge else None,
        title=_text(form, "title")[:200],
        _upload=upload,
    )


@dataclass
class ReportForm:
    file: IO[bytes]
    filename: str
    period: str
    title: str
    # The filing deadline it is for (`annual_fee`); empty: the scheme's only one.
    deadline: str
    _upload: UploadFile

    def close(self) -> None:
        self._upload.file.close()


async def read_report_form(request: Request) -> ReportForm:
    """Parse an annual report upload: `file`, `period`, optional `title` and `deadline`.

    The period is checked by svqm.workflow.reports (with the award), so only its length is
    bounded here.
    """
    form, upload = await _file_form(request)
    period, title = _text(form, "period"), _text(form, "title")
    if not period:
        await form.close()
        raise InvalidInput("give the reporting period ('period'), e.g. 2027")
    if "\x00" in title:
        await form.close()
        raise InvalidInput("the title must not contain NUL characters")
    return ReportForm(
        file=upload.file,
        filename=upload.filename or "",
        period=period[:40],
        title=title[:200],
        deadline=_text(form, "deadline")[:64],
        _upload=upload,
    )
