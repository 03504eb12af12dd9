"""The yearly report with figures on the pages: the holder files figures per pledge (with an optional
file, checked by the evidence store) on the award's page, which also charts the accepted figures; an
assessor or admin reviews it on /reports; the admin dashboard lists late, missing and not-accepted
reports; the directory filters by theme; the verify page and the certificate list the pledges."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from svqm.clock import FixedClock
from svqm.evidence import pledges as pledge_service
from svqm.evidence.models import Pledge
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award, ReportFile
from svqm.workflow.progress import PledgeProgress
from svqm.workflow.reports import AnnualReport
from tests.web.award_world import T0, app_client, issue_award, page_sign_in
from tests.web.pages_helpers import csrf_of, error_summary

pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)
FILED_AT = add_months(T0, 11)
PERIOD = str(FILED_AT.year)
EXE = b"MZ" + b"\x00" * 200


@pytest.fixture
def issued(engine, registry, tmp_path):
    return issue_award(engine, registry, tmp_path, name="Harbour Care Trust")


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(FILED_AT)) as c:
        yield c


def _pledges(engine, award_id: int) -> list[Pledge]:
    with Session(engine) as s:
        award = s.get(Award, award_id)
        assert award is not None
        return pledge_service.held_by(s, [award.application_id])


def _file_figures(client, issued, pledges, **extra):
    page = client.get(f"/dashboard/awards/{issued.award_id}")
    first, second = pledges[0], pledges[1]
    data = {
        "csrf_token": csrf_of(page.text),
        "period": PERIOD,
        "deadline": "annual_report",
        f"actual-{first.id}": "1,200",
        f"narrative-{first.id}": "Twelve hundred hours of training.",
        f"actual-{second.id}": "3",
        f"narrative-{second.id}": "Only the board so far",
        f"private-{second.id}": "yes",
    } | extra.pop("data", {})
    return client.post(
        f"/dashboard/awards/{issued.award_id}/figures",
        data=data,
        follow_redirects=False,
        **extra,
    )


def test_the_holder_files_figures_and_an_admin_accepts_them(client, issued, engine):
    pledges = _pledges(engine, issued.award_id)
    page_sign_in(client, issued.applicant)
    page = client.get(f"/dashboard/awards/{issued.award_id}")
    assert page.status_code == 200
    assert "Report your figures" in page.text
    for p in pledges:
        assert f'id="actual-{p.id}"' in page.text
    # The chart and table of the public page, here with no figure accepted yet.
    assert re.search(
        f'<svg class="app-chart" id="pledge-{pledges[0].id}-chart" role="img"', page.text
    )

    filed = _file_figures(
        client,
        issued,
        pledges,
        files=[
            ("file", ("figures.csv", b"hours,1200\n", "text/csv")),
            ("file", ("board.txt", b"Board minutes", "text/plain")),
        ],
    )
    assert filed.status_code == 303, error_summary(filed.text)
    shown = client.get(filed.headers["location"])
    assert "Figures filed" in shown.text
    assert "Awaiting review" in shown.text
    assert "figures.csv" in shown.text
    assert "board.txt" in shown.text
    with Session(engine) as s:
        report = s.exec(select(AnnualReport).where(AnnualReport.award_id == issued.award_id)).one()
        rows = s.exec(select(PledgeProgress).where(PledgeProgress.report_id == report.id)).all()
        files = s.exec(select(ReportFile).where(ReportFile.report_id == report.id)).all()
        # The policy's report workflow: a filed report waits in its initial state.
        assert report.state == "submitted"
        assert [(f.filename, f.size) for f in files] == [
            ("figures.csv", len(b"hours,1200\n")),
            ("board.txt", len(b"Board minutes")),
        ]
        assert {(r.pledge_id, r.actual, r.private) for r in rows} == {
            (pledges[0].id, 1200.0, False),
            (pledges[1].id, 3.0, True),
        }
    # The holder may not review, nor open the review pages.
    assert client.get("/reports").status_code == 403
    assert client.get(f"/reports/{report.id}").status_code == 403
    assert client.get(f"/reports/{report.id}/files/{files[0].id}").status_code == 403

    page_sign_in(client, issued.admin)
    queue = client.get("/reports")
    assert f'href="/reports/{report.id}"' in queue.text
    assert "Harbour Care Trust" in queue.text
    dashboard = client.get("/admin")
    assert 'data-kind="awaiting_review"' in dashboard.text
    review = client.get(f"/reports/{report.id}")
    assert review.status_code == 200
    assert "Only the board so far" in review.text  # private narratives are for the reviewer
    assert "1,200" in review.text or "1200" in review.text
    # The supporting files, for the reviewer only, each a download.
    for f, body in zip(files, (b"hours,1200\n", b"Board minutes"), strict=True):
        assert f'href="/reports/{report.id}/files/{f.id}"' in review.text
        download = client.get(f"/reports/{report.id}/files/{f.id}")
        assert download.status_code == 200
        assert download.content == body
        assert download.headers["content-disposition"].startswith("attachment;")
    assert client.get(f"/reports/{report.id}/files/999999").status_code == 404
    token = csrf_of(review.text)
    url = f"/reports/{report.id}/review"
    missing = client.post(url, data={"csrf_token": token, "decision": "more_information"})
    assert missing.status_code == 422
    assert "comment is required" in error_summary(missing.text)
    unchosen = client.post(url, data={"csrf_token": token})
    assert unchosen.status_code == 422
    assert "Choose whether to accept" in error_summary(unchosen.text)
    done = client.post(
        url, data={"csrf_token": token, "decision": "accepted"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert "Report accepted" in client.get(done.headers["location"]).text
    again = client.post(url, data={"csrf_token": token, "decision": "accepted"})
    assert again.status_code == 409
    assert 'data-kind="awaiting_review"' not in client.get("/admin").text

    public = client.get(f"/organisations/{issued.org.id}")
    assert f"{PERIOD}" in public.text
    assert "Only the board" not in public.text
    page_sign_in(client, issued.applicant)
    holder = client.get(f"/dashboard/awards/{issued.award_id}")
    assert "Accepted" in holder.text
    # The holder's page charts the accepted figure, as the public page does.
    chart = re.search(
        f'<svg class="app-chart" id="pledge-{pledges[0].id}-chart".*?</svg>', holder.text, re.S
    )
    assert chart and "1,200" in chart.group(0) or chart and "1200" in chart.group(0)


def test_more_information_shows_the_comment_and_the_period_can_be_filed_again(
    client, issued, engine
):
    pledges = _pledges(engine, issued.award_id)
    page_sign_in(client, issued.applicant)
    assert _file_figures(client, issued, pledges).status_code == 303
    with Session(engine) as s:
        report_id = s.exec(
            select(AnnualReport.id).where(AnnualReport.award_id == issued.award_id)
        ).one()
    page_sign_in(client, issued.admin)
    review = client.get(f"/reports/{report_id}")
    sent = client.post(
        f"/reports/{report_id}/review",
        data={
            "csrf_token": csrf_of(review.text),
            "decision": "more_information",
            "comment": "Say how the hours were counted.",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert 'data-kind="more_information"' in client.get("/admin").text
    page_sign_in(client, issued.applicant)
    holder = client.get(f"/dashboard/awards/{issued.award_id}")
    assert "More information needed" in holder.text
    assert "Say how the hours were counted." in holder.text
    assert _file_figures(client, issued, pledges).status_code == 303
    page_sign_in(client, issued.admin)
    # Filed again: it awaits review, and the sent-back one is no longer chased.
    dashboard = client.get("/admin")
    assert 'data-kind="more_information"' not in dashboard.text
    assert 'data-kind="awaiting_review"' in dashboard.text


@pytest.mark.parametrize(
    ("data", "files", "status", "message"),
    [
        ({"actual-{first}": "lots"}, None, 422, "Enter the figure as a number"),
        (
            {
                "actual-{first}": "",
                "actual-{second}": "",
                "narrative-{second}": "",
                "narrative-{first}": "",
            },
            None,
            422,
            "Enter at least one pledge's figure",
        ),
        (
            {"actual-{first}": "", "narrative-{first}": "words"},
            None,
            422,
            "Enter the figure the narrative is about",
        ),
        ({"period": "1900"}, None, 422, "outside this award's years"),
        ({}, {"file": ("report.pdf", EXE, "application/pdf")}, 415, ""),
        ({}, {"file": ("empty.txt", b"", "text/plain")}, 422, "The file is empty"),
    ],
    ids=["not-a-number", "nothing", "narrative-alone", "old-period", "executable", "empty-file"],
)
def test_refused_figures_say_what_is_wrong_and_keep_what_was_typed(
    client, issued, engine, data, files, status, message
):
    pledges = _pledges(engine, issued.award_id)
    ids = {"first": pledges[0].id, "second": pledges[1].id}
    page_sign_in(client, issued.applicant)
    sent = {k.format(**ids): v for k, v in data.items()}
    extra = {"files": files} if files else {}
    refused = _file_figures(client, issued, pledges, data=sent, **extra)
    assert refused.status_code == status
    summary = error_summary(refused.text)
    assert summary.startswith("There is a problem")
    assert message in summary
    with Session(engine) as s:
        assert (
            s.exec(select(AnnualReport).where(AnnualReport.award_id == issued.award_id)).all() == []
        )


def test_another_organisation_cannot_file_figures_for_the_award(
    client, issued, engine, registry, tmp_path
):
    other = issue_award(engine, registry, tmp_path, name="Other Trust")
    pledges = _pledges(engine, issued.award_id)
    page_sign_in(client, other.applicant)
    page = client.get(f"/dashboard/awards/{other.award_id}")
    sent = client.post(
        f"/dashboard/awards/{issued.award_id}/figures",
        data={"csrf_token": csrf_of(page.text), "period": PERIOD, f"actual-{pledges[0].id}": "1"},
    )
    assert sent.status_code == 404


def test_the_directory_filters_by_theme(client, issued, engine):
    pledges = _pledges(engine, issued.award_id)
    held = {p.theme for p in pledges}
    page = client.get("/awards")
    assert 'id="theme"' in page.text
    hit = client.get("/awards", params={"theme": sorted(held)[0]})
    assert "Harbour Care Trust" in hit.text
    miss = client.get("/awards", params={"theme": "no-such-theme"})
    assert "Harbour Care Trust" not in miss.text
    # Every option reads differently: a name two schemes' themes share says whose each is.
    select = page.text.split('id="theme"')[1].split("</select>")[0]
    names = re.findall(r'<option value="[^"]+"[^>]*>([^<]+)</option>', select)
    assert len(names) == len(set(names)) > 1
    assert "Health and wellbeing (Social Value Quality Mark)" in names


def test_the_verify_page_and_the_certificate_list_the_pledges(client, issued, engine):
    pledges = _pledges(engine, issued.award_id)
    verify = client.get(f"/awards/{issued.award_id}/verify")
    table = re.search(r'<table class="govuk-table" id="pledge-list">.*?</table>', verify.text, re.S)
    assert table
    for p in pledges:
        assert p.title in table.group(0)
    assert all(p.description not in table.group(0) for p in pledges if p.description)
    certificate = client.get(f"/awards/{issued.award_id}/certificate")
    assert all(p.title in certificate.text for p in pledges)
