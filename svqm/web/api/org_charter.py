"""JSON: an organisation's own charter: its people read and change the working copy and publish
it; anyone reads the published revision."""

from __future__ import annotations

from fastapi import APIRouter

from svqm.errors import NotFound
from svqm.web.deps import (
    ApiUser,
    CharterRulesDep,
    Id,
    NowDep,
    RegistryDep,
    SessionDep,
    actor_of,
)
from svqm.web.schemas import CharterPublic, CharterPublishRequest, CharterRequest
from svqm.web.views import org_charter as views
from svqm.workflow import org_charter

router = APIRouter(prefix="/api/v1/organisations", tags=["charter"])


def _pillars(body: CharterRequest) -> dict[str, org_charter.PillarInput] | None:
    if body.pillars is None:
        return None
    return {
        pid: org_charter.PillarInput(
            entries=[org_charter.EntryInput(e.name, e.kind, e.role) for e in p.entries],
            text=p.text,
            statements=dict(p.statements),
            items=list(p.items),
        )
        for pid, p in body.pillars.items()
    }


@router.get("/{organisation_id}/charter")
def read_charter(
    organisation_id: Id, user: ApiUser, session: SessionDep, rules: CharterRulesDep
) -> CharterPublic:
    """The working copy, for the organisation's own people (403 for anyone else); version 0
    and no revision before it is first written."""
    org_charter.require_editor(session, actor_of(user), organisation_id)
    return views.as_public(rules, views.working_copy(session, organisation_id))


@router.put("/{organisation_id}/charter")
def write_charter(
    organisation_id: Id,
    body: CharterRequest,
    user: ApiUser,
    session: SessionDep,
    rules: CharterRulesDep,
    now: NowDep,
) -> CharterPublic:
    """Change the working copy: the pillars given and/or all the priorities. 422 names the
    field; 409 when `version` is not the charter's; after publishing, a new revision starts."""
    org_charter.save_charter(
        session,
        organisation_id,
        rules=rules,
        actor=actor_of(user),
        now=now,
        expected_version=body.version,
        pillars=_pillars(body),
        priorities=None
        if body.priorities is None
        else [
            org_charter.PriorityInput(p.title, p.target, p.outcome, p.target_date, p.pledge_ids)
            for p in body.priorities
        ],
    )
    return views.as_public(rules, views.working_copy(session, organisation_id))


@router.post("/{organisation_id}/charter/publish")
def publish_charter(
    organisation_id: Id,
    body: CharterPublishRequest,
    user: ApiUser,
    session: SessionDep,
    rules: CharterRulesDep,
    now: NowDep,
) -> CharterPublic:
    """Publish the working copy: the public reads it from now on. 422 lists what it lacks
    (every pillar, one priority); 409 when it is already published or `version` is stale."""
    org_charter.publish_charter(
        session,
        organisation_id,
        rules=rules,
        actor=actor_of(user),
        now=now,
        expected_version=body.version,
    )
    return views.as_public(rules, views.working_copy(session, organisation_id))


@router.get("/{organisation_id}/charter/published")
def read_published_charter(
    organisation_id: Id,
    session: SessionDep,
    registry: RegistryDep,
    rules: CharterRulesDep,
    now: NowDep,
) -> CharterPublic:
    """Public: the organisation's published charter (its last published revision; 404 if it has
    published none). A priority names only pledges already public (held by an award in force)."""
    text = views.published(session, organisation_id)
    if text is None:
        raise NotFound(f"organisation {organisation_id} has published no charter")
    shown = set(views.public_pledges(session, registry, organisation_id, now))
    return views.as_public(rules, text, shown_pledges=shown)
