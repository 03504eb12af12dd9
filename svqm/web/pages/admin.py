"""The admin's pages on people and cases: users, applications and their assessors, conflicts of
interest, awards. (The admin's home is admin_dashboard; the scheduler's work is admin_ops.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from svqm.accounts import auth as accounts_auth
from svqm.accounts import members
from svqm.accounts import service as accounts
from svqm.accounts.models import ROLES, ConflictOfInterest, User
from svqm.errors import InvalidInput, NotFound
from svqm.web.deps import CSRF, AdminCase, AdminPage, Case, Id, Page, SettingsDep
from svqm.web.format import moment, tag_classes
from svqm.web.forms import (
    FormDep,
    ListQuery,
    ListQueryDep,
    attempt,
    field,
    fire_from,
    list_query,
    version_of,
    version_of_field,
    whole_number,
)
from svqm.web.qr import qr_data_uri
from svqm.web.ui import after_post, flash_of, render
from svqm.web.views import audits as audit_views
from svqm.web.views import eligibility as eligibility_views
from svqm.web.views import invoices as invoice_views
from svqm.web.views.awards import award_public
from svqm.web.views.bulk import BULK_LIMIT, run_bulk
from svqm.web.views.case import case_file
from svqm.web.views.queues import list_page
from svqm.web.views.triggers import (
    all_flows,
    done_messages,
    needs_confirmation,
    trigger_forms,
)
from svqm.workflow import awards as award_queries
from svqm.workflow import people
from svqm.workflow import service as workflow
from svqm.workflow.effects import eligible_assessors

router = APIRouter(dependencies=[CSRF], include_in_schema=False)
PAGE_SIZE = 50

MESSAGES = {
    "user_added": "The user has been added.",
    "disabled": "The user has been disabled and signed out everywhere.",
    "enabled": "The user can sign in again.",
    "edited": "The user's details have been saved.",
    "conflict_removed": "The conflict of interest has been removed.",
    "assigned": "The assessor has been assigned.",
    "conflict": "The conflict of interest has been recorded.",
}
# The input of the add-user form that each field of a refused user is typed in.
_USER_INPUTS = {"password": "password", "role": "role", "organisation_id": "organisation_id"}
_NEW_USER = ("email", "name", "role", "organisation_id")

# --- users ---------------------------------------------------------------------------------------


def _users_page(page: Page, **shown: Any) -> HTMLResponse:
    entered = shown.pop("entered", dict.fromkeys(_NEW_USER, ""))
    return render(
        page.request,
        "admin/users.html",
        auth=page.auth,
        title="Users",
        users=accounts.list_users(page.session),
        organisations=accounts.organisation_names(page.session),
        roles=ROLES,
        entered=entered,
        **shown,
    )


@router.get("/admin/users")
def users(page: AdminPage, done: str = "") -> HTMLResponse:
    """Every user, and a form to add one."""
    return _users_page(page, flash=flash_of(done, MESSAGES))


@router.post("/admin/users")
def add_user(page: AdminPage, settings: SettingsDep, form: FormDep) -> Response:
    """Add a user; staff get their authenticator set-up shown once, on the page this returns."""
    entered = {k: field(form, k, limit=254) for k in _NEW_USER}
    added: list[User] = []

    def write() -> None:
        org, password = entered["organisation_id"], field(form, "password", limit=200)
        if org and whole_number(org) is None:
            raise InvalidInput(
                "choose an organisation from the list, or none", field="organisation_id"
            )
        if not password:
            raise InvalidInput("enter a password for the new user", field="password")
        details = {k: entered[k] for k in ("email", "role", "name")}
        user = accounts.add_user(
            page.session, **details, organisation_id=int(org) if org else None, password=password
        )
        if accounts_auth.needs_second_factor(user):
            accounts_auth.ensure_totp_secret(page.session, user)
        added.append(user)

    if failure := attempt(page.session, write):
        href = f"#{_USER_INPUTS.get(failure.field or '', 'email')}"
        return _users_page(page, failure=failure, href=href, entered=entered)
    user = added[0]
    if not user.totp_secret:
        return after_post("/admin/users", "user_added")
    uri = accounts_auth.totp_uri(user, settings.TOTP_ISSUER)
    return render(
        page.request,
        "admin/user_added.html",
        auth=page.auth,
        title="User added",
        new_user=user,
        otpauth_uri=uri,
        qr=qr_data_uri(uri),
    )


@router.post("/admin/users/{user_id}/enrolment-link")
def enrolment_link(page: AdminPage, settings: SettingsDep, user_id: Id) -> Response:
    """A single-use, expiring link for a staff member to set up (again) their authenticator app."""
    person = accounts.get_user(page.session, user_id)
    if person is None:
        raise NotFound(f"no user {user_id}")
    made: list[str] = []

    def write() -> None:
        made.append(
            accounts_auth.issue_enrolment_link(
                page.session, person, by=page.auth.user, now=page.now, settings=settings
            )
        )

    if failure := attempt(page.session, write):
        return _users_page(page, failure=failure, href=f"#user-{user_id}")
    expires = page.now + timedelta(hours=settings.ENROLMENT_LINK_HOURS)
    return render(
        page.request,
        "admin/enrolment_link.html",
        auth=page.auth,
        title="Set-up link made",
        person=person,
        link=settings.BASE_URL.rstrip("/") + f"/enrol/{made[0]}",
        expires=moment(expires),
    )


def _person(page: Page, user_id: int) -> User:
    person = accounts.get_user(page.session, user_id)
    if person is None:
        raise NotFound(f"no user {user_id}")
    return person


def _user_page(page: Page, person: User, **shown: Any) -> HTMLResponse:
    entered = shown.pop("entered", None) or {
        "name": person.name,
        "role": person.role,
        "organisation_id": str(person.organisation_id or ""),
    }
    return render(
        page.request,
        "admin/user.html",
        auth=page.auth,
        title=f"Edit {person.name or person.email}",
        person=person,
        memberships=members.memberships_of(page.session, person.id),
        organisations=accounts.organisation_names(page.session),
        roles=ROLES,
        entered=entered,
        history=people.history(page.session, person.id or 0),
        **shown,
    )


@router.get("/admin/users/{user_id}")
def user_page(page: AdminPage, user_id: Id, done: str = "") -> HTMLResponse:
    """One user: their name, role and organisations to change, their account, its history."""
    return _user_page(page, _person(page, user_id), flash=flash_of(done, MESSAGES))


@router.post("/admin/users/{user_id}")
def edit_user(page: AdminPage, user_id: Id, form: FormDep) -> Response:
    """Save a user's name, role and organisations (audited)."""
    person = _person(page, user_id)
    entered = {k: field(form, k, limit=254) for k in ("name", "role", "organisation_id")}

    def write() -> None:
        org = entered["organisation_id"]
        if org and whole_number(org) is None:
            raise InvalidInput(
                "choose an organisation from the list, or none", field="organisation_id"
            )
        leave = [n for v in form.getlist("leave") if (n := whole_number(str(v))) is not None]
        people.edit_user(
            page.session,
            user_id,
            name=entered["name"],
            role=entered["role"],
            organisation_id=int(org) if org else None,
            leave=leave,
            actor=page.actor,
            now=page.now,
        )

    if failure := attempt(page.session, write):
        href = "#" + (failure.field if failure.field in ("name", "role") else "organisation_id")
        return _user_page(page, person, failure=failure, href=href, entered=entered)
    return after_post(f"/admin/users/{user_id}", "edited")


@router.get("/admin/users/{user_id}/disable")
def confirm_disable(page: AdminPage, user_id: Id) -> HTMLResponse:
    """Ask before disabling: only the form on this page disables the account."""
    person = _person(page, user_id)
    return render(
        page.request,
        "admin/confirm.html",
        auth=page.auth,
        title=f"Are you sure you want to disable {person.name or person.email}?",
        action=f"/admin/users/{user_id}/disable",
        explain="They will be signed out everywhere and cannot sign in until an admin "
        "enables their account again. Their records are kept.",
        button="Yes, disable this account",
        back=f"/admin/users/{user_id}",
    )


@router.post("/admin/users/{user_id}/disable")
def disable_user(page: AdminPage, user_id: Id, form: FormDep) -> Response:
    """Disable a user and end every session and token they have; only from the confirmation
    page (any other post is sent to it)."""
    _person(page, user_id)
    if field(form, "confirmed") != "yes":
        return RedirectResponse(f"/admin/users/{user_id}/disable", status_code=303)

    def write() -> None:
        people.disable_user(page.session, user_id, actor=page.actor, now=page.now)

    if failure := attempt(page.session, write):
        return _users_page(page, failure=failure, href=f"#user-{user_id}")
    return after_post("/admin/users", "disabled")


@router.post("/admin/users/{user_id}/enable")
def enable_user(page: AdminPage, user_id: Id) -> Response:
    """Let a disabled user sign in again (audited)."""
    _person(page, user_id)
    if failure := attempt(
        page.session,
        lambda: people.enable_user(page.session, user_id, actor=page.actor, now=page.now),
    ):
        return _users_page(page, failure=failure, href=f"#user-{user_id}")
    return after_post(f"/admin/users/{user_id}", "enabled")


# --- applications and assessors ------------------------------------------------------------------


def active_assessors(session: Any) -> dict[str, str]:
    """Every active assessor, for the bulk assign's choice (conflicts are refused one by one)."""
    return {
        str(u.id): u.name or u.email
        for u in accounts.list_users(session)
        if u.role == "assessor" and u.active
    }


def _applications_page(page: Page, query: ListQuery, **shown: Any) -> HTMLResponse:
    view = list_page(
        page.session,
        page.registry,
        page.actor,
        query,
        path="/admin/applications",
        sort="changed",
        per_page=PAGE_SIZE,
        now=page.now,
        assessors=True,
    )
    return render(
        page.request,
        "admin/applications.html",
        auth=page.auth,
        title="Applications",
        organisations=accounts.organisation_names(page.session),
        all_assessors=active_assessors(page.session),
        **shown,
        **view.context(),
    )


@router.get("/admin/applications")
def applications(page: AdminPage, query: ListQueryDep) -> HTMLResponse:
    """Every application, filtered by state, level, scheme, organisation and due date, with the
    bulk actions (assign the selected to an assessor, remind their organisations)."""
    return _applications_page(page, query)


BULK_ACTIONS = ("assign", "remind")


@router.post("/admin/applications/bulk")
def bulk(page: AdminPage, form: FormDep) -> HTMLResponse:
    """Assign the selected applications to one assessor, or send their organisations a reminder:
    each through the workflow (audited), each on its own (one refused leaves the others done),
    each at the version the list showed (one changed since is not touched)."""
    action = field(form, "action", limit=20)
    ids = [whole_number(str(v)[:20]) for v in form.getlist("ids")]
    chosen = list(dict.fromkeys(i for i in ids if i is not None))
    assessor_id = whole_number(field(form, "assessor_id", limit=20))
    problems: list[dict[str, str]] = []
    if action not in BULK_ACTIONS:
        problems.append({"text": "Choose assign or send a reminder", "href": "#bulk-actions"})
    if not chosen or len(chosen) != len(ids):
        problems.append({"text": "Select the applications from the list", "href": "#bulk"})
    elif len(chosen) > BULK_LIMIT:
        problems.append(
            {"text": f"Select at most {BULK_LIMIT} applications at once", "href": "#bulk"}
        )
    if action == "assign" and assessor_id is None:
        problems.append({"text": "Choose an assessor to assign them to", "href": "#assessor_id"})
    if problems:
        return _applications_page(page, list_query(), failures=problems, status=422)
    lines = [(i, version_of_field(form, f"version-{i}")) for i in chosen]
    result = run_bulk(
        page.session,
        page.registry,
        page.actor,
        page.now,
        "assign" if action == "assign" else "remind",
        lines,
        assessor_id=assessor_id,
        message=field(form, "message"),
    )
    done = result.done
    problems += [{"text": text, "href": "#bulk"} for text in result.refusals()]
    what = "assigned" if action == "assign" else "sent a reminder"
    count = f"{len(done)} application{'' if len(done) == 1 else 's'}"
    flash = {"type": "success", "text": f"Done: {count} {what}."} if done else None
    status = 200 if done or not problems else 409
    return _applications_page(
        page, list_query(), flash=flash, failures=problems or None, status=status
    )


def _application_page(case: Case, **shown: Any) -> HTMLResponse:
    view = case_file(case.session, case.registry, case.app, case.actor, case.now)
    assessors = eligible_assessors(case.session, case.app.organisation_id)
    return render(
        case.request,
        "admin/application.html",
        auth=case.auth,
        title=f"Application from {view.organisation}",
        assessors=assessors,
        eligibility=eligibility_views.public(case.session, case.registry, case.app),
        invoices=invoice_views.of_application(case.session, case.registry, case.app.id or 0),
        audit=audit_views.staff_summary(case.session, case.registry, case.app),
        **shown,
        **view.context(),
    )


@router.get("/admin/applications/{application_id}")
def application(case: AdminCase, done: str = "") -> HTMLResponse:
    """One application, with the form to (re)assign its assessor."""
    return _application_page(case, flash=flash_of(done, MESSAGES))


@router.post("/admin/applications/{application_id}/assessor")
def assign(case: AdminCase, form: FormDep) -> Response:
    """Assign or reassign the application's assessor, or (`second=yes`) the second assessor of a
    double-marked level (conflicts, and the same person twice, are refused by the service)."""

    def write() -> None:
        chosen = whole_number(field(form, "assessor_id", limit=20))
        if chosen is None:
            raise InvalidInput("choose an assessor from the list", field="assessor_id")
        workflow.assign_assessor(
            case.session,
            case.app,
            chosen,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
            expected_version=version_of(form),
            second=field(form, "second") == "yes",
        )

    if failure := attempt(case.session, write):
        return _application_page(case, failure=failure, href="#assessor_id")
    return after_post(f"/admin/applications/{case.app.id}", "assigned")


# --- conflicts of interest -----------------------------------------------------------------------


def _conflicts_page(page: Page, **shown: Any) -> HTMLResponse:
    everyone = accounts.list_users(page.session)
    return render(
        page.request,
        "admin/conflicts.html",
        auth=page.auth,
        title="Conflicts of interest",
        conflicts=accounts.list_conflicts(page.session),
        names={u.id: accounts.person_name(u) for u in everyone},
        staff=[u for u in everyone if u.role in ("assessor", "panel") and u.active],
        organisations=accounts.organisation_names(page.session),
        **shown,
    )


@router.get("/admin/conflicts")
def conflicts(page: AdminPage, done: str = "") -> HTMLResponse:
    """Declared conflicts, and a form to record one."""
    return _conflicts_page(page, flash=flash_of(done, MESSAGES))


@router.post("/admin/conflicts")
def declare_conflict(page: AdminPage, form: FormDep) -> Response:
    """Record that a person may not assess or decide an organisation's applications."""

    def write() -> None:
        user_id = whole_number(field(form, "user_id", limit=20))
        org_id = whole_number(field(form, "organisation_id", limit=20))
        if user_id is None or org_id is None:
            raise InvalidInput("choose a person and an organisation from the lists")
        accounts.declare_conflict(
            page.session,
            user_id=user_id,
            organisation_id=org_id,
            reason=field(form, "reason", limit=500),
            recorded_by_id=page.auth.user.id,
        )

    if failure := attempt(page.session, write):
        return _conflicts_page(page, failure=failure, href="#user_id")
    return after_post("/admin/conflicts", "conflict")


def _conflict(page: Page, conflict_id: int) -> ConflictOfInterest:
    row = next((c for c in accounts.list_conflicts(page.session) if c.id == conflict_id), None)
    if row is None:
        raise NotFound(f"no conflict {conflict_id}")
    return row


def _remove_page(page: Page, row: ConflictOfInterest, **shown: Any) -> HTMLResponse:
    person = accounts.get_user(page.session, row.user_id)
    return render(
        page.request,
        "admin/conflict_remove.html",
        auth=page.auth,
        title="Remove a conflict of interest",
        conflict=row,
        person=accounts.person_name(person) if person else "",
        organisation=accounts.organisation_name(page.session, row.organisation_id),
        **shown,
    )


@router.get("/admin/conflicts/{conflict_id}/remove")
def confirm_remove_conflict(page: AdminPage, conflict_id: Id) -> HTMLResponse:
    """Ask for the reason a conflict no longer applies before removing it."""
    return _remove_page(page, _conflict(page, conflict_id))


@router.post("/admin/conflicts/{conflict_id}/remove")
def remove_conflict(page: AdminPage, conflict_id: Id, form: FormDep) -> Response:
    """Remove the conflict with the reason given (audited on the person's history)."""
    row = _conflict(page, conflict_id)
    reason = field(form, "reason", limit=500)
    if failure := attempt(
        page.session,
        lambda: people.remove_conflict(
            page.session, conflict_id, reason=reason, actor=page.actor, now=page.now
        ),
    ):
        return _remove_page(page, row, failure=failure, href="#reason")
    return after_post("/admin/conflicts", "conflict_removed")


# --- awards --------------------------------------------------------------------------------------


def _awards_page(page: Page, **shown: Any) -> HTMLResponse:
    rows = []
    for award in award_queries.list_awards(page.session):
        flow = page.registry.for_subject(page.session, award).policy.workflows.award
        forms = trigger_forms(page.session, award, page.actor, page.registry, page.now)
        row = {"award": award_public(page.session, award, page.registry), "version": award.version}
        state = flow.state(award.state)
        rows.append(
            row | {"state": state.title, "state_classes": tag_classes(state.tag), "forms": forms}
        )
    return render(
        page.request, "admin/awards.html", auth=page.auth, title="Awards", rows=rows, **shown
    )


@router.get("/admin/awards")
def awards(page: AdminPage, done: str = "") -> HTMLResponse:
    """Every award, with the steps an admin may take on each."""
    flash = flash_of(done, done_messages(all_flows(page.registry, "award")))
    return _awards_page(page, flash=flash)


def _steps(page: Page, award_id: int) -> list[Any]:
    award = award_queries.get_award(page.session, award_id)
    return trigger_forms(page.session, award, page.actor, page.registry, page.now)


def _confirm_step_page(
    page: Page, award_id: int, trigger: str, *, status: int = 200, **shown: Any
) -> HTMLResponse:
    award = award_queries.get_award(page.session, award_id)
    flow = page.registry.for_subject(page.session, award).policy.workflows.award
    step = next(
        (
            f
            for f in trigger_forms(page.session, award, page.actor, page.registry, page.now)
            if f.trigger == trigger
        ),
        None,
    )
    if step is None or not needs_confirmation(flow, trigger):
        raise NotFound(f"award {award_id} has no step '{trigger}' to confirm now")
    view = award_public(page.session, award, page.registry)
    return render(
        page.request,
        "admin/confirm_step.html",
        auth=page.auth,
        title=f"Are you sure you want to {step.title.lower()}?",
        status=status,
        step=step,
        award=view,
        version=award.version,
        action=f"/admin/awards/{award_id}/events/{trigger}",
        back=f"/admin/awards#award-{award_id}",
        **shown,
    )


@router.get("/admin/awards/{award_id}/events/{trigger}")
def confirm_award_event(page: AdminPage, award_id: Id, trigger: str) -> HTMLResponse:
    """The question before a weighty step (withdraw, suspend): only its form takes the step."""
    return _confirm_step_page(page, award_id, trigger)


@router.post("/admin/awards/{award_id}/events/{trigger}")
def award_event(page: AdminPage, award_id: Id, trigger: str, form: FormDep) -> Response:
    """Suspend, reinstate, withdraw or restore an award, with a comment; a step that asks for
    confirmation is taken only from its confirmation page (any other post is sent to it)."""
    award = award_queries.get_award(page.session, award_id)
    flow = page.registry.for_subject(page.session, award).policy.workflows.award
    weighty = needs_confirmation(flow, trigger)
    if weighty and field(form, "confirmed") != "yes":
        return RedirectResponse(f"/admin/awards/{award_id}/events/{trigger}", status_code=303)
    if failure := fire_from(form, page, award, trigger):
        if weighty and trigger in {f.trigger for f in _steps(page, award_id)}:
            return _confirm_step_page(page, award_id, trigger, failure=failure, href="#comment")
        return _awards_page(page, failure=failure, href=f"#award-{award_id}-{trigger}")
    return after_post("/admin/awards", trigger)
