"""Session lookups under concurrency: keeping a session alive never fails a page request."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from svqm.accounts import auth
from svqm.accounts.models import UserSession
from svqm.config import Settings
from svqm.db import writer
from tests.factories import make_user


def _stale_session(engine: Engine, now: datetime) -> str:
    """A web session last seen five minutes ago, committed; returns its token."""
    with Session(writer(engine), expire_on_commit=False) as s:
        user = make_user(s, "assessor")
        token, _ = auth.start_session(
            s,
            user,
            kind="web",
            now=now - timedelta(minutes=5),
            settings=Settings(),
            mfa_passed=True,
        )
        s.commit()
    return token


def test_two_requests_touching_one_session_both_succeed(engine: Engine, now: datetime) -> None:
    """Two GETs of one session read it, one writes last_seen_at first: the other must not fail.

    In SQLite's read transaction the second write is refused (SQLITE_BUSY); it used to surface
    as a 500 at the request's next query.
    """
    token = _stale_session(engine, now)
    first = Session(engine, expire_on_commit=False)
    second = Session(engine, expire_on_commit=False)
    try:
        first.begin()
        second.begin()
        found_first = auth.resolve(first, token, kind="web", now=now, settings=Settings())
        found_second = auth.resolve(second, token, kind="web", now=now, settings=Settings())
        assert found_first is not None
        assert found_second is not None
        auth.touch(first, found_first[1], now)
        first.commit()
        auth.touch(second, found_second[1], now)
        # The request goes on reading and ends normally.
        assert second.exec(select(UserSession)).first() is not None
        second.commit()
    finally:
        first.close()
        second.close()
    with Session(engine) as s:
        row = s.exec(select(UserSession)).one()
        assert row.last_seen_at == now


def test_touch_writes_at_most_once_a_minute(engine: Engine, now: datetime) -> None:
    token = _stale_session(engine, now)
    with Session(writer(engine), expire_on_commit=False) as s, s.begin():
        found = auth.resolve(s, token, kind="web", now=now, settings=Settings())
        assert found is not None
        auth.touch(s, found[1], now)
        assert found[1].last_seen_at == now
        auth.touch(s, found[1], now + timedelta(seconds=30))
        assert found[1].last_seen_at == now
    with Session(engine) as s:
        assert s.exec(select(UserSession)).one().last_seen_at == now


def test_resolve_refuses_revoked_expired_idle_and_disabled(engine: Engine, now: datetime) -> None:
    settings = Settings()
    with Session(writer(engine), expire_on_commit=False) as s, s.begin():
        user = make_user(s, "assessor")
        web, row = auth.start_session(
            s, user, kind="web", now=now, settings=settings, mfa_passed=True
        )
        assert auth.resolve(s, web, kind="web", now=now, settings=settings) == (user, row)
        assert auth.resolve(s, web, kind="api", now=now, settings=settings) is None
        assert auth.resolve(s, web + "x", kind="web", now=now, settings=settings) is None
        assert auth.resolve(s, "", kind="web", now=now, settings=settings) is None
        idle = now + timedelta(minutes=settings.SESSION_IDLE_MINUTES + 1)
        assert auth.resolve(s, web, kind="web", now=idle, settings=settings) is None
        late = now + timedelta(hours=settings.SESSION_MAX_HOURS)
        assert auth.resolve(s, web, kind="web", now=late, settings=settings) is None
        api, _ = auth.start_session(
            s, user, kind="api", now=now, settings=settings, mfa_passed=True
        )
        assert auth.resolve(s, api, kind="api", now=now, settings=settings) is not None
        user.active = False
        s.add(user)
        s.flush()
        assert auth.resolve(s, api, kind="api", now=now, settings=settings) is None
        user.active = True
        auth.revoke(s, row, now)
        assert auth.resolve(s, web, kind="web", now=now, settings=settings) is None
