"""QR codes drawn locally as SVG data URIs (no image service, nothing the CSP must allow)."""

from __future__ import annotations

import base64

import qrcode
import qrcode.image.svg


def qr_data_uri(text: str) -> str:
    """A QR code of `text` (an otpauth URI, a verify page's address) as an SVG data URI."""
    svg = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=4).to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
