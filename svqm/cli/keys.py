"""`svqm keys list|rotate [--scheme S]`: the issuers' signing keys, and replacing one.

Rotating keeps the old key's public half beside the new key, so the JWKS still lists it and the
credentials it signed still verify; new credentials carry the new key's kid. A running server
reads the key files again at its next request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from svqm.cli import Table, _fail, _registry, app, out
from svqm.config import get_settings
from svqm.credentials import keys as issuer_keys
from svqm.credentials.issuers import Issuers, build_issuers

COMMANDS = ("keys list", "keys rotate")

keys_app = typer.Typer(help="The issuers' signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

SchemeOption = Annotated[
    str | None,
    typer.Option(
        "--scheme", help="The scheme whose issuer's key to rotate (default: the service's)."
    ),
]


def _issuers() -> Issuers:
    settings = get_settings()
    registry = _registry()
    return build_issuers(
        service_key=settings.ISSUER_KEY_FILE or Path(settings.VAR_DIR) / "keys" / "issuer.pem",
        base_url=settings.BASE_URL,
        name=settings.ISSUER_NAME,
        policies=[s.policy for s in registry.current.values()],
    )


@keys_app.command("list")
def keys_list() -> None:
    """Each issuer, the schemes it signs for, its current key and the keys it retired."""
    table = Table("Issuer", "Name", "Schemes", "Current key", "Retired keys", title="Signing keys")
    for row in _issuers().describe():
        table.add_row(
            row["issuer"],
            row["name"],
            ", ".join(row["schemes"]) or "every other scheme",
            row["current"],
            "\n".join(row["retired"]) or "none",
        )
    out.print(table)


@keys_app.command("rotate")
def keys_rotate(scheme: SchemeOption = None) -> None:
    """Sign new credentials with a new key; the old key stays published for older ones."""
    issuers = _issuers()
    if scheme is not None and scheme not in _registry().ids():
        raise _fail(f"no scheme '{scheme}' (schemes: {', '.join(_registry().ids())})")
    issuer = issuers.for_scheme(scheme) if scheme else issuers.default
    old, new = issuer_keys.rotate(issuer.keys.path)
    out.print(
        f"rotated the key of {issuer.name}: new credentials are signed with {new}; "
        f"{old} stays in /.well-known/jwks.json for the credentials it signed",
        markup=False,
    )
