"""HTML to PDF with WeasyPrint, for certificates and invoices: loaded on first use, loading
nothing but data: URLs, one render at a time (a PDF costs about a second of CPU)."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any


@cache
def _renderer() -> Any:
    # Imported on first use: WeasyPrint loads pango and its fonts, which most requests never need.
    import weasyprint

    return weasyprint


# One render runs at a time, so a flood of PDF requests cannot take every core (SECURITY K4).
_ONE_RENDER_AT_A_TIME = threading.Lock()


def render_pdf(html: str) -> bytes:
    """The HTML as a tagged PDF (a structure tree, the document's language and title, so a
    screen reader reads it in order); it may load embedded data: URLs only."""
    weasyprint = _renderer()
    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"], fail_on_errors=True)
    with _ONE_RENDER_AT_A_TIME:
        pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_tags=True)
    return pdf
