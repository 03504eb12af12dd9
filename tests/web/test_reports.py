"""Annual reports through the API and the award page: filing on time meets the deadline, a bad
file is refused with its status and stores nothing, and only the holder (and admins) may file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from svqm.clock import FixedClock
from svqm.db import session_scope, writer
from svqm.notify.sweep import sweep
from svqm.workflow.deadlines import add_months
from svqm.workflow.reports import AnnualReport
from tests.factories import make_org
from tests.notify.cycles import decide
from tests.web.award_world import (
    BASE_URL,
    T0,
    app_client,
    award_rows,
    bearer,
    issue_award,
    page_sign_in,
)
from tests.web.pages_helpers import csrf_of, error_summary, make_account

EXE = b"MZ\x90\x00" + b"\0" * 300
# Eleven months in: the first report is due within the month.
FILED_AT = add_months(T0, 11)


@pytest.fixture
def issued(engine, registry, tmp_path):
    return issue_award(engine, registry, tmp_path, name="Harbour Care Trust")


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(
        engine, registry, tmp_path, FixedClock(FILED_AT), MAX_UPLOAD_BYTES=100_000
    ) as c:
        yield c


def _reports(engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(AnnualReport)).one()


def _blobs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "evidence" / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _report_rows(engine, award_id: int) -> list[tuple[int, str]]:
    return [
        (r.occurrence, r.status) for r in award_rows(engine, award_id) if r.kind == "annual_report"
    ]


def test_filing_on_time_meets_the_deadline_and_opens_the_next_year(client, engine, issued):
    headers = bearer(client, issued.applicant)
    assert _report_rows(engine, issued.award_id) == [(0, "open")]
    response = client.post(
        f"/api/v1/awards/{issued.award_id}/reports",
        headers=headers,
        data={"period": "2026-27", "title": "Our first year"},
        files={"file": ("report.txt", b"What we did this year.\n", "text/plain")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["period"] == "2026-27"
    assert body["title"] == "Our first year"
    assert body["size"] == len(b"What we did this year.\n")
    assert body["content_type"] == "text/plain"
    assert len(body["sha256"]) == 64
    assert body["award_state"] == "active"

    rows = [r for r in award_rows(engine, issued.award_id) if r.kind == "annual_report"]
    assert [(r.occurrence, r.status) for r in rows] == [(0, "met"), (1, "open")]
    assert rows[0].closed_at == FILED_AT
    assert rows[1].due_at == add_months(T0, 24)

    listed = client.get(f"/api/v1/awards/{issued.award_id}/reports", headers=headers)
    assert [r["id"] for r in listed.json()] == [body["id"]]


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("empty.txt", b"", 422, "invalid_upload"),
        ("report.pdf", EXE, 415, "unsupported_file_type"),
        ("big.csv", b"a,b,c\n" * 30_000, 413, "file_too_large"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_stored(
    client, engine, issued, tmp_path, name, content, status, code
):
    response = client.post(
        f"/api/v1/awards/{issued.award_id}/reports",
        headers=bearer(client, issued.applicant),
        data={"period": "2026-27"},
        files={"file": (name, content, "application/octet-stream")},
    )
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert _reports(engine) == 0
    assert _blobs(tmp_path) == []
    assert _report_rows(engine, issued.award_id) == [(0, "open")]


@pytest.mark.parametrize(
    ("data", "files"),
    [
        ({}, {"file": ("r.txt", b"report\n", "text/plain")}),
        ({"period": "../../etc"}, {"file": ("r.txt", b"report\n", "text/plain")}),
        ({"period": "2026"}, None),
    ],
    ids=["no-period", "bad-period", "no-file"],
)
def test_a_bad_form_is_invalid_input(client, engine, issued, data, files):
    response = client.post(
        f"/api/v1/awards/{issued.award_id}/reports",
        headers=bearer(client, issued.applicant),
        data=data,
        files=files or {"other": ("x.txt", b"x", "text/plain")},
    )
    assert response.status_code == 422, response.text
    assert set(response.json()) >= {"error", "detail"}
    assert _reports(engine) == 0


def test_only_the_holder_and_admins_file_reports(client, engine, issued):
    with Session(writer(engine), expire_on_commit=False) as s:
        stranger = make_account(s, "applicant", make_org(s, "Elsewhere Ltd"))
        panel = make_account(s, "panel")
    path = f"/api/v1/awards/{issued.award_id}/reports"
    upload = {"data": {"period": "2026-27"}, "files": {"file": ("r.txt", b"r\n", "text/plain")}}
    assert client.post(path, headers=bearer(client, stranger), **upload).status_code == 404
    assert client.get(path, headers=bearer(client, stranger)).status_code == 404
    assert client.post(path, headers=bearer(client, panel), **upload).status_code == 403
    assert client.post(path, **upload).status_code == 401
    assert _reports(engine) == 0
    assert client.post(path, headers=bearer(client, issued.admin), **upload).status_code == 201


# --- the award page ---------------------------------------------------------------------------


def test_the_award_page_files_the_report_and_lists_it(client, engine, issued):
    page_sign_in(client, issued.applicant)
    dashboard = client.get("/dashboard")
    assert f'href="/dashboard/awards/{issued.award_id}"' in dashboard.text
    page = client.get(f"/dashboard/awards/{issued.award_id}")
    assert page.status_code == 200
    assert "File this year's report" in page.text
    assert 'value="2026-27"' in page.text  # the reporting year that ends at the due date
    assert "No annual report has been filed" in page.text

    response = client.post(
        f"/dashboard/awards/{issued.award_id}/reports",
        data={"csrf_token": csrf_of(page.text), "period": "2026-27", "title": "Year one"},
        files={"file": ("our-year.txt", b"What we did.\n", "text/plain")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:2000]
    shown = client.get(response.headers["location"])
    assert "Annual report filed" in shown.text
    assert "our-year.txt" in shown.text
    assert "Year one" in shown.text
    assert ">Met<" in shown.text
    assert _report_rows(engine, issued.award_id) == [(0, "met"), (1, "open")]


@pytest.mark.parametrize(
    ("name", "content", "status", "message"),
    [
        ("empty.txt", b"", 422, "The file is empty"),
        ("report.pdf", EXE, 415, ""),
        ("", b"", 422, "Choose the report file to upload"),
    ],
    ids=["empty", "executable", "none-chosen"],
)
def test_a_bad_file_on_the_page_shows_the_error_summary(
    client, engine, issued, tmp_path, name, content, status, message
):
    page_sign_in(client, issued.applicant)
    page = client.get(f"/dashboard/awards/{issued.award_id}")
    response = client.post(
        f"/dashboard/awards/{issued.award_id}/reports",
        data={"csrf_token": csrf_of(page.text), "period": "2026-27", "title": "Kept"},
        files={"file": (name, content, "application/octet-stream")},
    )
    assert response.status_code == status
    summary = error_summary(response.text)
    assert summary.startswith("There is a problem")
    assert message in summary
    assert 'href="#report-file"' in response.text
    assert 'class="govuk-file-upload govuk-file-upload--error"' in response.text
    assert 'value="Kept"' in response.text  # what was typed survives the refusal
    assert _reports(engine) == 0
    assert _blobs(tmp_path) == []


def test_a_bad_period_on_the_page_points_at_the_period(client, engine, issued):
    page_sign_in(client, issued.applicant)
    page = client.get(f"/dashboard/awards/{issued.award_id}")
    response = client.post(
        f"/dashboard/awards/{issued.award_id}/reports",
        data={"csrf_token": csrf_of(page.text), "period": "<script>"},
        files={"file": ("r.txt", b"report\n", "text/plain")},
    )
    assert response.status_code == 422
    assert 'href="#period"' in response.text
    assert "Enter the period the report covers" in error_summary(response.text)
    assert "<script>" not in response.text.split("</header>", 1)[1]
    assert _reports(engine) == 0


def test_the_award_page_is_the_holders_only(client, engine, issued):
    with Session(writer(engine), expire_on_commit=False) as s:
        stranger = make_account(s, "applicant", make_org(s, "Elsewhere Ltd"))
    page_sign_in(client, stranger)
    assert client.get(f"/dashboard/awards/{issued.award_id}").status_code == 404
    token = csrf_of(client.get("/dashboard").text)
    refused = client.post(
        f"/dashboard/awards/{issued.award_id}/reports",
        data={"csrf_token": token, "period": "2026-27"},
        files={"file": ("r.txt", b"report\n", "text/plain")},
    )
    assert refused.status_code == 404
    assert _reports(engine) == 0


def test_an_overdue_report_says_so_and_filing_it_restores_good_standing(
    engine, registry, tmp_path, issued
):
    late = add_months(T0, 12) + timedelta(days=2)
    sweep(engine, registry, now=late, base_url=BASE_URL)
    with app_client(engine, registry, tmp_path, FixedClock(late)) as client:
        page_sign_in(client, issued.applicant)
        page = client.get(f"/dashboard/awards/{issued.award_id}")
        assert "Your annual report is overdue" in page.text
        response = client.post(
            f"/dashboard/awards/{issued.award_id}/reports",
            data={"csrf_token": csrf_of(page.text), "period": "2026-27"},
            files={"file": ("late.txt", b"Sorry it is late.\n", "text/plain")},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text[:2000]
        shown = client.get(response.headers["location"])
        assert "late.txt" in shown.text
        assert "Your annual report is overdue" not in shown.text


def test_a_scheme_with_two_filings_asks_which_one(engine, registry, tmp_path):
    """B Corp-style: the annual fee and the updated assessment are both filings; the API and the
    page say which one a document is for, and refuse to guess."""
    award_id, cast = decide(
        engine, registry, tmp_path, None, scheme="bcorp-style", level="certified",
        state="verified", trigger="certify", role="admin", at=T0,
    )  # fmt: skip
    with session_scope(engine) as s:
        holder = make_account(s, "applicant", cast.org)
    with app_client(engine, registry, tmp_path, FixedClock(add_months(T0, 11))) as client:
        headers = bearer(client, holder)
        url = f"/api/v1/awards/{award_id}/reports"
        doc = {"file": ("fee.txt", b"Fee paid.\n", "text/plain")}
        unsaid = client.post(url, data={"period": "2026"}, files=doc, headers=headers)
        assert unsaid.status_code == 422
        assert "annual_fee, updated_assessment" in unsaid.json()["detail"]
        assert _reports(engine) == 0
        fee = client.post(
            url, data={"period": "2026", "deadline": "annual_fee"}, files=doc, headers=headers
        )
        assert fee.status_code == 201, fee.text
        assert fee.json()["deadline_kind"] == "annual_fee"
        assert ("annual_fee", "met") in {(r.kind, r.status) for r in award_rows(engine, award_id)}

        page_sign_in(client, holder)
        page = client.get(f"/dashboard/awards/{award_id}")
        assert "What are you filing?" in page.text
        assert page.text.count('name="deadline" type="radio"') == 2
        form = {"csrf_token": csrf_of(page.text), "period": "2026"}
        report = {"file": ("assessment.txt", b"Updated assessment.\n", "text/plain")}
        unchosen = client.post(f"/dashboard/awards/{award_id}/reports", data=form, files=report)
        assert unchosen.status_code == 422
        assert "Choose what you are filing" in error_summary(unchosen.text)
        assert 'href="#deadline"' in unchosen.text
        chosen = client.post(
            f"/dashboard/awards/{award_id}/reports",
            data={**form, "deadline": "updated_assessment"},
            files=report,
            follow_redirects=False,
        )
        assert chosen.status_code == 303, chosen.text[:2000]
        shown = client.get(chosen.headers["location"]).text
        assert "Updated assessment" in shown
        assert _reports(engine) == 2


def test_a_period_outside_the_award_or_filed_twice_is_refused(client, engine, issued):
    """Before: a report for 1900, and a second one for the same period, were accepted."""
    headers = bearer(client, issued.applicant)

    def file(period):
        return client.post(
            f"/api/v1/awards/{issued.award_id}/reports",
            headers=headers,
            data={"period": period},
            files={"file": ("report.txt", f"Our year {period}.\n".encode(), "text/plain")},
        )

    old = file("1900")
    assert old.status_code == 422, old.text
    assert "outside this award's years" in old.json()["detail"]
    assert file("2026").status_code == 201
    twice = file("2026")
    assert twice.status_code == 409, twice.text
    assert "already filed" in twice.json()["detail"]
    assert _reports(engine) == 1


def test_an_award_shows_its_version_for_the_next_event(client, engine, issued):
    """Before: an award's `version` was not in its API body, so no client could send it."""
    award = client.get(f"/api/v1/awards/{issued.award_id}").json()
    assert isinstance(award["version"], int)
    admin = bearer(client, issued.admin)
    path = f"/api/v1/awards/{issued.award_id}/events/suspend"
    stale = client.post(
        path, headers=admin, json={"comment": "checking", "version": award["version"] + 1}
    )
    assert stale.status_code == 409, stale.text
    done = client.post(
        path, headers=admin, json={"comment": "checking", "version": award["version"]}
    )
    assert done.status_code == 200, done.text
