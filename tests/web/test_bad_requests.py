"""Requests a client or an attacker can make that must get a clear 4xx, never a 500 or a hint."""

from __future__ import annotations

import pytest

from tests.web.pages_helpers import make_client
from tests.web.test_api import bronze_ready, signup


@pytest.fixture
def client(engine, registry, tmp_path):
    with make_client(engine, registry, tmp_path) as c:
        yield c


def test_another_organisations_evidence_and_none_get_the_same_404(client):
    """Before: "no application 5" for another organisation's evidence, "no evidence 99999"."""
    owner, _ = signup(client, "Owner Org")
    stranger, _ = signup(client, "Stranger Org")
    app_id = bronze_ready(client, owner)["id"]
    evidence = client.get(f"/api/v1/applications/{app_id}/evidence", headers=owner).json()
    theirs = evidence[0]["id"]
    other = client.get(f"/api/v1/evidence/{theirs}/file", headers=stranger)
    absent = client.get("/api/v1/evidence/99999/file", headers=stranger)
    assert other.status_code == absent.status_code == 404
    assert other.json()["detail"] == f"no evidence {theirs}"
    assert absent.json()["detail"] == "no evidence 99999"
    assert "application" not in other.text


def test_a_json_body_over_the_limit_is_413(client):
    """Before: a 2 MiB JSON body got 400 (the parser swallowed the limit)."""
    big = '{"email": "' + "a" * (2 * 1024 * 1024) + '", "password": "x"}'
    declared = client.post(
        "/api/v1/auth/token", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.json()["error"] == "file_too_large"

    def chunks():
        for _ in range(32):
            yield b" " * 65536  # no Content-Length: counted as the bytes arrive

    chunked = client.post(
        "/api/v1/auth/token", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413


def test_a_control_character_in_a_file_name_is_422(client):
    """Before: a CR in the file name gave 400."""
    owner, _ = signup(client, "Named Org")
    app = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=owner
    ).json()
    boundary = "svqmtestboundary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="requirement"\r\n\r\n'
        "executive_commitment\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="bad\rname.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        "evidence\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    answer = client.post(
        f"/api/v1/applications/{app['id']}/evidence",
        headers={**owner, "content-type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )
    assert answer.status_code == 422, answer.text
    # Sent escaped (as browsers do), the name arrives with "%0D" and is stored as written.
    escaped = client.post(
        f"/api/v1/applications/{app['id']}/evidence",
        headers=owner,
        data={"requirement": "executive_commitment"},
        files={"file": ("bad\rname.txt", b"evidence\n", "text/plain")},
    )
    assert escaped.status_code == 201


def test_a_client_gone_mid_upload_is_one_line_without_a_traceback(client, caplog):
    """Before: a disconnect mid-upload was logged as an unhandled error with a traceback."""
    owner, _ = signup(client, "Gone Org")
    app = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=owner
    ).json()

    async def asgi_call():
        sent = []
        messages = [
            {
                "type": "http.request",
                "body": b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"'
                b"\r\n\r\npart of it",
                "more_body": True,
            },
            {"type": "http.disconnect"},
        ]

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/api/v1/applications/{app['id']}/evidence",
            "raw_path": f"/api/v1/applications/{app['id']}/evidence".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"multipart/form-data; boundary=b"),
                (b"authorization", owner["Authorization"].encode()),
            ],
            "client": ("testclient", 50000),
            "server": ("testserver", 80),
            "app": client.app,
        }
        await client.app(scope, receive, send)
        return sent

    from concurrent.futures import ThreadPoolExecutor

    import anyio

    # On a thread of its own: an earlier test in this worker (Playwright's sync API in a browser
    # file) may leave an event loop running in the main thread, where anyio.run refuses to start.
    with caplog.at_level("INFO", logger="svqm.web"), ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, asgi_call).result()
    lines = [r for r in caplog.records if r.name == "svqm.web"]
    assert [r.getMessage() for r in lines] == [
        f"client disconnected during POST /api/v1/applications/{app['id']}/evidence"
    ]
    assert all(r.exc_info is None for r in lines)
