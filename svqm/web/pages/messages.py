"""Messages on a case, as pages: an application's or an award's thread (newest last) with a form
to write (text and an optional file), for its applicant and its staff alike."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from svqm.errors import InvalidUpload, SvqmError, UnsupportedFileType, UploadTooLarge
from svqm.notify import messages as notify_messages
from svqm.web.deps import CSRF, AnyPage, Id, Page, StoreDep
from svqm.web.errors import status_of
from svqm.web.format import reference, sentence
from svqm.web.forms import FormDep, attempt, field
from svqm.web.security import attachment
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import messages as views
from svqm.workflow import messages
from svqm.workflow.messages import ThreadKind
from svqm.workflow.models import Application, Award

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

_KIND_TEXT = {"application": "application", "award": "award"}


def _caption(page: Page, kind: ThreadKind, subject: Application | Award) -> str:
    policy = page.registry.for_subject(page.session, subject).policy
    level = policy.level(subject.level).name
    if kind == "application":
        return f"{policy.name}: {level} application {reference(subject.id or 0)}"
    return f"{policy.name}: {level} award"


def _told(page: Page, kind: ThreadKind) -> tuple[str, bool]:
    """Who the writer's message is told to (svqm.notify.messages), and whether that is many."""
    if page.actor.role == "applicant":
        return "The assessor (or an administrator, if the case has no assessor)", False
    if page.actor.role == "admin" and kind == "application":
        return "The organisation's people and the application's assessors", True
    return "The organisation's people", True


def _hint(page: Page, kind: ThreadKind) -> str:
    """Before writing: who will be told."""
    who, many = _told(page, kind)
    return f"{who} {'are' if many else 'is'} told by email."


def _done(page: Page, kind: ThreadKind) -> dict[str, str]:
    """After sending: the banner, saying who was told."""
    who, many = _told(page, kind)
    return {"sent": f"Message sent. {who} {'have' if many else 'has'} been told by email."}


def _thread(
    page: Page,
    kind: ThreadKind,
    subject_id: int,
    *,
    status: int = 200,
    errors: Errors = None,
    typed: str = "",
    flash: dict[str, str] | None = None,
) -> HTMLResponse:
    subject = views.case_of(page.session, kind, subject_id, page.actor, page.registry)
    assert page.auth.user.id is not None
    lines = views.read_thread(page.session, kind, subject, page.auth.user.id)
    path = views.thread_page(kind, subject_id)
    return render(
        page.request,
        "messages/thread.html",
        auth=page.auth,
        title="Messages",
        status=status,
        errors=errors,
        flash=flash,
        caption=_caption(page, kind, subject),
        kind_text=_KIND_TEXT[kind],
        back=views.case_page(kind, subject_id, page.actor.role),
        lines=lines,
        action=path,
        files_base=f"{path}/files",
        typed=typed,
        hint=_hint(page, kind),
    )


def _post(
    page: Page, kind: ThreadKind, subject_id: int, form: FormDep, store: StoreDep
) -> Response:
    typed = field(form, "body", limit=messages.MAX_BODY + 1)
    upload = form.get("file")
    chosen = upload if isinstance(upload, UploadFile) and upload.filename else None

    def write() -> None:
        subject = views.case_of(page.session, kind, subject_id, page.actor, page.registry)
        notify_messages.post(
            page.session,
            kind,
            subject,
            body=typed,
            actor=page.actor,
            registry=page.registry,
            now=page.now,
            store=store,
            file=(chosen.file, chosen.filename or "") if chosen is not None else None,
        )

    if failure := attempt(page.session, write):
        return _refused(page, kind, subject_id, failure, typed)
    return after_post(views.thread_page(kind, subject_id), "sent", "#write")


def _refused(
    page: Page, kind: ThreadKind, subject_id: int, failure: SvqmError, typed: str
) -> Response:
    on_file = isinstance(failure, UploadTooLarge | UnsupportedFileType | InvalidUpload)
    href = "#message-file" if on_file else "#body"
    text = "Write a message" if failure.field == "body" and not typed.strip() else failure.detail
    return _thread(
        page,
        kind,
        subject_id,
        status=status_of(failure),
        errors=[{"text": sentence(text), "href": href}],
        typed=typed,
    )


def _file(page: Page, kind: ThreadKind, subject_id: int, file_id: int, store: StoreDep) -> Response:
    views.case_of(page.session, kind, subject_id, page.actor, page.registry)
    found = messages.get_file(page.session, kind, subject_id, file_id)
    return attachment(str(store.path_for(found.sha256)), found.filename, found.content_type)


@router.get("/applications/{application_id}/messages", response_model=None)
def application_messages(application_id: Id, page: AnyPage, done: str = "") -> Response:
    """The application's messages, newest last, and the form to write one."""
    flash = flash_of(done, _done(page, "application"))
    return _thread(page, "application", application_id, flash=flash)


@router.post("/applications/{application_id}/messages", response_model=None)
def post_application_message(
    application_id: Id, page: AnyPage, form: FormDep, store: StoreDep
) -> Response:
    """Send a message (and an optional file) on the application."""
    return _post(page, "application", application_id, form, store)


@router.get("/applications/{application_id}/messages/files/{file_id}", response_model=None)
def application_message_file(
    application_id: Id, file_id: Id, page: AnyPage, store: StoreDep
) -> Response:
    """A file attached to one of the application's messages."""
    return _file(page, "application", application_id, file_id, store)


@router.get("/awards/{award_id}/messages", response_model=None)
def award_messages(award_id: Id, page: AnyPage, done: str = "") -> Response:
    """The award's messages, newest last, and the form to write one."""
    return _thread(page, "award", award_id, flash=flash_of(done, _done(page, "award")))


@router.post("/awards/{award_id}/messages", response_model=None)
def post_award_message(award_id: Id, page: AnyPage, form: FormDep, store: StoreDep) -> Response:
    """Send a message (and an optional file) on the award."""
    return _post(page, "award", award_id, form, store)


@router.get("/awards/{award_id}/messages/files/{file_id}", response_model=None)
def award_message_file(award_id: Id, file_id: Id, page: AnyPage, store: StoreDep) -> Response:
    """A file attached to one of the award's messages."""
    return _file(page, "award", award_id, file_id, store)
