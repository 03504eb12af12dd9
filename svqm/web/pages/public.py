"""Public pages: home, accessibility, schemes with their workflow diagrams, the award directory."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from svqm.accounts import service as accounts
from svqm.errors import NotFound
from svqm.web.deps import CSRF, HOMES, NowDep, OptionalPageUser, RegistryDep, SessionDep
from svqm.web.forms import blank
from svqm.web.ui import render
from svqm.web.views import directory as directory_views
from svqm.web.views.awards import award_public
from svqm.web.views.schemes import scheme_page
from svqm.workflow import awards as award_queries
from svqm.workflow import diagram

router = APIRouter(dependencies=[CSRF], include_in_schema=False)


@router.get("/")
def home(request: Request, auth: OptionalPageUser, registry: RegistryDep) -> Response:
    """What the service is; people signed in go to their own start page."""
    if auth is not None:
        return RedirectResponse(HOMES.get(auth.user.role, "/schemes"), status_code=303)
    schemes = [s.policy for _, s in sorted(registry.current.items())]
    title = request.app.state.settings.SERVICE_NAME
    return render(request, "public/home.html", auth=None, title=title, schemes=schemes)


@router.get("/accessibility")
def accessibility(request: Request, auth: OptionalPageUser) -> HTMLResponse:
    """The accessibility statement."""
    title = "Accessibility statement"
    return render(request, "public/accessibility.html", auth=auth, title=title)


@router.get("/schemes")
def schemes(request: Request, auth: OptionalPageUser, registry: RegistryDep) -> HTMLResponse:
    """Every scheme this service runs."""
    policies = [s.policy for _, s in sorted(registry.current.items())]
    return render(request, "public/schemes.html", auth=auth, title="Schemes", schemes=policies)


@router.get("/schemes/{scheme_id}")
def scheme(
    request: Request, scheme_id: str, auth: OptionalPageUser, registry: RegistryDep
) -> HTMLResponse:
    """One scheme: levels, themes, standards and questions, deadlines, and both workflows."""
    view = scheme_page(registry.get(scheme_id).policy)
    return render(
        request,
        "public/scheme.html",
        auth=auth,
        title=view.policy.name,
        policy=view.policy,
        levels=view.levels,
        level_names=view.level_names,
        standard_names=view.standard_names,
        deadlines=view.deadlines,
        workflows=view.workflows,
    )


_SVG: dict[tuple[str, str], str] = {}


_SIZE = re.compile(r'(<svg\b[^>]*?)\swidth="[^"]*"\s+height="[^"]*"')


def _fitted(drawing: str) -> str:
    """The drawing without its own width and height: it keeps its viewBox, so it scales to the
    width of the box it is shown in (the page's) rather than scrolling there."""
    return _SIZE.sub(r"\1", drawing, count=1)


@router.get("/schemes/{scheme_id}/{kind}.svg")
def scheme_diagram(scheme_id: str, kind: str, registry: RegistryDep, size: str = "") -> Response:
    """A workflow drawn as SVG, drawn once per policy version (the digest) and kept in memory;
    it fits the width it is shown at, or with `size=full` it is drawn at its own size."""
    policy = registry.get(scheme_id).policy
    if kind not in policy.workflows.kinds():
        raise NotFound(f"no {kind} workflow")
    key = (policy.digest, kind)
    if key not in _SVG:
        _SVG[key] = diagram.svg(
            policy.workflows.of(kind), f"{policy.name}: {kind} workflow", words=True
        )
    cache = {"Cache-Control": "public, max-age=3600"}
    drawing = _SVG[key] if size == "full" else _fitted(_SVG[key])
    return Response(drawing, media_type="image/svg+xml", headers=cache)


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
    region: str = "",
    theme: str = "",
) -> HTMLResponse:
    """Awards in force, searchable by organisation, level, scheme, sector, region and the theme
    of a pledge they hold; a level or theme is one scheme's (see views/directory.py). Charters'
    signatures are on each charter's page (or chosen here by their scheme, or one of its levels
    or themes), not among the accreditations."""
    charters = {sid for sid, s in registry.current.items() if s.policy.charter is not None}
    chosen_scheme = blank(scheme)
    level_options = directory_views.options(registry, "level")
    theme_options = directory_views.options(registry, "theme")
    by_level = directory_views.chosen(
        level[:200], level_options, scheme=chosen_scheme, hidden=charters
    )
    by_theme = directory_views.chosen(
        theme[:200], theme_options, scheme=chosen_scheme, hidden=charters
    )
    # A charter's signatures are listed when its scheme is chosen, or one of its levels or themes.
    named = by_level.named | by_theme.named
    rows = award_queries.directory(
        session,
        registry,
        now=now,
        scheme=chosen_scheme,
        name=blank(organisation[:200]),
        sector=blank(sector[:200]),
        region=blank(region[:100]),
        levels=by_level.items,
        themes=by_theme.items,
        without=charters - named if chosen_scheme is None else None,
    )
    places = accounts.organisation_places(session, {a.organisation_id for a in rows})
    awards = [
        (award_public(session, a, registry), *places.get(a.organisation_id, ("", "", "")))
        for a in rows
    ]
    query = {
        "organisation": organisation,
        "level": by_level.selected,
        "scheme": scheme,
        "sector": sector,
        "region": region,
        "theme": by_theme.selected,
    }
    return render(
        request,
        "public/directory.html",
        auth=auth,
        title="Directory of awards",
        awards=awards,
        scheme_names={sid: s.policy.name for sid, s in registry.current.items()},
        levels=directory_views.groups(registry, level_options),
        level_loose=by_level.loose,
        regions={r: r for r in request.app.state.settings.REGIONS},
        themes=directory_views.groups(registry, theme_options),
        theme_loose=by_theme.loose,
        charters=[registry.current[sid].policy for sid in sorted(charters)],
        query={k: v[:200] for k, v in query.items()},
    )
