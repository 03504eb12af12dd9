from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from sqlmodel import func, select

from svqm.errors import (
    Conflict,
    InvalidInput,
    InvalidUpload,
    PermissionDenied,
    UnsupportedFileType,
    UploadTooLarge,
)
from svqm.evidence import requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import EvidenceItem, Review, ReviewCreate
from svqm.evidence.storage import BlobStore
from svqm.workflow import actions
from svqm.workflow import service as workflow
from tests.factories import actor, add_pledges, open_app, review_all, store_at, upload_all
from tests.workflow.harness import make_cast


def _blobs(store: BlobStore) -> list[Path]:
    return [p for p in (store.root / "blobs").rglob("*") if p.is_file()]


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(300):
                member.write(b"\0" * (1 << 20))
    return buffer.getvalue()


ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 200


class Chunks:
    """A body that claims a small size but keeps sending: only counting bytes catches it."""

    declared_length = 10

    def __iter__(self):
        for _ in range(40):
            yield b"a,b,c\n" * 20_000


@pytest.fixture
def draft(session, registry, now):
    cast = make_cast(session)
    app = open_app(session, registry, cast.applicant, level="bronze", now=now)
    add_pledges(session, registry, app, cast.applicant, now=now)
    return cast, app


@pytest.mark.parametrize(
    ("requirement", "filename", "body", "error", "message"),
    [
        ("executive_commitment", "big.csv", Chunks, UploadTooLarge, "larger than"),
        (
            "executive_commitment",
            "report.pdf",
            lambda: io.BytesIO(ELF),
            UnsupportedFileType,
            "not an allowed type",
        ),
        (
            "executive_commitment",
            "minutes.docx",
            lambda: io.BytesIO(_zip_bomb()),
            InvalidUpload,
            "unpack|uncompressed|large",
        ),
        ("executive_commitment", "empty.txt", lambda: io.BytesIO(b""), InvalidUpload, "empty"),
        (
            "executive_commitment",
            "../../etc/passwd.txt",
            lambda: io.BytesIO(b"x\n"),
            InvalidUpload,
            "must not contain a path",
        ),
        (
            "executive_commitment",
            "a\x00b.txt",
            lambda: io.BytesIO(b"x\n"),
            InvalidUpload,
            "control characters",
        ),
        (
            "executive_commitment",
            "bell\x07.txt",
            lambda: io.BytesIO(b"x\n"),
            InvalidUpload,
            "control characters",
        ),
        (
            "no_such_requirement",
            "ok.txt",
            lambda: io.BytesIO(b"x\n"),
            InvalidInput,
            "not an evidence requirement of this application",
        ),
    ],
    ids=[
        "too-large-lying-length",
        "executable-as-pdf",
        "zip-bomb-as-docx",
        "empty",
        "dot-dot",
        "nul",
        "control-character",
        "unknown-requirement",
    ],
)
def test_bad_uploads_are_refused_leaving_no_bytes_and_no_row(
    session, registry, now, tmp_path, draft, requirement, filename, body, error, message
):
    cast, app = draft
    store = BlobStore(
        tmp_path / "store",
        max_bytes=2 * 1024 * 1024,
        max_unpacked_bytes=50 * 1024 * 1024,
        max_entries=100,
    )
    stream = body()
    with pytest.raises(error, match=message):
        actions.upload_evidence(
            session,
            app,
            store,
            requirement=requirement,
            pledge_id=None,
            stream=stream,
            filename=filename,
            title="",
            actor=actor(cast.applicant),
            registry=registry,
            now=now,
        )
    assert not (store.root / "blobs").exists() or _blobs(store) == []
    assert store.leftover_temp_files() == []
    assert session.exec(select(func.count()).select_from(EvidenceItem)).one() == 0


def test_reupload_makes_a_new_version_and_keeps_the_old(session, registry, now, tmp_path, draft):
    cast, app = draft
    store = store_at(tmp_path)
    first, second = (
        actions.upload_evidence(
            session,
            app,
            store,
            requirement="executive_commitment",
            pledge_id=None,
            stream=io.BytesIO(text),
            filename="c.txt",
            title="Commitment",
            actor=actor(cast.applicant),
            registry=registry,
            now=now,
        )
        for text in (b"version one\n", b"version two\n")
    )
    assert (first.version, second.version) == (1, 2)
    assert first.sha256 != second.sha256
    with store.open(first.sha256) as kept:
        assert kept.read() == b"version one\n"
    slot = requirements.find_slot(
        requirements.checklist(
            session,
            application_id=app.id,
            policy=registry.get("svqm").policy,
            level=registry.get("svqm").policy.level("bronze"),
        ),
        "executive_commitment",
        None,
    )
    assert slot.current.id == second.id
    assert [i.id for i in slot.items] == [first.id, second.id]


def test_the_same_bytes_are_stored_once(session, registry, now, tmp_path, draft):
    cast, app = draft
    store = store_at(tmp_path)
    pledges = actions.pledge_service.list_pledges(session, app.id)
    items = [
        actions.upload_evidence(
            session,
            app,
            store,
            requirement="pledge_plan",
            pledge_id=p.id,
            stream=io.BytesIO(b"same plan\n"),
            filename="plan.txt",
            title="",
            actor=actor(cast.applicant),
            registry=registry,
            now=now,
        )
        for p in pledges[:3]
    ]
    assert len({i.sha256 for i in items}) == 1
    assert len({i.slot for i in items}) == 3
    assert len(_blobs(store)) == 1


def test_per_pledge_slot_named_by_requirement_and_pledge(session, registry, now, tmp_path, draft):
    cast, app = draft
    pledge = actions.pledge_service.list_pledges(session, app.id)[0]
    item = actions.upload_evidence(
        session,
        app,
        store_at(tmp_path),
        requirement="pledge_plan",
        pledge_id=pledge.id,
        stream=io.BytesIO(b"plan\n"),
        filename="plan.txt",
        title="",
        actor=actor(cast.applicant),
        registry=registry,
        now=now,
    )
    assert (item.slot, item.pledge_id, item.content_type) == (
        f"pledge_plan:pledge-{pledge.id}",
        pledge.id,
        "text/plain",
    )


def test_png_header_and_original_name_kept_as_metadata(session, registry, now, tmp_path, draft):
    cast, app = draft
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\0" * 17
    item = actions.upload_evidence(
        session,
        app,
        store_at(tmp_path),
        requirement="executive_commitment",
        pledge_id=None,
        stream=io.BytesIO(png),
        filename="  Signed letter (v2).png",
        title="",
        actor=actor(cast.applicant),
        registry=registry,
        now=now,
    )
    assert item.content_type == "image/png"
    assert item.filename == "Signed letter (v2).png"
    assert Path(store_at(tmp_path).path_for(item.sha256)).name == item.sha256


def test_uploads_only_by_the_applicant_while_editable(session, registry, now, tmp_path, draft):
    cast, app = draft
    store = store_at(tmp_path)
    with pytest.raises(PermissionDenied):
        actions.upload_evidence(
            session,
            app,
            store,
            requirement="executive_commitment",
            pledge_id=None,
            stream=io.BytesIO(b"x\n"),
            filename="x.txt",
            title="",
            actor=actor(cast.assessor),
            registry=registry,
            now=now,
        )
    upload_all(session, registry, store, app, cast.applicant, now=now)
    workflow.fire(session, app, "submit", actor=actor(cast.applicant), registry=registry, now=now)
    with pytest.raises(Conflict, match="only while the application is Draft or More information"):
        actions.upload_evidence(
            session,
            app,
            store,
            requirement="executive_commitment",
            pledge_id=None,
            stream=io.BytesIO(b"late\n"),
            filename="x.txt",
            title="",
            actor=actor(cast.applicant),
            registry=registry,
            now=now,
        )


def test_more_information_loop_end_to_end(session, registry, now, tmp_path, draft):
    cast, app = draft
    store = store_at(tmp_path)
    upload_all(session, registry, store, app, cast.applicant, now=now)
    applicant, assessor, panel = actor(cast.applicant), actor(cast.assessor), actor(cast.panel)
    workflow.fire(session, app, "submit", actor=applicant, registry=registry, now=now)
    assessor = workflow.Actor(app.assessor_id, "assessor")
    workflow.fire(session, app, "start_review", actor=assessor, registry=registry, now=now)
    items = evidence_service.list_evidence(session, app.id)
    weak = next(i for i in items if i.slot == "executive_commitment")

    actions.review_evidence(
        session,
        app,
        weak,
        ReviewCreate(decision="more_information", comment="Please attach the signed version."),
        actor=assessor,
        registry=registry,
        now=now,
    )
    assert app.state == "under_review"  # collected: the assessor sends it back when done
    workflow.fire(
        session,
        app,
        "request_changes",
        actor=assessor,
        registry=registry,
        now=now,
        comment="One thing to add",
    )

    assert app.state == "changes_requested"
    with pytest.raises(workflow.GuardRefused) as refused:
        workflow.fire(session, app, "resubmit", actor=applicant, registry=registry, now=now)
    assert refused.value.unmet == [
        "evidence needs a new version: Signed executive commitment to the pledges "
        "(more information requested)"
    ]

    newer = actions.upload_evidence(
        session,
        app,
        store,
        requirement="executive_commitment",
        pledge_id=None,
        stream=io.BytesIO(b"signed\n"),
        filename="signed.txt",
        title="",
        actor=applicant,
        registry=registry,
        now=now,
    )
    workflow.fire(session, app, "resubmit", actor=applicant, registry=registry, now=now)
    assert app.state == "under_review"
    with pytest.raises(workflow.GuardRefused, match="requirement"):
        workflow.fire(session, app, "recommend_award", actor=assessor, registry=registry, now=now)
    review_all(session, registry, app, _user(session, app.assessor_id), now=now)
    workflow.fire(session, app, "recommend_award", actor=assessor, registry=registry, now=now)
    workflow.fire(session, app, "confirm_award", actor=panel, registry=registry, now=now)
    assert app.state == "awarded"

    history = evidence_service.reviews_of(session, [weak.id, newer.id])
    assert [(r.evidence_id, r.decision) for r in history] == [
        (weak.id, "more_information"),
        (newer.id, "accepted"),
    ]
    assert history[0].comment == "Please attach the signed version."
    trail = [(e.trigger, e.dest) for e in workflow.history(session, app)]
    assert trail == [
        ("answer_eligibility", "draft"),
        ("submit", "submitted"),
        ("start_review", "under_review"),
        ("request_changes", "changes_requested"),
        ("resubmit", "under_review"),
        ("recommend_award", "recommended_award"),
        ("confirm_award", "awarded"),
    ]


def _user(session, user_id):
    from svqm.accounts.models import User

    return session.get(User, user_id)


def test_turning_down_evidence_needs_a_comment(session, registry, now, tmp_path, draft):
    cast, app = draft
    upload_all(session, registry, store_at(tmp_path), app, cast.applicant, now=now)
    workflow.fire(session, app, "submit", actor=actor(cast.applicant), registry=registry, now=now)
    assessor = workflow.Actor(app.assessor_id, "assessor")
    workflow.fire(session, app, "start_review", actor=assessor, registry=registry, now=now)
    item = evidence_service.list_evidence(session, app.id)[0]
    with pytest.raises(InvalidInput, match="comment is required"):
        actions.review_evidence(
            session,
            app,
            item,
            ReviewCreate(decision="rejected"),
            actor=assessor,
            registry=registry,
            now=now,
        )
    assert session.exec(select(func.count()).select_from(Review)).one() == 0


def test_award_impossible_without_accepted_evidence_and_passing_score(
    session, registry, now, tmp_path
):
    from datetime import timedelta

    from svqm.workflow.models import Application
    from tests.workflow.harness import _pledges, award_in

    # One assessor scores Health Silver (SVQM's own Silver is double-marked).
    cast = make_cast(session)
    bronze = award_in(
        session,
        registry,
        cast,
        scheme="svqm-health",
        level="health_bronze",
        state="active",
        issued=now - timedelta(days=30),
        at=now,
    )
    # The Bronze pledges are the ones Silver measures: they are carried into it.
    holder = session.get(Application, bronze.application_id)
    _pledges(session, registry.get("svqm-health").policy, holder, now)
    app = open_app(session, registry, cast.applicant, scheme="svqm-health", level="silver", now=now)
    upload_all(session, registry, store_at(tmp_path), app, cast.applicant, now=now)
    workflow.fire(session, app, "submit", actor=actor(cast.applicant), registry=registry, now=now)
    assessor_user = _user(session, app.assessor_id)
    assessor = actor(assessor_user)
    workflow.fire(session, app, "start_review", actor=assessor, registry=registry, now=now)
    with pytest.raises(workflow.GuardRefused) as refused:
        workflow.fire(session, app, "recommend_award", actor=assessor, registry=registry, now=now)
    unmet = refused.value.unmet
    assert sum(r.startswith("evidence not accepted:") for r in unmet) == len(
        evidence_service.list_evidence(session, app.id)
    )
    assert any(r.startswith("not scored yet: plan/strategy") for r in unmet)
    assert any(r.startswith("overall score 0.0% is below the 80% pass mark") for r in unmet)

    review_all(session, registry, app, assessor_user, now=now)
    from tests.factories import score_all

    score_all(session, registry, app, assessor_user, now=now, fraction=0.5)
    with pytest.raises(workflow.GuardRefused) as refused:
        workflow.fire(session, app, "recommend_award", actor=assessor, registry=registry, now=now)
    assert [r for r in refused.value.unmet if "mandatory" in r] != []
    workflow.fire(
        session,
        app,
        "recommend_refusal",
        actor=assessor,
        registry=registry,
        now=now,
        comment="mandatory questions unmet",
    )
    with pytest.raises(workflow.GuardRefused, match="requirement"):
        workflow.fire(
            session,
            app,
            "overturn_to_award",
            actor=actor(cast.panel),
            registry=registry,
            now=now,
            comment="we like them",
        )
    assert app.state == "recommended_refusal"


def test_an_upload_for_an_item_with_a_slot_it_does_not_have_names_every_valid_slot(
    session, registry, now, tmp_path, draft
):
    """The pledges are read only for an item asked for per pledge, yet a refusal still lists
    the per-pledge slots among the valid ones."""
    cast, app = draft
    policy = registry.get("svqm").policy
    level = policy.level(app.level)
    expected = requirements.slots_for(
        policy, level, evidence_service.list_pledges(session, app.id), {}
    )
    assert any(s.pledge_id is not None for s in expected)  # the draft holds pledges
    with pytest.raises(InvalidInput) as refused:
        actions.upload_evidence(
            session,
            app,
            store_at(tmp_path),
            requirement="executive_commitment:no-such-slot",
            pledge_id=None,
            stream=io.BytesIO(b"x\n"),
            filename="x.txt",
            title="",
            actor=actor(cast.applicant),
            registry=registry,
            now=now,
        )
    assert str(refused.value).endswith(f"(valid: {', '.join(s.id for s in expected)})")
