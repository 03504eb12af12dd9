"""The admin's pages: users and roles, assessor assignment, conflicts of interest, awards.

The admin's home (the dashboard) and the downloads are in admin_dashboard.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from svqm.accounts import auth as accounts_auth
from svqm.accounts import service as accounts
from svqm.accounts.models import ROLES, ConflictOfInterest, Organisation, User
from svqm.errors import InvalidInput, NotFound
from svqm.web.api.awards import award_public
from svqm.web.deps import (
    Id,
    NowDep,
    PageAuth,
    PageUser,
    RegistryDep,
    SessionDep,
    SettingsDep,
    verify_csrf,
)
from svqm.web.pages import flash_of
from svqm.web.pages.panel import (
    application_rows,
    case_context,
    filter_options,
    fire_from,
    load_case,
    people,
    trigger_forms,
    trigger_titles,
)
from svqm.web.pages.public import (
    FormDep,
    after_post,
    attempt,
    blank,
    error_page,
    field,
    only,
    show,
    version_of,
)
from svqm.web.qr import qr_data_uri
from svqm.workflow import queries
from svqm.workflow import service as workflow
from svqm.workflow.effects import eligible_assessors
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

MESSAGES = {
    "user_added": "The user has been added.",
    "disabled": "The user has been disabled and signed out everywhere.",
    "assigned": "The assessor has been assigned.",
    "conflict": "The conflict of interest has been recorded.",
}
# Which field an error from adding a user is about, by the words of its message.
_USER_FIELDS = [("password", "password"), ("role", "role"), ("organisation", "organisation_id")]

# --- small queries no service offers yet ---------------------------------------------------------


def _all(session: Session, model: Any, order: Any) -> list[Any]:
    return list(session.exec(select(model).order_by(order)))


def _organisations(session: Session) -> dict[int | None, str]:
    return {o.id: o.name for o in _all(session, Organisation, col(Organisation.name))}


def _disable(session: Session, user: User, now: datetime) -> None:
    """What the API's disable does: the account stops working and every session ends."""
    user.active = False
    session.add(user)
    accounts_auth.revoke_all(session, user.id or 0, now)


# --- users ---------------------------------------------------------------------------------------


def _users_page(request: Request, auth: PageAuth, session: Session, **page: Any) -> HTMLResponse:
    entered = page.pop("entered", {"email": "", "name": "", "role": "", "organisation_id": ""})
    return show(
        request,
        "admin/users.html",
        auth,
        "Users",
        users=_all(session, User, col(User.id)),
        organisations=_organisations(session),
        roles=ROLES,
        entered=entered,
        **page,
    )


@router.get("/admin/users")
def users(request: Request, auth: PageUser, session: SessionDep, done: str = "") -> HTMLResponse:
    """Every user, and a form to add one."""
    flash = flash_of(done, MESSAGES)
    return only(request, auth, "admin") or _users_page(request, auth, session, flash=flash)


@router.post("/admin/users")
def add_user(
    request: Request, auth: PageUser, session: SessionDep, settings: SettingsDep, form: FormDep
) -> Response:
    """Add a user; staff get their authenticator set-up shown once, on the page this returns."""
    if denied := only(request, auth, "admin"):
        return denied
    entered = {k: field(form, k, limit=254) for k in ("email", "name", "role", "organisation_id")}
    added: list[User] = []

    def write() -> None:
        org, password = entered["organisation_id"], field(form, "password", limit=200)
        if org and not org.isdigit():
            raise InvalidInput("choose an organisation from the list, or none")
        if not password:
            raise InvalidInput("enter a password for the new user")
        details = {k: entered[k] for k in ("email", "role", "name")}
        user = accounts.add_user(
            session, **details, organisation_id=int(org) if org else None, password=password
        )
        if accounts_auth.needs_second_factor(user):
            accounts_auth.ensure_totp_secret(session, user)
        added.append(user)

    if failure := attempt(session, write):
        href = next((f"#{f}" for word, f in _USER_FIELDS if word in failure.detail), "#email")
        return _users_page(request, auth, session, failure=failure, href=href, entered=entered)
    user = added[0]
    if not user.totp_secret:
        return after_post("/admin/users", "user_added")
    uri = accounts_auth.totp_uri(user, settings.TOTP_ISSUER)
    qr = qr_data_uri(uri)
    return show(
        request, "admin/user_added.html", auth, "User added", new_user=user, otpauth_uri=uri, qr=qr
    )


@router.post("/admin/users/{user_id}/disable")
def disable_user(
    request: Request, user_id: Id, auth: PageUser, session: SessionDep, now: NowDep
) -> Response:
    """Disable a user and end every session and token they have."""
    if denied := only(request, auth, "admin"):
        return denied
    user = session.get(User, user_id)
    if user is None:
        return error_page(request, NotFound(f"no user {user_id}"), auth)
    if user.id == auth.user.id:
        failure = InvalidInput("you cannot disable yourself")
        return _users_page(request, auth, session, failure=failure, href=f"#user-{user_id}")
    _disable(session, user, now)
    return after_post("/admin/users", "disabled")


# --- applications and assessors ------------------------------------------------------------------


@router.get("/admin/applications")
def applications(
    request: Request,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    state: str = "",
    level: str = "",
    scheme: str = "",
    organisation: str = "",
) -> HTMLResponse:
    """Every application, filterable by state, level, scheme and organisation."""
    if denied := only(request, auth, "admin"):
        return denied
    org = blank(organisation)
    org_id = int(org) if org and org.isdigit() else None
    filters = queries.ApplicationFilter(
        state=blank(state), level=blank(level), scheme=blank(scheme), organisation_id=org_id
    )
    apps = queries.list_applications(session, auth.actor, filters, limit=500)
    query = {"state": state, "level": level, "scheme": scheme, "organisation": organisation}
    return show(
        request,
        "admin/applications.html",
        auth,
        "Applications",
        options=filter_options(registry),
        organisations=_organisations(session),
        rows=application_rows(session, registry, apps, now),
        names=people(session, {a.assessor_id for a in apps}),
        query={k: v[:64] for k, v in query.items()},
    )


def _application_page(
    request: Request,
    auth: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    app: Application,
    **page: Any,
) -> HTMLResponse:
    context = case_context(session, registry, app, auth, now)
    title = f"Application from {context['organisation']}"
    assessors = eligible_assessors(session, app.organisation_id)
    return show(
        request, "admin/application.html", auth, title, assessors=assessors, **page, **context
    )


@router.get("/admin/applications/{application_id}")
def application(
    request: Request,
    application_id: Id,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> HTMLResponse:
    """One application, with the form to (re)assign its assessor."""
    app = load_case(request, auth, session, application_id, "admin")
    if isinstance(app, Response):
        return app
    flash = flash_of(done, MESSAGES)
    return _application_page(request, auth, session, registry, now, app, flash=flash)


@router.post("/admin/applications/{application_id}/assessor")
def assign(
    request: Request,
    application_id: Id,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    form: FormDep,
) -> Response:
    """Assign or reassign the application's assessor (conflicts are refused by the service)."""
    app = load_case(request, auth, session, application_id, "admin")
    if isinstance(app, Response):
        return app

    def write() -> None:
        chosen = field(form, "assessor_id", limit=20)
        if not chosen.isdigit():
            raise InvalidInput("choose an assessor from the list")
        version, assessor_id = version_of(form), int(chosen)
        workflow.assign_assessor(
            session,
            app,
            assessor_id,
            actor=auth.actor,
            registry=registry,
            now=now,
            expected_version=version,
        )

    if failure := attempt(session, write):
        page = {"failure": failure, "href": "#assessor_id"}
        return _application_page(request, auth, session, registry, now, app, **page)
    return after_post(f"/admin/applications/{application_id}", "assigned")


# --- conflicts of interest -----------------------------------------------------------------------


def _conflicts_page(
    request: Request, auth: PageAuth, session: Session, **page: Any
) -> HTMLResponse:
    everyone = _all(session, User, col(User.id))
    return show(
        request,
        "admin/conflicts.html",
        auth,
        "Conflicts of interest",
        conflicts=_all(session, ConflictOfInterest, col(ConflictOfInterest.id)),
        names={u.id: f"{u.name or u.email} ({u.role})" for u in everyone},
        staff=[u for u in everyone if u.role in ("assessor", "panel") and u.active],
        organisations=_organisations(session),
        **page,
    )


@router.get("/admin/conflicts")
def conflicts(
    request: Request, auth: PageUser, session: SessionDep, done: str = ""
) -> HTMLResponse:
    """Declared conflicts, and a form to record one."""
    flash = flash_of(done, MESSAGES)
    return only(request, auth, "admin") or _conflicts_page(request, auth, session, flash=flash)


@router.post("/admin/conflicts")
def declare_conflict(
    request: Request, auth: PageUser, session: SessionDep, form: FormDep
) -> Response:
    """Record that a person may not assess or decide an organisation's applications."""
    if denied := only(request, auth, "admin"):
        return denied

    def write() -> None:
        user_id, org_id = field(form, "user_id", limit=20), field(form, "organisation_id", limit=20)
        if not user_id.isdigit() or not org_id.isdigit():
            raise InvalidInput("choose a person and an organisation from the lists")
        reason = field(form, "reason", limit=500)
        accounts.declare_conflict(
            session,
            user_id=int(user_id),
            organisation_id=int(org_id),
            reason=reason,
            recorded_by_id=auth.user.id,
        )

    if failure := attempt(session, write):
        return _conflicts_page(request, auth, session, failure=failure, href="#user_id")
    return after_post("/admin/conflicts", "conflict")


# --- awards --------------------------------------------------------------------------------------


def _awards_page(
    request: Request,
    auth: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    **page: Any,
) -> HTMLResponse:
    rows = []
    for award in queries.list_awards(session):
        state = registry.for_subject(session, award).policy.workflows.award.state(award.state)
        forms = trigger_forms(session, award, auth, registry, now)
        row = {"award": award_public(session, award, registry), "version": award.version}
        rows.append(row | {"state": state.title, "forms": forms})
    return show(request, "admin/awards.html", auth, "Awards", rows=rows, **page)


@router.get("/admin/awards")
def awards(
    request: Request,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> HTMLResponse:
    """Every award, with the steps an admin may take on each."""
    flash = flash_of(done, trigger_titles(registry))
    denied = only(request, auth, "admin")
    return denied or _awards_page(request, auth, session, registry, now, flash=flash)


@router.post("/admin/awards/{award_id}/events/{trigger}")
def award_event(
    request: Request,
    award_id: Id,
    trigger: str,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    form: FormDep,
) -> Response:
    """Suspend, reinstate, withdraw or restore an award, with a comment."""
    if denied := only(request, auth, "admin"):
        return denied
    try:
        award = queries.get_award(session, award_id)
    except NotFound as exc:
        return error_page(request, exc, auth)
    if failure := fire_from(form, session, award, trigger, auth, registry, now):
        page = {"failure": failure, "href": f"#award-{award_id}-{trigger}"}
        return _awards_page(request, auth, session, registry, now, **page)
    return after_post("/admin/awards", trigger)
