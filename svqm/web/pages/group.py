"""A group's page: its member organisations' applications, awards and deadlines together, and
adding a business to the group."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.accounts import members
from svqm.accounts import service as accounts
from svqm.errors import GuardRefused, InvalidInput
from svqm.web.deps import CSRF, ApplicantPage, Page, SettingsDep
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormDep, FormText, attempt, field, region_options
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views.group import group_view, level_options
from svqm.workflow import service as workflow

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "added": "Business added to the group. You can act for it from your organisations.",
}
_INPUTS = {"name": "name", "sector": "sector", "region": "region"}


def _page(
    page: Page,
    regions: list[str],
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    view = group_view(page.session, page.registry, page.actor, page.now)
    typed = typed or {"name": "", "sector": "", "region": view.region}
    levels = level_options(page.registry, typed.get("level", ""))
    lead = members.get_membership(page.session, page.auth.user.id, page.auth.user.organisation_id)
    return render(
        page.request,
        "applicant/group.html",
        auth=page.auth,
        title=f"{view.name}: the group" if view.name else "Your group",
        status=status,
        errors=errors,
        flash=flash,
        group=view,
        is_lead=lead is not None and lead.role == "lead",
        typed=typed,
        region_options=region_options(regions, typed["region"]),
        levels=levels,
        chosen_members=typed.get("members", ""),
    )


@router.get("/group")
def group(page: ApplicantPage, settings: SettingsDep, done: str = "") -> HTMLResponse:
    """The member organisations of the group the person acts for, side by side."""
    return _page(page, settings.REGIONS, flash=flash_of(done, DONE))


@router.post("/group/members", response_model=None)
def add_member(
    page: ApplicantPage,
    settings: SettingsDep,
    name: FormText = "",
    sector: FormText = "",
    region: FormText = "",
) -> Response:
    """Register a business as a member of the group (its leads): the person leads it too."""
    user = page.auth.user
    typed = {"name": name[:200], "sector": sector[:100], "region": region[:100]}

    def write() -> None:
        members.require_lead(page.session, user, user.organisation_id or 0)
        org = accounts.create_organisation(
            page.session,
            name=name,
            sector=sector,
            region=region,
            parent_id=user.organisation_id,
            regions=settings.REGIONS,
        )
        members.add_membership(
            page.session, user_id=user.id or 0, organisation_id=org.id or 0, role="lead"
        )

    if failure := attempt(page.session, write):
        input_id = _INPUTS.get(failure.field or "", "name")
        errors = [{"text": sentence(failure.detail), "href": f"#{input_id}"}]
        return _page(page, settings.REGIONS, status=status_of(failure), errors=errors, typed=typed)
    return after_post("/group", "added")


@router.post("/group/applications", response_model=None)
def apply_for_members(page: ApplicantPage, settings: SettingsDep, form: FormDep) -> Response:
    """One application for several of the group's businesses: an award each if it succeeds."""
    level = field(form, "level")[:130]
    chosen = [int(v) for v in form.getlist("members") if isinstance(v, str) and v.isdigit()]
    scheme_id, _, level_id = level.partition(":")
    opened = []

    def write() -> None:
        if not chosen:
            raise InvalidInput("choose at least one business", field="members")
        opened.append(
            workflow.open_application(
                page.session,
                organisation_id=page.auth.user.organisation_id or 0,
                scheme_id=scheme_id[:64],
                level=level_id[:64],
                actor=page.actor,
                registry=page.registry,
                now=page.now,
                members=chosen[:500],
            )
        )

    if failure := attempt(page.session, write):
        input_id = "members" if failure.field == "members" else "group-level"
        errors = [{"text": sentence(failure.detail), "href": f"#{input_id}"}]
        if isinstance(failure, GuardRefused):
            errors += [{"text": sentence(r), "href": f"#{input_id}"} for r in failure.unmet]
        typed = {
            "name": "",
            "sector": "",
            "region": "",
            "level": level,
            "members": ",".join(map(str, chosen)),
        }
        return _page(page, settings.REGIONS, status=status_of(failure), errors=errors, typed=typed)
    return after_post(f"/applications/{opened[0].id}", "opened")
