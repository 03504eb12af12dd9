"""The OpenAPI document describes the error envelope the API really sends (SPEC's error codes)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "a machine-readable code"},
        "detail": {"type": "string", "description": "one sentence a person can read"},
        "unmet": {
            "type": "array",
            "items": {"type": "string"},
            "description": "every unmet requirement, when a guard refused",
        },
    },
}
_WHY = {
    "400": "The body could not be read",
    "401": "Not signed in, or the token is no longer valid",
    "403": "Your role may not do this",
    "404": "Not found, or not yours",
    "409": "Not allowed in this state, or someone changed it first (stale version)",
    "413": "The request or file is too large",
    "415": "The file's type is not accepted",
    "422": "Invalid input, or a guard refused (with every unmet requirement)",
    "429": "Too many failed sign-ins or sign-ups from here (see Retry-After)",
    "503": "The database cannot be reached; try again after Retry-After",
}


def install(app: FastAPI) -> None:
    """Replace FastAPI's generated document with one whose error responses are ours."""

    def document() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Error"] = ERROR
        envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        # Every documented path: the API, and the public credential documents beside it.
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, why in _WHY.items():
                    responses[code] = {"description": why, "content": envelope}
        app.openapi_schema = doc
        return doc

    # FastAPI's documented way to customise the schema is to replace this method on the app.
    app.openapi = document  # type: ignore[method-assign]
