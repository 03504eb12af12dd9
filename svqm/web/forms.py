"""Posted forms: fields and their parsing, the upload forms, and running a form's write.

A page's write runs in a savepoint of the request's unit of work (`attempt`): a domain error
undoes all of it and comes back to the page, which shows it beside the field it names.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import IO, Annotated, Any

from fastapi import Depends, Form, Request
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from svqm.errors import InvalidInput, InvalidUpload, SvqmError
from svqm.web.deps import MAX_ID, Page
from svqm.web.schemas import ReportFigures
from svqm.workflow import service as workflow
from svqm.workflow.queries import SORTS, ApplicationFilter, Sort

FormText = Annotated[str, Form()]


async def form_fields(request: Request) -> FormData:
    """The posted form (already read, and cached, by the CSRF check)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_fields)]


def field(form: FormData, name: str, *, limit: int = 5000) -> str:
    """A text field of the form, trimmed and capped (files and absent fields read as empty)."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def blank(value: str | None) -> str | None:
    """An empty GET filter field means no filter."""
    return (value.strip() or None) if value else None


def whole_number(text: str, *, low: int = 1, high: int = MAX_ID) -> int | None:
    """A whole number in range, or None (for ids and page numbers typed or posted)."""
    text = text.strip()
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def date_of(day: str, month: str, year: str) -> date | None:
    """A date from the three boxes of a GOV.UK date input, or None if it is not a real date."""
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


@dataclass(frozen=True)
class ListQuery:
    """The filter form of a list of applications, read from its query string."""

    filters: ApplicationFilter
    # None: the page's own default order.
    sort: Sort | None
    page: int
    # The fields as typed (capped), to show in the form and to repeat in page links.
    typed: dict[str, str]
    errors: list[dict[str, str]] | None

    @property
    def kept(self) -> dict[str, str]:
        """The fields given, for the links to other pages of the list."""
        return {k: v for k, v in self.typed.items() if v}


def list_query(
    state: str = "",
    level: str = "",
    scheme: str = "",
    organisation: str = "",
    due_before: str = "",
    sort: str = "",
    page: str = "",
    q: str = "",
    finished: str = "",
) -> ListQuery:
    """Filters, order and page of a list of applications; a bad due date is an error to show.

    Open work only, unless finished cases are asked for (`finished=yes`) or a state is chosen.
    """
    typed = {
        "q": q,
        "state": state,
        "level": level,
        "scheme": scheme,
        "organisation": organisation,
        "due_before": due_before,
        "sort": sort,
        "finished": "yes" if finished == "yes" else "",
    }
    typed = {k: v.strip()[:64] for k, v in typed.items()}
    errors, due_by = None, None
    if typed["due_before"]:
        try:
            due_by = date.fromisoformat(typed["due_before"])
        except ValueError:
            text = "Enter the due date as a date, for example 2026-03-31"
            errors = [{"text": text, "href": "#due_before"}]
    filters = ApplicationFilter(
        state=typed["state"] or None,
        level=typed["level"] or None,
        scheme=typed["scheme"] or None,
        organisation_id=whole_number(typed["organisation"]),
        due_by=due_by,
        open_only=not (typed["finished"] or typed["state"]),
        search=typed["q"] or None,
    )
    chosen = next((s for s in SORTS if s == typed["sort"]), None)
    return ListQuery(filters, chosen, whole_number(page, high=100_000) or 1, typed, errors)


async def _list_query_dep(**query: str) -> ListQuery:
    # `async`, so FastAPI calls it on the event loop: it reads no database, and a plain `def`
    # dependency costs a hop to the thread pool and back.
    return list_query(**query)


# FastAPI reads which query parameters to take from the signature: `list_query`'s own.
_list_query_dep.__signature__ = inspect.signature(list_query)  # type: ignore[attr-defined]

ListQueryDep = Annotated[ListQuery, Depends(_list_query_dep)]


def version_of(form: FormData) -> int:
    """The version the person saw, which every write form posts.

    A form without one cannot prove it saw the latest, so it reads as -1: stale.
    """
    return version_of_field(form, "version")


def version_of_field(form: FormData, name: str) -> int:
    """`version_of` from a field of another name (a list's `version-<id>` per line)."""
    found = whole_number(field(form, name, limit=12), low=0)
    return -1 if found is None else found


def attempt(session: Session, write: Callable[[], object]) -> SvqmError | None:
    """Run a write in a savepoint; on a domain error undo all of it and return the error."""
    try:
        with session.begin_nested():
            write()
    except SvqmError as exc:
        session.expire_all()
        return exc
    return None


def fire_from(
    form: FormData, page: Page, subject: workflow.Subject, trigger: str
) -> SvqmError | None:
    """Fire a trigger with the posted comment and version; a refusal undoes it all."""

    def write() -> None:
        workflow.fire(
            page.session,
            subject,
            trigger,
            actor=page.actor,
            registry=page.registry,
            now=page.now,
            comment=field(form, "comment"),
            expected_version=version_of(form),
            visibility=visibility_of(form),
        )

    return attempt(page.session, write)


def visibility_of(form: FormData) -> str:
    """Who the author says may read the comment: staff only when they chose so, else everyone."""
    return "internal" if field(form, "visibility") == "internal" else "applicant"


# --- uploads ------------------------------------------------------------------------------------


@dataclass
class UploadForm:
    file: IO[bytes]
    filename: str
    requirement: str
    pledge_id: int | None
    title: str
    _upload: UploadFile
    # The applicant's note for the assessor (checked by the evidence service).
    note: str = ""
    # A group's application: the member organisation a per-member item is for.
    organisation_id: int | None = None

    def close(self) -> None:
        self._upload.file.close()


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _file_form(request: Request) -> tuple[Any, UploadFile]:
    """The multipart form and its one `file` part (refused as invalid input otherwise)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data with a 'file' field", field="file")
    try:
        form = await request.form(max_files=1, max_fields=10)
    except HTTPException as exc:
        # Starlette's multipart parser answers 400 for a malformed part (a raw CR in a header,
        # a file name that breaks the header): input that is wrong, so 422 with its reason.
        if exc.status_code != 400:
            raise
        raise InvalidUpload(f"the upload form could not be read ({exc.detail})") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        # Any other file part is closed now, not left to the garbage collector.
        await form.close()
        raise InvalidInput("the form has no 'file' field with a file in it", field="file")
    return form, upload


async def read_upload_form(request: Request) -> UploadForm:
    """Parse an evidence upload: `file`, and `requirement` or `pledge_id`, optional `title` and
    `note` (for the assessor)."""
    form, upload = await _file_form(request)
    requirement, pledge = _text(form, "requirement"), _text(form, "pledge_id")
    if not requirement and not pledge:
        upload.file.close()
        raise InvalidInput(
            "name the evidence requirement ('requirement') or the pledge ('pledge_id')",
            field="requirement",
        )
    if pledge and whole_number(pledge) is None:
        upload.file.close()
        raise InvalidInput("pledge_id must be a whole number (a pledge's id)", field="pledge_id")
    member = _text(form, "organisation_id")
    if member and whole_number(member) is None:
        upload.file.close()
        raise InvalidInput(
            "organisation_id must be a whole number (a member organisation's id)",
            field="organisation_id",
        )
    return UploadForm(
        file=upload.file,
        filename=upload.filename or "",
        requirement=requirement,
        pledge_id=int(pledge) if pledge else None,
        title=_text(form, "title")[:200],
        _upload=upload,
        note=_text(form, "note"),
        organisation_id=int(member) if member else None,
    )


@dataclass
class ReportForm:
    # A document filing's one file; a report with figures' supporting files (any number).
    files: list[tuple[IO[bytes], str]]
    period: str
    title: str
    # The filing deadline it is for (`annual_fee`); empty: the scheme's only one.
    deadline: str
    # A report with figures: the `figures` part, as the JSON body would give them.
    figures: ReportFigures | None
    _form: Any

    @property
    def file(self) -> IO[bytes]:
        return self.files[0][0]

    @property
    def filename(self) -> str:
        return self.files[0][1]

    def close(self) -> None:
        for stream, _ in self.files:
            stream.close()


@dataclass
class MessageForm:
    """A message posted as multipart: its text and at most one file."""

    body: str
    file: tuple[IO[bytes], str] | None
    _form: Any

    def close(self) -> None:
        if self.file is not None:
            self.file[0].close()


async def read_message_form(request: Request) -> MessageForm:
    """Parse a message: `body` and an optional `file` (a browser's empty, nameless file part when
    none was chosen counts as none)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the message as JSON or multipart/form-data", field="body")
    try:
        form = await request.form(max_files=1, max_fields=10)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        raise InvalidUpload(f"the message form could not be read ({exc.detail})") from None
    upload = form.get("file")
    chosen = isinstance(upload, UploadFile) and bool(upload.filename)
    if isinstance(upload, UploadFile) and not chosen:
        upload.file.close()
    return MessageForm(
        body=_text(form, "body"),
        file=(upload.file, upload.filename or "")
        if isinstance(upload, UploadFile) and chosen
        else None,
        _form=form,
    )


# The supporting files one report with figures may carry.
REPORT_FILES = 20


async def read_report_form(request: Request) -> ReportForm:
    """Parse a filing upload: `file` (a document; with `figures`, any number of supporting
    files), `period`, optional `title` and `deadline`, and `figures` (JSON: the figures per
    pledge, as `progress` of the JSON body) for a report with figures.

    The period is checked by svqm.workflow.reports (with the award), so only its length is
    bounded here.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data with a 'file' field", field="file")
    try:
        form = await request.form(max_files=REPORT_FILES, max_fields=10)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        raise InvalidUpload(f"the upload form could not be read ({exc.detail})") from None
    uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
    period, title, raw = _text(form, "period"), _text(form, "title"), _text(form, "figures")
    figures = None
    try:
        if not period:
            raise InvalidInput("give the reporting period ('period'), e.g. 2027", field="period")
        if "\x00" in title:
            raise InvalidInput("the title must not contain NUL characters", field="title")
        if raw:
            figures = _figures_of(period, _text(form, "deadline"), raw)
        elif len(uploads) != 1:
            raise InvalidInput(
                "a document filing has one 'file'; give 'figures' to file a report with figures "
                "and its supporting files",
                field="file",
            )
    except InvalidInput:
        await form.close()
        raise
    return ReportForm(
        files=[(u.file, u.filename or "") for u in uploads],
        period=period[:40],
        title=title[:200],
        deadline=_text(form, "deadline")[:64],
        figures=figures,
        _form=form,
    )


def _figures_of(period: str, deadline: str, raw: str) -> ReportFigures:
    """The `figures` part: a JSON list of figures per pledge (as the JSON body's `progress`),
    with the form's period and deadline; a part that does not fit is a 422 naming the field."""
    from pydantic import ValidationError

    try:
        progress = json.loads(raw)
    except ValueError:
        raise InvalidInput(
            "figures: not JSON (a list of {pledge_id, actual, narrative, private})",
            field="figures",
        ) from None
    try:
        return ReportFigures.model_validate(
            {"period": period, "deadline": deadline or None, "progress": progress}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "figures"
        raise InvalidInput(f"figures: {where}: {first['msg']}", field="figures") from None


def region_options(regions: list[str], chosen: str) -> list[dict[str, Any]]:
    """The options of a region select: 'Not given', then the deployment's regions."""
    return [{"value": "", "text": "Not given", "selected": not chosen}] + [
        {"value": r, "text": r, "selected": r == chosen} for r in regions
    ]


# The pledge form: what each refused field says, and the input that shows it.
PLEDGE_INPUTS = ("theme", "title", "description", "indicator", "unit", "baseline", "target")
_PLEDGE_MESSAGES = {
    "theme": "Choose a theme for the pledge",
    "title": "Enter the pledge (up to 200 characters)",
    "description": "The description must be 5,000 characters or fewer",
    "indicator": "Enter the key value indicator (up to 500 characters)",
    "unit": "The unit must be 50 characters or fewer",
    "baseline": "Enter the baseline as a number, for example 12, or leave it empty",
    "target": "Enter the target (up to 200 characters)",
}


def pledge_typed(form: FormData) -> dict[str, str]:
    """What was typed into the pledge form, to show again after an error."""
    typed = {name: field(form, name) for name in PLEDGE_INPUTS}
    for part in ("day", "month", "year"):
        typed[part] = field(form, f"due_date-{part}", limit=10)
    return typed


def parse_pledge(typed: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The pledge's fields from the form, and an error for each field it refuses."""
    from pydantic import ValidationError

    from svqm.evidence.models import PledgeCreate

    errors: list[dict[str, str]] = []
    baseline: float | None = None
    if typed["baseline"]:
        try:
            baseline = float(typed["baseline"].replace(",", ""))
        except ValueError:
            errors.append({"text": _PLEDGE_MESSAGES["baseline"], "href": "#baseline"})
    due = date_of(typed["day"], typed["month"], typed["year"])
    values: dict[str, Any] = {n: typed[n] for n in PLEDGE_INPUTS if n != "baseline"}
    values |= {"baseline": baseline, "due_date": due or date.max}
    try:
        PledgeCreate(**values)
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors()}
        errors[:0] = [
            {"text": _PLEDGE_MESSAGES[f], "href": f"#{f}"}
            for f in PLEDGE_INPUTS
            if f in bad and f != "baseline"
        ]
    if due is None:
        errors.append(
            {"text": "Enter a real due date, for example 31 3 2027", "href": "#due_date-day"}
        )
    return values, errors


async def read_figures(request: Request) -> ReportFigures:
    """A report given as JSON figures; a body that does not fit is a 422 naming the field."""
    from pydantic import ValidationError

    try:
        return ReportFigures.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(
            f"{where}: {first['msg']}", field=str(first["loc"][0]) if first["loc"] else None
        ) from None


# The figures form: per pledge, `actual-<id>`, `narrative-<id>` and the `private-<id>` box.
NARRATIVE_LIMIT = 2000


def figures_typed(form: FormData, pledge_ids: list[int]) -> dict[str, str]:
    """What was typed into the figures form, to show again after an error."""
    typed = {
        "period": field(form, "period", limit=40),
        "deadline": field(form, "deadline", limit=64),
    }
    for pid in pledge_ids:
        typed[f"actual-{pid}"] = field(form, f"actual-{pid}", limit=40)
        typed[f"narrative-{pid}"] = field(form, f"narrative-{pid}", limit=NARRATIVE_LIMIT + 1)
        typed[f"private-{pid}"] = "yes" if field(form, f"private-{pid}", limit=10) else ""
    return typed


def parse_figures(
    typed: dict[str, str], pledge_ids: list[int]
) -> tuple[list[Any], list[dict[str, str]]]:
    """The report's figures (svqm.workflow.progress.Figure) from the form, and an error for each
    input it refuses. A pledge left without a figure is not reported on this time."""
    from svqm.workflow.progress import Figure

    figures: list[Any] = []
    errors: list[dict[str, str]] = []
    for pid in pledge_ids:
        raw = typed[f"actual-{pid}"].replace(",", "")
        narrative = typed[f"narrative-{pid}"]
        if len(narrative) > NARRATIVE_LIMIT:
            errors.append(
                {
                    "text": f"The narrative must be {NARRATIVE_LIMIT:,} characters or fewer",
                    "href": f"#narrative-{pid}",
                }
            )
        if not raw:
            if narrative:
                errors.append(
                    {"text": "Enter the figure the narrative is about", "href": f"#actual-{pid}"}
                )
            continue
        try:
            actual = float(raw)
        except ValueError:
            actual = float("nan")
        if actual != actual or actual in (float("inf"), float("-inf")):
            errors.append(
                {"text": "Enter the figure as a number, for example 12.5", "href": f"#actual-{pid}"}
            )
            continue
        figures.append(
            Figure(
                pledge_id=pid,
                actual=actual,
                narrative=narrative[:NARRATIVE_LIMIT],
                private=bool(typed[f"private-{pid}"]),
            )
        )
    if not figures and not errors and pledge_ids:
        errors.append(
            {"text": "Enter at least one pledge's figure", "href": f"#actual-{pledge_ids[0]}"}
        )
    return figures, errors


def safe_next(value: str | None) -> str | None:
    """A path on this site to go to after signing in; anything else (another site) is dropped."""
    if not value or len(value) > 500 or not value.startswith("/"):
        return None
    # "//host" and "/\host" are other sites to a browser.
    if value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    return value
