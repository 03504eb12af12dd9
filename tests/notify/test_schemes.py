"""The comparison schemes' cycles under a moving clock, from their policy files alone.

Each walks one organisation through award, interim checks, a missed deadline and its
consequence, and renewal, and checks that every reminder, due notice and transition happens on
its date (see policies/bcorp-style.yaml, iip-style.yaml and iso17021-style.yaml).
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from svqm.db import session_scope
from svqm.errors import GuardRefused
from svqm.policy import TransitionDef
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Application, Award
from svqm.workflow.service import fire
from tests.factories import store_at
from tests.notify.cycles import (
    DAY,
    at,
    award_of,
    decide,
    file_for,
    open_due,
    rows,
    score_all,
    sent,
    trail,
)
from tests.notify.timeline import Timeline, deadlines
from tests.workflow.harness import Cast, application_in, make_cast, satisfy

# B Corp-style ------------------------------------------------------------------------------------

BT0 = at(2026, 1, 5, 9)


def test_bcorp_fees_updated_assessment_and_recertification(engine, registry, tmp_path):
    award_id, cast = decide(
        engine, registry, tmp_path, None, scheme="bcorp-style", level="certified",
        state="verified", trigger="certify", role="admin", at=BT0,
    )  # fmt: skip
    expires = add_months(BT0, 36)
    assert open_due(engine, award_id) == {
        "annual_fee": add_months(BT0, 12),
        "updated_assessment": add_months(expires, -6),
        "expiry": expires,
    }
    clock = Timeline(engine, registry)
    holder = cast.actor("applicant")

    # Year 1: the fee is paid after the 30-day reminder.
    clock.run_until(at(2026, 12, 20))
    file_for(engine, registry, tmp_path, award_id, holder, at(2026, 12, 20), "annual_fee")
    # Year 2: missed. The company is told, the admins alerted, and it is no longer in good standing.
    clock.run_until(at(2028, 1, 20))
    fee2 = add_months(BT0, 24)
    assert award_of(engine, award_id).state == "fee_overdue"
    # Paid late, within the grace period: back in good standing.
    file_for(engine, registry, tmp_path, award_id, holder, at(2028, 1, 20), "annual_fee")
    assert award_of(engine, award_id).state == "active"
    # The updated assessment is filed five weeks before its date (six months before expiry).
    clock.run_until(at(2028, 6, 1))
    file_for(engine, registry, tmp_path, award_id, holder, at(2028, 6, 1), "updated_assessment")
    clock.run_until(at(2028, 11, 15))
    assert award_of(engine, award_id).state == "active"

    assessment = add_months(expires, -6)
    assert sent(engine, f"award-{award_id}") == [
        ("annual_fee", "30d:applicant", add_months(BT0, 12) - 30 * DAY),
        ("annual_fee", "30d:applicant", fee2 - 30 * DAY),
        ("annual_fee", "7d:applicant", fee2 - 7 * DAY),
        ("annual_fee", "0d:applicant", fee2),
        ("annual_fee", "0d:admin", fee2),
        # The fee was paid before the grace period's first reminder.
        ("updated_assessment", "60d:applicant", assessment - 60 * DAY),
        # "B Lab will notify companies three months in advance of their recertification."
        ("expiry", "90d:applicant", expires - 90 * DAY),
    ]
    # Recertified before the date: the new term starts, the old award is superseded.
    new_id, _ = decide(
        engine, registry, tmp_path, cast, scheme="bcorp-style", level="certified",
        state="verified", trigger="certify", role="admin", at=at(2028, 11, 15),
    )  # fmt: skip
    clock.run_until(at(2029, 2, 1))
    assert award_of(engine, award_id).state == "renewed"
    assert trail(engine, "award", award_id) == [
        ("mark_fee_overdue", "system", fee2),
        ("pay_fee", "applicant", at(2028, 1, 20)),
        ("renew", "system", at(2028, 11, 15)),
    ]
    # Two fees in the term (the third anniversary is the new term's), the first paid, the second
    # late; the assessment deadline waited while the fee was overdue, then was met, once.
    assert rows(engine, award_id, "annual_fee") == [
        (0, "met", add_months(BT0, 12)),
        (1, "fired", fee2),
    ]
    assert rows(engine, award_id, "updated_assessment") == [
        (0, "cancelled", assessment),
        (0, "met", assessment),
    ]
    assert rows(engine, award_id, "expiry") == [(0, "cancelled", expires)]
    assert open_due(engine, award_id) == {}
    new_start = at(2028, 11, 15)
    assert open_due(engine, new_id) == {
        "annual_fee": add_months(new_start, 12),
        "updated_assessment": add_months(new_start, 30),
        "expiry": add_months(new_start, 36),
    }


def test_bcorp_unpaid_fee_makes_the_certification_inactive(engine, registry, tmp_path):
    award_id, _ = decide(
        engine, registry, tmp_path, None, scheme="bcorp-style", level="certified",
        state="verified", trigger="certify", role="admin", at=BT0,
    )  # fmt: skip
    due = add_months(BT0, 12)
    grace = due + 30 * DAY
    Timeline(engine, registry).run_until(grace + DAY)
    assert award_of(engine, award_id).state == "inactive"
    assert [s for s in sent(engine, f"award-{award_id}") if s[0] == "fee_grace"] == [
        ("fee_grace", "14d:applicant", grace - 14 * DAY),
        ("fee_grace", "7d:applicant", grace - 7 * DAY),
        ("fee_grace", "0d:applicant", grace),
        ("fee_grace", "0d:admin", grace),
    ]
    assert trail(engine, "award", award_id) == [
        ("mark_fee_overdue", "system", due),
        ("make_inactive", "system", grace),
    ]
    # Inactive, the expiry still runs; the assessment waits for good standing.
    assert set(open_due(engine, award_id)) == {"expiry"}


def test_bcorp_an_early_assessment_stays_filed_through_a_late_fee(engine, registry, tmp_path):
    award_id, cast = decide(
        engine, registry, tmp_path, None, scheme="bcorp-style", level="certified",
        state="verified", trigger="certify", role="admin", at=BT0,
    )  # fmt: skip
    holder = cast.actor("applicant")
    clock = Timeline(engine, registry)
    # The first fee paid late; the assessment filed eight months early; the second fee late too.
    # Back in good standing, the company is not asked again for the assessment it filed.
    for paid in (at(2027, 1, 10), at(2028, 1, 10)):
        if paid.year == 2028:
            clock.run_until(at(2027, 11, 1))
            file_for(
                engine, registry, tmp_path, award_id, holder, at(2027, 11, 1), "updated_assessment"
            )
        clock.run_until(paid)
        assert award_of(engine, award_id).state == "fee_overdue"
        file_for(engine, registry, tmp_path, award_id, holder, paid, "annual_fee")
    clock.run_until(at(2028, 12, 1))
    assessment = add_months(BT0, 30)
    assert award_of(engine, award_id).state == "active"
    assert rows(engine, award_id, "updated_assessment") == [
        (0, "cancelled", assessment),
        (0, "met", assessment),
    ]
    assert [t for t, _, _ in trail(engine, "award", award_id)] == [
        "mark_fee_overdue",
        "pay_fee",
        "mark_fee_overdue",
        "pay_fee",
    ]


def _in_verification(engine, registry, tmp_path, score: int) -> tuple[int, Cast]:
    """A B Corp application failed in verification at BT0 with every answer rated `score`."""
    with session_scope(engine) as s:
        cast = make_cast(s)
        policy = registry.get("bcorp-style").policy
        app = application_in(
            s, registry, cast, scheme="bcorp-style", level="certified", state="verification",
            at=BT0,
        )  # fmt: skip
        evidence = TransitionDef(
            trigger="evidence",
            source=["verification"],
            dest="verified",
            roles=["assessor"],
            guards=["required_evidence_present", "all_evidence_accepted"],
        )
        satisfy(s, policy, registry, store_at(tmp_path), cast, app, evidence, BT0)
        score_all(s, policy, app, score, BT0)
        assessor = cast.actor("assessor")
        with pytest.raises(GuardRefused) as refused:
            fire(s, app, "pass_verification", actor=assessor, registry=registry, now=BT0)
        assert refused.value.unmet == ["overall score 50 points is below the 80-point pass mark"]
        fire(s, app, "fail_verification", actor=assessor, registry=registry, now=BT0, comment="50")
        assert app.id is not None
        return app.id, cast


def test_bcorp_improvement_period_runs_out(engine, registry, tmp_path):
    app_id, _ = _in_verification(engine, registry, tmp_path, 1)
    ends = BT0 + 90 * DAY
    Timeline(engine, registry).run_until(ends + DAY)
    assert sent(engine, f"application-{app_id}") == [
        ("improvement_period", "30d:applicant", ends - 30 * DAY),
        ("improvement_period", "7d:applicant", ends - 7 * DAY),
        ("improvement_period", "0d:applicant", ends),
        ("improvement_period", "0d:admin", ends),
    ]
    assert trail(engine, "application", app_id)[-1] == ("close_improvement_period", "system", ends)


def test_bcorp_improvement_period_then_verified_at_100_points(engine, registry, tmp_path):
    app_id, cast = _in_verification(engine, registry, tmp_path, 1)
    ends = BT0 + 90 * DAY
    clock = Timeline(engine, registry)
    improved = BT0 + 65 * DAY
    clock.run_until(improved)
    with session_scope(engine) as s:
        app = s.get(Application, app_id)
        assert app is not None
        policy = registry.get("bcorp-style").policy
        score_all(s, policy, app, 2, improved)  # 100 points of 200: 50%, but over the 80-point mark
        for trigger, role in (("resubmit", "applicant"), ("pass_verification", "assessor")):
            fire(s, app, trigger, actor=cast.actor(role), registry=registry, now=improved)
        fire(s, app, "certify", actor=cast.actor("admin"), registry=registry, now=improved)
    clock.run_until(ends + DAY)
    assert sent(engine, f"application-{app_id}") == [
        ("improvement_period", "30d:applicant", ends - 30 * DAY),
    ]
    assert [d.status for d in deadlines(engine, "improvement_period")] == ["cancelled"]
    with Session(engine) as s:
        award = s.exec(select(Award).where(Award.application_id == app_id)).one()
        assert (award.state, award.issued_at) == ("active", improved)


# Investors in People-style -----------------------------------------------------------------------

IT0 = at(2026, 1, 5, 9)


def test_iip_annual_reviews_then_derecognised_without_a_full_assessment(engine, registry, tmp_path):
    award_id, cast = decide(
        engine, registry, tmp_path, None, scheme="iip-style", level="silver",
        state="recommended", trigger="confirm", role="panel", at=IT0,
    )  # fmt: skip
    expires = add_months(IT0, 36)
    admin = cast.actor("admin")
    clock = Timeline(engine, registry)
    clock.run_until(at(2026, 12, 15))
    file_for(engine, registry, tmp_path, award_id, admin, at(2026, 12, 15), "annual_review")
    # The second review is missed: overdue, and the organisation and the admins are told.
    clock.run_until(at(2028, 2, 10))
    assert award_of(engine, award_id).state == "review_overdue"
    file_for(engine, registry, tmp_path, award_id, admin, at(2028, 2, 10), "annual_review")
    assert award_of(engine, award_id).state == "active"
    # No full assessment within three years: derecognised.
    clock.run_until(expires + DAY)
    assert award_of(engine, award_id).state == "derecognised"

    r1, r2, booking = add_months(IT0, 12), add_months(IT0, 24), add_months(expires, -6)
    reviews = [
        ("annual_review", f"{days}d:{role}", due - days * DAY)
        for due, days_list in ((r1, (60, 30)), (r2, (60, 30, 0)))
        for days in days_list
        for role in ("applicant", "admin")
    ]
    assert sent(engine, f"award-{award_id}") == [
        *reviews,
        ("reassessment_booking", "30d:applicant", booking - 30 * DAY),
        ("reassessment_booking", "0d:applicant", booking),
        ("full_assessment", "90d:applicant", expires - 90 * DAY),
        ("full_assessment", "30d:applicant", expires - 30 * DAY),
        ("full_assessment", "0d:applicant", expires),
        ("full_assessment", "0d:admin", expires),
    ]
    assert trail(engine, "award", award_id) == [
        ("mark_review_overdue", "system", r2),
        ("complete_review", "admin", at(2028, 2, 10)),
        ("derecognise", "system", expires),
    ]
    # Two annual reviews: the third anniversary is the full assessment's.
    assert rows(engine, award_id, "annual_review") == [(0, "met", r1), (1, "fired", r2)]
    assert rows(engine, award_id, "review_grace") == [(0, "cancelled", add_months(r2, 3))]
    assert rows(engine, award_id, "reassessment_booking") == [(0, "passed", booking)]


def test_iip_missed_review_without_a_late_review_is_derecognised(engine, registry, tmp_path):
    award_id, _ = decide(
        engine, registry, tmp_path, None, scheme="iip-style", level="accredited",
        state="recommended", trigger="confirm", role="panel", at=IT0,
    )  # fmt: skip
    due = add_months(IT0, 12)
    grace = add_months(due, 3)
    Timeline(engine, registry).run_until(grace + DAY)
    assert trail(engine, "award", award_id) == [
        ("mark_review_overdue", "system", due),
        ("derecognise", "system", grace),
    ]
    assert [s for s in sent(engine, f"award-{award_id}") if s[0] == "review_grace"] == [
        ("review_grace", "30d:applicant", grace - 30 * DAY),
        ("review_grace", "7d:applicant", grace - 7 * DAY),
        ("review_grace", "0d:applicant", grace),
        ("review_grace", "0d:admin", grace),
    ]
    assert open_due(engine, award_id) == {}


def test_iip_reassessed_at_a_higher_level_before_the_three_years(engine, registry, tmp_path):
    award_id, cast = decide(
        engine, registry, tmp_path, None, scheme="iip-style", level="silver",
        state="recommended", trigger="confirm", role="panel", at=IT0,
    )  # fmt: skip
    admin = cast.actor("admin")
    clock = Timeline(engine, registry)
    for when in (at(2026, 12, 15), at(2027, 12, 15)):
        clock.run_until(when)
        file_for(engine, registry, tmp_path, award_id, admin, when, "annual_review")
    reassessed = at(2028, 11, 1)
    clock.run_until(reassessed)
    gold_id, _ = decide(
        engine, registry, tmp_path, cast, scheme="iip-style", level="gold",
        state="recommended", trigger="confirm", role="panel", at=reassessed,
    )  # fmt: skip
    clock.run_until(add_months(IT0, 36) + DAY)
    assert award_of(engine, award_id).state == "renewed"
    assert trail(engine, "award", award_id) == [("renew", "system", reassessed)]
    assert rows(engine, award_id, "full_assessment") == [(0, "cancelled", add_months(IT0, 36))]
    gold = award_of(engine, gold_id)
    assert (gold.level, gold.state, gold.supersedes_id) == ("gold", "active", award_id)
    assert open_due(engine, gold_id) == {
        "annual_review": add_months(reassessed, 12),
        "reassessment_booking": add_months(reassessed, 30),
        "full_assessment": add_months(reassessed, 36),
    }
    # Nothing more about the superseded award after it was renewed.
    assert all(when <= reassessed for _, _, when in sent(engine, f"award-{award_id}"))


# ISO/IEC 17021-style -----------------------------------------------------------------------------

ST0 = at(2026, 3, 16, 9)


def _certified(engine, registry, tmp_path, cast=None, at=ST0) -> tuple[int, Cast]:
    return decide(
        engine, registry, tmp_path, cast, scheme="iso17021-style", level="certified",
        state="recommended", trigger="grant", role="panel", at=at,
    )  # fmt: skip


def test_iso_surveillance_each_calendar_year_suspension_and_recertification(
    engine, registry, tmp_path
):
    award_id, cast = _certified(engine, registry, tmp_path)
    expires = add_months(ST0, 36)
    admin = cast.actor("admin")
    clock = Timeline(engine, registry)
    # The first surveillance within 12 months of the decision, held in February 2027.
    s1, held = add_months(ST0, 12), at(2027, 2, 20, 10)
    clock.run_until(held)
    file_for(engine, registry, tmp_path, award_id, admin, held, "surveillance")
    # The next by the end of 2028 (the calendar year after), in London: midnight GMT = UTC.
    s2 = at(2029, 1, 1)
    assert open_due(engine, award_id)["surveillance"] == s2
    # Missed: suspended. The audit is then held and its report filed: reinstated.
    clock.run_until(at(2029, 1, 20))
    assert award_of(engine, award_id).state == "suspended"
    file_for(engine, registry, tmp_path, award_id, admin, at(2029, 1, 20), "surveillance")
    assert award_of(engine, award_id).state == "active"
    # 2029 is the recertification year: no surveillance is due in it.
    assert "surveillance" not in open_due(engine, award_id)
    # Recertified before expiry.
    recertified = at(2029, 3, 1, 9)
    clock.run_until(recertified)
    new_id, _ = _certified(engine, registry, tmp_path, cast, recertified)
    clock.run_until(expires + DAY)

    plan = add_months(expires, -6)
    both = ("applicant", "admin")
    assert sent(engine, f"award-{award_id}") == [
        *[("surveillance", f"{d}d:{r}", s1 - d * DAY) for d in (60, 30) for r in both],
        ("recertification_audit", "30d:applicant", plan - 30 * DAY),
        ("recertification_audit", "0d:applicant", plan),
        *[("surveillance", f"{d}d:{r}", s2 - d * DAY) for d in (60, 30) for r in both],
        ("expiry", "90d:applicant", expires - 90 * DAY),
        ("surveillance", "0d:applicant", s2),
        ("surveillance", "0d:admin", s2),
        ("expiry", "30d:applicant", expires - 30 * DAY),
    ]
    assert trail(engine, "award", award_id) == [
        ("suspend", "system", s2),
        ("reinstate", "admin", at(2029, 1, 20)),
        ("renew", "system", recertified),
    ]
    assert rows(engine, award_id, "surveillance") == [(0, "met", s1), (1, "fired", s2)]
    # The reminder to plan the recertification passed once, and was not reopened on reinstatement.
    assert rows(engine, award_id, "recertification_audit") == [(0, "passed", plan)]
    assert rows(engine, award_id, "suspension_limit") == [(0, "cancelled", add_months(s2, 6))]
    assert open_due(engine, new_id) == {
        "surveillance": add_months(recertified, 12),
        "recertification_audit": add_months(recertified, 30),
        "expiry": add_months(recertified, 36),
    }


def test_iso_suspension_of_six_months_ends_in_withdrawal(engine, registry, tmp_path):
    award_id, _ = _certified(engine, registry, tmp_path)
    suspended = add_months(ST0, 12)
    withdrawn = add_months(suspended, 6)
    Timeline(engine, registry).run_until(withdrawn + DAY)
    assert trail(engine, "award", award_id) == [
        ("suspend", "system", suspended),
        ("withdraw", "system", withdrawn),
    ]
    assert [s for s in sent(engine, f"award-{award_id}") if s[0] == "suspension_limit"] == [
        ("suspension_limit", "30d:applicant", withdrawn - 30 * DAY),
        ("suspension_limit", "7d:applicant", withdrawn - 7 * DAY),
        ("suspension_limit", "0d:applicant", withdrawn),
        ("suspension_limit", "0d:admin", withdrawn),
    ]
    assert open_due(engine, award_id) == {}


@pytest.mark.parametrize("restored", [True, False], ids=["restored", "lapsed"])
def test_iso_expired_certificate_restored_within_six_months_or_lapsed(
    engine, registry, tmp_path, restored
):
    award_id, cast = _certified(engine, registry, tmp_path)
    admin = cast.actor("admin")
    expires = add_months(ST0, 36)
    clock = Timeline(engine, registry)
    for when in (at(2027, 3, 1, 9), at(2028, 3, 1, 9)):
        clock.run_until(when)
        file_for(engine, registry, tmp_path, award_id, admin, when, "surveillance")
    clock.run_until(expires + DAY)
    assert award_of(engine, award_id).state == "expired"
    window = add_months(expires, 6)
    assert open_due(engine, award_id) == {"restoration_window": window}
    if not restored:
        clock.run_until(window + DAY)
        assert award_of(engine, award_id).state == "lapsed"
        assert trail(engine, "award", award_id)[-1] == (
            "close_restoration_window",
            "system",
            window,
        )
        return
    back = at(2029, 5, 1, 9)
    clock.run_until(back)
    with session_scope(engine) as s:
        award = s.get(Award, award_id)
        assert award is not None
        fire(s, award, "restore", actor=admin, registry=registry, now=back, comment="audit done")
    award = award_of(engine, award_id)
    # The restored cycle follows on from the old one. The surveillance count is not restarted:
    # the next counts from the last one held (March 2028), so it is due by the end of 2029.
    assert (award.state, award.expires_at) == ("active", add_months(expires, 36))
    assert open_due(engine, award_id) == {
        "surveillance": at(2030, 1, 1),
        "recertification_audit": add_months(award.expires_at, -6),
        "expiry": award.expires_at,
    }
