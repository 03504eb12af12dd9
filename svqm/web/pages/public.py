"""Public pages: home, schemes with their workflow diagrams, the award directory, accessibility.

Also the small helpers every staff page uses: role checks, error pages and summaries, PRG.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from svqm.accounts.models import Organisation
from svqm.errors import InvalidInput, NotFound, PermissionDenied, SvqmError
from svqm.policy import Deadline, Policy, Workflow
from svqm.web.api.awards import award_public
from svqm.web.deps import (
    NowDep,
    OptionalPageUser,
    PageAuth,
    RegistryDep,
    SessionDep,
    verify_csrf,
)
from svqm.web.errors import error_title, status_of
from svqm.web.pages import render
from svqm.workflow import diagram, queries
from svqm.workflow.guards import GUARDS

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

HOME = {"applicant": "/dashboard", "assessor": "/assess", "panel": "/panel", "admin": "/admin"}
Errors = list[dict[str, str]] | None

# --- helpers the staff pages share -------------------------------------------------------------


async def form_fields(request: Request) -> FormData:
    """The posted form (already read, and cached, by the CSRF check)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_fields)]


def field(form: FormData, name: str, *, limit: int = 5000) -> str:
    """A text field of the form, trimmed and capped (files and absent fields read as empty)."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def version_of(form: FormData) -> int:
    """The version the person saw, which every write form posts."""
    try:
        return int(field(form, "version"))
    except ValueError:
        raise InvalidInput("the form has no version; reload the page and try again") from None


def error_list(exc: SvqmError, href: str = "#main-content") -> list[dict[str, str]]:
    """A GOV.UK error summary list: the refusal, then every unmet reason."""
    return [{"text": text, "href": href} for text in [exc.detail, *getattr(exc, "unmet", [])]]


def show(
    request: Request,
    name: str,
    auth: PageAuth | None,
    title: str,
    *,
    failure: SvqmError | None = None,
    href: str = "#main-content",
    errors: Errors = None,
    status: int = 200,
    flash: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page; a domain error becomes its error summary and its status."""
    if failure is not None:
        errors, status = error_list(failure, href), status_of(failure)
    context |= {"title": title, "errors": errors, "flash": flash}
    return render(request, name, context, auth=auth, status_code=status)


def error_page(request: Request, exc: SvqmError, auth: PageAuth | None) -> HTMLResponse:
    """A page saying what went wrong, with the status the API would give."""
    status, unmet = status_of(exc), getattr(exc, "unmet", [])
    title = error_title(status)
    return show(
        request, "error.html", auth, title, status=status, detail=exc.detail, unmet=unmet, home=None
    )


def only(request: Request, auth: PageAuth, *roles: str) -> HTMLResponse | None:
    """A 403 page unless the person has one of these roles (deny by default)."""
    if auth.user.role in roles:
        return None
    return error_page(request, PermissionDenied(f"a {auth.user.role} may not use this page"), auth)


def attempt(session: Session, write: Callable[[], object]) -> SvqmError | None:
    """Run a write in a savepoint; on a domain error undo all of it and return the error."""
    try:
        with session.begin_nested():
            write()
    except SvqmError as exc:
        session.expire_all()
        return exc
    return None


def after_post(url: str, word: str) -> RedirectResponse:
    """Post/redirect/get, with a word that picks a fixed success message."""
    return RedirectResponse(f"{url}?done={word}", status_code=303)


def blank(value: str | None) -> str | None:
    """An empty GET filter field means no filter."""
    return (value.strip() or None) if value else None


# --- home, accessibility, schemes ----------------------------------------------------------------


@router.get("/")
def home(request: Request, auth: OptionalPageUser, registry: RegistryDep) -> Response:
    """What the service is; people signed in go to their own start page."""
    if auth is not None:
        return RedirectResponse(HOME.get(auth.user.role, "/schemes"), status_code=303)
    schemes = [s.policy for _, s in sorted(registry.current.items())]
    return show(
        request, "public/home.html", None, "Accreditation for social value", schemes=schemes
    )


@router.get("/accessibility")
def accessibility(request: Request, auth: OptionalPageUser) -> HTMLResponse:
    """The accessibility statement."""
    return show(request, "public/accessibility.html", auth, "Accessibility statement")


@router.get("/schemes")
def schemes(request: Request, auth: OptionalPageUser, registry: RegistryDep) -> HTMLResponse:
    """Every scheme this service runs."""
    policies = [s.policy for _, s in sorted(registry.current.items())]
    return show(request, "public/schemes.html", auth, "Schemes", schemes=policies)


def _guard_words(ref: str, policy: Policy) -> str:
    name, _, argument = ref.partition(":")
    doc = (GUARDS[name].check.__doc__ or name).strip().splitlines()[0].rstrip(".")
    if argument:
        found = policy.deadline(argument)
        label = found.label if found else argument
        doc = doc.replace("The named deadline", label)
    return doc


def _steps(policy: Policy, wf: Workflow) -> list[dict[str, Any]]:
    """The workflow as text: who may do what, from where to where, and what must be true."""
    titles = {s.name: s.title for s in wf.states}
    return [
        {
            "title": t.title,
            "sources": [titles[s] for s in t.source],
            "dest": titles[t.dest],
            "roles": t.roles,
            "guards": [_guard_words(g, policy) for g in t.guards],
        }
        for t in wf.transitions
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def deadline_words(policy: Policy, d: Deadline) -> str:
    """A deadline in words: '28 days after the application enters Submitted or Under review.'"""
    wf = policy.workflows.of(d.subject)
    off = d.offset
    units = ((off.months, "month"), (off.days, "day"), (off.working_days, "working day"))
    amounts = [_plural(abs(v), w) for v, w in units if v]
    anchor = {
        "state_entered": f"the {d.subject} enters {' or '.join(wf.state(s).title for s in d.while_in)}",
        "issued": "the award is issued",
        "expires": "the award expires",
    }[d.anchor]
    side = "before" if (off.months or off.days or off.working_days) < 0 else "after"
    text = f"{' and '.join(amounts)} {side} {anchor}" if amounts else f"when {anchor}"
    if d.repeat_months:
        text += f", then every {_plural(d.repeat_months, 'month')}"
    if d.levels:
        text += f" (only at {', '.join(policy.level(lv).name for lv in d.levels)})"
    if d.remind_before_days:
        days = [str(n) for n in d.remind_before_days]
        listed = f"{', '.join(days[:-1])} and {days[-1]}" if len(days) > 1 else days[0]
        text += f". Reminders {listed} {'day' if days == ['1'] else 'days'} before"
    if d.on_due:
        step = next((t.title for t in wf.transitions if t.trigger == d.on_due), d.on_due)
        text += f". When it passes: {step.lower()}"
    return text[0].upper() + text[1:] + "."


@router.get("/schemes/{scheme_id}")
def scheme(
    request: Request, scheme_id: str, auth: OptionalPageUser, registry: RegistryDep
) -> HTMLResponse:
    """One scheme: levels, themes, standards and questions, deadlines, and both workflows."""
    try:
        policy = registry.get(scheme_id).policy
    except NotFound as exc:
        return error_page(request, exc, auth)
    return show(
        request,
        "public/scheme.html",
        auth,
        policy.name,
        policy=policy,
        levels=sorted(policy.levels, key=lambda lv: lv.rank),
        level_names={lv.id: lv.name for lv in policy.levels},
        standard_names={s.id: s.name for s in policy.standards},
        deadlines=[(d.label, deadline_words(policy, d)) for d in policy.deadlines],
        workflows=[(k, _steps(policy, policy.workflows.of(k))) for k in ("application", "award")],
    )


_SVG: dict[tuple[str, str], str] = {}


@router.get("/schemes/{scheme_id}/{kind}.svg")
def scheme_diagram(
    request: Request, scheme_id: str, kind: str, auth: OptionalPageUser, registry: RegistryDep
) -> Response:
    """A workflow drawn as SVG, drawn once per policy version (the digest) and kept in memory."""
    try:
        if kind not in ("application", "award"):
            raise NotFound(f"no {kind} workflow")
        policy = registry.get(scheme_id).policy
    except NotFound as exc:
        return error_page(request, exc, auth)
    key = (policy.digest, kind)
    if key not in _SVG:
        _SVG[key] = diagram.svg(policy.workflows.of(kind), f"{policy.name}: {kind} workflow")
    cache = {"Cache-Control": "public, max-age=3600"}
    return Response(_SVG[key], media_type="image/svg+xml", headers=cache)


# --- the public directory ----------------------------------------------------------------------


@router.get("/awards")
def directory(
    request: Request,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    organisation: str = "",
    level: str = "",
    scheme: str = "",
    sector: str = "",
) -> HTMLResponse:
    """Awards in force, searchable by organisation, level, scheme and sector."""
    rows = queries.directory(
        session,
        registry,
        now=now,
        level=blank(level),
        scheme=blank(scheme),
        name=blank(organisation[:200]),
        sector=blank(sector[:200]),
    )
    awards = []
    for award in rows:
        org = session.get(Organisation, award.organisation_id)
        awards.append((award_public(session, award, registry), org.sector if org else ""))
    levels: dict[str, str] = {}
    for s in registry.current.values():
        for lv in sorted(s.policy.levels, key=lambda lv: lv.rank):
            levels.setdefault(lv.id, lv.name)
    query = {"organisation": organisation, "level": level, "scheme": scheme, "sector": sector}
    return show(
        request,
        "public/directory.html",
        auth,
        "Directory of awards",
        awards=awards,
        scheme_names={sid: s.policy.name for sid, s in registry.current.items()},
        levels=levels,
        query={k: v[:200] for k, v in query.items()},
    )
