"""Debris of killed uploads: a process killed while copying (a .part file) and one killed just
after publishing (a blob no row names); `svqm evidence gc` finds them, and removes them with
--apply, keeping every blob a row names."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from svqm.db import session_scope
from svqm.workflow import actions, messages
from svqm.workflow.evidence_gc import collect
from tests.factories import actor, add_pledges, open_app, store_at
from tests.workflow.harness import make_cast

SVQM = str(Path(sys.executable).with_name("svqm"))

KILLED_UPLOADS = textwrap.dedent(
    """
    import io, os, signal, sys
    from svqm.evidence.storage import BlobStore

    store = BlobStore(sys.argv[1], max_bytes=1 << 24, max_unpacked_bytes=1 << 24, max_entries=10)
    if sys.argv[2] == "after-publishing":
        store.put(io.BytesIO(b"published, but the row never committed\\n"))
        os.kill(os.getpid(), signal.SIGKILL)

    def body():
        yield b"half of an upload\\n" * 1000
        os.kill(os.getpid(), signal.SIGKILL)

    store.put(body())
    """
)


def _kill_during(root: Path, moment: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_UPLOADS, str(root), moment], capture_output=True, timeout=60
    )
    assert done.returncode == -9, done.stderr


def test_killed_uploads_leave_debris_that_gc_removes_keeping_named_blobs(
    engine, registry, now, tmp_path
):
    """Before: a restart cleaned nothing, and nothing could."""
    root = tmp_path / "evidence"
    store = store_at(root)
    with session_scope(engine) as session:
        cast = make_cast(session)
        app = open_app(session, registry, cast.applicant, level="bronze", now=now)
        add_pledges(session, registry, app, cast.applicant, now=now)
        kept = actions.upload_evidence(
            session,
            app,
            store,
            requirement="executive_commitment",
            pledge_id=None,
            stream=io.BytesIO(b"a row names this\n"),
            filename="c.txt",
            title="",
            actor=actor(cast.applicant),
            registry=registry,
            now=now,
        )
    _kill_during(root, "after-publishing")
    _kill_during(root, "while-copying")
    assert len(store.leftover_temp_files()) == 1
    assert len(store.blob_files()) == 2

    with session_scope(engine, write=False) as session:
        dry = collect(session, store, apply=False, min_age_seconds=0)
        assert (len(dry.temp_files), len(dry.orphan_blobs), dry.kept) == (1, 1, 1)
        # In flight (younger than the default hour): left alone.
        young = collect(session, store, apply=True)
        assert (young.temp_files, young.orphan_blobs) == ([], [])
    assert len(store.blob_files()) == 2

    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "SVQM_DATABASE_URL": url, "SVQM_EVIDENCE_DIR": str(root)}
    listed = subprocess.run(
        [SVQM, "evidence", "gc", "--min-age-minutes", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "would remove 1 staged file(s) and 1 blob(s) no row names" in listed.stdout
    assert len(store.blob_files()) == 2  # a dry run by default
    applied = subprocess.run(
        [SVQM, "evidence", "gc", "--apply", "--min-age-minutes", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
    assert "removed 1 staged file(s) and 1 blob(s)" in applied.stdout
    assert store.leftover_temp_files() == []
    assert [p.name for p in store.blob_files()] == [kept.sha256]


def test_gc_keeps_the_files_of_messages(engine, registry, now, tmp_path):
    store = store_at(tmp_path / "evidence")
    with session_scope(engine) as session:
        cast = make_cast(session)
        app = open_app(session, registry, cast.applicant, level="bronze", now=now)
        posted = messages.post(
            session,
            "application",
            app,
            body="with a file",
            actor=actor(cast.applicant),
            now=now,
            store=store,
            file=(io.BytesIO(b"a message names this\n"), "m.txt"),
        )
        [line] = messages.thread(session, "application", app.id or 0)
        assert line.message.id == posted.id
        named = line.files[0].sha256
    orphan = store.put(io.BytesIO(b"no row names this\n"))
    with session_scope(engine) as session:
        found = collect(session, store, apply=True, min_age_seconds=0)
    assert [p.name for p in found.orphan_blobs] == [orphan.sha256]
    assert [p.name for p in store.blob_files()] == [named]
