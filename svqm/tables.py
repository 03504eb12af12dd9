"""Imports every table module so SQLModel.metadata is complete; used by entry points, Alembic and tests."""

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from svqm.accounts import models as accounts_models
from svqm.evidence import charter as charter_models
from svqm.evidence import models as evidence_models
from svqm.notify import models as notify_models
from svqm.workflow import audit as _audit  # registers the append-only triggers on create_all
from svqm.workflow import audits as audit_models
from svqm.workflow import consultation as consultation_models
from svqm.workflow import eligibility as eligibility_models
from svqm.workflow import invoices as invoice_models
from svqm.workflow import messages as message_models
from svqm.workflow import models as workflow_models
from svqm.workflow import progress as progress_models
from svqm.workflow import reports as report_models
from svqm.workflow import schedule as schedule_models

__all__ = [
    "accounts_models",
    "audit_models",
    "charter_models",
    "consultation_models",
    "create_tables",
    "eligibility_models",
    "evidence_models",
    "invoice_models",
    "message_models",
    "metadata",
    "notify_models",
    "progress_models",
    "report_models",
    "schedule_models",
    "workflow_models",
]

metadata = SQLModel.metadata
assert _audit.GENESIS


def create_tables(engine: Engine) -> None:
    """Create every table (tests and throwaway databases; real ones use `svqm db upgrade`)."""
    metadata.create_all(engine)
