"""A Silver application through the scheme's own process, in a real browser (issue 18, "Done when").

An organisation holding Bronze opens a Silver application and answers the eligibility questions
(sector and turnover from the policy's lists); its evidence is seeded (the Bronze journey uploads
through the pages already). It submits, and the submission invoices the Silver fee for its
turnover band with VAT; an admin records the bank transfer. The organisation proposes three
audit start dates (a date too soon is refused first: 40 working days, bank holidays not counted)
and the admin confirms one. Then the audit starts (the test moves the confirmed start to
yesterday, as eight weeks passing would): the first assessor invites an external stakeholder,
who answers through the emailed link with no sign-in (the link works once). Two assessors score
on their own, neither seeing the other's scores until both have scored (the real policy's Silver
is double-marked, `assessors: 2`); the first recommends refusal and a panel member confirms it. The
organisation appeals; the panel member who refused may not decide it, and another dismisses it.

Every distinct page is screenshotted at 1280 and 320 px in var/screenshots/
test_silver_from_eligibility_to_appeal/ and checked with axe-core; the test fails at the end if
a page has a violation, is wider than 320 px, or the browser saw an error response.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation, User
from svqm.clock import utc_now
from svqm.db import make_engine
from svqm.notify.models import OutboxMessage
from svqm.workflow import audits, deadlines
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import load_registry
from tests import factories
from tests.browser.test_journey import Journey, second_factor, sign_in, task_status
from tests.conftest import POLICIES
from tests.web.pages_helpers import PASSWORD, make_account

ORGANISATION = "Quayside Care Partnership"
LEVEL = "Silver (Level 2)"
STAKEHOLDER = "supplier@quayside-supplies.example"
REFUSAL = "The social value forecast is not tied to the Bronze pledges' measures."
APPEAL = "The forecast on page 3 takes each pledge's measure in turn."
DISMISSAL = "The forecast names the measures but gives no figures for them."


@pytest.fixture(scope="module")
def world(live_server: str, live_server_env: dict[str, str]):
    """An organisation holding Bronze (two pledges), two assessors, two panel members, an admin."""
    registry = load_registry(POLICIES)
    engine = make_engine(live_server_env["SVQM_DATABASE_URL"])
    now = utc_now()
    with Session(engine) as s:
        applicant = make_account(s, "applicant")
        org = s.get(Organisation, applicant.organisation_id)
        assert org is not None
        org.name = ORGANISATION
        s.add(org)
        first, second, refuser, appeals, admin = (
            make_account(s, role) for role in ("assessor", "assessor", "panel", "panel", "admin")
        )
        issued = now - timedelta(days=200)
        bronze = factories.open_app(s, registry, applicant, level="bronze", now=issued)
        factories.add_pledges(s, registry, bronze, applicant, now=issued, count=2)
        bronze.state = "awarded"
        policy = registry.get("svqm").policy
        s.add(bronze)
        s.add(
            Award(
                organisation_id=org.id or 0,
                application_id=bronze.id or 0,
                scheme="svqm",
                scheme_version=policy.version,
                policy_digest=policy.digest,
                level="bronze",
                state="active",
                certificate_number="SVQM-2026-0000A1B2",
                issued_at=issued,
                expires_at=issued + timedelta(days=365),
                state_changed_at=issued,
            )
        )
        s.commit()
        people = {
            who: (user.email, user.totp_secret)
            for who, user in (
                ("applicant", applicant),
                ("first", first),
                ("second", second),
                ("refuser", refuser),
                ("appeals", appeals),
                ("admin", admin),
            )
        }
        ids = SimpleNamespace(applicant=applicant.id, first=first.id, second=second.id)
    yield SimpleNamespace(
        base=live_server,
        engine=engine,
        registry=registry,
        store=factories.store_at(live_server_env["SVQM_EVIDENCE_DIR"]),
        people=people,
        ids=ids,
    )
    engine.dispose()


def _enter(journey: Journey, page: Page, who: tuple[str, str | None]) -> None:
    email, secret = who
    sign_in(journey, page, email, PASSWORD)
    if secret:
        second_factor(journey, page, secret)
    expect(page).not_to_have_url(re.compile(r"/login"))


def _seed_evidence(world: SimpleNamespace, application_id: int) -> None:
    """Every checklist slot of the Silver application, as the organisation would upload it."""
    with Session(world.engine) as s:
        app = s.get(Application, application_id)
        applicant = s.get(User, world.ids.applicant)
        assert app is not None
        assert applicant is not None
        factories.upload_all(s, world.registry, world.store, app, applicant, now=utc_now())
        s.commit()


def _audit_has_started(world: SimpleNamespace, application_id: int) -> None:
    """Eight weeks on: the confirmed start is moved to yesterday (the server's clock is real)."""
    with Session(world.engine) as s:
        yesterday = audits.start_moment(
            world.registry.get("svqm").policy, (utc_now() - timedelta(days=1)).date()
        )
        s.exec(
            update(Application)
            .where(col(Application.id) == application_id)
            .values(audit_starts_at=yesterday)
        )
        s.commit()


def _invitation_link(world: SimpleNamespace, email: str) -> str:
    """The form's address in the invitation the outbox holds for `email`."""
    with Session(world.engine) as s:
        rows = s.exec(
            select(OutboxMessage).where(col(OutboxMessage.to_addrs).contains(email))
        ).all()
    paths = [json.loads(r.context).get("path", "") for r in rows]
    found = [p for p in paths if p.startswith("/consultation/")]
    assert len(found) == 1, f"one invitation to {email} expected in the outbox, found {paths}"
    return found[0]


def _three_dates(world: SimpleNamespace) -> list:
    """The first three working days the audit may start on, a week apart."""
    policy = world.registry.get("svqm").policy
    s = policy.settings
    day = audits.earliest(policy, policy.audit, utc_now())
    out = []
    while len(out) < 3:
        if deadlines.is_working_day(day, s.holiday_country, s.holiday_subdivision):
            out.append(day)
            day += timedelta(days=7)
        else:
            day += timedelta(days=1)
    return out


def _fill_dates(page: Page, days: list) -> None:
    for n, day in enumerate(days):
        page.locator(f"#date{n}-day").fill(str(day.day))
        page.locator(f"#date{n}-month").fill(str(day.month))
        page.locator(f"#date{n}-year").fill(str(day.year))
    page.get_by_role("button", name="Propose these dates").click()


def _score_all(world: SimpleNamespace, page: Page, note: str) -> None:
    """Every question of Silver's standards at its top score but two: the forecast scores 1 of
    4 and the mandatory measurement methods are not met (so Silver fails); a note on one."""
    policy = world.registry.get("svqm").policy
    for sid in policy.level("silver").standards:
        for q in policy.standard(sid).questions:
            score = {("calculate", "forecast"): 1, ("calculate", "method"): 0}.get(
                (sid, q.id), q.max_score
            )
            page.locator(f"#score-{sid}-{q.id}-{score}").check()
    page.locator("#note-plan-strategy").fill(note)
    page.get_by_role("button", name="Save scores").click()
    expect(page.get_by_text("Your scores have been saved.")).to_be_visible()


def test_silver_from_eligibility_to_appeal(world, new_page, screenshot, axe):
    journey = Journey(world.base, screenshot, axe)
    base = world.base

    # 1. The organisation opens Silver: its Bronze pledges come with it; eligibility first.
    applicant = journey.person(new_page, "applicant")
    _enter(journey, applicant, world.people["applicant"])
    applicant.goto(f"{base}/apply/svqm")
    applicant.get_by_label(LEVEL, exact=True).check()
    applicant.get_by_role("button", name="Start application").click()
    expect(applicant).to_have_url(re.compile(r"/applications/\d+\?done=opened"))
    app_id = int(re.search(r"/applications/(\d+)", applicant.url).group(1))
    task_list = f"{base}/applications/{app_id}"
    expect(task_status(applicant, "Eligibility")).to_have_text("Not started")
    journey.check(applicant, "01-silver-application-new")
    applicant.get_by_role("link", name="Eligibility", exact=True).click()
    applicant.get_by_label("Social care", exact=True).check()
    applicant.get_by_label("£1 million to £10 million", exact=True).check()
    applicant.get_by_role("button", name="Save and continue").click()
    expect(applicant).to_have_url(f"{task_list}?done=eligibility-eligible")
    expect(task_status(applicant, "Eligibility")).to_have_text("Completed")

    # 2. Submit; the submission invoices Silver's fee for the band, with VAT at 20%.
    _seed_evidence(world, app_id)
    applicant.goto(task_list)
    applicant.get_by_role("link", name="Check your answers and submit your application").click()
    applicant.get_by_label(re.compile("^I confirm that I may apply")).check()
    applicant.get_by_role("button", name="Accept and submit application").click()
    expect(applicant.get_by_role("heading", level=1)).to_have_text("Application submitted")
    applicant.goto(task_list)
    invoice = applicant.locator("#invoices + .app-table-scroll")
    expect(invoice).to_contain_text("Silver application and award")
    expect(invoice).to_contain_text("£1,794.00")
    expect(invoice).to_contain_text("Unpaid")
    journey.check(applicant, "03-submitted-invoice-unpaid")

    # 3. The admin records the bank transfer on the application's page.
    admin = journey.person(new_page, "admin")
    _enter(journey, admin, world.people["admin"])
    admin.goto(f"{base}/admin/applications/{app_id}")
    admin.get_by_label("Payment reference").first.fill("BACS 40-11-22 QUAYSIDE")
    admin.get_by_role("button", name=re.compile(r"^Mark INV-\d+ paid$")).click()
    expect(admin.locator("#invoices + .app-table-scroll, .app-table-scroll").first).to_contain_text(
        "Paid"
    )
    journey.check(admin, "04-admin-invoice-paid")

    # 4. Three audit start dates; one too soon is refused first, naming the earliest day.
    days = _three_dates(world)
    applicant.goto(task_list)
    applicant.get_by_role("link", name="Audit start date", exact=True).click()
    expect(applicant).to_have_url(f"{base}/applications/{app_id}/audit-dates")
    journey.check(applicant, "05-audit-dates")
    journey.refusals.add(("POST", f"/applications/{app_id}/audit-dates"))
    _fill_dates(applicant, [days[0] - timedelta(days=14), days[1], days[2]])
    expect(applicant.locator(".govuk-error-summary")).to_contain_text("is too soon")
    journey.check(applicant, "05b-audit-date-too-soon")
    journey.refusals.clear()
    _fill_dates(applicant, days)
    expect(applicant.get_by_text("Dates proposed.")).to_be_visible()
    expect(applicant.locator("#audit-proposed li")).to_have_count(3)

    admin.goto(f"{base}/applications/{app_id}/audit-dates")
    admin.get_by_label(audits.day_text(days[1]), exact=True).check()
    admin.get_by_role("button", name="Confirm this date").click()
    expect(admin.locator("#audit-start")).to_have_text(audits.day_text(days[1]))
    journey.check(admin, "06-audit-date-confirmed")
    applicant.goto(task_list)
    expect(task_status(applicant, "Audit start date")).to_have_text("Completed")

    # 5. The audit starts; the first assessor starts the review and consults a stakeholder.
    _audit_has_started(world, app_id)
    first = journey.person(new_page, "first assessor")
    _enter(journey, first, world.people["first"])
    first.goto(f"{base}/assess/{app_id}")
    first.get_by_role("button", name="Start review", exact=True).click()
    expect(
        first.get_by_text("Review started. Review each evidence item and score each question.")
    ).to_be_visible()
    first.get_by_role("link", name=re.compile("^Stakeholder consultation")).click()
    first.get_by_label("Name (optional)").fill("Sam Supplier")
    first.get_by_label("Email address").fill(STAKEHOLDER)
    first.get_by_label("External").check()
    first.get_by_role("button", name="Send the invitation").click()
    expect(first.locator("#invited")).to_have_text("1")
    journey.check(first, "07-consultation-invited")

    # 6. The stakeholder answers through the link, with no account; the link works once.
    link = _invitation_link(world, STAKEHOLDER)
    stakeholder = journey.person(new_page, "stakeholder")
    stakeholder.goto(f"{base}{link}")
    expect(stakeholder.get_by_role("heading", level=1)).to_contain_text(ORGANISATION)
    journey.check(stakeholder, "08-consultation-form")
    stakeholder.get_by_label("How do you know the organisation?").fill("We supply its kitchens.")
    for group in stakeholder.locator("fieldset").all():
        group.get_by_label("4", exact=False).first.check()
    stakeholder.get_by_role("button", name=re.compile("^Send")).click()
    expect(stakeholder.get_by_role("heading", level=1)).to_contain_text("Thank you")
    used = stakeholder.goto(f"{base}{link}")
    assert used is not None
    assert used.status == 409, "a used link should answer 409 Conflict"
    expect(stakeholder.get_by_role("heading", level=1)).not_to_contain_text(ORGANISATION)
    journey.check(stakeholder, "10-consultation-link-used")
    journey.problems.remove(f"stakeholder: HTTP 409 for GET {base}{link}")
    first.reload()
    expect(first.locator("#answered")).to_contain_text("1")

    # 7. Two assessors score on their own; neither sees the other's until both have scored.
    first.goto(f"{base}/assess/{app_id}")
    _score_all(world, first, "First: the strategy is signed by the board.")
    expect(first.locator("#marking-progress")).to_contain_text("Second assessor: 0 of")
    expect(first.locator("#marking-table")).to_have_count(0)
    second = journey.person(new_page, "second assessor")
    _enter(journey, second, world.people["second"])
    second.goto(f"{base}/assess/{app_id}")
    expect(second.locator("#second-assessor")).to_be_visible()
    expect(second.get_by_text("First: the strategy")).to_have_count(0)
    journey.check(second, "11-second-assessor-blind")
    _score_all(world, second, "Second: the strategy is on the website.")
    expect(second.locator("#marking-table")).to_be_visible()
    expect(second.locator("#score-history")).to_contain_text("First: the strategy")
    journey.check(second, "12-second-assessor-revealed")

    # 8. The first assessor recommends refusal; a panel member confirms it.
    first.reload()
    expect(first.locator("#score-history")).to_contain_text("Second: the strategy")
    step = first.locator("form").filter(
        has=first.get_by_role("button", name="Recommend refusal", exact=True)
    )
    step.get_by_role("textbox").fill(REFUSAL)
    step.get_by_role("button", name="Recommend refusal", exact=True).click()
    expect(first.get_by_text("Refusal recommended. The panel will decide.")).to_be_visible()
    refuser = journey.person(new_page, "refusing panel member")
    _enter(journey, refuser, world.people["refuser"])
    refuser.goto(f"{base}/panel/{app_id}")
    expect(refuser.get_by_text(REFUSAL).first).to_be_visible()
    refuser.get_by_role("button", name="Confirm refusal", exact=True).click()
    expect(
        refuser.get_by_text("Refusal confirmed. The organisation has been told it may appeal.")
    ).to_be_visible()

    # 9. The organisation appeals.
    applicant.goto(task_list)
    expect(applicant.get_by_text("Not awarded").first).to_be_visible()
    journey.check(applicant, "14-not-awarded")
    appeal = applicant.locator("form").filter(
        has=applicant.get_by_role("button", name=re.compile("^Appeal"))
    )
    appeal.get_by_role("textbox").fill(APPEAL)
    appeal.get_by_role("button", name=re.compile("^Appeal")).click()
    expect(applicant.get_by_text("Appeal sent. The panel will decide it.")).to_be_visible()

    # 10. The member who refused may not decide the appeal; another member dismisses it.
    refuser.goto(f"{base}/panel/{app_id}")
    expect(
        refuser.get_by_text(re.compile("you took part in the decision under appeal")).first
    ).to_be_visible()
    journey.check(refuser, "15-appeal-refuser-may-not-decide")
    appeals = journey.person(new_page, "appeal panel member")
    _enter(journey, appeals, world.people["appeals"])
    appeals.goto(f"{base}/panel/{app_id}")
    expect(appeals.get_by_text(APPEAL).first).to_be_visible()
    dismiss = appeals.locator("form").filter(
        has=appeals.get_by_role("button", name="Dismiss appeal", exact=True)
    )
    dismiss.get_by_role("textbox").fill(DISMISSAL)
    dismiss.get_by_role("button", name="Dismiss appeal", exact=True).click()
    expect(
        appeals.get_by_text(
            "Appeal dismissed. The organisation has been told the decision is final."
        )
    ).to_be_visible()
    applicant.goto(task_list)
    expect(applicant.get_by_text("Not awarded (final)").first).to_be_visible()
    journey.check(applicant, "17-appeal-dismissed")

    if summary := journey.report():
        pytest.fail(
            f"{len(journey.violations)} page(s) with accessibility violations, "
            f"{len(journey.problems)} other problem(s):\n{summary}",
            pytrace=False,
        )
