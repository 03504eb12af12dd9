from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.evidence.models import EvidenceItem, Pledge
from svqm.workflow.models import Application
from tests.web.pages_helpers import (
    count,
    csrf_of,
    error_summary,
    form_token,
    hidden_values,
    make_account,
    make_client,
    sign_in,
)

BRONZE_THEMES = ["employment", "skills", "health", "inclusion", "local_economy", "environment"]
# Windows executables start "MZ"; renamed .pdf it must still be refused by its content.
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


@pytest.fixture
def client(engine, registry, tmp_path):
    with make_client(engine, registry, tmp_path) as c:
        yield c


@pytest.fixture
def applicant(client, session):
    user = make_account(session, "applicant")
    sign_in(client, user.email)
    return user


def _open(client, level="bronze", scheme="svqm") -> int:
    token = form_token(client, "/dashboard")
    response = client.post(
        "/applications",
        data={"scheme": scheme, "level": level, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, error_summary(response.text)
    match = re.fullmatch(r"/applications/(\d+)\?done=opened", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def _pledge(client, app_id, theme, title="Hire 10 local people", **extra):
    due = date.today() + timedelta(days=365)
    data = {
        "theme": theme,
        "title": title,
        "description": "Measured every quarter.",
        "indicator": "people hired",
        "target": "10",
        "due_date-day": str(due.day),
        "due_date-month": str(due.month),
        "due_date-year": str(due.year),
        "csrf_token": form_token(client, f"/applications/{app_id}"),
        **extra,
    }
    return client.post(f"/applications/{app_id}/pledges", data=data, follow_redirects=False)


def _upload(client, app_id, slot, content=b"our evidence\n", filename="evidence.txt"):
    token = form_token(client, f"/applications/{app_id}")
    return client.post(
        f"/applications/{app_id}/evidence",
        data={"requirement": slot, "title": f"Evidence for {slot}", "csrf_token": token},
        files={"file": (filename, content, "text/plain")},
        follow_redirects=False,
    )


def _fire(client, app_id, trigger, version=None, comment="", **extra):
    page = client.get(f"/applications/{app_id}")
    if version is None:
        version = int(hidden_values(page.text, "version")[0])
    data = {"version": str(version), "comment": comment, "csrf_token": csrf_of(page.text)}
    return client.post(
        f"/applications/{app_id}/events/{trigger}",
        data={**data, **extra},
        follow_redirects=False,
    )


def test_choosing_a_scheme_then_only_its_levels(client, applicant):
    dashboard = client.get("/dashboard")
    assert 'href="/apply"' in dashboard.text
    assert "Your organisation has not started an application yet." in dashboard.text
    page = client.get("/apply")
    assert page.status_code == 200
    assert page.text.count('name="scheme" type="radio"') == 6  # five schemes and the charter
    assert " checked" not in page.text  # no scheme is chosen for them
    assert "Social Value Quality Mark" in page.text
    assert "Levels: Bronze, Silver, Gold, Platinum." in page.text
    unanswered = client.get("/apply?answered=yes")
    assert unanswered.status_code == 422
    assert 'href="#scheme"' in unanswered.text
    assert 'id="scheme-error"' in unanswered.text
    chosen = client.get("/apply?scheme=svqm&answered=yes", follow_redirects=False)
    assert (chosen.status_code, chosen.headers["location"]) == (303, "/apply/svqm")
    levels = client.get("/apply/svqm")
    assert levels.status_code == 200
    assert levels.text.count('name="level" type="radio"') == 4
    assert 'value="bronze"' in levels.text
    assert "Bronze (Level 1)" in levels.text
    assert "Health Bronze" not in levels.text  # only the chosen scheme's levels
    assert "Bronze needs pledges under at least 6 different themes." in levels.text
    assert "Evidence: Signed executive commitment to the pledges" in levels.text
    assert "A Silver award held for at least 12 months." in levels.text
    assert "holds no award of this scheme yet." in levels.text
    assert client.get("/apply/nope").status_code == 404


def _task_status(html: str, task: str) -> str:
    found = re.search(rf'id="task-{task}-status">\s*(.*?)\s*</div>', html, re.S)
    assert found, f"no task {task}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_the_whole_bronze_journey_through_the_pages(client, applicant, engine):
    app_id = _open(client)
    page = client.get(f"/applications/{app_id}?done=opened")
    assert page.status_code == 200
    assert "Application started." in page.text
    assert 'class="govuk-task-list"' in page.text
    assert _task_status(page.text, "organisation") == "Completed"
    assert _task_status(page.text, "pledges") == "Not started"
    assert _task_status(page.text, "slot-executive-commitment") == "Not started"
    assert _task_status(page.text, "waiting-1") == "Cannot start yet"
    assert _task_status(page.text, "check") == "Cannot start yet"
    # The submission is not on the task list; checking answers cannot start yet.
    assert f'action="/applications/{app_id}/events/submit"' not in page.text
    assert f'href="/applications/{app_id}/check"' not in page.text
    early = _fire(client, app_id, "submit")
    assert early.status_code == 422
    summary = error_summary(early.text)
    assert "Pledges under at least 6 different themes are needed" in summary
    assert "Evidence missing: Signed executive commitment to the pledges" in summary
    assert "executive_commitment" not in summary
    assert "Answer the eligibility questions" in summary

    # Eligibility: the sector and turnover are the policy's choices.
    assert _task_status(page.text, "eligibility") == "Not started"
    form = client.get(f"/applications/{app_id}/eligibility")
    answered = client.post(
        f"/applications/{app_id}/eligibility",
        data={
            "csrf_token": csrf_of(form.text),
            "version": hidden_values(form.text, "version")[0],
            "sector": "facilities",
            "turnover_band": "under_1m",
        },
        follow_redirects=False,
    )
    assert answered.status_code == 303, error_summary(answered.text)
    assert _task_status(client.get(f"/applications/{app_id}").text, "eligibility") == "Completed"

    pledges = client.get(f"/applications/{app_id}/pledges")
    assert "Bronze needs pledges under at least 6 different themes." in pledges.text
    untitled = _pledge(client, app_id, BRONZE_THEMES[0], title="")
    assert untitled.status_code == 422
    # The error names the field by its label, "Pledge".
    assert "Enter the pledge (up to 200 characters)" in error_summary(untitled.text)
    added = _pledge(
        client, app_id, BRONZE_THEMES[0], title="Our pledge on jobs", unit="people", baseline="3"
    )
    assert (added.status_code, added.headers["location"]) == (
        303,
        f"/applications/{app_id}/pledges?done=pledge-added",
    )
    assert _task_status(client.get(f"/applications/{app_id}").text, "pledges") == "In progress"
    for theme in BRONZE_THEMES[1:]:
        added = _pledge(client, app_id, theme, title=f"Our pledge on {theme}")
        assert added.status_code == 303, error_summary(added.text)
    page = client.get(f"/applications/{app_id}/pledges?done=pledge-added")
    assert "Pledge added." in page.text
    assert "6 pledges" in page.text
    assert '<td class="govuk-table__cell">3 people</td>' in page.text  # the baseline's unit
    assert count(engine, Pledge) == 6
    page = client.get(f"/applications/{app_id}")
    assert _task_status(page.text, "pledges") == "Completed"

    slots = re.findall(rf'href="/applications/{app_id}/evidence/([^"]+)"', page.text)
    assert slots[0] == "executive_commitment"
    assert len(slots) == 7
    titles = re.findall(r'class="govuk-link govuk-task-list__link"[^>]*>([^<]+)</a>', page.text)
    assert "Delivery plan for the pledge: Our pledge on jobs" in titles
    item = client.get(f"/applications/{app_id}/evidence/{slots[0]}")
    assert '<h1 class="govuk-heading-l">Signed executive commitment to the pledges</h1>' in (
        item.text
    )
    assert "Word document" in item.text
    # Nothing uploaded yet: the item says what the task list says of it, not "Missing".
    assert ">Not started</strong>" in item.text
    assert ">Missing</strong>" not in item.text
    assert client.get(f"/applications/{app_id}/evidence/nope").status_code == 404
    for slot in slots:
        uploaded = _upload(client, app_id, slot)
        assert uploaded.headers["location"] == (
            f"/applications/{app_id}/evidence/{slot}?done=evidence-uploaded"
        ), error_summary(uploaded.text)
    page = client.get(f"/applications/{app_id}")
    for slot in slots:
        assert _task_status(page.text, "slot-" + re.sub("[:_]", "-", slot)) == "Completed"
    assert _task_status(page.text, "check") == "Not started"
    assert "Check your answers and submit your application" in page.text
    item = client.get(f"/applications/{app_id}/evidence/{slots[0]}")
    assert "(evidence.txt, Text file, 13 bytes)" in item.text  # the kind in words, not a MIME type
    assert "text/plain" not in item.text
    # Not sent yet: nobody is reviewing it, whatever the task list says of the task.
    assert ">Ready to send</strong>" in item.text
    assert "Awaiting review" not in item.text

    # Every uploaded version can be downloaded from the page, as an attachment.
    link = re.search(r'href="(/evidence/\d+/download)"', item.text).group(1)
    download = client.get(link)
    assert download.status_code == 200
    assert download.content == b"our evidence\n"
    assert download.headers["content-disposition"].startswith("attachment;")

    check = client.get(f"/applications/{app_id}/check")
    assert check.status_code == 200
    assert "Check your answers before you submit your application</h1>" in check.text
    assert "Our pledge on jobs" in check.text
    assert check.text.count(">Change<") == 6 + 7
    send = {"csrf_token": csrf_of(check.text), "trigger": "submit"}
    send["version"] = hidden_values(check.text, "version")[0]
    undeclared = client.post(f"/applications/{app_id}/check", data=send)
    assert undeclared.status_code == 422
    assert 'href="#declaration"' in undeclared.text
    assert 'id="declaration-error"' in undeclared.text
    with Session(engine) as s:
        assert s.get(Application, app_id).state == "draft"
    sent = client.post(
        f"/applications/{app_id}/check", data={**send, "declaration": "yes"}, follow_redirects=False
    )
    assert (sent.status_code, sent.headers["location"]) == (
        303,
        f"/applications/{app_id}/sent?step=submit",
    )
    confirmation = client.get(sent.headers["location"])
    assert 'class="govuk-panel govuk-panel--confirmation"' in confirmation.text
    assert "Application submitted</h1>" in confirmation.text
    assert f"<strong>APP-{app_id:06d}</strong>" in confirmation.text
    assert re.search(
        r"The status of your application is now <strong class=\"govuk-tag[^\"]*\">Submitted</strong>\.",
        confirmation.text,
    )
    # What happens next: the step's own words, and the invoice the step issued.
    assert '<p class="govuk-body">An assessor will now review it.</p>' in confirmation.text
    assert re.search(
        r'We have sent you invoice <a class="govuk-link" href="/invoices/\d+\.pdf">INV-\d+'
        r'<span class="govuk-visually-hidden"> \(PDF\)</span></a> for <strong>£594\.00</strong>'
        r" \(including VAT of £99\.00\)\. Please pay it by \d+ \w+ \d{4}, by bank transfer"
        r" quoting INV-\d+\.",
        confirmation.text,
    ), confirmation.text
    # A primary step that invoices nothing (sending it back) says nothing of an invoice.
    resent = client.get(f"/applications/{app_id}/sent?step=resubmit")
    assert "Application sent back to the assessor</h1>" in resent.text
    assert "invoice" not in resent.text.lower()
    with Session(engine) as s:
        assert s.get(Application, app_id).state == "submitted"
    again = client.post(f"/applications/{app_id}/check", data={**send, "declaration": "yes"})
    assert again.status_code == 409
    page = client.get(f"/applications/{app_id}")
    assert ">Submitted</strong>" in page.text
    assert _task_status(page.text, "check") == "Completed"
    pledges = client.get(f"/applications/{app_id}/pledges")
    assert f'action="/applications/{app_id}/pledges' not in pledges.text  # no longer editable
    history = client.get(f"/applications/{app_id}/history")
    assert history.status_code == 200
    assert "Status changed from Draft to Submitted." in history.text
    sent_item = client.get(f"/applications/{app_id}/evidence/{slots[0]}")
    assert ">Awaiting review</strong>" in sent_item.text
    assert "Ready to send" not in sent_item.text
    assert ": Draft to Submitted" not in history.text
    dashboard = client.get("/dashboard")
    assert f'href="/applications/{app_id}"' in dashboard.text
    assert "Assessor review:" in dashboard.text


def test_a_stale_page_gets_a_409_telling_them_to_reload(client, applicant, engine):
    app_id = _open(client)
    page = client.get(f"/applications/{app_id}")
    version = int(hidden_values(page.text, "version")[0])
    assert _fire(client, app_id, "withdraw", version=version, confirmed="yes").status_code == 303
    stale = _fire(client, app_id, "withdraw", version=version, confirmed="yes")
    assert stale.status_code == 409
    assert "text/html" in stale.headers["content-type"]
    assert "changed since you loaded the page" in error_summary(stale.text)
    with Session(engine) as s:
        app = s.get(Application, app_id)
    assert (app.state, app.version) == ("withdrawn", version + 1)


def test_withdrawing_asks_for_confirmation_on_a_page_of_its_own(client, applicant, engine):
    app_id = _open(client)
    question = _fire(client, app_id, "withdraw", comment="We will apply next year.")
    assert question.status_code == 200
    assert "Are you sure you want to withdraw" in question.text
    assert "You cannot undo this." in question.text
    assert "We will apply next year." in question.text
    assert 'name="confirmed" value="yes"' in question.text
    assert "govuk-button--warning" in question.text
    with Session(engine) as s:
        assert s.get(Application, app_id).state == "draft"  # asking changed nothing
    # "No" goes back to the task list; "Yes" (the page's own form) withdraws.
    assert f'href="/applications/{app_id}">No, go back' in question.text
    done = client.post(
        f"/applications/{app_id}/events/withdraw",
        data={
            "version": hidden_values(question.text, "version")[0],
            "comment": hidden_values(question.text, "comment")[0],
            "confirmed": "yes",
            "csrf_token": csrf_of(question.text),
        },
        follow_redirects=True,
    )
    assert "Application withdrawn." in done.text
    with Session(engine) as s:
        app = s.get(Application, app_id)
        assert app.state == "withdrawn"


def test_another_organisations_application_is_not_found(
    client, applicant, session, engine, registry, tmp_path
):
    other = make_account(session, "applicant")
    with make_client(engine, registry, tmp_path) as theirs:
        sign_in(theirs, other.email)
        their_app = _open(theirs)
        _pledge(theirs, their_app, "skills")
        _upload(theirs, their_app, "executive_commitment")
    with Session(engine) as s:
        from sqlmodel import select

        evidence_id = s.exec(select(EvidenceItem.id)).one()
    token = form_token(client, "/dashboard")
    for response in (
        client.get(f"/applications/{their_app}"),
        client.get(f"/applications/{their_app}/history"),
        client.get(f"/evidence/{evidence_id}/download"),
        client.get(f"/applications/{their_app}/pledges"),
        client.get(f"/applications/{their_app}/evidence/executive_commitment"),
        client.get(f"/applications/{their_app}/check"),
        client.get(f"/applications/{their_app}/sent"),
        client.post(f"/applications/{their_app}/pledges", data={"csrf_token": token}),
        client.post(
            f"/applications/{their_app}/events/withdraw", data={"csrf_token": token, "version": "1"}
        ),
    ):
        assert response.status_code == 404
        assert "text/html" in response.headers["content-type"]
        assert "Page not found" in response.text
    assert count(engine, Pledge) == 1
    with Session(engine) as s:
        assert s.get(Application, their_app).state == "draft"


def test_an_executable_renamed_pdf_is_refused_and_nothing_is_stored(
    client, applicant, engine, tmp_path
):
    app_id = _open(client)
    refused = _upload(
        client, app_id, "executive_commitment", content=EXECUTABLE, filename="annual-report.pdf"
    )
    assert refused.status_code == 415
    summary = error_summary(refused.text)
    assert "not an allowed type" in summary
    assert 'href="#slot-executive-commitment-file"' in refused.text
    assert 'id="slot-executive-commitment-file-error"' in refused.text
    assert 'value="Evidence for executive_commitment"' in refused.text  # the title typed is kept
    assert count(engine, EvidenceItem) == 0
    blobs = tmp_path / "evidence" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    no_file = client.post(
        f"/applications/{app_id}/evidence",
        data={"requirement": "executive_commitment", "csrf_token": csrf_of(refused.text)},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert no_file.status_code == 422
    assert "Choose a file to upload" in error_summary(no_file.text)


def test_pledge_form_problems_are_listed_and_what_was_typed_is_kept(client, applicant, engine):
    app_id = _open(client)
    response = _pledge(
        client,
        app_id,
        "",
        title="Plant 500 trees",
        target="",
        **{"due_date-day": "31", "due_date-month": "2"},
    )
    assert response.status_code == 422
    summary = error_summary(response.text)
    assert "Choose a theme for the pledge" in summary
    assert "Enter the target" in summary
    assert "Enter a real due date" in summary
    for field in ("theme", "target", "due_date-day"):
        assert f'href="#{field}"' in response.text
    assert 'value="Plant 500 trees"' in response.text
    past = _pledge(client, app_id, "skills", **{"due_date-year": "2001"})
    assert past.status_code == 422
    assert "due date must be in the future" in error_summary(past.text)
    assert count(engine, Pledge) == 0


def test_user_text_is_escaped_on_every_page(client, session, engine):
    attack = "<script>alert(1)</script>"
    org = accounts.create_organisation(session, name=f"{attack} Ltd", sector="care")
    session.commit()
    user = make_account(session, "applicant", org=org)
    sign_in(client, user.email)
    app_id = _open(client)
    assert (
        _pledge(
            client,
            app_id,
            "skills",
            title=attack,
            description=attack,
            indicator=attack,
            target=attack,
        ).status_code
        == 303
    )
    assert _upload(client, app_id, "executive_commitment").status_code == 303
    too_long = _pledge(client, app_id, "health", title=attack, target="x" * 300)
    assert too_long.status_code == 422
    pages = [
        client.get("/dashboard").text,
        client.get(f"/applications/{app_id}").text,
        client.get(f"/applications/{app_id}/pledges").text,
        client.get(f"/applications/{app_id}/organisation").text,
        client.get(f"/applications/{app_id}/check").text,
        too_long.text,
    ]
    question = _fire(client, app_id, "withdraw", comment=attack)
    assert question.status_code == 200
    assert _fire(client, app_id, "withdraw", comment=attack, confirmed="yes").status_code == 303
    pages += [
        question.text,
        client.get(f"/applications/{app_id}/history").text,
        client.get(f"/applications/{app_id}").text,
    ]
    for html in pages:
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        # Only the page's own two scripts: the nonce'd class switch and the module.
        assert len(re.findall(r"<script\b", html)) == 2


def test_staff_see_an_application_read_only(client, applicant, session, engine, registry, tmp_path):
    app_id = _open(client)
    _pledge(client, app_id, "skills")
    admin = make_account(session, "admin")
    with make_client(engine, registry, tmp_path) as staff:
        sign_in(staff, admin.email, totp_secret=admin.totp_secret)
        page = staff.get(f"/applications/{app_id}")
        assert page.status_code == 200
        assert "These pages are read-only." in page.text
        assert '<form method="post" action="/applications/' not in page.text
        pledges = staff.get(f"/applications/{app_id}/pledges")
        assert "Hire 10 local people" in pledges.text
        assert '<form method="post" action="/applications/' not in pledges.text
        assert staff.get(f"/applications/{app_id}/check").status_code == 403
        dashboard = staff.get("/dashboard")
        assert dashboard.status_code == 403
        assert "This page is for applicants" in dashboard.text
        refused = staff.post(
            f"/applications/{app_id}/pledges",
            data={
                "csrf_token": csrf_of(page.text),
                "theme": "health",
                "title": "x",
                "indicator": "x",
                "target": "x",
                "due_date-day": "1",
                "due_date-month": "1",
                "due_date-year": "2099",
            },
        )
        assert refused.status_code == 403
        assert (
            "only the applicant organisation may change pledges"
            in error_summary(refused.text).lower()
        )
    assert count(engine, Pledge) == 1


def test_an_application_for_an_unknown_level_shows_the_levels(client, applicant, engine):
    token = form_token(client, "/dashboard")
    response = client.post(
        "/applications", data={"scheme": "svqm", "level": "health_bronze", "csrf_token": token}
    )
    assert response.status_code == 422
    assert "is not a level of Social Value Quality Mark" in error_summary(response.text)
    assert count(engine, Application) == 0
    assert 'id="level-error"' in response.text  # the error shows beside the levels
    unknown = client.post(
        "/applications", data={"scheme": "nope", "level": "bronze", "csrf_token": token}
    )
    assert unknown.status_code == 422
    assert "Choose the scheme you want to apply for" in error_summary(unknown.text)
    nothing = client.post("/applications", data={"scheme": "svqm", "csrf_token": token})
    assert nothing.status_code == 422
    assert "Choose the level you want to apply for" in error_summary(nothing.text)


def test_a_level_of_another_scheme_is_refused_not_guessed(client, applicant, engine):
    token = form_token(client, "/dashboard")
    response = client.post(
        "/applications", data={"scheme": "svqm-health", "level": "svqm:bronze", "csrf_token": token}
    )
    assert response.status_code == 422
    assert "The level you chose is a level of Social Value Quality Mark" in error_summary(
        response.text
    )
    assert 'value="health_bronze"' in response.text  # the levels of the scheme they chose
    assert count(engine, Application) == 0
    opened = client.post(
        "/applications",
        data={"scheme": "svqm", "level": "svqm:bronze", "csrf_token": token},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    with Session(engine) as s:
        from sqlmodel import select

        assert s.exec(select(Application.level)).one() == "bronze"


def _upload_titled(client, app_id, slot, title, filename, content):
    token = form_token(client, f"/applications/{app_id}")
    sent = client.post(
        f"/applications/{app_id}/evidence",
        data={"requirement": slot, "title": title, "csrf_token": token},
        files={"file": (filename, content, "text/plain")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, error_summary(sent.text)


_DOWNLOAD = r'href="/evidence/\d+/download">([^<]+)<span'


def test_the_evidence_page_shows_each_files_own_title_else_its_name(client, applicant):
    """The title the applicant gave the file is the link, with its name beside it; a file given
    no title (the store keeps the item's own then) is shown by its name."""
    app_id = _open(client)
    slot = "executive_commitment"
    _upload_titled(client, app_id, slot, "Board minutes, March 2026", "minutes.txt", b"minutes\n")
    item = client.get(f"/applications/{app_id}/evidence/{slot}").text
    assert re.findall(_DOWNLOAD, item) == ["Board minutes, March 2026"]
    assert "(minutes.txt, Text file, 8 bytes)" in item
    _upload_titled(client, app_id, slot, "", "signed.txt", b"signed\n")
    item = client.get(f"/applications/{app_id}/evidence/{slot}").text
    assert re.findall(_DOWNLOAD, item) == ["signed.txt", "Board minutes, March 2026"]
    assert "(Text file, 7 bytes)" in item


def test_check_your_answers_shows_the_newest_files_own_title_else_its_name(client, applicant):
    app_id = _open(client)
    slot = "executive_commitment"
    _upload_titled(client, app_id, slot, "Board minutes, March 2026", "minutes.txt", b"minutes\n")
    check = client.get(f"/applications/{app_id}/check")
    assert check.status_code == 200
    assert "Board minutes, March 2026 (minutes.txt, Text file)" in check.text
    _upload_titled(client, app_id, slot, "", "signed.txt", b"signed\n")
    check = client.get(f"/applications/{app_id}/check").text
    assert "signed.txt (Text file)" in check
    assert "Board minutes" not in check  # only the newest version is the answer
