"""B4's floors: bare Starlette routes, in the same process as svqm's app, doing the least its pages do.

`uvicorn --factory benchmarks.b4_floor:create_app` serves svqm's own app (`svqm.web.app.create_app`,
mounted at `/`, its lifespan run as `svqm serve` runs it) and beside it two bare routes a page:

  /floor/queue  the queue page (`GET /assess`)
  /floor/case   the review screen (`GET /assess/{id}`)
  /floor/api    the JSON read (`GET /api/v1/applications/{id}`)
  /floor/tasks  the application's task list as its assessor reads it (`GET /applications/{id}`)
  /floor/organisation  the public organisation page (`GET /organisations/{id}`), no one signed in

Each floor replays, with the `sqlite3` module, the SQL the page's own handler sent, and renders
the same Jinja2 template with the same context (or encodes the same JSON body with `json.dumps`):
no session cookie, no sign-in lookup, no dependency injection, no ORM, no security headers. That
is the least this stack (Starlette, sqlite3, Jinja2) can do to answer the same page.

  /floor/fastapi/<name>  the page's guarded floor as a FastAPI route on svqm's own app (first
                among its routes, outside its schema), declared as the page's own route is: the
                page's handler's very signature (taken from its router at start-up, so the same
                dependencies: the page's real sign-in and access dependency, run by FastAPI with
                the ORM as on the page) and its router's dependencies (the form-token check), sync
                or async as the handler is, behind the product's middleware; its body then replays
                the handler's own reads with `sqlite3` (the guards' SQL is the dependencies' now)
                and renders the same template and context through the product's `ui.render`. The
                least FastAPI with svqm's guards can do for that page:
                  /floor/fastapi/queue                   as `GET /assess` (`deps.AssessorPage`...)
                  /floor/fastapi/case/{id}               as `GET /assess/{id}` (`deps.AssessorCase`)
                  /floor/fastapi/tasks/{id}              as `GET /applications/{id}`
                                                         (`deps.ApplicationCase`)
                  /floor/fastapi/organisation/{id}       as `GET /organisations/{id}`
                                                         (`deps.OptionalPageUser`...)
                Each answers only for the captured application or organisation (a 404 otherwise).
                And the API's, /floor/fastapi/api: behind the product's sign-in dependency
                (`deps.ApiUser`), the application's load and the handler's reads replayed, the
                same JSON bytes in a plain `Response` (no response model).

  /floor/guarded/<name>  the floor plus the guard work every real request for that page must do:
                the credential's SHA-256 and the sign-in lookup (the session, its user and the
                organisation they act for), the second-factor and role checks, loading the
                application and deciding the person may see it (that SQL replayed too), the
                product's own render wrapper (`svqm.web.ui.render`: the CSP nonce and header, the
                form token; a signed-out visitor's token and cookie), and the product's
                middleware (`SecurityHeaders`, `BodyLimit`). What is left between it and the page
                is the framework (FastAPI's dependency injection and response models) and the
                ORM: SQLAlchemy building the statements and the objects.

What each route replays and renders is captured once at start-up by calling the page's own
handler (and its guards: the same dependency functions, in the same order) for the benchmark's
assessor (SVQM_B4_ASSESSOR, signed in with SVQM_B4_COOKIE and SVQM_B4_TOKEN), application
(SVQM_B4_APPLICATION) and organisation (SVQM_B4_ORGANISATION), with SQLAlchemy's
`before_cursor_execute` event listening (the statements and parameters exactly as the product
sent them) and the render's template and context recorded. The benchmark refuses to time a floor
whose response body is not byte for byte the page's (`benchmarks.b4_web.same_page`).

Replayed are the reads (SELECT): the only write a page's guards may send, keeping the session alive
(`auth.touch`), happens at most once a minute, and a write replayed would hold SQLite's write lock.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.utils import get_typed_signature
from fastapi.routing import APIRoute
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from svqm.accounts.auth import token_hash
from svqm.config import get_settings
from svqm.web import deps, ui
from svqm.web.api.applications import _load, application_public
from svqm.web.app import create_app as create_svqm_app
from svqm.web.forms import list_query
from svqm.web.pages import applicant, assessor
from svqm.web.pages import organisations as organisation_pages
from svqm.web.security import SESSION_COOKIE, BodyLimit, SecurityHeaders, cookie_name
from svqm.workflow import queries

Statement = tuple[str, Any]
_TRANSACTION = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
# What `svqm.web.ui.render` adds to every page's context itself; the rest is the handler's.
_RENDER_BASE = {"request", "auth", "user", "csrf_token", "cspNonce", "serviceName", "assetPath"}
NAMES = ("queue", "case", "api", "tasks", "organisation")


@contextmanager
def _captured(engine: Engine) -> Iterator[list[Statement]]:
    """Every read (and its DB-API parameters) sent on `engine` meanwhile."""
    seen: list[Statement] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        # The reads only: the transaction's BEGIN is the session's, not the page's, and the
        # once-a-minute touch of the session is not replayed (see the module's docstring).
        if statement.split(None, 1)[0].upper() == "SELECT":
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


@contextmanager
def _rendered() -> Iterator[list[tuple[str, dict[str, Any], int]]]:
    """Every template the product's `render` asks for meanwhile: its name, context and status."""
    seen: list[tuple[str, dict[str, Any], int]] = []
    original = ui.templates.TemplateResponse

    def record(request: Any, name: str, context: dict[str, Any], **kwargs: Any) -> Any:
        seen.append((name, dict(context), int(kwargs.get("status_code", 200))))
        return original(request, name, context, **kwargs)

    ui.templates.TemplateResponse = record  # type: ignore[method-assign, assignment]
    try:
        yield seen
    finally:
        del ui.templates.TemplateResponse  # the class's own method again


@dataclass
class _Page:
    path: str  # the page's own path: the navigation marks the link the page is under
    sql: list[Statement]  # what the page's handler sent (its read model)
    guard_sql: list[Statement]  # what its guards sent (sign-in lookup, the case loaded)
    template: str = ""  # "" for the JSON read
    context: dict[str, Any] = field(default_factory=dict)  # as the template saw it
    body: Any = None  # the JSON read's body, as `model_dump(mode="json")` gives it
    load_sql: list[Statement] = field(default_factory=list)  # the API: the application's load
    credential: str = ""  # "cookie", "bearer" or "" (no one signed in)
    token_hash: str = ""
    roles: tuple[str, ...] = ()  # the roles the page is for; () for anyone signed in
    auth: deps.PageAuth | None = None


class Floor:
    """The captured pages and a sqlite3 connection per worker thread."""

    def __init__(self) -> None:
        self.pages: dict[str, _Page] = {}
        self.product: FastAPI | None = None
        self.path = ""
        self.cookie = SESSION_COOKIE
        self.app_id = 0
        self.org_id = 0
        self._local = threading.local()

    # --- capture, once at start-up -------------------------------------------------------------

    def capture(self, product: FastAPI) -> None:
        state = product.state
        engine: Engine = state.engine
        self.product = product
        self.path = engine.url.database or ""
        self.cookie = cookie_name(state.settings, SESSION_COOKIE)
        app_id = int(os.environ["SVQM_B4_APPLICATION"])
        org_id = int(os.environ["SVQM_B4_ORGANISATION"])
        self.app_id, self.org_id = app_id, org_id
        cookie = os.environ["SVQM_B4_COOKIE"]
        bearer = os.environ["SVQM_B4_TOKEN"]
        signed_in = {"cookie": f"{self.cookie}={cookie}"}

        def assessor_page(request: Request, s: Session) -> deps.Page:
            found = self._signed_in(request, s, ("assessor",))
            return deps.Page(request, found, s, state.registry, state.clock.now())

        def assessor_case(request: Request, s: Session) -> deps.Case:
            page = assessor_page(request, s)
            return _case_of(page, app_id)

        def any_case(request: Request, s: Session) -> deps.Case:
            found = self._signed_in(request, s, ())
            page = deps.Page(request, found, s, state.registry, state.clock.now())
            return _case_of(page, app_id)

        self.pages["queue"] = self._html(
            "/assess",
            signed_in,
            assessor_page,
            lambda page: assessor.queue(page, list_query(), done=""),
            credential="cookie",
            token=cookie,
            roles=("assessor",),
        )
        self.pages["case"] = self._html(
            f"/assess/{app_id}",
            signed_in,
            assessor_case,
            lambda case: assessor.review_screen(case, done=""),
            credential="cookie",
            token=cookie,
            roles=("assessor",),
        )
        self.pages["tasks"] = self._html(
            f"/applications/{app_id}",
            signed_in,
            any_case,
            lambda case: applicant.application_page(case, done=""),
            credential="cookie",
            token=cookie,
        )
        self.pages["organisation"] = self._html(
            f"/organisations/{org_id}",
            {},
            lambda request, s: (request, s, deps.optional_page_user(*self._deps(request, s))),
            lambda got: organisation_pages.organisation(
                got[0],
                org_id,
                got[2],
                got[1],
                state.registry,
                state.charter_rules,
                state.clock.now(),
            ),
        )
        self.pages["api"] = self._api(f"/api/v1/applications/{app_id}", app_id, bearer)

    def _deps(self, request: Request, s: Session) -> tuple[Request, Session, Any, Any]:
        state = request.app.state
        return request, s, state.settings, state.clock.now()

    def _signed_in(self, request: Request, s: Session, roles: tuple[str, ...]) -> deps.PageAuth:
        """`deps.page_user` and, for a page of some roles only, the role check of `page_for`."""
        found = deps.page_user(*self._deps(request, s))
        assert not roles or found.user.role in roles, found.user.role
        return found

    def _request(self, path: str, headers: dict[str, str]) -> Request:
        assert self.product is not None
        return Request(
            {
                "type": "http",
                "app": self.product,
                "method": "GET",
                "scheme": "http",
                "server": ("127.0.0.1", 80),
                "client": ("127.0.0.1", 1),
                "root_path": "",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                "state": {},
            }
        )

    def _html(
        self,
        path: str,
        headers: dict[str, str],
        guard: Callable[[Request, Session], Any],
        handler: Callable[[Any], Response],
        *,
        credential: str = "",
        token: str = "",
        roles: tuple[str, ...] = (),
    ) -> _Page:
        """Call the page's guards, then its handler, as a request would; keep what each sent."""
        assert self.product is not None
        engine = self.product.state.engine
        request = self._request(path, headers)
        # As `deps.get_session`: one read transaction, nothing expired when it ends.
        with Session(engine, expire_on_commit=False) as s, s.begin():
            with _captured(engine) as guard_sql:
                got = guard(request, s)
            with _captured(engine) as sql, _rendered() as shown:
                response = handler(got)
        assert response.status_code == 200, (path, response.status_code)
        assert len(shown) == 1, (path, [name for name, _, _ in shown])
        template, context, _ = shown[0]
        return _Page(
            path,
            list(sql),
            list(guard_sql),
            template=template,
            context=context,
            credential=credential,
            token_hash=token_hash(token) if token else "",
            roles=roles,
            auth=context["auth"],
        )

    def _api(self, path: str, app_id: int, bearer: str) -> _Page:
        assert self.product is not None
        state = self.product.state
        engine = state.engine
        request = self._request(path, {"authorization": f"Bearer {bearer}"})
        with Session(engine, expire_on_commit=False) as s, s.begin():
            now = state.clock.now()
            with _captured(engine) as guard_sql:
                user = deps.api_user(request, s, state.settings, now)
            with _captured(engine) as load_sql:
                app = _load(s, app_id, user, state.registry)
            with _captured(engine) as sql:
                out = application_public(
                    s, app, actor=deps.actor_of(user), registry=state.registry, now=now
                )
            body = out.model_dump(mode="json")
        return _Page(
            path,
            list(sql),
            [*guard_sql, *load_sql],
            body=body,
            load_sql=list(load_sql),
            credential="bearer",
            token_hash=token_hash(bearer),
        )

    # --- serving ---------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def replay(self, sql: list[Statement]) -> int:
        """Run the statements; the number of them that found no row."""
        conn = self._conn()
        empty = 0
        for statement, parameters in sql:
            empty += not conn.execute(statement, parameters).fetchall()
        return empty

    def _at(self, request: Request, page: _Page) -> Request:
        """The request as the page's own: the template marks the navigation by the path, and
        the product's render reads its settings from the product's app."""
        return Request({**request.scope, "path": page.path, "app": self.product})

    def html(self, request: Request, name: str) -> Response:
        page = self.pages[name]
        self.replay(page.sql)
        context = {**page.context, "request": self._at(request, page)}
        context["cspNonce"] = secrets.token_urlsafe(16)
        return HTMLResponse(ui.templates.env.get_template(page.template).render(context))

    def json(self, request: Request) -> Response:
        page = self.pages["api"]
        self.replay(page.sql)
        return Response(_json(page.body), media_type="application/json")

    # --- the FastAPI floors: each page's own route signature, then the floor's work ----------

    def fastapi_api(self, request: Request, user: deps.ApiUser) -> Response:
        """The API's guarded floor behind FastAPI and the product's sign-in dependency."""
        page = self.pages["api"]
        if self.replay(page.load_sql):
            return Response(status_code=404)
        self.replay(page.sql)
        return Response(_json(page.body), media_type="application/json")

    def fastapi_page(self, name: str, route: APIRoute) -> Callable[..., Any]:
        """An endpoint declared as the page's own (`route`'s): its very signature, so FastAPI
        resolves the same dependencies for it (sync or async as the page's handler is); its body
        the floor's work for the person the real dependency found."""

        def sync_endpoint(**values: Any) -> Response:
            return self._fastapi_html(name, values)

        async def async_endpoint(**values: Any) -> Response:
            return self._fastapi_html(name, values)

        endpoint = async_endpoint if inspect.iscoroutinefunction(route.endpoint) else sync_endpoint
        own = get_typed_signature(route.endpoint)
        endpoint.__signature__ = own.replace(return_annotation=Response)  # type: ignore[attr-defined]
        endpoint.__name__ = f"floor_{route.name}"
        return endpoint

    def _fastapi_html(self, name: str, values: dict[str, Any]) -> Response:
        """The handler's reads replayed, its template and context through the product's render,
        for the person the page's dependencies found (on the organisation page: anyone, or no
        one); a 404 for another application or organisation than the captured one."""
        page = self.pages[name]
        found = next((v for v in values.values() if isinstance(v, deps.Page)), None)
        if found is not None:  # a page for the signed-in: `deps.Page`, or `deps.Case`
            request, auth = found.request, found.auth
            if isinstance(found, deps.Case) and found.app.id != self.app_id:
                return Response(status_code=404)
        else:  # the page's own parameters: the request, the person if any
            request = next(v for v in values.values() if isinstance(v, Request))
            auth = next((v for v in values.values() if isinstance(v, deps.PageAuth)), None)
        ids = {"application_id": self.app_id, "organisation_id": self.org_id}
        if any(values[key] != wanted for key, wanted in ids.items() if key in values):
            return Response(status_code=404)
        self.replay(page.sql)
        shown = {k: v for k, v in page.context.items() if k not in _RENDER_BASE}
        return ui.render(self._at(request, page), page.template, auth=auth, **shown)

    def guarded(self, request: Request, name: str) -> Response:
        """The floor, after the guards' work; a refusal is a bare 403 (the benchmark counts it)."""
        page = self.pages[name]
        if not self._allowed(request, page):
            return Response(status_code=403)
        self.replay(page.sql)
        if not page.template:
            return Response(_json(page.body), media_type="application/json")
        shown = {k: v for k, v in page.context.items() if k not in _RENDER_BASE}
        return ui.render(self._at(request, page), page.template, auth=page.auth, **shown)

    def _allowed(self, request: Request, page: _Page) -> bool:
        if page.credential == "cookie":
            token = request.cookies.get(self.cookie, "")
        elif page.credential == "bearer":
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
        else:
            return self.replay(page.guard_sql) == 0  # signed out: nothing to look up
        if not token or len(token) > 200 or token_hash(token) != page.token_hash:
            return False
        # The session and its user, whom they act for, the application: each must be found.
        if self.replay(page.guard_sql):
            return False
        found = page.auth
        if found is None:
            return True  # the API: its token's session has no second factor to owe
        return found.session.mfa_passed and (not page.roles or found.user.role in page.roles)


def _case_of(page: deps.Page, app_id: int) -> deps.Case:
    """As `deps.case_of`: the application loaded, a 404 unless the person may see it."""
    app = queries.get_application(page.session, app_id, page.actor, registry=page.registry)
    return deps.Case(page.request, page.auth, page.session, page.registry, page.now, app)


# The pages' own routes, whose signatures their FastAPI floors take: (router, path).
PAGE_ROUTES: dict[str, tuple[APIRouter, str]] = {
    "queue": (assessor.router, "/assess"),
    "case": (assessor.router, "/assess/{application_id}"),
    "tasks": (applicant.router, "/applications/{application_id}"),
    "organisation": (organisation_pages.router, "/organisations/{organisation_id}"),
}


def _own_route(router: APIRouter, path: str) -> APIRoute:
    """The page's GET route, as its router declares it."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == path and "GET" in route.methods:
            return route
    raise LookupError(f"no GET {path} among the page's router's routes")


def _json(body: Any) -> bytes:
    # As Starlette's JSONResponse renders FastAPI's answer.
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


def create_app() -> Starlette:
    product = create_svqm_app()
    floor = Floor()
    # First among the product's routes (the least routing), outside its OpenAPI schema. A
    # page's is declared as the page's own route: its signature and its router's dependencies
    # (the form-token check), whatever the page's handler takes today.
    fastapi_floors: list[tuple[str, Callable[..., Any], list[Any]]] = []
    for name, (router, path) in PAGE_ROUTES.items():
        route = _own_route(router, path)
        params = "".join(f"/{p}" for p in re.findall(r"\{[^}]+\}", path))
        endpoint = floor.fastapi_page(name, route)
        fastapi_floors.append((f"/floor/fastapi/{name}{params}", endpoint, route.dependencies))
    # The API's: the product's sign-in dependency, the application's load replayed.
    fastapi_floors.insert(2, ("/floor/fastapi/api", floor.fastapi_api, []))
    for at, (path, endpoint, dependencies) in enumerate(fastapi_floors):
        product.add_api_route(
            path,
            endpoint,
            include_in_schema=False,
            dependencies=list(dependencies),
            response_model=None,
        )
        product.router.routes.insert(at, product.router.routes.pop())

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with product.router.lifespan_context(product):
            floor.capture(product)
            yield

    def bare(name: str) -> Callable[[Request], Response]:
        if name == "api":
            return floor.json
        return lambda request: floor.html(request, name)

    def guarded(name: str) -> Callable[[Request], Response]:
        return lambda request: floor.guarded(request, name)

    settings = get_settings()  # as `create_svqm_app` reads them
    # The product's own middleware, in its order (SecurityHeaders outermost).
    guards = SecurityHeaders(
        BodyLimit(
            Starlette(routes=[Route(f"/{name}", guarded(name)) for name in NAMES]),
            max_upload=settings.MAX_UPLOAD_BYTES,
        ),
        hsts=settings.COOKIE_SECURE,
    )
    app = Starlette(
        routes=[
            *(Route(f"/floor/{name}", bare(name)) for name in NAMES),
            Mount("/floor/guarded", app=guards),
            Mount("/", app=product),
        ],
        lifespan=lifespan,
    )
    app.state.floor = floor
    return app
