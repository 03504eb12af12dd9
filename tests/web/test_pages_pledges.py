"""The applicant changes, withdraws and retires pledges on its pages, without JavaScript."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from svqm.evidence.models import ApplicationPledge, Pledge
from tests.web.pages_helpers import error_summary, form_token, make_account, make_client, sign_in
from tests.web.test_pages_applicant import _open, _pledge


@pytest.fixture
def client(engine, registry, tmp_path):
    with make_client(engine, registry, tmp_path) as c:
        yield c


def _form(pledge: Pledge, **changes: str) -> dict[str, str]:
    data = {
        "theme": pledge.theme,
        "title": pledge.title,
        "description": pledge.description,
        "indicator": pledge.indicator,
        "unit": pledge.unit,
        "baseline": "",
        "target": pledge.target,
        "due_date-day": str(pledge.due_date.day),
        "due_date-month": str(pledge.due_date.month),
        "due_date-year": str(pledge.due_date.year),
    }
    return data | changes


def test_a_pledge_is_changed_then_withdrawn_on_the_pages(client, session, engine):
    user = make_account(session, "applicant")
    sign_in(client, user.email)
    app_id = _open(client)
    assert _pledge(client, app_id, "employment", unit="people", baseline="3").status_code == 303
    with Session(engine) as s:
        pledge = s.exec(select(Pledge)).one()
    assert (pledge.unit, pledge.baseline) == ("people", 3)
    page = client.get(f"/applications/{app_id}/pledges")
    assert f'href="/applications/{app_id}/pledges/{pledge.id}"' in page.text

    url = f"/applications/{app_id}/pledges/{pledge.id}"
    form = client.get(url)
    assert form.status_code == 200
    assert 'value="people"' in form.text
    bad = client.post(url, data=_form(pledge, baseline="lots", csrf_token=form_token(client, url)))
    assert bad.status_code == 422
    assert "baseline as a number" in error_summary(bad.text)
    assert 'value="lots"' in bad.text
    saved = client.post(
        url,
        data=_form(pledge, target="15", baseline="3", csrf_token=form_token(client, url)),
        follow_redirects=False,
    )
    assert saved.status_code == 303, error_summary(saved.text)
    assert saved.headers["location"] == f"/applications/{app_id}/pledges?done=pledge-revised"
    assert "Revised" in client.get(url).text
    gone = client.post(
        f"{url}/withdraw", data={"csrf_token": form_token(client, url)}, follow_redirects=False
    )
    assert gone.headers["location"] == f"/applications/{app_id}/pledges?done=pledge-withdrawn"
    assert "Pledge withdrawn." in client.get(gone.headers["location"]).text
    with Session(engine) as s:
        pledge = s.get(Pledge, pledge.id)
        link = s.exec(select(ApplicationPledge)).one()
    assert (pledge.target, pledge.status, link.disposition) == ("15", "withdrawn", "withdrawn")
    assert client.get(url).status_code == 404


def test_another_organisations_pledge_page_is_not_found(client, session):
    owner = make_account(session, "applicant")
    sign_in(client, owner.email)
    app_id = _open(client)
    _pledge(client, app_id, "employment")
    pledge_id = session.exec(select(Pledge.id)).one()
    stranger = make_account(session, "applicant")
    sign_in(client, stranger.email)
    assert client.get(f"/applications/{app_id}/pledges/{pledge_id}").status_code == 404
