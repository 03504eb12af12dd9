"""The admin dashboard's figures and charts against a world made for it, and the CSV downloads."""

from __future__ import annotations

import html as html_lib
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session

from svqm.clock import FixedClock
from svqm.db import session_scope, writer
from svqm.reporting import dashboard, exports
from svqm.workflow.schedule import ScheduledDeadline
from tests.factories import make_org, make_user
from tests.web.award_world import app_client, page_sign_in
from tests.web.pages_helpers import make_account
from tests.workflow.harness import Cast, application_in, award_in

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SVQM, HEALTH = "Social Value Quality Mark", "Social Value Quality Mark Health Award"


def build_world(engine, registry) -> None:
    """Applications, awards, assessors and open deadlines whose counts the tests know."""
    with session_scope(engine) as s:
        org = make_org(s)
        applicant = make_user(s, "applicant", org)
        panel, admin = make_user(s, "panel"), make_user(s, "admin")
        people = {}
        for key, name, active in [
            ("asha", "Asha Assessor", True),
            ("ben", "Ben Assessor", True),
            ("cy", "Cy Gone", False),
            ("dee", "Dee Idle", True),
        ]:
            people[key] = make_user(s, "assessor")
            people[key].name, people[key].active = name, active

        def cast(assessor: str | None) -> Cast:
            return Cast(org, applicant, people.get(assessor), panel, admin)  # type: ignore[arg-type]

        for who, scheme, state in [
            (None, "svqm", "draft"),
            (None, "svqm", "draft"),
            ("asha", "svqm", "submitted"),
            ("asha", "svqm", "under_review"),
            ("asha", "svqm", "under_review"),
            ("asha", "svqm", "withdrawn"),  # terminal: not part of Asha's workload
            ("ben", "svqm", "under_review"),
            ("ben", "svqm-health", "under_review"),
            ("ben", "svqm", "changes_requested"),
            ("cy", "svqm", "recommended_award"),
        ]:
            level = "health_bronze" if scheme == "svqm-health" else "bronze"
            application_in(s, registry, cast(who), scheme=scheme, level=level, state=state, at=NOW)
        # Each award comes with the application it was issued from ("awarded", no assessor).
        for scheme, level, state in [
            ("svqm", "bronze", "active"),
            ("svqm", "bronze", "report_due"),
            ("svqm", "bronze", "withdrawn"),
            ("svqm", "silver", "suspended"),
            ("svqm", "silver", "active"),
            ("svqm-health", "health_bronze", "upgrade_eligible"),
        ]:
            issued = NOW - timedelta(days=100)
            award_in(
                s,
                registry,
                cast(None),
                scheme=scheme,
                level=level,
                state=state,
                issued=issued,
                at=NOW,
            )
        day = timedelta(days=1)
        for n, (scheme, kind, due, status) in enumerate(
            [
                ("svqm", "annual_report", NOW - 10 * day, "open"),
                ("svqm", "annual_report", NOW, "open"),  # due this moment: overdue
                ("svqm", "annual_report", NOW + 3 * day, "open"),
                ("svqm", "annual_report", NOW - 5 * day, "met"),  # closed rows do not count
                ("svqm", "renewal", NOW + 7 * day, "open"),
                ("svqm", "renewal", NOW + 7 * day + timedelta(seconds=1), "open"),
                ("svqm", "renewal", NOW + 30 * day, "open"),
                ("svqm", "renewal", NOW + 90 * day, "open"),
                ("svqm", "renewal", NOW + 1 * day, "cancelled"),
                ("svqm-health", "assessor_review", NOW - 1 * day, "open"),
                ("svqm-health", "assessor_review", NOW + 31 * day, "open"),
            ]
        ):
            s.add(
                ScheduledDeadline(
                    subject_kind="award" if kind != "assessor_review" else "application",
                    subject_id=1000 + n,
                    organisation_id=org.id,
                    scheme=scheme,
                    kind=kind,
                    due_at=due,
                    wake_at=due if status == "open" else None,
                    status=status,
                    created_at=NOW - 200 * day,
                )
            )


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


@pytest.fixture
def admin(engine):
    with Session(writer(engine), expire_on_commit=False) as s:
        return make_account(s, "admin")


def _text(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def table(page: str, table_id: str) -> list[list[str]]:
    """The body rows of a table, as the text of each cell."""
    found = re.search(rf'<table[^>]* id="{table_id}".*?</table>', page, re.S)
    assert found, f"no table {table_id}"
    body = found.group(0).split("<tbody", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [[_text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)] for r in rows]


def chart(page: str, chart_id: str) -> str:
    found = re.search(rf'<svg[^>]* id="{chart_id}".*?</svg>', page, re.S)
    assert found, f"no chart {chart_id}"
    return found.group(0)


def bars(svg: str) -> list[tuple[str, int]]:
    """(label, value) of each bar, read from the chart's own text."""
    labels = re.findall(r'<text[^>]*text-anchor="end"[^>]*>(.*?)</text>', svg, re.S)
    values = re.findall(r'<text[^>]*font-weight="bold"[^>]*>(.*?)</text>', svg, re.S)
    assert svg.count('class="app-chart__bar"') == len(labels) == len(values)
    return [(_text(label), int(v)) for label, v in zip(labels, values, strict=True)]


def test_the_dashboard_shows_the_worlds_numbers(client, engine, registry, admin):
    build_world(engine, registry)
    page_sign_in(client, admin)
    page = client.get("/admin")
    assert page.status_code == 200
    html = page.text
    titles = registry.get("svqm").policy.workflows.application

    assert table(html, "table-awards") == [
        ["Bronze", SVQM, "2", "3"],
        ["Silver", SVQM, "1", "2"],
        ["Health Bronze", HEALTH, "1", "1"],
    ]
    # Each bar: its level, and under it its scheme's name (not the scheme's id).
    awards_chart = chart(html, "chart-awards")
    assert bars(awards_chart) == [
        (f"Bronze {SVQM}", 2),
        (f"Silver {SVQM}", 1),
        (f"Health Bronze {HEALTH}", 1),
    ]
    assert re.findall(r'<tspan[^>]*font-size="14"[^>]*>(.*?)</tspan>', awards_chart) == [
        SVQM,
        SVQM,
        HEALTH,
    ]
    assert "svqm-health" not in awards_chart
    states = [
        ("draft", 2),
        ("submitted", 1),
        ("under_review", 4),
        ("changes_requested", 1),
        ("recommended_award", 1),
        ("awarded", 6),
        ("withdrawn", 1),
    ]
    shown = [(titles.state(s).title, n) for s, n in states]
    assert table(html, "table-applications") == [[t, str(n)] for t, n in shown]
    assert bars(chart(html, "chart-applications")) == shown
    assert 'href="/admin/applications?state=under_review"' in html

    buckets = [
        ("Overdue", 3),
        ("Due within 7 days", 2),
        ("Due in 8 to 30 days", 2),
        ("Due after 30 days", 2),
    ]
    assert table(html, "table-deadline-totals") == [[label, str(n)] for label, n in buckets]
    assert bars(chart(html, "chart-deadlines")) == buckets
    assert table(html, "table-deadlines") == [
        ["Annual report", SVQM, "2", "1", "3"],
        ["Assessor review", HEALTH, "1", "0", "2"],
        ["Renewal submission", SVQM, "0", "3", "4"],
    ]

    assert table(html, "table-workload") == [
        ["Asha Assessor", "3", "2"],
        ["Ben Assessor", "3", "3"],
        ["Cy Gone (disabled)", "1", "0"],
        ["Dee Idle", "0", "0"],
    ]
    assert bars(chart(html, "chart-workload")) == [
        ("Asha Assessor", 3),
        ("Ben Assessor", 3),
        ("Cy Gone (disabled)", 1),
        ("Dee Idle", 0),
    ]


def test_each_chart_is_a_named_image_with_nothing_from_elsewhere(client, engine, registry, admin):
    build_world(engine, registry)
    page_sign_in(client, admin)
    html = client.get("/admin").text
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    charts = [s for s in svgs if 'class="app-chart"' in s]
    assert len(charts) == 4
    for svg in charts:
        chart_id = re.search(r' id="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
        assert 'role="img"' in svg
        assert f'aria-labelledby="{chart_id}-title" aria-describedby="{chart_id}-desc"' in svg
        assert re.search(rf'<title id="{chart_id}-title">[^<]+</title>', svg)
        assert re.search(rf'<desc id="{chart_id}-desc">[^<]+</desc>', svg)
        # Nothing fetched: no links, images, scripts, fonts, styles or URLs of any kind.
        for banned in ("href", "<image", "<script", "<style", "<foreignObject", "url(", "//", "@"):
            assert banned not in svg, (chart_id, banned)
        # Presentation attributes only: the CSP refuses inline style attributes.
        assert "style=" not in svg
        assert f'id="{chart_id}-figures"' in html


def test_an_empty_site_says_so_instead_of_drawing_empty_charts(client, admin):
    page_sign_in(client, admin)
    html = client.get("/admin").text
    assert "<svg" not in html.split("<main", 1)[1]
    for words in ("No awards yet.", "No applications yet.", "No deadlines are open."):
        assert words in html
    # The admin themself is the only user; with no assessor there is no workload to draw.
    assert "No assessors yet." in html


def test_the_dashboard_counts_in_grouped_queries(engine, registry):
    build_world(engine, registry)
    statements: list[str] = []

    def note(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with Session(engine) as s:
            dashboard.awards_by_scheme_and_level(s, registry)
            dashboard.applications_by_state(s, registry)
            dashboard.open_deadlines(s, registry, NOW)
            dashboard.assessor_workload(s, registry)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    counting = [st for st in statements if st.startswith("SELECT") and "user_account" not in st]
    assert len(counting) == 4
    assert all("GROUP BY" in st for st in counting)


def test_the_downloads_are_every_row_as_a_csv_attachment(client, engine, registry, admin):
    build_world(engine, registry)
    page_sign_in(client, admin)
    home = client.get("/admin").text
    # The region filter heads the figures it filters, not the downloads, and the page speaks
    # of no command line.
    assert home.index('id="figures"') < home.index('id="region-filter"') < home.index('id="awards"')
    assert home.index('id="downloads-heading"') > home.index('id="region-filter"')
    assert "svqm export" not in home
    # The finance team's invoices (and their export) are one link from the administration page.
    assert 'href="/admin/invoices"' in home
    assert client.get("/admin/invoices").status_code == 200
    for kind in ("awards", "applications"):
        assert f'href="/admin/exports/{kind}.csv"' in home
        assert f'href="/admin/exports/{kind}.csv"' in client.get(f"/admin/{kind}").text
        response = client.get(f"/admin/exports/{kind}.csv")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == (
            f'attachment; filename="svqm-{kind}-2026-03-02.csv"'
        )
        assert response.headers["cache-control"] == "no-store"
        out = io.StringIO(newline="")
        with Session(engine) as s:
            exports.export(s, registry, kind, "csv", out)
        assert response.content.decode("utf-8") == out.getvalue()
        assert response.content.count(b"\r\n") == (7 if kind == "awards" else 17)


@pytest.mark.parametrize("role", ["applicant", "assessor", "panel"])
def test_the_downloads_and_dashboard_refuse_everyone_but_admins(client, engine, role):
    with Session(writer(engine), expire_on_commit=False) as s:
        user = make_account(s, role)
    for path in ("/admin", "/admin/exports/awards.csv", "/admin/exports/applications.csv"):
        client.cookies.clear()
        anonymous = client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/login?next={path}"
        page_sign_in(client, user)
        refused = client.get(path)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert "attachment" not in refused.headers.get("content-disposition", "")
