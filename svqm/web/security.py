"""Browser security: headers and the CSP, the body limit, cookies and form tokens, attachments."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from svqm.config import Settings
from svqm.errors import UploadTooLarge

# Nothing but this site's own files; each page adds a nonce for its scripts (csp_with_nonce).
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SESSION_COOKIE = "svqm_session"
ANON_COOKIE = "svqm_anon"
# Room for the multipart envelope and the small text fields around an uploaded file.
FORM_OVERHEAD = 64 * 1024
_UPLOAD_SUFFIXES = ("/evidence", "/reports")


def csp_with_nonce(nonce: str) -> str:
    """The page policy allowing only scripts from this site or carrying this page's nonce."""
    return f"{CSP}; script-src 'self' 'nonce-{nonce}'"


class SecurityHeaders:
    """Browser security headers on every response; personal pages are never cached."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"x-frame-options": b"DENY",
                    b"cross-origin-opener-policy": b"same-origin",
                    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
                    b"cache-control": b"public, max-age=3600" if static else b"no-store",
                }
                if self.hsts:
                    extra[b"strict-transport-security"] = b"max-age=31536000; includeSubDomains"
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_headers)


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
        detail = f"the request is larger than the {limit // (1024 * 1024)} MiB limit"
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, detail)
            return
        seen = 0
        over = False
        replaced = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise UploadTooLarge(detail)
            return message

        async def checked_send(message: Message) -> None:
            # A body parser that catches the error above (FastAPI's JSON one answers 400) must not
            # decide the status: a body over the limit is a 413, whatever the route made of it.
            nonlocal replaced
            if message["type"] == "http.response.start" and over and message.get("status") != 413:
                replaced = True
                await _too_large(send, detail)
                return
            if replaced and message["type"] == "http.response.body":
                return
            await send(message)

        await self.app(scope, counted, checked_send)


async def _too_large(send: Send, detail: str) -> None:
    body = json.dumps({"error": "file_too_large", "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def secret_key(settings: Settings) -> str:
    """The configured secret, or one made once and kept under VAR_DIR (never committed)."""
    if settings.SECRET_KEY:
        return settings.SECRET_KEY
    path = Path(settings.VAR_DIR) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def cookie_name(settings: Settings, base: str) -> str:
    """`__Host-` cookies (Secure, Path=/, no Domain) whenever cookies are Secure."""
    return f"__Host-{base}" if settings.COOKIE_SECURE else base


def anon_csrf_token(secret: str, anon: str) -> str:
    """The form token for signed-out forms: bound by HMAC to the visitor's random cookie."""
    return hmac.new(secret.encode(), f"csrf:{anon}".encode(), hashlib.sha256).hexdigest()


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    """The session cookie: HttpOnly, Lax, whole site, and gone when the browser closes."""
    response.set_cookie(
        cookie_name(settings, SESSION_COOKIE),
        token,
        httponly=True,
        secure=settings.COOKIE_SECURE,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    """Drop the session cookie (signing out, or a cookie naming a session that has ended)."""
    response.delete_cookie(
        cookie_name(settings, SESSION_COOKIE),
        path="/",
        httponly=True,
        secure=settings.COOKIE_SECURE,
        samesite="lax",
    )


def attachment(path: str, filename: str, media_type: str) -> FileResponse:
    """A stored file: always a download, never rendered inline, with an RFC 6266 encoded name."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'") or "evidence"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


# The kinds of stored file shown inside the staff's case page; anything else is only downloaded.
PREVIEWABLE = ("application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp")


def inline_preview(path: str, filename: str, media_type: str) -> FileResponse:
    """A stored PDF or image shown in a frame of this site's own pages, sandboxed as a download is.

    The sandbox gives the document no scripts, forms, plugins' reach or origin of its own; it may
    be framed by this site only, and is neither sniffed nor cached."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'") or "evidence"
    disposition = f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'; frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )


class CalendarResponse(Response):
    """text/calendar (Starlette adds the charset), offered as a file to save or subscribe to."""

    media_type = "text/calendar"

    def __init__(self, content: bytes, status_code: int = 200) -> None:
        super().__init__(
            content,
            status_code=status_code,
            headers={"Content-Disposition": 'attachment; filename="deadlines.ics"'},
        )
