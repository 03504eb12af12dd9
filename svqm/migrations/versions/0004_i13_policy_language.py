"""saved policy snapshots restated in the policy language that names its scheme words

Revision ID: 0004_i13_policy_language
Revises: 0003
Create Date: 2026-12-01 10:00:00

The engine used to act on a few names itself: an evidence "more information" fired a trigger
called `request_changes`, a new award fired `renew` on the old one, the deadline `annual_report`
was filed with `file_report`, state tags, the applicant's submit button and the panel's view of
`draft` were tables in the web pages. Policies now say all of that (`hand_back`, `supersede`,
`filed_by`, `tag`, `primary`, `private`, ...). A running application keeps the policy text it
started under, so each saved snapshot is restated here with what the old engine did for it;
the digest stays the version's identity. Only fields a snapshot does not set are added.
"""

from typing import Any

import sqlalchemy as sa
import yaml
from alembic import op

revision = '0004_i13_policy_language'
down_revision = '0003'
branch_labels = None
depends_on = None

# What the web pages of the old engine showed, by state name, whatever the scheme.
_OLD_TAGS = {
    "draft": "grey", "changes_requested": "yellow", "recommended_award": "teal",
    "recommended_refusal": "orange", "awarded": "green", "not_awarded": "red",
    "appealed": "purple", "not_awarded_final": "red", "withdrawn": "grey", "active": "green",
    "upgrade_eligible": "green", "report_due": "orange", "renewal_due": "yellow",
    "suspended": "red", "expired": "grey", "lapsed": "grey", "renewed": "grey",
}
_OLD_DONE = {
    "submit": "Application submitted. An assessor will now review it.",
    "resubmit": "Application sent back to the assessor.",
    "withdraw": "Application withdrawn.",
    "appeal": "Appeal sent. The panel will decide it.",
}
_OLD_BUTTONS = {"submit": "Submit application", "resubmit": "Resubmit application"}
_NEW_STATE_FIELDS = ("tag", "private")
_NEW_TRANSITION_FIELDS = ("primary", "warning", "done")
_NEW_WORKFLOW_FIELDS = ("hand_back", "supersede")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _hand_back(flow: dict[str, Any]) -> str | None:
    """`request_changes`, as the old engine fired; else the assessor's first step from a state
    where evidence is reviewed to one where the applicant can answer."""
    transitions = _dicts(flow.get("transitions"))
    if any(t.get("trigger") == "request_changes" for t in transitions):
        return "request_changes"
    states = {s.get("name"): s for s in _dicts(flow.get("states"))}
    for t in transitions:
        sources = t.get("source")
        sources = [sources] if isinstance(sources, str) else sources or []
        reviewed = any(states.get(s, {}).get("reviewable") for s in sources)
        answerable = states.get(t.get("dest"), {}).get("editable")
        if reviewed and answerable and "assessor" in (t.get("roles") or []):
            return str(t.get("trigger"))
    return None


def restate(data: dict[str, Any]) -> bool:
    """Add what the old engine did for this policy; True if anything was added."""
    before = repr(data)
    flows = data.get("workflows") if isinstance(data.get("workflows"), dict) else {}
    application, award = flows.get("application"), flows.get("award")
    for flow in (application, award):
        if not isinstance(flow, dict):
            continue
        for state in _dicts(flow.get("states")):
            if "tag" not in state and state.get("name") in _OLD_TAGS:
                state["tag"] = _OLD_TAGS[state["name"]]
    if isinstance(application, dict):
        if "hand_back" not in application and (trigger := _hand_back(application)):
            application["hand_back"] = trigger
        for state in _dicts(application.get("states")):
            if state.get("name") == "draft":
                state.setdefault("private", True)
        for t in _dicts(application.get("transitions")):
            trigger = t.get("trigger")
            if trigger in _OLD_BUTTONS:
                t.setdefault("primary", True)
                if not t.get("label"):
                    t["label"] = _OLD_BUTTONS[trigger]
            if trigger in _OLD_DONE:
                t.setdefault("done", _OLD_DONE[trigger])
            if trigger == "withdraw":
                t.setdefault("warning", True)
    award_triggers = set()
    if isinstance(award, dict):
        award_triggers = {t.get("trigger") for t in _dicts(award.get("transitions"))}
        if "supersede" not in award and "renew" in award_triggers:
            award["supersede"] = "renew"
    for d in _dicts(data.get("deadlines")):
        old_filing = d.get("kind") == "annual_report" and d.get("subject") == "award"
        if old_filing and "filed_by" not in d:
            d["filed_by"] = ["applicant", "admin"]
            if "on_late_filing" not in d and "file_report" in award_triggers:
                d["on_late_filing"] = "file_report"
    return repr(data) != before


def unstate(data: dict[str, Any]) -> bool:
    """Remove the fields the earlier engine does not know (it refuses unknown fields)."""
    before = repr(data)
    flows = data.get("workflows") if isinstance(data.get("workflows"), dict) else {}
    for flow in flows.values():
        if not isinstance(flow, dict):
            continue
        for name in _NEW_WORKFLOW_FIELDS:
            flow.pop(name, None)
        for state in _dicts(flow.get("states")):
            for name in _NEW_STATE_FIELDS:
                state.pop(name, None)
        for t in _dicts(flow.get("transitions")):
            for name in _NEW_TRANSITION_FIELDS:
                t.pop(name, None)
    return repr(data) != before


def _rewrite(change: Any) -> None:
    conn = op.get_bind()
    snapshots = sa.table("policysnapshot", sa.column("digest"), sa.column("source_text"))
    for digest, text in conn.execute(sa.select(snapshots.c.digest, snapshots.c.source_text)):
        data = yaml.safe_load(text)
        if isinstance(data, dict) and change(data):
            restated = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
            conn.execute(
                snapshots.update()
                .where(snapshots.c.digest == digest)
                .values(source_text=restated)
            )


def upgrade() -> None:
    _rewrite(restate)


def downgrade() -> None:
    _rewrite(unstate)
