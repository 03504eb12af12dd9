"""Dependencies shared by routes: settings, the scheme registry, a session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from svqm.config import Settings
from svqm.db import writer
from svqm.workflow.schemes import SchemeRegistry


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_registry(request: Request) -> SchemeRegistry:
    registry: SchemeRegistry = request.app.state.registry
    return registry


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request; writes take the write lock up front (SQLite BEGIN IMMEDIATE)."""
    engine = request.app.state.engine
    bind = engine if request.method in ("GET", "HEAD", "OPTIONS") else writer(engine)
    with Session(bind, expire_on_commit=False) as session, session.begin():
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RegistryDep = Annotated[SchemeRegistry, Depends(get_registry)]
# scope="function": the commit runs before the response is sent, so a failed commit is a 500 (G4).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
