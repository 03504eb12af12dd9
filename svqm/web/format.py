"""How values read on a page: dates and times, levels, state and status tags, sizes, sentences."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from svqm.policy import Level, Policy, Workflow
from svqm.workflow.models import FILED, application_reference

_UK = ZoneInfo("Europe/London")
Tag = dict[str, str]

# How each evidence status reads (GOV.UK tag text and colour); the statuses are the engine's own.
EVIDENCE_TAGS = {
    "missing": ("Missing", "govuk-tag--grey"),
    "pending": ("Awaiting review", ""),
    "accepted": ("Accepted", "govuk-tag--green"),
    "more_information": ("More information needed", "govuk-tag--yellow"),
    "rejected": ("Rejected", "govuk-tag--red"),
    "met_by_charter": ("Met by the published charter", "govuk-tag--green"),
}
ROLE_NAMES = {
    "applicant": "Applicant",
    "assessor": "Assessor",
    "panel": "Panel",
    "admin": "Administrator",
    "system": "The service (automatic)",
}


def day(value: date | datetime) -> str:
    """'5 January 2026' (UK time for moments)."""
    if isinstance(value, datetime):
        value = value.astimezone(_UK).date()
    return f"{value.day} {value:%B %Y}"


def moment(value: datetime) -> str:
    """'5 January 2026 at 09:00 UK time': every page shows times in Europe/London, labelled
    (summer time included), as the `datetime` template macro does."""
    local = value.astimezone(_UK)
    return f"{local.day} {local:%B %Y} at {local:%H:%M} UK time"


def level_label(level: Level) -> str:
    """'Bronze (Level 1)'."""
    return f"{level.name} ({', '.join(level.aliases)})" if level.aliases else level.name


def tag_classes(colour: str | None) -> str:
    """The GOV.UK tag class of a policy's colour (`green`); none, or blue, is the plain tag."""
    return f"govuk-tag--{colour}" if colour and colour != "blue" else ""


def state_tag(flow: Workflow, state: str) -> Tag:
    """A state as a GOV.UK tag: its title, in the colour its policy gives it (`tag`)."""
    found = flow.state(state)
    return {"text": found.title, "classes": tag_classes(found.tag)}


def status_change(flow: Workflow, source: str, dest: str) -> str:
    """'Status changed from Draft to Submitted', in the states' own titles (an old record's
    state the policy no longer has reads as its name)."""
    titles = {s.name: s.title for s in flow.states}
    return f"Status changed from {titles.get(source, source)} to {titles.get(dest, dest)}"


# An upload waiting for the application to be sent: nobody is asked to review it yet.
UNSENT_TAG = ("Ready to send", "govuk-tag--light-blue")
# Nothing uploaded while the application is with its applicant: as the task list says it.
NOT_STARTED_TAG = ("Not started", "govuk-tag--grey")


def evidence_tag(status: str, *, sent: bool = True) -> Tag:
    """An evidence item's or checklist slot's status as a tag (an item still to be sent with the
    application is not "awaiting review")."""
    if not sent and status in ("pending", "missing"):
        text, classes = UNSENT_TAG if status == "pending" else NOT_STARTED_TAG
    else:
        text, classes = EVIDENCE_TAGS.get(status, (status, ""))
    return {"text": text, "classes": classes}


def report_tag(policy: Policy, state: str) -> Tag:
    """A filing's state as a tag: "Filed" for a document (no review), else the report
    workflow's state in the policy's words and colour."""
    flow = policy.workflows.report
    if flow is None or state == FILED:
        return {"text": "Filed", "classes": "govuk-tag--grey"}
    return state_tag(flow, state)


def reference(application_id: int) -> str:
    """An application's reference as people quote it ('APP-000042')."""
    return application_reference(application_id)


# What each stored file type is called on a page (the types are those filetypes.py accepts).
FILE_KINDS = {
    "application/pdf": "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel spreadsheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "PowerPoint presentation"
    ),
    "text/csv": "CSV file",
    "text/plain": "Text file",
}


def file_kind(content_type: str) -> str:
    """'Word document', never a MIME type."""
    return FILE_KINDS.get(content_type.split(";")[0].strip(), "File")


def file_title(title: str, slot_title: str) -> str:
    """The title the applicant gave an evidence file, or "" when they gave none: the store then
    keeps the checklist item's own title (cut to 200 characters), which the page already shows
    (it names the file)."""
    title = title.strip()
    return "" if title in (slot_title.strip(), slot_title[:200].strip()) else title


def role_name(role: str) -> str:
    return ROLE_NAMES.get(role, role)


def dom_id(slot: str) -> str:
    """An element id for a checklist slot ('slot-governance-sponsor')."""
    return "slot-" + re.sub(r"[^a-z0-9]+", "-", slot.lower()).strip("-")


def sentence(text: str) -> str:
    """The text with a capital first letter."""
    return text[:1].upper() + text[1:]


# Words after a step's verb that already make it a phrase ("Submit for assessment", "Sign the charter").
_LINKING_WORDS = {"a", "an", "the", "your", "its", "their", "for", "to", "with", "on", "of", "and"}


def step_phrase(title: str, whose: str = "your") -> str:
    """A step's title as it reads inside a sentence: 'Submit application' -> 'submit your
    application' (a bare noun after the verb gets `whose`), 'Submit for assessment' ->
    'submit for assessment'."""
    words = title.split()
    if not words:
        return title
    verb = words[0][:1].lower() + words[0][1:]
    rest = words[1:]
    if rest and rest[0].islower() and rest[0] not in _LINKING_WORDS:
        rest = [whose, *rest]
    return " ".join([verb, *rest])


def plural(n: int, word: str) -> str:
    """'1 day', '3 days'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def file_size(size: int) -> str:
    """'512 bytes', '12 KB', '3.4 MB'."""
    if size < 1024:
        return plural(size, "byte")
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
