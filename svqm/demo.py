"""Demonstration data, made through the real services at past dates so its history is true."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from svqm.accounts import auth, members
from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation, User
from svqm.config import get_settings
from svqm.demo_charter import seed_charter
from svqm.errors import Conflict, NotFound
from svqm.evidence import charter as charter_reads
from svqm.evidence import pledges as pledge_service
from svqm.evidence import requirements as evidence_requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import Decision, PledgeCreate, ReviewCreate, ScoreCreate
from svqm.evidence.storage import BlobStore
from svqm.notify import messages as notify_messages
from svqm.policy.charter import load_charter_rules
from svqm.workflow import actions, audits, invoices, org_charter, progress, screening
from svqm.workflow import service as workflow
from svqm.workflow.effects import members_covered
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry

MARKER = "Riverside Community Health NHS Trust"
# The organisation a person trying the demo takes through Silver themselves.
KESTREL = "Kestrel Leisure Trust"
KESTREL_APPLICANT = "applicant@kestrel.demo.svqm.test"
DEMO_PASSWORD = "demo-password-2026"
DEMO_ADMIN = "admin@demo.svqm.test"

# (theme, title, key value indicator, unit, baseline, target)
_PLEDGES: dict[str, list[tuple[str, str, str, str, float, str]]] = {
    "svqm": [
        (
            "employment",
            "Hire 10 long-term unemployed local people",
            "people hired and kept 12 months",
            "people",
            0,
            "10",
        ),
        ("skills", "Run 40 employability workshops", "workshops delivered", "workshops", 6, "40"),
        (
            "health",
            "Train 25 mental health first aiders",
            "first aiders trained",
            "people",
            4,
            "25",
        ),
        ("inclusion", "Close the gender pay gap to 2 points", "gender pay gap", "points", 7, "2"),
        ("local_economy", "Spend 30% with local suppliers", "share of spend local", "%", 12, "30"),
        (
            "environment",
            "Cut business travel emissions to 80 tonnes",
            "business travel emissions",
            "tCO2e",
            100,
            "80",
        ),
    ],
    "svqm-health": [
        (
            "health_wellbeing",
            "Free health checks for 500 residents",
            "checks completed",
            "checks",
            0,
            "500",
        ),
        (
            "health_wellbeing",
            "Staff wellbeing champions on every ward",
            "wards with a champion",
            "%",
            20,
            "100",
        ),
        (
            "employment_volunteering",
            "200 volunteers giving 8,000 hours",
            "volunteer hours",
            "hours",
            1500,
            "8000",
        ),
        (
            "employment_volunteering",
            "30 apprenticeships for local young people",
            "apprentices",
            "people",
            5,
            "30",
        ),
        (
            "social_community",
            "Community cafe in the outpatient wing",
            "weekly visitors",
            "visitors",
            0,
            "300",
        ),
        (
            "social_community",
            "Partnerships with 12 local charities",
            "active partnerships",
            "partnerships",
            3,
            "12",
        ),
    ],
}

# Kestrel Leisure Trust's Bronze pledges, one a theme: Silver measures them.
_KESTREL_PLEDGES: list[tuple[str, str, str, str, float, str]] = [
    ("employment", "Hire 8 local people into lifeguard roles", "people hired", "people", 0, "8"),
    ("skills", "Train 60 young swimming teachers", "teachers qualified", "people", 12, "60"),
    ("health", "Free swims for 2,000 children", "free swims", "swims", 300, "2000"),
    (
        "inclusion",
        "Women-only and disability swim sessions every week",
        "weekly inclusive sessions",
        "sessions",
        1,
        "4",
    ),
    ("local_economy", "Buy 40% of the cafe's food locally", "share of food local", "%", 15, "40"),
    ("environment", "Cut pool heating gas use by 25%", "gas used", "MWh", 900, "675"),
]


_CARE_HOMES = (
    "Harbour House",
    "Quay Lodge",
    "Lighthouse Court",
    "Anchor View",
    "Marina Gardens",
)
# A care home's own pledge, made on the group's application beside the shared ones.
ANCHOR_VIEW_PLEDGE = (
    "health",
    "Open Anchor View's garden to the village dementia cafe every month",
    "cafe sessions hosted",
    "sessions",
    0.0,
    "12",
)


def _report_progress(
    session: Session,
    registry: SchemeRegistry,
    app: Application,
    holder: User,
    reviewer: User,
    at: datetime,
) -> None:
    """The award's figures for the year: most pledges part-way to target, one behind."""
    award = session.exec(select(Award).where(Award.application_id == app.id)).one()
    figures = []
    for i, p in enumerate(pledge_service.held_by(session, [app.id or 0])):
        target = pledge_service.target_number(p.target) or 0
        start = p.baseline or 0
        share = 0.15 if i == 2 else 0.6
        figures.append(
            progress.Figure(
                pledge_id=p.id or 0,
                actual=round(start + (target - start) * share),
                narrative=f"Progress on {p.indicator} this year.",
            )
        )
    report = progress.file_figures(
        session,
        award,
        period=str(at.year),
        figures=figures,
        actor=workflow.Actor.of(holder),
        registry=registry,
        now=at,
    )
    progress.review_report(
        session,
        report,
        "accepted",
        comment="Figures match the evidence seen.",
        actor=workflow.Actor.of(reviewer),
        registry=registry,
        now=at + timedelta(days=2),
    )


def _trust_charter(session: Session, org: Organisation, user: User, at: datetime) -> None:
    """The trust's own social value charter, published: its place, people, vision and
    principles, and three priorities each delivered by some of its pledges."""
    rules = load_charter_rules(get_settings().CHARTER_FILE)
    actor = workflow.Actor(user.id, user.role, org.id)
    pledges = {p.title: p.id or 0 for p in charter_reads.organisation_pledges(session, org.id or 0)}

    def ids(*titles: str) -> list[int]:
        return [pledges[t] for t in titles if t in pledges]

    entry = org_charter.EntryInput
    charter = org_charter.save_charter(
        session,
        org.id or 0,
        rules=rules,
        actor=actor,
        now=at,
        expected_version=0,
        pillars={
            "place": org_charter.PillarInput(
                entries=[
                    entry("Cheshire and Merseyside Integrated Care Board", kind="icb"),
                    entry("Riverside Borough Council", kind="local_authority"),
                    entry("Riverside Mental Health Partnership NHS Trust", kind="nhs_provider"),
                    entry("Northgate Facilities Ltd", kind="supplier"),
                    entry("Riverside Council for Voluntary Service", kind="vcfse"),
                ],
                text="We meet our place partners quarterly through the borough's anchor network.",
            ),
            "people": org_charter.PillarInput(
                entries=[
                    entry("Rana Riverside", role="Executive sponsor (Director of Strategy)"),
                    entry("Sam Okafor", role="Social value and environmental lead"),
                    entry("Priya Shah", role="Social value champion, outpatients"),
                ],
                text="A social value group of staff, governors and patient representatives "
                "meets monthly; every ward has a wellbeing champion.",
            ),
            "vision": org_charter.PillarInput(
                statements={
                    "vision": "Healthier, fairer lives for the people of Riverside, with the "
                    "trust as a good neighbour, employer and buyer.",
                    "mission": "Use what we spend, who we employ and the buildings we run to "
                    "improve health and wellbeing beyond our wards.",
                }
            ),
            "principles": org_charter.PillarInput(
                items=[
                    "Wellbeing and equity first",
                    "Environmental sustainability in every decision",
                    "Communities and staff have a say in what we do",
                    "Transparency and accountability: we publish our progress",
                ]
            ),
        },
        priorities=[
            org_charter.PriorityInput(
                "Good local jobs",
                "30 apprenticeships for local young people",
                "More young people from the borough in work and training",
                (at + timedelta(days=365)).date(),
                ids("30 apprenticeships for local young people"),
            ),
            org_charter.PriorityInput(
                "Healthier communities",
                "500 free health checks and a community cafe",
                "Earlier diagnosis and less isolation among older residents",
                (at + timedelta(days=365)).date(),
                ids(
                    "Free health checks for 500 residents", "Community cafe in the outpatient wing"
                ),
            ),
            org_charter.PriorityInput(
                "A stronger voluntary sector",
                "200 volunteers and partnerships with 12 local charities",
                "Local charities reach more people with the trust's support",
                None,
                ids("200 volunteers giving 8,000 hours", "Partnerships with 12 local charities"),
            ),
        ],
    )
    org_charter.publish_charter(
        session,
        org.id or 0,
        rules=rules,
        actor=actor,
        now=at,
        expected_version=charter.version,
    )


def _staff(session: Session, email: str, role: str, name: str) -> User:
    user = accounts.add_user(session, email=email, role=role, password=DEMO_PASSWORD, name=name)
    auth.ensure_totp_secret(session, user)
    return user


def _org(
    session: Session, name: str, sector: str, email: str, person: str
) -> tuple[Organisation, User]:
    org = accounts.create_organisation(session, name=name, sector=sector)
    user = accounts.add_user(
        session,
        email=email,
        role="applicant",
        organisation_id=org.id,
        password=DEMO_PASSWORD,
        name=person,
    )
    return org, user


class _Journey:
    """One application walked through the workflow by the people who would do each step."""

    def __init__(
        self,
        session: Session,
        registry: SchemeRegistry,
        store: BlobStore,
        app: Application,
        applicant: User,
        start: datetime,
    ) -> None:
        self.session, self.registry, self.store = session, registry, store
        self.app, self.applicant, self.now = app, applicant, start
        # The applicant acts for the application's organisation (one of their memberships).
        self.as_applicant = workflow.Actor(applicant.id, applicant.role, app.organisation_id)

    def tick(self, days: float = 1) -> datetime:
        self.now += timedelta(days=days)
        return self.now

    def fire(self, trigger: str, user: User, comment: str = "") -> None:
        policy = self.registry.for_subject(self.session, self.app).policy
        step = next(
            t
            for t in policy.workflows.application.transitions
            if t.trigger == trigger and self.app.state in t.source
        )
        if (
            "audit_date_confirmed" in step.guards
            and policy.audited(self.app.level)
            and self.app.audit_starts_at is None
        ):
            # A step that waits for the audit's start date (the review): booked first, as
            # people would.
            self.book_audit(user)
        workflow.fire(
            self.session,
            self.app,
            trigger,
            actor=self.as_applicant if user is self.applicant else workflow.Actor.of(user),
            registry=self.registry,
            now=self.tick(),
            comment=comment,
        )

    def message(self, user: User, body: str, file: tuple[str, bytes] | None = None) -> None:
        """A message on the application's thread (told to the other side by email)."""
        notify_messages.post(
            self.session,
            "application",
            self.app,
            body=body,
            actor=self.as_applicant if user is self.applicant else workflow.Actor.of(user),
            registry=self.registry,
            now=self.tick(0.2),
            store=self.store,
            file=(io.BytesIO(file[1]), file[0]) if file else None,
        )

    def answer_eligibility(self, sector_id: str = "", industries: tuple[str, ...] = ()) -> None:
        """Answer the scheme's eligibility questions: the sector given, else the organisation's
        as the scheme names it (else the scheme's first), the smallest turnover band."""
        policy = self.registry.for_subject(self.session, self.app).policy
        if policy.eligibility is None:
            return
        org = self.session.get(Organisation, self.app.organisation_id)
        said = org.sector.casefold() if org else ""
        sector = next(
            (
                c
                for c in policy.eligibility.sectors
                if c.id == sector_id or (not sector_id and said in (c.id, c.name.casefold()))
            ),
            policy.eligibility.sectors[0],
        )
        screening.answer(
            self.session,
            self.app,
            sector=sector.id,
            turnover_band=policy.eligibility.turnover_bands[0].id,
            industries=industries,
            actor=self.as_applicant,
            registry=self.registry,
            now=self.tick(0.01),
        )

    def propose_audit_dates(self) -> None:
        """Propose the policy's number of start dates: the earliest allowed, then a week apart."""
        policy = self.registry.for_subject(self.session, self.app).policy
        assert policy.audit is not None
        now = self.tick(0.1)
        day = audits.earliest(policy, policy.audit, now)
        days: list[date] = []
        while len(days) < policy.audit.proposals:
            if not audits.refusals(policy, policy.audit, [day], now):
                days.append(day)
                day += timedelta(days=7)
            else:
                day += timedelta(days=1)
        audits.propose(
            self.session, self.app, days, actor=self.as_applicant, registry=self.registry, now=now
        )

    def book_audit(self, staff: User) -> None:
        """The applicant proposes start dates and `staff` (the assigned assessor, or an admin)
        confirms the first."""
        self.propose_audit_dates()
        assert self.app.id is not None
        proposal = audits.current(self.session, self.app.id)
        assert proposal is not None
        audits.confirm(
            self.session,
            self.app,
            proposal.days[0],
            actor=workflow.Actor.of(staff),
            registry=self.registry,
            now=self.tick(0.1),
        )

    def pledges(
        self, rows: list[tuple[str, str, str, str, float, str]], member: int | None = None
    ) -> None:
        """Make these pledges (on a group's application, `member`'s own ones)."""
        for theme, title, indicator, unit, baseline, target in rows:
            actions.add_pledge(
                self.session,
                self.app,
                PledgeCreate(
                    theme=theme,
                    title=title,
                    indicator=indicator,
                    unit=unit,
                    baseline=baseline,
                    target=target,
                    due_date=(self.now + timedelta(days=365)).date(),
                    description=f"{title}, measured as {indicator}.",
                    organisation_id=member,
                ),
                actor=self.as_applicant,
                registry=self.registry,
                now=self.now,
            )

    def upload_all(self) -> None:
        scheme = self.registry.for_subject(self.session, self.app)
        assert self.app.id is not None
        for slot in evidence_requirements.checklist(
            self.session,
            application_id=self.app.id,
            policy=scheme.policy,
            level=scheme.policy.level(self.app.level),
            members=members_covered(self.session, self.app.id),
        ):
            if slot.met_by_charter:
                continue
            body = f"{slot.title}\n\nDemonstration evidence for application {self.app.id}.\n"
            actions.upload_evidence(
                self.session,
                self.app,
                self.store,
                requirement=slot.id,
                pledge_id=None,
                stream=io.BytesIO(body.encode()),
                filename=f"{slot.id.replace(':', '-')}.txt",
                title=slot.title,
                actor=self.as_applicant,
                registry=self.registry,
                now=self.tick(0.01),
            )

    def review_all(
        self, assessor: User, decision: Decision = "accepted", comment: str = ""
    ) -> None:
        for item in evidence_service.list_evidence(self.session, self.app.id or 0):
            if item.status == "pending":
                actions.review_evidence(
                    self.session,
                    self.app,
                    item,
                    ReviewCreate(decision=decision, comment=comment),
                    actor=workflow.Actor.of(assessor),
                    registry=self.registry,
                    now=self.tick(0.01),
                )

    def score_all(self, assessor: User, fraction: float = 1.0) -> None:
        policy = self.registry.for_subject(self.session, self.app).policy
        for sid in policy.level(self.app.level).standards:
            for q in policy.standard(sid).questions:
                score = q.max_score if q.mandatory else round(q.max_score * fraction)
                actions.score_question(
                    self.session,
                    self.app,
                    ScoreCreate(standard=sid, question=q.id, score=score),
                    actor=workflow.Actor.of(assessor),
                    registry=self.registry,
                    now=self.tick(0.01),
                )


def is_demo(session: Session) -> bool:
    """Whether this database is a demo's: `seed_demo` made its marker organisation and its admin
    (an address under the reserved .test domain, which no real account has)."""
    marked = session.exec(select(Organisation.id).where(Organisation.name == MARKER)).first()
    return marked is not None and accounts.get_user_by_email(session, DEMO_ADMIN) is not None


def audit_starts_today(
    session: Session, application_id: int, *, registry: SchemeRegistry, now: datetime
) -> str:
    """Bring the confirmed audit of a demo application forward to today, so that a person
    trying the demo reaches the stakeholder consultation without waiting the lead time.

    Refuses (SvqmError, one line) on a database `seed_demo` did not make, an unknown
    application, or one with no confirmed audit start."""
    if not is_demo(session):
        raise Conflict(
            "this is not a demo database (`svqm demo` did not seed it): "
            "audits are brought forward only in a demo"
        )
    app = session.get(Application, application_id)
    if app is None:
        raise NotFound(f"no application {application_id}")
    audits.bring_forward(
        session,
        app,
        actor=workflow.SYSTEM,
        registry=registry,
        now=now,
        comment="Brought forward to today for the demonstration (svqm demo --audit-starts-today).",
    )
    policy = registry.for_subject(session, app).policy
    day = audits.start_day(policy, app)
    assert day is not None
    return f"application {application_id}: the audit now starts today, {audits.day_text(day)}"


def seed_demo(session: Session, *, registry: SchemeRegistry, now: datetime) -> str:
    """Create the demo organisations, staff and applications, once."""
    if session.exec(select(Organisation).where(Organisation.name == MARKER)).first():
        return "demo data already present"
    settings = get_settings()
    store = BlobStore(
        settings.EVIDENCE_DIR,
        max_bytes=settings.MAX_UPLOAD_BYTES,
        max_unpacked_bytes=settings.MAX_UNPACKED_BYTES,
        max_entries=settings.MAX_ARCHIVE_ENTRIES,
    )
    admin = _staff(session, DEMO_ADMIN, "admin", "Alex Admin")
    assessor = _staff(session, "assessor@demo.svqm.test", "assessor", "Asha Assessor")
    assessor2 = _staff(session, "assessor2@demo.svqm.test", "assessor", "Ben Assessor")
    panel = _staff(session, "panel@demo.svqm.test", "panel", "Priya Panel")
    panel2 = _staff(session, "panel2@demo.svqm.test", "panel", "Pat Panel")

    def journey(
        org: Organisation, user: User, scheme: str, level: str, start: datetime, sector: str = ""
    ) -> _Journey:
        assert org.id is not None
        app = workflow.open_application(
            session,
            organisation_id=org.id,
            scheme_id=scheme,
            level=level,
            actor=workflow.Actor(user.id, user.role, org.id),
            registry=registry,
            now=start,
        )
        j = _Journey(session, registry, store, app, user, start)
        j.answer_eligibility(sector)
        return j

    # A health trust that went all the way to Health Bronze about eleven months ago.
    trust, trust_user = _org(
        session, MARKER, "health", "applicant@riverside.demo.svqm.test", "Rana Riverside"
    )
    j = journey(
        trust, trust_user, "svqm-health", "Health Bronze", now - timedelta(days=330), "nhs_trust"
    )
    j.pledges(_PLEDGES["svqm-health"])
    # Its own social value charter, published: it meets two of the Health Bronze items.
    _trust_charter(session, trust, trust_user, now - timedelta(days=330) + timedelta(hours=1))
    j.upload_all()
    # The self-service route: the award is issued on submission, with no assessor or panel.
    j.fire("submit_self_service", trust_user)
    # Its first year's figures, filed a fortnight ago and accepted by the assessor.
    _report_progress(session, registry, j.app, trust_user, assessor, now - timedelta(days=14))

    # A care group that has held Bronze for ten months, now under review for Silver.
    care, care_user = _org(
        session,
        "Harbour Care Group",
        "social care",
        "applicant@harbour.demo.svqm.test",
        "Hari Harbour",
    )
    j = journey(care, care_user, "svqm", "Bronze", now - timedelta(days=300))
    j.pledges(_PLEDGES["svqm"])
    j.upload_all()
    j.fire("submit", care_user)
    j.fire("start_review", assessor)
    j.review_all(assessor)
    j.fire("recommend_award", assessor)
    j.fire("confirm_award", panel, "Clear commitments across six themes.")
    # Silver carries the six Bronze pledges: it measures what Bronze committed to.
    j = journey(care, care_user, "svqm", "Silver", now - timedelta(days=20))
    j.upload_all()
    j.fire("submit", care_user)
    j.fire("start_review", assessor)
    j.score_all(assessor, fraction=0.75)
    # A short thread on it: the applicant's last message is still unread on Asha's queue.
    j.message(
        care_user,
        "Ahead of the assessment: our volunteering log for the year is attached.",
        ("volunteering-log.csv", b"month,volunteers,hours\n2026-09,18,212\n2026-10,21,240\n"),
    )
    j.message(
        assessor,
        "Thank you, Hari. The log is clear. Could you also say how the hours are recorded "
        "at each home?",
    )
    j.message(care_user, "Each home manager enters them weekly; we will add a note to the log.")

    # A supplier that has started a Bronze application: four pledges so far.
    supplier, supplier_user = _org(
        session,
        "Northgate Facilities Ltd",
        "facilities services",
        "applicant@northgate.demo.svqm.test",
        "Nia Northgate",
    )
    supplier.region = "Greater Manchester"
    trust.region = "Cheshire and Merseyside"
    session.add_all([supplier, trust])
    j = journey(supplier, supplier_user, "svqm", "Level 1", now - timedelta(days=3), "facilities")
    j.pledges(_PLEDGES["svqm"][:4])
    # The care group's five businesses, each led by the group's bid director (one login for all):
    # two awarded Bronze last spring, each on its own application.
    care.region = "Cheshire and Merseyside"
    session.add(care)
    homes = {}
    for name in _CARE_HOMES:
        home = accounts.create_organisation(
            session,
            name=name,
            sector="social care",
            region="Cheshire and Merseyside",
            parent_id=care.id,
        )
        members.add_membership(
            session, user_id=care_user.id or 0, organisation_id=home.id or 0, role="lead"
        )
        homes[name] = home
    for name in _CARE_HOMES[:2]:
        j = journey(homes[name], care_user, "svqm", "Bronze", now - timedelta(days=200))
        j.pledges(_PLEDGES["svqm"])
        j.upload_all()
        j.fire("submit", care_user)
        j.fire("start_review", assessor2)
        j.review_all(assessor2)
        j.fire("recommend_award", assessor2)
        j.fire("confirm_award", panel, "Six themes covered, with the group's shared pledges.")
    # Then one application from the group for its other three homes: one set of pledges and
    # evidence, one assessment, and an award for each home.
    assert care.id is not None
    app = workflow.open_application(
        session,
        organisation_id=care.id,
        scheme_id="svqm",
        level="Bronze",
        actor=workflow.Actor(care_user.id, care_user.role, care.id),
        registry=registry,
        now=now - timedelta(days=40),
        members=[homes[n].id or 0 for n in _CARE_HOMES[2:]],
    )
    j = _Journey(session, registry, store, app, care_user, now - timedelta(days=40))
    j.answer_eligibility()
    j.pledges(_PLEDGES["svqm"])
    # The group's pledges are shared by the three homes; Anchor View adds one of its own, which
    # only its award carries.
    j.pledges([ANCHOR_VIEW_PLEDGE], member=homes["Anchor View"].id)
    j.upload_all()
    j.fire("submit", care_user)
    assigned = assessor if app.assessor_id == assessor.id else assessor2
    j.fire("start_review", assigned)
    j.review_all(assigned)
    j.fire("recommend_award", assigned)
    j.fire("confirm_award", panel, "One assessment for the three homes of the group.")
    # Harbour House, holding Bronze, has started Silver and is at the audit-booking step: three
    # possible start dates proposed, waiting for the scheme to confirm one.
    j = journey(homes["Harbour House"], care_user, "svqm", "Silver", now - timedelta(days=2))
    j.upload_all()
    j.propose_audit_dates()
    # The manager of one home acts for that home only.
    manager = accounts.add_user(
        session,
        email="manager@quaylodge.demo.svqm.test",
        role="applicant",
        organisation_id=homes["Quay Lodge"].id,
        password=DEMO_PASSWORD,
        name="Quinn Manager",
        member_role="member",
    )
    assert manager.id is not None

    # A housing association's Bronze application, recommended last week and awaiting the panel.
    # Pat Panel sits on its board (a conflict on record), so only Priya Panel may decide it.
    housing, housing_user = _org(
        session,
        "Westbrook Housing Association",
        "housing",
        "applicant@westbrook.demo.svqm.test",
        "Wes Westbrook",
    )
    j = journey(housing, housing_user, "svqm", "Bronze", now - timedelta(days=30))
    j.pledges(_PLEDGES["svqm"])
    j.upload_all()
    j.fire("submit", housing_user)
    assigned = assessor if j.app.assessor_id == assessor.id else assessor2
    j.fire("start_review", assigned)
    j.review_all(assigned)
    j.tick(20)
    j.fire("recommend_award", assigned, "Six themes with clear targets; the evidence is complete.")
    accounts.declare_conflict(
        session,
        user_id=panel2.id or 0,
        organisation_id=housing.id or 0,
        reason="sits on the association's board",
        recorded_by_id=admin.id,
    )

    # A caterer whose work includes fast food, a case-by-case industry: its Bronze draft waits
    # for an admin to agree the conditions and decide its eligibility (on /admin).
    caterer, caterer_user = _org(
        session,
        "Eastgate Catering Ltd",
        "retail",
        "applicant@eastgate.demo.svqm.test",
        "Eve Eastgate",
    )
    assert caterer.id is not None
    app = workflow.open_application(
        session,
        organisation_id=caterer.id,
        scheme_id="svqm",
        level="Bronze",
        actor=workflow.Actor(caterer_user.id, caterer_user.role, caterer.id),
        registry=registry,
        now=now - timedelta(days=5),
    )
    j = _Journey(session, registry, store, app, caterer_user, now - timedelta(days=5))
    j.answer_eligibility("retail", industries=("fast_food",))
    j.pledges(_PLEDGES["svqm"][:3])

    # A health and care partnership's own charter, signed by its NHS bodies, councils and
    # voluntary sector (svqm/demo_charter.py).
    charter = seed_charter(session, registry=registry, now=now, password=DEMO_PASSWORD)

    # A leisure trust that has held Bronze for four months and has no Silver open: the one to
    # take through Silver yourself (README.md, "Try the Silver journey").
    leisure, leisure_user = _org(
        session,
        KESTREL,
        "leisure",
        KESTREL_APPLICANT,
        "Kit Kestrel",
    )
    leisure.region = "Greater Manchester"
    session.add(leisure)
    j = journey(leisure, leisure_user, "svqm", "Bronze", now - timedelta(days=120), "retail")
    j.pledges(_KESTREL_PLEDGES)
    j.upload_all()
    j.fire("submit", leisure_user)
    assigned = assessor if j.app.assessor_id == assessor.id else assessor2
    j.fire("start_review", assigned)
    j.review_all(assigned)
    j.fire("recommend_award", assigned)
    j.fire("confirm_award", panel2, "Six themes with measures a leisure trust can report on.")

    # Each application sent was invoiced; those since awarded were paid by bank transfer a
    # fortnight after the invoice (the rest wait on /admin/invoices for the admin to record).
    for inv in invoices.listing(session, status=invoices.UNPAID):
        held = session.get(Application, inv.application_id) if inv.application_id else None
        if held is not None and held.state == "awarded":
            invoices.mark_paid(
                session,
                inv,
                actor_role="admin",
                actor_id=admin.id,
                method="bank_transfer",
                reference=f"BACS {inv.number}",
                now=inv.issued_at + timedelta(days=14),
            )

    staff = [admin, assessor, assessor2, panel, panel2]
    lines = [
        "demo data created; every demo account's password is " + DEMO_PASSWORD,
        "  applicants applicant@riverside.demo.svqm.test (Health Bronze awarded),",
        "             applicant@harbour.demo.svqm.test (Bronze held, Silver under review, with a",
        "               message thread with the assessor on it; acts",
        "               for the group's five care homes too: switch on 'Your organisations', see /group;",
        "               three homes awarded Bronze on one group application (Anchor View's",
        "               award carries a pledge of its own beside the shared ones); Harbour House's",
        "               Silver is at the audit-booking step: dates proposed, for an admin to confirm)",
        "             manager@quaylodge.demo.svqm.test (one care home of the group only)",
        "             applicant@northgate.demo.svqm.test (Bronze draft)",
        "             applicant@westbrook.demo.svqm.test (Bronze recommended, awaiting the panel;",
        "               panel2 has a conflict with it, so panel decides it)",
        "             applicant@eastgate.demo.svqm.test (Bronze draft; fast food is case by case,",
        "               so its eligibility waits for an admin's decision on /admin)",
        f"             {KESTREL_APPLICANT} (Bronze held, no Silver open: start Silver",
        "               yourself; README.md's 'Try the Silver journey' walks it step by step)",
        *([charter] if charter else []),
        "  staff sign in with a code from an authenticator app; add each account's key:",
    ]
    lines += [f"  {u.role:<9} {u.email:<28} key {u.totp_secret}" for u in staff]
    return "\n".join(lines)
