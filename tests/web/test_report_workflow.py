"""A yearly report's review runs through the policy's report workflow (filed, more information
asked, filed again, accepted), each step an audit event of the report, its emails in the outbox;
a report carries several supporting files (pages and API multipart); late and missing are read off
each filing's time against the deadline row it answers, in the region the dashboard is filtered to."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.evidence import pledges as pledge_service
from svqm.notify.models import OutboxMessage
from svqm.notify.sweep import sweep
from svqm.workflow.deadlines import add_months
from svqm.workflow.evidence_gc import collect
from svqm.workflow.models import AnnualReport, AuditEvent, Award, ReportFile
from svqm.workflow.schedule import ScheduledDeadline
from tests.factories import store_at
from tests.web.award_world import BASE_URL, T0, app_client, bearer, issue_award, page_sign_in
from tests.web.pages_helpers import csrf_of

pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)
ON_TIME = add_months(T0, 11)
LATE = add_months(T0, 12) + timedelta(days=3)
EXE = b"MZ" + b"\x00" * 200


@pytest.fixture
def issued(engine, registry, tmp_path):
    return issue_award(engine, registry, tmp_path, name="Tyne Care Trust")


def _pledge_ids(engine, award_id: int) -> list[int]:
    with Session(engine) as s:
        award = s.get(Award, award_id)
        assert award is not None
        return [p.id or 0 for p in pledge_service.held_by(s, [award.application_id])]


def _figures(pledges: list[int], actual: float = 5) -> list[dict[str, object]]:
    return [
        {"pledge_id": pid, "actual": actual, "narrative": "Counted at the gate"} for pid in pledges
    ]


def _events(engine, report_id: int) -> list[tuple[str, str, str, str]]:
    with Session(engine) as s:
        rows = s.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_kind == "report", AuditEvent.subject_id == report_id)
            .order_by(col(AuditEvent.seq))
        ).all()
        return [(e.trigger, e.source, e.dest, e.actor_role) for e in rows]


def _mail(engine, report_id: int) -> list[tuple[str, list[str], dict[str, object]]]:
    with Session(engine) as s:
        rows = s.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.key).startswith(f"event:report-{report_id}:"))
            .order_by(col(OutboxMessage.id))
        ).all()
        return [
            (r.key.split(":")[-1], [a for a in r.to_addrs.split(", ") if a], json.loads(r.context))
            for r in rows
        ]


def test_the_review_runs_through_the_policys_report_workflow(engine, registry, tmp_path, issued):
    pledges = _pledge_ids(engine, issued.award_id)
    with app_client(engine, registry, tmp_path, FixedClock(ON_TIME)) as client:
        holder = bearer(client, issued.applicant)
        admin = bearer(client, issued.admin)
        url = f"/api/v1/awards/{issued.award_id}/reports"
        filed = client.post(
            url, headers=holder, json={"period": str(ON_TIME.year), "progress": _figures(pledges)}
        )
        assert filed.status_code == 201, filed.text
        report = filed.json()
        assert (report["state"], report["review"]) == ("submitted", "awaiting_review")
        rid = report["id"]
        review = f"{url}/{rid}/review"
        # More information needs the reviewer's words (the policy's has_comment guard).
        bare = client.post(review, headers=admin, json={"decision": "more_information"})
        assert bare.status_code == 422
        asked = client.post(
            review,
            headers=admin,
            json={"decision": "more_information", "comment": "Say how you counted."},
        )
        assert asked.status_code == 200, asked.text
        assert asked.json()["state"] == "more_information"
        # The holder files the period again: the same report, its figures replaced.
        again = client.post(
            url,
            headers=holder,
            json={"period": str(ON_TIME.year), "progress": _figures(pledges[:1], 7)},
        )
        assert again.status_code == 201, again.text
        assert (again.json()["id"], again.json()["state"]) == (rid, "resubmitted")
        assert [f["actual"] for f in again.json()["progress"]] == [7]
        # The holder may not review its own report.
        own = client.post(review, headers=holder, json={"decision": "accepted"})
        assert own.status_code == 403
        accepted = client.post(review, headers=admin, json={"decision": "accepted"})
        assert accepted.status_code == 200, accepted.text
        assert (accepted.json()["state"], accepted.json()["review"]) == ("accepted", "accepted")
        twice = client.post(review, headers=admin, json={"decision": "accepted"})
        assert twice.status_code == 409
        public = client.get(f"/api/v1/organisations/{issued.org.id}").json()
    assert _events(engine, rid) == [
        ("file_figures", "submitted", "submitted", "applicant"),
        ("ask_about_report", "submitted", "more_information", "admin"),
        ("refile_report", "more_information", "resubmitted", "applicant"),
        ("accept_report", "resubmitted", "accepted", "admin"),
    ]
    with Session(engine) as s:
        reports = s.exec(select(AnnualReport).where(AnnualReport.award_id == issued.award_id)).all()
        assert [(r.state, r.published) for r in reports] == [("accepted", True)]
        # While it waited for review its review deadline ran; it stops once accepted.
        rows = s.exec(
            select(ScheduledDeadline).where(
                ScheduledDeadline.subject_kind == "report", ScheduledDeadline.subject_id == rid
            )
        ).all()
        assert {r.kind for r in rows} == {"report_review", "report_reply"}
        assert all(r.status != "open" for r in rows)
    figures = [g for p in public["pledges"] for g in p["progress"]]
    assert [g["actual"] for g in figures] == [7]
    mail = _mail(engine, rid)
    roles = [(role, ctx["subject"]) for role, _, ctx in mail]
    assert roles[0][0] == "assessor"  # told of the filed report
    assert "filed, to review" in str(roles[0][1])
    asked_mail = next(ctx for role, _, ctx in mail if ctx["step"] == "Ask for more information")
    assert asked_mail["comment"] == "Say how you counted."
    assert asked_mail["audience"] == "applicant"
    assert asked_mail["path"] == f"/dashboard/awards/{issued.award_id}#reports"
    assert any(ctx["step"] == "Accept the figures" for _, _, ctx in mail)
    assert any(
        role == "assessor" and ctx["step"] == "File the figures again" for role, _, ctx in mail
    )
    assessor_to = mail[0][1]
    assert assessor_to
    assert issued.applicant.email not in assessor_to


def test_a_report_sent_back_is_offered_again_on_the_award_page(engine, registry, tmp_path, issued):
    """Before: after more information the figures form offered the next year's period, so
    filing again made a new report and the one sent back waited for ever."""
    pledges = _pledge_ids(engine, issued.award_id)
    with app_client(engine, registry, tmp_path, FixedClock(ON_TIME)) as client:
        holder = bearer(client, issued.applicant)
        admin = bearer(client, issued.admin)
        url = f"/api/v1/awards/{issued.award_id}/reports"
        period = str(ON_TIME.year)
        filed = client.post(
            url, headers=holder, json={"period": period, "progress": _figures(pledges[:1], 12.5)}
        )
        assert filed.status_code == 201, filed.text
        page_sign_in(client, issued.applicant)
        before = client.get(f"/dashboard/awards/{issued.award_id}").text
        assert 'id="figures-sent-back"' not in before
        asked = client.post(
            f"{url}/{filed.json()['id']}/review",
            headers=admin,
            json={"decision": "more_information", "comment": "Say how you counted."},
        )
        assert asked.status_code == 200, asked.text
        page = client.get(f"/dashboard/awards/{issued.award_id}").text
        form = page.split('id="figures"', 1)[1].split("</form>", 1)[0]
        assert "Say how you counted." in form.split('id="figures-sent-back"', 1)[1]
        assert re.search(rf'id="figures-period" name="period"[^>]*value="{period}"', form)
        assert re.search(rf'id="actual-{pledges[0]}"[^>]*value="12.5"', form)
        assert "Counted at the gate" in form
        # Sent as the form offers it, it answers the report sent back, not a new one.
        again = client.post(
            f"/dashboard/awards/{issued.award_id}/figures",
            data={
                "csrf_token": csrf_of(page),
                "period": period,
                "deadline": re.search(r'name="deadline" value="([^"]+)"', form).group(1),
                f"actual-{pledges[0]}": "13",
                f"narrative-{pledges[0]}": "Counted at both gates.",
            },
            follow_redirects=False,
        )
        assert again.status_code == 303, again.text
    with Session(engine) as s:
        reports = s.exec(select(AnnualReport).where(AnnualReport.award_id == issued.award_id)).all()
        assert [(r.period, r.state) for r in reports] == [(period, "resubmitted")]


def test_an_internal_comment_stays_out_of_the_holders_email(engine, registry, tmp_path, issued):
    pledges = _pledge_ids(engine, issued.award_id)
    with app_client(engine, registry, tmp_path, FixedClock(ON_TIME)) as client:
        url = f"/api/v1/awards/{issued.award_id}/reports"
        rid = client.post(
            url,
            headers=bearer(client, issued.applicant),
            json={"period": str(ON_TIME.year), "progress": _figures(pledges)},
        ).json()["id"]
        asked = client.post(
            f"{url}/{rid}/review",
            headers=bearer(client, issued.admin),
            json={
                "decision": "more_information",
                "comment": "Staff note: check with the council",
                "visibility": "internal",
            },
        )
        assert asked.status_code == 200, asked.text
    told = [ctx for role, _, ctx in _mail(engine, rid) if role == "applicant"]
    assert told
    assert all("council" not in json.dumps(ctx) for ctx in told)


def test_api_multipart_files_figures_with_several_files(engine, registry, tmp_path, issued):
    pledges = _pledge_ids(engine, issued.award_id)
    with app_client(engine, registry, tmp_path, FixedClock(ON_TIME)) as client:
        holder = bearer(client, issued.applicant)
        url = f"/api/v1/awards/{issued.award_id}/reports"
        data = {"period": str(ON_TIME.year), "figures": json.dumps(_figures(pledges))}
        bad = client.post(
            url,
            headers=holder,
            data=data,
            files=[
                ("file", ("a.txt", b"one", "text/plain")),
                ("file", ("x.exe", EXE, "text/plain")),
            ],
        )
        assert bad.status_code in (415, 422), bad.text
        with Session(engine) as s:
            assert s.exec(select(AnnualReport)).all() == []
            assert s.exec(select(ReportFile)).all() == []
        broken = client.post(
            url,
            headers=holder,
            data=data | {"figures": "[{"},
            files=[("file", ("a.txt", b"one", "text/plain"))],
        )
        assert broken.status_code == 422
        assert "figures" in broken.text
        filed = client.post(
            url,
            headers=holder,
            data=data,
            files=[
                ("file", ("counts.csv", b"hours,5\n", "text/csv")),
                ("file", ("photo-notes.txt", b"Notes", "text/plain")),
            ],
        )
        assert filed.status_code == 201, filed.text
        body = filed.json()
        assert [f["filename"] for f in body["files"]] == ["counts.csv", "photo-notes.txt"]
        assert body["state"] == "submitted"
        # The files are never public.
        public = client.get(f"/organisations/{issued.org.id}").text
        assert "counts.csv" not in public
        assert "counts.csv" not in client.get(f"/api/v1/organisations/{issued.org.id}").text
    # The refused filing left no blob behind; the store's clean-up keeps the supporting files.
    with Session(engine) as s:
        found = collect(s, store_at(tmp_path / "evidence"), apply=False, min_age_seconds=0)
    assert found.orphan_blobs == []
    assert found.kept == 2


def test_late_and_missing_come_from_the_deadline_rows_and_the_region(
    engine, registry, tmp_path, issued
):
    with session_scope(engine) as s:
        org = s.get(type(issued.org), issued.org.id)
        assert org is not None
        org.region = "North East and North Cumbria"
        s.add(org)
    regions = ["North East and North Cumbria", "Cornwall and the Isles of Scilly"]
    sweep(engine, registry, now=LATE, base_url=BASE_URL)
    with app_client(engine, registry, tmp_path, FixedClock(LATE), REGIONS=regions) as client:
        page_sign_in(client, issued.admin)

        def rows(region: str = "") -> dict[str, str]:
            text = client.get("/admin", params={"region": region} if region else None).text
            found = re.findall(
                r'<tr class="govuk-table__row" data-kind="(\w+)">(.*?)</tr>', text, re.S
            )
            return {kind: row for kind, row in found if "Tyne Care Trust" in row}

        missing = rows()
        assert set(missing) == {"missing"}
        assert "nothing filed" in missing["missing"]
        assert set(rows(regions[0])) == {"missing"}
        assert rows(regions[1]) == {}

        page_sign_in(client, issued.applicant)
        page = client.get(f"/dashboard/awards/{issued.award_id}")
        pledges = _pledge_ids(engine, issued.award_id)
        filed = client.post(
            f"/dashboard/awards/{issued.award_id}/figures",
            data={
                "csrf_token": csrf_of(page.text),
                "period": str(LATE.year),
                "deadline": "annual_report",
            }
            | {f"actual-{pid}": "4" for pid in pledges},
            follow_redirects=False,
        )
        assert filed.status_code == 303, filed.text[:2000]
        page_sign_in(client, issued.admin)
        late = rows()
        assert set(late) == {"late", "awaiting_review"}
        assert "filed" in late["late"]
        assert rows(regions[1]) == {}
    with Session(engine) as s:
        report = s.exec(select(AnnualReport)).one()
        row = s.get(ScheduledDeadline, report.deadline_id)
        assert row is not None
        assert row.kind == "annual_report"
        assert report.submitted_at > row.due_at
