"""Pydantic models of a scheme policy file (extra fields are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]
# A guard is named, optionally with one argument: `before_deadline:appeal_window`.
GuardRef = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_-]*)?$", max_length=128)
]
Role = Literal["applicant", "assessor", "panel", "admin", "system"]
SubjectKind = Literal["application", "award", "report"]
Recipient = Literal["applicant", "assessor", "panel", "admin"]
# Who may file what meets a deadline (an award's holder, or an admin on its behalf).
Filer = Literal["applicant", "admin"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("application", "award", "report")
# The colours of a GOV.UK tag (govuk-frontend 6); `blue` is the plain tag.
TagColour = Literal["blue", "green", "teal", "purple", "magenta", "red", "orange", "yellow", "grey"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Theme(_Strict):
    id: Slug
    name: str
    mandatory: bool = False


class Question(_Strict):
    id: Slug
    text: str
    weight: float = Field(default=1.0, gt=0)
    mandatory: bool = False
    max_score: int = Field(default=4, ge=1, le=100)
    # A mandatory question is met at this score; unset means full marks.
    met_at: int | None = Field(default=None, ge=0)
    # What each score means (0 to max_score), for the assessor scoring it; unset takes the
    # scheme's rubric for questions of this max_score (settings.rubric).
    rubric: dict[int, str] = {}


class Standard(_Strict):
    id: Slug
    name: str
    description: str = ""
    questions: list[Question] = Field(min_length=1)


class PledgeRule(_Strict):
    min_pledges: int = Field(default=0, ge=0)
    min_distinct_themes: int = Field(default=0, ge=0)
    # "mandatory": only pledges on the scheme's mandatory themes count towards the rule.
    themes: Literal["any", "mandatory"] = "any"
    # At least this many of the pledges must be carried in from the organisation's award in force
    # (the level measures what an earlier level committed to); needs the level's carry_pledges.
    min_carried: int = Field(default=0, ge=0)
    # Every pledge the application holds is measured: a unit, a baseline and a numeric target.
    measured: bool = False


class Equivalent(_Strict):
    """An award of another scheme that counts as holding the prerequisite level."""

    scheme: Slug
    level: Slug
    held_months: int = Field(default=0, ge=0)


class Prerequisite(_Strict):
    level: Slug
    held_months: int = Field(default=0, ge=0)
    # Awards of other schemes that count as this level (a Health Bronze for the standard Silver).
    equivalents: list[Equivalent] = []


class Level(_Strict):
    id: Slug
    name: str
    aliases: list[str] = []
    rank: int = Field(ge=1)
    validity_months: int = Field(ge=1)
    standards: list[Slug] = []
    pledge_rule: PledgeRule | None = None
    # Opening this level (a higher one, or a renewal) brings the pledges of the organisation's
    # awards in force in the scheme into the application, to keep, revise or retire.
    carry_pledges: bool = False
    evidence: list[Slug] = []
    requires: Prerequisite | None = None
    self_service: bool = False
    # The level's own pass mark, replacing the scheme's (Investors in People's higher levels ask
    # for more of the same indicators). At most one of the two.
    pass_mark_percent: float | None = Field(default=None, gt=0, le=100)
    pass_mark_points: float | None = Field(default=None, gt=0)
    # Double marking: 2, two assessors score every question independently, neither seeing the
    # other's scores until both have scored them all; differences beyond the scheme's
    # `settings.moderation.threshold` go to a moderator. 1 (the default): one assessor scores.
    assessors: int = Field(default=1, ge=1, le=2)


class EvidenceRequirement(_Strict):
    id: Slug
    title: str
    description: str = ""
    # "pledge": one item for each pledge; "standard": one for each standard the level assesses.
    per: Literal["application", "pledge", "standard"] = "application"
    # "charter": the organisation's published charter meets it (an upload still may instead).
    met_by: Literal["charter"] | None = None
    # A group's application covering several member organisations asks one upload of this
    # item for each member (an organisation's own application: one, as without it).
    per_member: bool = False


class StateDef(_Strict):
    name: Slug
    label: str = ""
    terminal: bool = False
    # Application states: the applicant may change pledges and evidence. Report states: the
    # report was sent back and its holder files the figures again (the workflow's `resubmit`).
    editable: bool = False
    # Application states: the assigned assessor may review evidence and score. Report states:
    # the report waits for a reviewer (an assessor or an admin), who accepts it or sends it back.
    reviewable: bool = False
    # Report states: the figures are accepted; they count and show on the public pages.
    published: bool = False
    # Award states: the organisation holds the award (listed, counts as a prerequisite).
    in_force: bool = False
    # Award states: what the award's signed credential says in the status lists. "suspended"
    # sets its suspension bit (cleared when it leaves the state), "revoked" its revocation bit.
    credential_status: Literal["suspended", "revoked"] | None = None
    # The colour of the state's tag on every page that shows it; unset, the plain (blue) tag.
    tag: TagColour | None = None
    # Application states: still the organisation's own (a draft): panel members do not see it.
    private: bool = False
    # Application states: a refusal. The organisation may open a new application for the level at
    # once (an appeal window still open does not block it); the new one starts with this one's
    # pledges and the latest evidence in each slot.
    reapply: bool = False

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


class TransitionDef(_Strict):
    trigger: Slug
    source: list[Slug] = Field(min_length=1)
    dest: Slug
    roles: list[Role] = Field(min_length=1)
    guards: list[GuardRef] = []
    effects: list[Slug] = []
    label: str = ""
    # The step that moves the case on for those who may take it (the applicant's submit): shown
    # first, as the main button, and named as the last task of the applicant's task list.
    primary: bool = False
    # A step that cannot be undone (withdrawing): shown as a warning button.
    warning: bool = False
    # A weightier step (overturning a recommendation): shown as a warning button that leads to a
    # page asking the person to confirm it, with what they are going against, before it happens.
    confirm: bool = False
    # What the page says once it is done ("Application submitted."); unset, "Done: <label>."
    done: str = ""
    # Applications: true, the step is only for applications at self-service levels; false, only
    # for the others; unset, for every level.
    self_service: bool | None = None
    # Who is told by email when it happens: the organisation ("applicant"), the assigned assessor,
    # every panel member, every admin. Empty: nobody (the page says it to whoever did it).
    notify: list[Recipient] = []
    # What that email tells them to do next (in the scheme's words).
    notice: str = ""
    # How many members of the role must each take this step, agreeing, before it happens (an
    # appeal decided by two independent panel members): each one's decision is recorded and the
    # step is taken with the last agreeing one. 1 (the default): the first member decides.
    quorum: int = Field(default=1, ge=1, le=9)

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def title(self) -> str:
        return self.label or self.trigger.replace("_", " ").capitalize()

    @property
    def done_text(self) -> str:
        return self.done or f"Done: {self.title.lower()}."

    @property
    def done_next(self) -> str:
        """What the done text says comes next: its sentences after the first ('' if none)."""
        return self.done_text.partition(". ")[2].strip()


class Workflow(_Strict):
    initial: Slug
    states: list[StateDef] = Field(min_length=1)
    transitions: list[TransitionDef] = Field(min_length=1)
    # Applications: the trigger an assessor's "more information" on an evidence item fires, which
    # hands the application back to the applicant (required when any state is reviewable).
    hand_back: Slug | None = None
    # Awards: the trigger fired, as `system`, on an organisation's older awards of the scheme
    # when a new one is issued (required when an application transition issues awards).
    supersede: Slug | None = None
    # Applications: who is told by email when an admin assigns (or reassigns) the assessor.
    notify_on_assign: list[Recipient] = []
    # Reports: the trigger the holder's filing again fires on a report sent back (in an
    # `editable` state), with the new figures and files.
    resubmit: Slug | None = None
    # Reports: who is told by email when a report is filed (it enters the initial state): the
    # assessor who assessed the award, every admin.
    notify_on_file: list[Recipient] = []

    def state(self, name: str) -> StateDef:
        return next(s for s in self.states if s.name == name)

    def transition(self, trigger: str, source: str) -> TransitionDef | None:
        """The transition a trigger takes from a state, if any (pairs are unique)."""
        return next(
            (t for t in self.transitions if t.trigger == trigger and source in t.source), None
        )

    def leaves(self, trigger: str) -> set[str]:
        """Every state the trigger can leave."""
        return {src for t in self.transitions if t.trigger == trigger for src in t.source}

    def enters(self, trigger: str) -> set[str]:
        """Every state the trigger can enter."""
        return {t.dest for t in self.transitions if t.trigger == trigger}


class Workflows(_Strict):
    application: Workflow
    award: Workflow
    # The review of a report with figures (an annual report): filed, then accepted or sent back
    # and filed again. A scheme without it takes no figures, only document filings.
    report: Workflow | None = None

    def of(self, kind: str) -> Workflow:
        if kind == "report":
            if self.report is None:
                raise KeyError("the scheme has no report workflow")
            return self.report
        return self.application if kind == "application" else self.award

    def kinds(self) -> tuple[str, ...]:
        """The subject kinds the scheme has a workflow for."""
        return ("application", "award", "report") if self.report else ("application", "award")


class Offset(_Strict):
    """A signed distance from an anchor; negative means before it."""

    days: int = 0
    months: int = 0
    working_days: int = 0


class Deadline(_Strict):
    kind: Slug
    label: str
    subject: SubjectKind
    # The deadline runs while the subject is in one of these states.
    while_in: list[Slug] = Field(min_length=1)
    # "audit_start": an application's confirmed audit start date (the start of that day, scheme
    # time zone); the deadline runs only once a date is confirmed, and moves with it.
    anchor: Literal["state_entered", "issued", "expires", "audit_start"]
    offset: Offset = Offset()
    repeat_months: int | None = Field(default=None, ge=1)
    # What a repeat counts from: the previous occurrence's due time ("due": anniversaries), or
    # when it was met ("met": the next surveillance counts from the last one held).
    repeat_from: Literal["due", "met"] = "due"
    # A repeat falls due at the end of the calendar month or year (scheme time zone) in which it
    # would otherwise fall: "at least once in each calendar year".
    repeat_to_end_of: Literal["month", "year"] | None = None
    # Awards: an occurrence that would fall due at or after the award's expiry is not opened
    # (the renewal takes the place of the last annual review).
    until_expiry: bool = False
    remind_before_days: list[int] = []
    on_due: Slug | None = None
    # Empty: every level. Otherwise only subjects at these levels have this deadline.
    levels: list[Slug] = []
    # Who is reminded: the subject's organisation ("applicant"), its assigned assessor, every
    # panel member or every admin.
    notify: list[Recipient] = Field(default=["applicant"], min_length=1)
    # Who else is told when the deadline passes (an overdue review goes to the admins).
    escalate_to: list[Recipient] = []
    # Awards: who may meet the deadline by filing a document (svqm.workflow.reports): a report,
    # a fee receipt, an audit report. Empty: filing does not meet it.
    filed_by: list[Filer] = []
    # The trigger a filing fires instead when the award is in a state it leaves: the deadline
    # was missed and the filing puts the award back in good standing.
    on_late_filing: Slug | None = None

    @field_validator("remind_before_days")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d <= 0 for d in value):
            raise ValueError("reminder offsets are whole days before the deadline, each > 0")
        return sorted(set(value), reverse=True)


class Moderation(_Strict):
    """Where two assessors' scores for a question differ by more than `threshold` points, a
    moderator records the agreed score with a note; within it, the lower of the two stands."""

    threshold: int = Field(default=1, ge=0)
    # Who moderates: any admin, or a panel member (neither of the case's assessors).
    moderator: Literal["admin", "panel"] = "admin"


class SchemeSettings(_Strict):
    pass_mark_percent: float = Field(default=80, gt=0, le=100)
    # A mark in points instead (B Corp: 80 of 200): the weighted points earned, each question
    # worth its weight at full marks. When set, pass_mark_percent is not applied.
    pass_mark_points: float | None = Field(default=None, gt=0)
    # Working-day offsets skip weekends and this calendar's public holidays (the `holidays` package).
    holiday_country: str = "GB"
    holiday_subdivision: str = "ENG"
    # Where days, months and years end: working-day and end-of-year deadlines end at local midnight.
    time_zone: str = "Europe/London"
    # What each score means, by the max_score of the questions it applies to: {4: {0: "...", ...}}.
    rubric: dict[int, dict[int, str]] = {}
    # Double-marked levels (`assessors: 2`): when two scores differ enough for a moderator.
    moderation: Moderation = Moderation()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (an IANA name: Europe/London)") from None
        return value


class AuditBooking(_Strict):
    """Booking an audit: the applicant proposes start dates, the scheme's staff confirm one."""

    # The levels that are audited; an application at another level books nothing.
    levels: list[Slug] = Field(min_length=1)
    # How many start dates the applicant proposes at once.
    proposals: int = Field(default=3, ge=1, le=10)
    # How far ahead each proposed date must be, in working days (weekends and the scheme's
    # bank holidays do not count): 40 is eight working weeks. A proposed date is a working day.
    lead_working_days: int = Field(default=40, ge=0, le=500)
    # The application states in which dates may be proposed and confirmed (and moved).
    states: list[Slug] = Field(min_length=1)
    # Who may confirm a date: the assigned assessor, an admin.
    confirmed_by: list[Literal["assessor", "admin"]] = Field(
        default=["assessor", "admin"], min_length=1
    )
    # Who is told by email when dates are proposed, and when one is confirmed or moved.
    notify_proposed: list[Recipient] = ["assessor", "admin"]
    notify_confirmed: list[Recipient] = ["applicant", "assessor"]


class ConsultationQuestion(_Strict):
    id: Slug
    text: str
    # "rating": 1 (poor) to 5 (excellent); "text": the stakeholder's own words.
    kind: Literal["rating", "text"] = "text"
    hint: str = ""
    required: bool = False


class Consultation(_Strict):
    """A short consultation of an applicant's stakeholders, after the audit starts."""

    levels: list[Slug] = Field(min_length=1)
    # The form opens this many days after the confirmed audit start date and stays open
    # `open_days` days; the invitation's link stops working when it closes.
    opens_after_days: int = Field(default=0, ge=0, le=365)
    open_days: int = Field(default=21, ge=1, le=365)
    # Invitees who have not answered are reminded this many days before it closes.
    remind_before_days: list[int] = []
    # The standards the responses count toward: the assessor reads the summary beside them.
    standards: list[Slug] = []
    questions: list[ConsultationQuestion] = Field(min_length=1)
    # The most people one application's consultation may invite.
    max_invitations: int = Field(default=50, ge=1, le=1000)

    @field_validator("remind_before_days")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d <= 0 for d in value):
            raise ValueError("reminder offsets are whole days before the close, each > 0")
        return sorted(set(value), reverse=True)


class Choice(_Strict):
    """One answer a question offers: an id kept on the record, a name shown to people."""

    id: Slug
    name: str = Field(min_length=1, max_length=200)


class RiskScreen(_Strict):
    """Industries the scheme treats as higher risk, in two tiers: those it does not accredit at
    all (an answer among them refuses the application), and those it considers case by case (an
    admin decides, with the conditions agreed upfront recorded)."""

    question: str = "Does your organisation work in any of these industries?"
    refused: list[Choice] = []
    case_by_case: list[Choice] = []


class Eligibility(_Strict):
    """The questions an organisation answers before its application can be submitted."""

    sectors: list[Choice] = Field(min_length=1)
    turnover_bands: list[Choice] = Field(min_length=1)
    screen: RiskScreen = RiskScreen()

    def sector(self, sector_id: str) -> Choice | None:
        return next((c for c in self.sectors if c.id == sector_id), None)

    def band(self, band_id: str) -> Choice | None:
        return next((c for c in self.turnover_bands if c.id == band_id), None)

    def industry(self, industry_id: str) -> tuple[str, Choice] | None:
        """The tier ("refused" or "case_by_case") and choice of an industry id."""
        for tier in ("refused", "case_by_case"):
            for c in getattr(self.screen, tier):
                if c.id == industry_id:
                    return tier, c
        return None


class Fees(_Strict):
    """What the scheme charges: an invoice when an application is submitted (the effect
    `issue_invoice`), a credit note when it is withdrawn (`credit_invoices`)."""

    # The price of each level's application and award, in pence before VAT: one figure, or one
    # per turnover band of `eligibility.turnover_bands` (a band missing: no invoice, noted).
    prices: dict[Slug, int | dict[Slug, int]] = Field(min_length=1)
    # The VAT rate charged on every fee (a setting: the UK standard rate is 20%).
    vat_percent: float = Field(default=20, ge=0, le=100)
    # A re-application (after a refusal) is charged this share of the fee.
    reapplication_percent: int = Field(default=100, ge=0, le=100)
    # Days the invoice gives to pay.
    due_days: int = Field(default=30, ge=0, le=365)
    # What a level's fee leaves out, said on its invoices ("audit time invoiced separately").
    extra: dict[Slug, str] = {}
    # How to pay, printed on the invoice: the bank account a transfer goes to.
    pay_to: str = Field(default="", max_length=500)
    invoice_prefix: str = Field(default="INV", pattern=r"^[A-Z]{2,6}$")
    credit_prefix: str = Field(default="CN", pattern=r"^[A-Z]{2,6}$")


class IssuerDef(_Strict):
    """Who signs the scheme's credentials, when not the service itself: a partnership running its
    own scheme, with its own name, logo and signing key (the key ring named by `id`)."""

    id: Slug
    name: str = Field(min_length=1)
    # The issuer's own website, shown on its profile.
    url: str = Field(default="", pattern=r"^(https://\S+)?$")
    # A PNG or SVG file beside the policy (`logos/northshore.svg`), checked and read by the loader.
    logo: str = ""
    description: str = ""
    # What the loader read of `logo` (never in the policy text): its bytes and media type.
    logo_bytes: bytes = Field(default=b"", exclude=True, repr=False)
    logo_type: str = Field(default="", exclude=True)


class CharterDef(_Strict):
    """A scheme that is a charter: organisations sign it (the signature is an award) and its public
    page lists the signatories and their pledges."""

    # What every signatory commits to, in the charter's words.
    commitments: list[str] = Field(min_length=1)
    # The applicant's step that signs (an application transition with `issue_award`).
    sign: Slug
    # The signatory's step that withdraws its signature (an award transition).
    withdraw: Slug
    # What a holder is called on the public page.
    signatory: str = "Signatory"


class Policy(_Strict):
    id: Slug = Field(default="unnamed", exclude=True)
    name: str
    version: str
    description: str = ""
    # The line every email of the scheme ends with: how to reach the scheme's people.
    contact: str = ""
    settings: SchemeSettings = SchemeSettings()
    themes: list[Theme] = []
    standards: list[Standard] = []
    levels: list[Level] = Field(min_length=1)
    evidence_requirements: list[EvidenceRequirement] = []
    workflows: Workflows
    deadlines: list[Deadline] = []
    # Audit booking and stakeholder consultation, for the levels they name (unset: neither).
    audit: AuditBooking | None = None
    consultation: Consultation | None = None
    # The eligibility questions asked before an application is submitted (unset: none asked).
    eligibility: Eligibility | None = None
    # The price table and invoicing (unset: the scheme charges nothing through svqm).
    fees: Fees | None = None
    issuer: IssuerDef | None = None
    charter: CharterDef | None = None
    digest: str = Field(default="", exclude=True)
    source_text: str = Field(default="", exclude=True, repr=False)

    def level(self, level_id: str) -> Level:
        return next(lv for lv in self.levels if lv.id == level_id)

    def find_level(self, name: str) -> Level | None:
        """A level by id, name or alias, case-insensitively ("Level 1" finds Bronze)."""
        wanted = name.strip().casefold()
        for lv in self.levels:
            if wanted in {
                lv.id.casefold(),
                lv.name.casefold(),
                *(a.casefold() for a in lv.aliases),
            }:
                return lv
        return None

    def rubric_of(self, question: Question) -> dict[int, str]:
        """What each score of a question means: its own rubric, else the scheme's for its scale."""
        return question.rubric or self.settings.rubric.get(question.max_score, {})

    def pass_mark(self, level: Level) -> tuple[Literal["percent", "points"], float]:
        """The mark a level's score must reach: the level's own, else the scheme's."""
        if level.pass_mark_points is not None:
            return "points", level.pass_mark_points
        if level.pass_mark_percent is not None:
            return "percent", level.pass_mark_percent
        if self.settings.pass_mark_points is not None:
            return "points", self.settings.pass_mark_points
        return "percent", self.settings.pass_mark_percent

    def pass_mark_text(self) -> str:
        """The pass mark for people: "80%", "80 points", with any level's own mark after it."""

        def text(unit: str, mark: float) -> str:
            return f"{mark:g}%" if unit == "percent" else f"{mark:g} points"

        points = self.settings.pass_mark_points
        scheme = (
            text("points", points) if points else text("percent", self.settings.pass_mark_percent)
        )
        own = [
            f"{lv.name}: {text(*self.pass_mark(lv))}"
            for lv in self.levels
            if lv.pass_mark_points is not None or lv.pass_mark_percent is not None
        ]
        return f"{scheme} ({'; '.join(own)})" if own else scheme

    def standard(self, standard_id: str) -> Standard:
        return next(s for s in self.standards if s.id == standard_id)

    def requirement(self, requirement_id: str) -> EvidenceRequirement | None:
        return next((r for r in self.evidence_requirements if r.id == requirement_id), None)

    def deadline(self, kind: str) -> Deadline | None:
        """The deadline of a kind, if the policy has one."""
        return next((d for d in self.deadlines if d.kind == kind), None)

    def audited(self, level_id: str) -> bool:
        """Whether applications at the level book an audit start date."""
        return self.audit is not None and level_id in self.audit.levels

    def consulted(self, level_id: str) -> bool:
        """Whether applications at the level consult stakeholders (after the audit starts)."""
        return self.consultation is not None and level_id in self.consultation.levels

    def theme(self, theme_id: str) -> Theme | None:
        return next((t for t in self.themes if t.id == theme_id), None)
