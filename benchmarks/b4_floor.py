"""B4's floors: bare Starlette routes, in the same process as svqm's app, doing the least its pages do.

`uvicorn --factory benchmarks.b4_floor:create_app` serves svqm's own app (`svqm.web.app.create_app`,
mounted at `/`, its lifespan run as `svqm serve` runs it) and beside it five bare routes:

  /floor/queue  the queue page: the SQL the page's read model sends for the list (its lines and
                their count), replayed with the `sqlite3` module, and the same Jinja2 template
                (`assessor/queue.html`) rendered with the same rows
  /floor/case   the review screen: the SQL of its read model replayed the same way, and
                `assessor/review.html` rendered with the same case file
  /floor/api    the JSON read: the SQL of `application_public` replayed, and the same body
                encoded with `json.dumps`
  /floor/tasks  the application's task list as its assessor reads it: the SQL of its read
                model (and of the score notes it shows) replayed, `applicant/application.html`
  /floor/organisation  the public organisation page (SVQM_B4_ORGANISATION): the SQL of its read
                model replayed, `public/organisation.html` with its charts; no one signed in

No session cookie, no sign-in lookup, no dependency injection, no ORM, no CSRF or CSP work beyond
the nonce the templates print: the least this stack (Starlette, sqlite3, Jinja2) can do to
answer the same page. What each route replays is captured once at start-up by running the
product's own read model for the benchmark's assessor (SVQM_B4_ASSESSOR) and application
(SVQM_B4_APPLICATION) with SQLAlchemy's `before_cursor_execute` event listening: the statements
and the parameters exactly as the product sent them.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from svqm.accounts.models import User
from svqm.web.api.applications import application_public
from svqm.web.app import create_app as create_svqm_app
from svqm.web.forms import list_query
from svqm.web.pages.applicant import _score_notes
from svqm.web.pages.assessor import DECISIONS, PAGE_SIZE
from svqm.web.ui import templates
from svqm.web.views.applicant import task_list
from svqm.web.views.case import case_file
from svqm.web.views.organisations import organisation_page
from svqm.web.views.queues import list_page
from svqm.web.views.tasks import task_groups
from svqm.workflow.models import Application
from svqm.workflow.service import Actor

Statement = tuple[str, Any]
_TRANSACTION = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


@contextmanager
def _captured(engine: Engine) -> Iterator[list[Statement]]:
    """Every statement (and its DB-API parameters) sent on `engine` meanwhile."""
    seen: list[Statement] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        # The reads only: the transaction's BEGIN is the session's, not the page's.
        if statement.split(None, 1)[0].upper() not in _TRANSACTION:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


@dataclass
class _Page:
    template: str
    title: str
    context: dict[str, Any]
    sql: list[Statement]
    public: bool = False  # for anyone: no one signed in


class Floor:
    """The captured pages and a sqlite3 connection per worker thread."""

    def __init__(self) -> None:
        self.pages: dict[str, _Page] = {}
        self.api_body: Any = None
        self.api_sql: list[Statement] = []
        self.user: Any = None
        self.path = ""
        self.service_name = ""
        self._local = threading.local()

    def capture(self, engine: Engine, registry: Any, clock: Any, service_name: str) -> None:
        self.path = engine.url.database or ""
        self.service_name = service_name
        assessor_id = int(os.environ["SVQM_B4_ASSESSOR"])
        application_id = int(os.environ["SVQM_B4_APPLICATION"])
        organisation_id = int(os.environ["SVQM_B4_ORGANISATION"])
        now = clock.now()
        with Session(engine) as session:
            me = session.get(User, assessor_id)
            assert me is not None
            actor = Actor.of(me)
            self.user = SimpleNamespace(role=me.role, email=me.email, name=me.name)
            with _captured(engine) as sql:
                view = list_page(
                    session,
                    registry,
                    actor,
                    list_query(),
                    path="/assess",
                    sort="due",
                    per_page=PAGE_SIZE,
                    now=now,
                )
            self.pages["queue"] = _Page(
                "assessor/queue.html",
                "Your applications to assess",
                {"flash": None, **view.context()},
                list(sql),
            )
            app = session.get(Application, application_id)
            assert app is not None
            session.expire_all()  # read as a request would, not from what is already loaded
            app = session.get(Application, application_id)
            assert app is not None
            with _captured(engine) as sql:
                case = case_file(session, registry, app, actor, now)
            self.pages["case"] = _Page(
                "assessor/review.html",
                f"Review the application from {case.organisation}",
                {"flash": None, "decisions": DECISIONS, **case.context()},
                list(sql),
            )
            session.expire_all()
            app = session.get(Application, application_id)
            assert app is not None
            with _captured(engine) as sql:
                out = application_public(session, app, actor=actor, registry=registry, now=now)
            self.api_body = out.model_dump(mode="json")
            self.api_sql = list(sql)
        # Each later page in a session of its own: expiring the first one's objects would leave
        # those the pages above render detached.
        with Session(engine) as session:
            me = session.get(User, assessor_id)
            assert me is not None
            actor = Actor.of(me)
            app = session.get(Application, application_id)
            assert app is not None
            session.expire_all()
            app = session.get(Application, application_id)
            assert app is not None
            with _captured(engine) as sql:
                tasks = task_list(session, registry, app, actor, now)
                notes = _score_notes(
                    SimpleNamespace(app=app, registry=registry, session=session)  # type: ignore[arg-type]
                )
            self.pages["tasks"] = _Page(
                "applicant/application.html",
                tasks.title,
                {
                    "status": 200,
                    "flash": None,
                    "comment": {"trigger": "", "text": ""},
                    "groups": task_groups(tasks),
                    "score_notes": notes,
                    **tasks.context(),
                },
                list(sql),
            )
        with Session(engine) as session:
            with _captured(engine) as sql:
                org = organisation_page(session, registry, organisation_id, now)
            self.pages["organisation"] = _Page(
                "public/organisation.html",
                org.title,
                {
                    "flash": None,
                    "organisation": org.organisation,
                    "awards": org.awards,
                    "themes": org.themes,
                },
                list(sql),
                public=True,
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def replay(self, sql: list[Statement]) -> int:
        conn = self._conn()
        rows = 0
        for statement, parameters in sql:
            rows += len(conn.execute(statement, parameters).fetchall())
        return rows

    def html(self, request: Request, name: str) -> Response:
        page = self.pages[name]
        self.replay(page.sql)
        user = None if page.public else self.user
        context = {
            "request": request,
            "auth": user,
            "user": user,
            "csrf_token": secrets.token_urlsafe(24),
            "cspNonce": secrets.token_urlsafe(16),
            "serviceName": self.service_name,
            "assetPath": "/static/govuk/assets",
            "title": page.title,
            "errors": None,
            **page.context,
        }
        return HTMLResponse(templates.env.get_template(page.template).render(context))

    def json(self, request: Request) -> Response:
        self.replay(self.api_sql)
        body = json.dumps(self.api_body, separators=(",", ":"), ensure_ascii=False)
        return Response(body.encode(), media_type="application/json")


def create_app() -> Starlette:
    product = create_svqm_app()
    floor = Floor()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with product.router.lifespan_context(product):
            state = product.state
            floor.capture(state.engine, state.registry, state.clock, state.settings.SERVICE_NAME)
            yield

    def queue(request: Request) -> Response:
        return floor.html(request, "queue")

    def case(request: Request) -> Response:
        return floor.html(request, "case")

    def api(request: Request) -> Response:
        return floor.json(request)

    def tasks(request: Request) -> Response:
        return floor.html(request, "tasks")

    def organisation(request: Request) -> Response:
        return floor.html(request, "organisation")

    app = Starlette(
        routes=[
            Route("/floor/queue", queue),
            Route("/floor/case", case),
            Route("/floor/api", api),
            Route("/floor/tasks", tasks),
            Route("/floor/organisation", organisation),
            Mount("/", app=product),
        ],
        lifespan=lifespan,
    )
    app.state.floor = floor
    return app
