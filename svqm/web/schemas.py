"""Request and response bodies of the JSON API (never the table classes: no mass assignment)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt

# Strict: a JSON true is not the id 1 (pydantic would otherwise read a boolean as a number).
DbId = Annotated[StrictInt, Field(ge=1, le=2_147_483_647)]
Version = Annotated[StrictInt, Field(ge=1, le=2_147_483_647)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    # The first applicant's own name: emails greet them by it.
    person_name: str = Field(default="", max_length=200)
    sector: str = Field(default="", max_length=100)
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=128)


class SignupReceived(BaseModel):
    """The one answer to a sign-up, whether or not the email already had an account."""

    status: str = "received"
    detail: str = (
        "if the organisation could be registered, an email has gone to the address given; "
        "sign in with POST /api/v1/auth/token"
    )


class TokenRequest(_In):
    email: str = Field(max_length=254)
    password: str = Field(max_length=128)
    otp: str | None = Field(default=None, max_length=12)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class ApplicationCreate(_In):
    scheme: str = Field(max_length=64)
    level: str = Field(max_length=64)
    # A group's application may cover member organisations of the group: an award each.
    members: list[DbId] = Field(default_factory=list, max_length=500)


class DeadlinePublic(BaseModel):
    kind: str
    due_at: datetime


class ApplicationPublic(BaseModel):
    id: int
    organisation_id: int
    scheme: str
    scheme_version: str
    level: str
    state: str
    version: int
    triggers: list[str]
    unmet: dict[str, list[str]]
    deadlines: list[DeadlinePublic]
    assessor_id: int | None
    # Double-marked levels: the second assessor, who scores beside the first.
    second_assessor_id: int | None = None
    created_at: datetime
    state_changed_at: datetime


class EventRequest(_In):
    comment: str = Field(default="", max_length=5000)
    # Who may read the comment: everyone on the case, or staff only (applicants' own: always theirs).
    visibility: Literal["applicant", "internal"] = "applicant"
    version: Version | None = None


class HistoryEvent(BaseModel):
    at: datetime
    actor_id: int | None
    actor_role: str
    trigger: str
    source: str
    dest: str
    # An applicant never sees an internal comment: theirs is "" there.
    comment: str
    visibility: str = "applicant"


class RequirementPublic(BaseModel):
    id: str
    requirement: str
    title: str
    pledge_id: int | None
    standard: str | None
    # A group's application: the member organisation a per-member item is for.
    organisation_id: int | None = None
    satisfied: bool
    status: str
    evidence: list[int]


class EvidenceCreated(BaseModel):
    id: int
    sha256: str
    size: int
    content_type: str
    version: int
    slot: str
    filename: str


class ReviewPublic(BaseModel):
    id: int
    evidence_id: int
    decision: str
    comment: str
    at: datetime
    application_state: str


class ScoreNotePublic(BaseModel):
    standard: str
    question: str
    note: str
    # "applicant" or "internal" (staff only: never sent to the applicant).
    visibility: str


class MarkedQuestionPublic(BaseModel):
    standard: str
    question: str
    # Each assessor's own score: null when not scored yet, or hidden from this reader.
    first: int | None
    second: int | None
    # The agreed score (the lower of two close ones, or the moderator's); null until agreed.
    agreed: int | None
    moderated: bool


class MarkingPublic(BaseModel):
    """Double marking (`assessors: 2`): where the two assessors' scoring stands for this reader."""

    threshold: int
    first_assessor_id: int | None
    second_assessor_id: int | None
    # How many questions each has scored, of questions_total.
    first_scored: int
    second_scored: int
    questions_total: int
    both_scored: bool
    # False: before both have scored every question, the other assessor's scores (and any
    # agreed score) are withheld; an assessor sees only their own, anyone else neither.
    revealed: bool
    # 'standard/question' of each question whose two scores differ by more than the threshold
    # and which the moderator has not agreed yet.
    to_moderate: list[str]
    # What stands between the scores and their agreement, in plain words.
    unmet: list[str]
    questions: list[MarkedQuestionPublic]


class ScoreResultPublic(BaseModel):
    passed: bool
    overall_percent: float
    threshold: float
    standards: dict[str, float]
    failed_mandatory: list[str]
    unscored: list[str]
    # The assessor's notes on the scores that this reader may see.
    notes: list[ScoreNotePublic] = []
    # Double-marked levels only (staff readers): the two assessors' scoring.
    marking: MarkingPublic | None = None


class ScoreChangePublic(BaseModel):
    """One change to a score: when, which question, what kind, whose, by whom, old and new."""

    at: datetime
    standard: str
    question: str
    # "assessor" (an assessor's own score), "agreed" (two close scores), "moderated".
    kind: str
    assessor_id: int | None
    actor_id: int | None
    old: int | None
    new: int | None
    note: str


class DecisionPublic(BaseModel):
    # Null for the applicant (who decided is the panel's business until the case is decided).
    member_id: int | None
    trigger: str
    at: datetime
    comment: str


class StepQuorumPublic(BaseModel):
    trigger: str
    title: str
    # How many members must agree, how many do, and how many more are needed.
    quorum: int
    agreeing: int
    needed: int


class DecisionsPublic(BaseModel):
    """The steps from the present state that need several members, and who has decided what."""

    steps: list[StepQuorumPublic]
    recorded: list[DecisionPublic]


class AssignRequest(_In):
    assessor_id: DbId
    version: Version | None = None
    # True: the second assessor of a double-marked level (`assessors: 2`).
    second: bool = False


class BulkLine(_In):
    """One application of a bulk action, at the version its caller saw."""

    id: DbId
    version: Version


class BulkAssign(_In):
    assessor_id: DbId
    applications: list[BulkLine] = Field(min_length=1, max_length=50)


class BulkRemind(_In):
    message: str = Field(default="", max_length=2000)
    applications: list[BulkLine] = Field(min_length=1, max_length=50)


class BulkRefusal(BaseModel):
    id: int
    reason: str


class BulkDone(BaseModel):
    """Each line on its own: those done, and those refused with the reason (nothing changed)."""

    done: list[int]
    refused: list[BulkRefusal]


class ConflictCreate(_In):
    user_id: DbId
    organisation_id: DbId
    reason: str = Field(default="", max_length=500)


class StaffCreate(_In):
    email: str = Field(max_length=254)
    role: str = Field(max_length=20)
    name: str = Field(default="", max_length=200)
    organisation_id: DbId | None = None
    password: str = Field(min_length=1, max_length=128)


class EnrolmentLinkPublic(BaseModel):
    """A link a staff member opens once to set up their authenticator app."""

    link: str
    expires_at: datetime


class UserPublic(BaseModel):
    id: int
    email: str
    name: str
    role: str
    organisation_id: int | None
    active: bool
    otpauth_uri: str | None = None


class AwardPublic(BaseModel):
    id: int
    organisation_id: int
    organisation_name: str
    scheme: str
    scheme_version: str
    level: str
    level_name: str
    state: str
    # The award's row version: send it as `version` with an award event (409 if stale).
    version: int
    certificate_number: str
    issued_at: datetime
    expires_at: datetime
    supersedes_id: int | None
    verify_url: str
    certificate_url: str
    # The signed Open Badges 3.0 credential (application/vc+jwt).
    credential_url: str


class FigurePublic(BaseModel):
    """One pledge's reported figure."""

    pledge_id: int
    actual: float
    narrative: str
    private: bool


class ReportFilePublic(BaseModel):
    """A supporting file of a report with figures."""

    id: int
    filename: str
    size: int
    content_type: str


class ReportPublic(BaseModel):
    """An annual report filed for an award."""

    id: int
    award_id: int
    # The filing deadline it met or was filed late for (SVQM: annual_report).
    deadline_kind: str
    period: str
    title: str
    filename: str
    sha256: str
    size: int
    content_type: str
    submitted_at: datetime
    # The award's status once the report is in (an overdue report brings it back to good standing).
    award_state: str
    # "filed" (a document), or for a report with figures: awaiting_review, accepted, more_information.
    review: str = "filed"
    # The state of the scheme's report workflow (in its words), or "filed" for a document.
    state: str = "filed"
    review_comment: str = ""
    progress: list[FigurePublic] = []
    # A report with figures' supporting files (seen by its holder and the reviewers only).
    files: list[ReportFilePublic] = []


class FigureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pledge_id: DbId
    # Strict, finite: a JSON true or NaN is not a figure.
    actual: Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
    narrative: str = Field(default="", max_length=2000)
    # Private: the narrative is for the assessor only (the accepted figure is public).
    private: bool = False


class ReportFigures(BaseModel):
    """A report given as figures, per pledge (JSON); files still go as multipart."""

    model_config = ConfigDict(extra="forbid")

    period: str = Field(max_length=20)
    deadline: str | None = Field(default=None, max_length=64)
    progress: list[FigureIn] = Field(min_length=1, max_length=200)


class ReportReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["accepted", "more_information"]
    comment: str = Field(default="", max_length=5000)
    # Who may read the comment: the holder ("applicant") or staff only ("internal").
    visibility: Literal["applicant", "internal"] = "applicant"


class ProgressPublic(BaseModel):
    period: str
    actual: float


class OrganisationPledge(BaseModel):
    id: int
    theme: str
    title: str
    indicator: str
    unit: str
    target: str
    due_date: date
    progress: list[ProgressPublic]


class OrganisationAward(BaseModel):
    id: int
    scheme: str
    level: str
    state: str
    issued_at: datetime
    expires_at: datetime


class OrganisationCommitments(BaseModel):
    """What anyone may read of an organisation that holds an award in force."""

    id: int
    name: str
    sector: str
    region: str
    awards: list[OrganisationAward]
    pledges: list[OrganisationPledge]


class AuditDatesRequest(_In):
    """Possible audit start dates (ISO dates), as many as the policy asks for (three for SVQM)."""

    dates: list[date] = Field(min_length=1, max_length=10)
    version: Version | None = None


class AuditConfirmRequest(_In):
    """The proposed date staff confirm as the audit's start (again, to move it)."""

    day: date = Field(alias="date")
    comment: str = Field(default="", max_length=2000)
    version: Version | None = None


class AuditBookingPublic(BaseModel):
    application_id: int
    proposed: list[date]
    status: str
    start_date: date | None
    earliest: date
    lead_working_days: int
    proposals: int


class InviteeIn(_In):
    name: str = Field(default="", max_length=200)
    email: str = Field(min_length=3, max_length=254)
    group: Literal["internal", "external"] = "external"


class InvitationsRequest(_In):
    invitees: list[InviteeIn] = Field(min_length=1, max_length=100)


class InvitationPublic(BaseModel):
    id: int
    name: str
    email: str
    group: str
    opens_at: datetime
    closes_at: datetime
    answered: bool


class ConsultationQuestionPublic(BaseModel):
    id: str
    text: str
    kind: str
    answers: int
    mean: float | None
    comments: list[str]


class ConsultationPublic(BaseModel):
    """Staff only: who was invited, who answered, and what the answers say."""

    invited: int
    answered: int
    opens_at: datetime | None
    closes_at: datetime | None
    standards: list[str]
    mean_rating: float | None
    questions: list[ConsultationQuestionPublic]
    invitations: list[InvitationPublic]


class MessageFilePublic(BaseModel):
    """A file attached to a message on a case (never public: read by the case's people)."""

    id: int
    filename: str
    size: int
    content_type: str


class MessagePublic(BaseModel):
    """A message on an application's or an award's thread."""

    id: int
    author_id: int
    author_name: str
    author_role: str
    body: str
    at: datetime
    attachments: list[MessageFilePublic]


class MessageCreate(BaseModel):
    """A message's text (multipart also takes one `file`)."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=5000)


class ChoicePublic(BaseModel):
    id: str
    name: str


class EligibilityQuestions(BaseModel):
    """What the scheme asks: the choices of each question, the screen's two tiers apart."""

    sectors: list[ChoicePublic]
    turnover_bands: list[ChoicePublic]
    screen_question: str
    refused: list[ChoicePublic]
    case_by_case: list[ChoicePublic]


class EligibilityRequest(_In):
    """The organisation's answers: a sector and a turnover band (ids of the policy's choices),
    and every risk-screen industry it works in (none: an empty list)."""

    sector: str = Field(min_length=1, max_length=64)
    turnover_band: str = Field(min_length=1, max_length=64)
    industries: list[Annotated[str, Field(max_length=64)]] = Field(default=[], max_length=50)
    version: Version | None = None


class EligibilityDecisionRequest(_In):
    """An admin's decision on a case-by-case industry: approve with the conditions agreed
    upfront, or refuse with the reason."""

    decision: Literal["approve", "decline"]
    conditions: str = Field(min_length=1, max_length=4000)
    version: Version | None = None


class EligibilityPublic(BaseModel):
    """The questions, the answers (null until given), and what they come to: `status` is
    not_answered, eligible, excluded (an industry the scheme does not accredit),
    awaiting_decision (a case-by-case industry), approved (with `conditions`) or refused."""

    application_id: int
    asked: bool
    questions: EligibilityQuestions | None
    sector: str | None
    turnover_band: str | None
    industries: list[str]
    answered_at: datetime | None
    status: str
    conditions: str
    decided_at: datetime | None
    unmet: list[str]


class InvoicePublic(BaseModel):
    """An invoice or credit note (`kind`): `amount_pence` before VAT, `vat_pence`, and their
    sum `total_pence` (negative on a credit note); `status` unpaid, paid or credited (a credit
    note: refund_due or cancels_unpaid); `reference` is what a bank transfer quotes."""

    id: int
    number: str
    kind: str
    amount_pence: int
    vat_pence: int
    total_pence: int
    status: str
    issued_at: datetime
    due_at: datetime
    paid_at: datetime | None
    reference: str
    description: str
    application_id: int | None
    version: int
    pdf_url: str


class InvoicePaidRequest(_In):
    """A payment an admin records: by bank transfer (its bank reference) or a proforma."""

    method: Literal["bank_transfer", "proforma"]
    reference: str = Field(default="", max_length=100)
    version: Version | None = None


# --- an organisation's own charter --------------------------------------------------------------

CharterVersion = Annotated[StrictInt, Field(ge=0, le=2_147_483_647)]


def _iso_text(value: object) -> object:
    # pydantic would read a number as a Unix time; the document says an ISO date string.
    if not isinstance(value, str | date):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_text)]
PillarId = Annotated[str, Field(min_length=1, max_length=64)]
_Line = Annotated[str, Field(max_length=500)]


class CharterEntry(_In):
    """A collaborator (`name` and `kind`, one of the pillar's kinds) or a lead (`name`, `role`)."""

    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="", max_length=64)
    role: str = Field(default="", max_length=200)


class CharterPillar(_In):
    """One pillar's content; which parts it holds follows its `content` in the charter file:
    collaborators and leads hold `entries` (and `text`), statements `statements`, a list `items`."""

    entries: list[CharterEntry] = Field(default=[], max_length=50)
    text: str = Field(default="", max_length=5000)
    statements: dict[PillarId, Annotated[str, Field(max_length=5000)]] = Field(
        default={}, max_length=20
    )
    items: list[_Line] = Field(default=[], max_length=30)


class CharterPriorityBody(_In):
    title: str = Field(min_length=1, max_length=200)
    target: str = Field(min_length=1, max_length=500)
    outcome: str = Field(default="", max_length=5000)
    target_date: IsoDate | None = None
    # Pledges of the organisation's register that deliver it.
    pledge_ids: list[DbId] = Field(default=[], max_length=100)


class CharterRequest(_In):
    """A change to the working copy: the pillars given replace theirs (others are kept); the
    priorities, when given, replace them all. `version` is the charter's as read (0: none yet)."""

    version: CharterVersion
    pillars: dict[PillarId, CharterPillar] | None = Field(default=None, max_length=12)
    priorities: list[CharterPriorityBody] | None = Field(default=None, max_length=100)


class CharterPublishRequest(_In):
    version: CharterVersion


class CharterPillarPublic(BaseModel):
    id: str
    name: str
    # What the public pages call the pillar (third person, where `name` says "your").
    public_name: str
    content: str
    entries: list[CharterEntry]
    text: str
    statements: dict[str, str]
    items: list[str]


class CharterPriorityPublic(BaseModel):
    title: str
    target: str
    outcome: str
    target_date: date | None
    pledge_ids: list[int]


class CharterPublic(BaseModel):
    """The charter's working copy (its people's read) or its published revision (anyone's).
    `published` is whether this revision is the published one; `published_revision` the latest
    that is (null: never published); `version` is 0 before the charter is first written."""

    organisation_id: int
    name: str
    version: int
    revision: int
    published: bool
    published_revision: int | None
    published_at: datetime | None
    updated_at: datetime | None
    pillars: list[CharterPillarPublic]
    priorities: list[CharterPriorityPublic]
