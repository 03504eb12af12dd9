"""An application's task list: each task, the page it is done on, and its status in words."""

from __future__ import annotations

from dataclasses import dataclass

from svqm.web.format import step_phrase
from svqm.web.views.applicant import TaskList

NOT_STARTED, IN_PROGRESS, COMPLETED, CANNOT_START = (
    "Not started",
    "In progress",
    "Completed",
    "Cannot start yet",
)
AFTER_SENDING = "After you send your application"


@dataclass(frozen=True)
class Words:
    """What the task list says, for the organisation's own people or for staff reading it.

    Staff read an application read-only: its tasks are the applicant's, so the list says what
    the applicant does or is waited on for, never "your" or an order to do it."""

    about: str
    send: str
    check_and: str  # with {step}: the primary step's title inside the sentence
    whose: str  # the word a step's bare noun takes ("submit your application")
    after_sending: str
    pledge_first: str
    propose: str  # with {dates}: "three start dates"
    propose_before: str  # with {propose}
    proposed: str
    not_answered: str
    excluded: str


OWN_WORDS = Words(
    about="About your organisation",
    send="Check your answers and send your application",
    check_and="Check your answers and {step}",
    whose="your",
    after_sending=AFTER_SENDING,
    pledge_first="Make a pledge first",
    propose="Propose {dates}",
    propose_before="{propose}, now or after you send your application",
    proposed="Dates proposed: waiting for the scheme to confirm one",
    not_answered="Answer the scheme's questions",
    excluded="The scheme does not accredit an industry you named",
)
STAFF_WORDS = Words(
    about="About the organisation",
    send="Check the answers and send the application",
    check_and="Check the answers and {step}",
    whose="the",
    after_sending="After the application is sent",
    pledge_first="Waiting for the applicant to make a pledge",
    propose="Waiting for the applicant to propose {dates}",
    propose_before="{propose}, before or after sending",
    # Staff reading the list may be the ones who confirm: not "waiting for the scheme".
    proposed="Dates proposed: waiting for one to be confirmed",
    not_answered="Waiting for the applicant to answer the scheme's questions",
    excluded="The scheme does not accredit an industry the applicant named",
)
# How each status shows (GOV.UK task list): plain text for the settled ones, tags for the rest.
STATUS_CLASSES = {NOT_STARTED: "govuk-tag--blue", IN_PROGRESS: "govuk-tag--light-blue"}


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    href: str | None
    status: str
    hint: str = ""

    @property
    def tag(self) -> str | None:
        """The tag class of the status, or None where it reads as plain text."""
        return STATUS_CLASSES.get(self.status)


@dataclass(frozen=True)
class TaskGroup:
    heading: str
    tasks: list[Task]


def _slot_status(slot: dict[str, object]) -> str:
    if not slot["versions"]:
        return NOT_STARTED
    return COMPLETED if slot["satisfied"] else IN_PROGRESS


def task_groups(view: TaskList) -> list[TaskGroup]:
    """The tasks of the application, in the order they are done, in the words of its reader:
    the organisation's own people (`view.owner`) or staff reading it."""
    words = OWN_WORDS if view.owner else STAFF_WORDS
    base = f"/applications/{view.app['id']}"
    pledges = NOT_STARTED if not view.pledges else (IN_PROGRESS if view.rule_unmet else COMPLETED)
    evidence = [
        Task(
            id=s["dom"],
            title=s["title"],
            href=f"{base}/evidence/{s['id']}",
            status=_slot_status(s),
            hint=(s["tag"]["text"] if s["versions"] and not s["satisfied"] else "")
            or s.get("each_member", ""),
        )
        for s in view.slots
    ] + [
        Task(id=f"waiting-{n}", title=t, href=None, status=CANNOT_START, hint=words.pledge_first)
        for n, t in enumerate(view.waiting, 1)
    ]
    eligible = _eligibility_task(base, view.eligibility_status, words)
    blocking = [
        *([eligible] if eligible is not None else []),
        Task("pledges", "Pledges", None, pledges),
        *evidence,
    ]
    ready = all(t.status == COMPLETED for t in blocking)
    primary = view.primary
    if primary is None:
        done = COMPLETED if not view.app["open"] else CANNOT_START
        submit = Task("check", words.send, None, done)
    else:
        submit = Task(
            id="check",
            title=words.check_and.format(step=step_phrase(primary.title, words.whose)),
            href=f"{base}/check" if ready else None,
            status=NOT_STARTED if ready else CANNOT_START,
            hint="" if ready else _still_to_do([t for t in blocking if t.status != COMPLETED]),
        )
    groups = [
        TaskGroup(
            words.about,
            [
                Task("organisation", "Organisation details", f"{base}/organisation", COMPLETED),
                *([eligible] if eligible is not None else []),
                Task("pledges", "Pledges", f"{base}/pledges", pledges, view.rule),
            ],
        ),
        TaskGroup("Evidence", evidence),
    ]
    groups.append(TaskGroup("Declaration and sending", [submit]))
    # The audit is booked once the application is paid for (payment comes with sending it), so
    # its task comes after sending and never holds sending up.
    if view.audit is not None:
        unsent = bool(view.audit.get("unsent"))
        heading = words.after_sending if unsent else "Audit"
        groups.append(TaskGroup(heading, [_audit_task(base, view.audit, words)]))
    return groups


def _still_to_do(tasks: list[Task]) -> str:
    """What holds sending up, by name: 'Finish eligibility, pledges and 2 evidence items first'."""
    named = [t.title[:1].lower() + t.title[1:] for t in tasks if t.id in ("eligibility", "pledges")]
    items = len(tasks) - len(named)
    if items == 1 and not named:
        named.append(f"the evidence item {tasks[-1].title}")
    elif items:
        named.append(f"{items} evidence item{'s' if items > 1 else ''}")
    words = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
    return f"Finish {words} first"


# Each eligibility outcome as a task's status and hint.
_ELIGIBILITY = {
    "not_answered": (NOT_STARTED, "Answer the scheme's questions"),
    "eligible": (COMPLETED, ""),
    "approved": (COMPLETED, "Approved on conditions"),
    "awaiting_decision": (IN_PROGRESS, "Waiting for the scheme to decide"),
    "excluded": (IN_PROGRESS, "The scheme does not accredit an industry you named"),
    "refused": (IN_PROGRESS, "Refused by the scheme"),
}


def _eligibility_task(base: str, outcome: str | None, words: Words) -> Task | None:
    """Answering the eligibility questions: done once the answers make the organisation eligible."""
    if outcome is None:
        return None
    status, hint = _ELIGIBILITY[outcome]
    hint = {"not_answered": words.not_answered, "excluded": words.excluded}.get(outcome, hint)
    return Task("eligibility", "Eligibility", f"{base}/eligibility", status, hint)


_COUNTS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _dates(n: int) -> str:
    """'three start dates': the policy's number of proposals, in words up to ten."""
    words = _COUNTS[n] if 0 <= n < len(_COUNTS) else str(n)
    return f"{words} start date{'' if n == 1 else 's'}"


def _audit_task(base: str, audit: dict[str, str], words: Words) -> Task:
    """Proposing the audit's start dates: done once the scheme confirms one; it can be done
    before the application is sent only where the policy books audits in its first state."""
    href = f"{base}/audit-dates"
    propose = words.propose.format(dates=_dates(int(audit.get("proposals") or 0)))
    if audit["status"] == "none" and audit.get("unsent"):
        if not audit.get("open"):
            return Task("audit-dates", "Audit start date", None, CANNOT_START, words.after_sending)
        hint = words.propose_before.format(propose=propose)
        return Task("audit-dates", "Audit start date", href, NOT_STARTED, hint)
    if audit["status"] == "confirmed":
        return Task("audit-dates", "Audit start date", href, COMPLETED, f"Starts {audit['start']}")
    if audit["status"] == "proposed":
        return Task("audit-dates", "Audit start date", href, IN_PROGRESS, words.proposed)
    return Task("audit-dates", "Audit start date", href, NOT_STARTED, propose)
