"""The Content-Security-Policy: nothing but this site's own files, and per-page nonces for scripts."""

from __future__ import annotations

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def csp_with_nonce(nonce: str) -> str:
    """The page policy allowing only scripts from this site or carrying this page's nonce."""
    return f"{CSP}; script-src 'self' 'nonce-{nonce}'"
