"""What a page shows of who signs a scheme's credentials: the service, or a partnership."""

from __future__ import annotations

import base64

from svqm.credentials.badge import Issuer


def issuer_view(issuer: Issuer) -> dict[str, str]:
    """The name, the logo inline (so the certificate's PDF needs to load nothing) and where the
    issuer's profile is."""
    logo = ""
    if issuer.logo:
        logo = f"data:{issuer.logo_type};base64,{base64.b64encode(issuer.logo).decode()}"
    return {"name": issuer.name, "logo": logo, "profile": issuer.path}
