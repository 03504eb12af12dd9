"""The simulated world: a migrated throwaway database, a blob store, staff, and the organisations."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

import svqm.tables  # noqa: F401  (every table in the metadata, as the entry points do)
from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation
from svqm.db import make_engine, session_scope
from svqm.dbmigrate import upgrade
from svqm.errors import InvalidInput
from svqm.evidence.storage import BlobStore
from svqm.workflow.service import Actor

SECTORS = ("health", "social care", "facilities services", "construction", "education", "charity")
# Staff per organisation: enough that reviews and panel decisions keep pace with the population.
ORGS_PER_ASSESSOR = 40
ORGS_PER_PANEL_MEMBER = 100
# How award holders behave with annual reports: most on time, some late, a few never.
REPORTING = (("on_time", 0.81), ("late", 0.15), ("never", 0.04))
RENEWS = 0.85  # share of holders who renew rather than let the award expire


@dataclass
class Member:
    """One organisation, its applicant and its habits; ids only, never ORM rows."""

    index: int
    actor: Actor
    reporting: str
    renews: bool
    ambition: float  # the chance it goes for the next level rather than renewing
    award_id: int | None = None  # the award it holds (its latest)
    award_level: str = ""

    @property
    def org_id(self) -> int:
        assert self.actor.organisation_id is not None
        return self.actor.organisation_id


@dataclass
class CountingMailer:
    """A mailer that delivers nowhere: it counts what it is handed."""

    sent: int = 0
    by_template: Counter[str] = field(default_factory=Counter)

    def send(self, message: EmailMessage) -> None:
        self.sent += 1
        self.by_template[str(message["Subject"]).partition(":")[0]] += 1


@dataclass
class World:
    engine: Engine
    store: BlobStore
    staff: dict[str, list[Actor]]
    members: list[Member]


def open_database(root: Path, url: str | None = None) -> Engine:
    """The database a simulation fills, migrated as `svqm db upgrade` would: `url` (which must
    hold no organisation yet), or a new SQLite file under `root`."""
    if url:
        engine = make_engine(url)
        upgrade(engine)
        with session_scope(engine, write=False) as session:
            if session.exec(select(Organisation.id).limit(1)).first() is not None:
                engine.dispose()
                raise InvalidInput(
                    "the database already holds organisations: a simulation needs an empty one"
                )
        return engine
    path = root / "simulation.db"
    if path.exists():
        raise InvalidInput(f"{path} exists: a simulation needs a directory of its own")
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def build_world(engine: Engine, root: Path, *, organisations: int, rng: random.Random) -> World:
    """Staff and `organisations` organisations, each with one applicant (no passwords: no logins)."""
    store = BlobStore(
        root / "evidence", max_bytes=1 << 20, max_unpacked_bytes=1 << 20, max_entries=10
    )
    sizes = {
        "assessor": max(2, math.ceil(organisations / ORGS_PER_ASSESSOR)),
        # Three at least: an appeal two independent members decide needs two who did not refuse it.
        "panel": max(3, math.ceil(organisations / ORGS_PER_PANEL_MEMBER)),
        "admin": 2,
    }
    members: list[Member] = []
    with session_scope(engine) as session:
        staff = {
            role: [
                Actor.of(
                    accounts.add_user(
                        session,
                        email=f"{role}{i + 1}@staff.simulated.test",
                        role=role,
                        name=f"Simulated {role} {i + 1}",
                    )
                )
                for i in range(n)
            ]
            for role, n in sizes.items()
        }
        kinds = [kind for kind, _ in REPORTING]
        weights = [weight for _, weight in REPORTING]
        for i in range(organisations):
            org = accounts.create_organisation(
                session, name=f"Simulated Organisation {i + 1:05d}", sector=rng.choice(SECTORS)
            )
            user = accounts.add_user(
                session,
                email=f"applicant@org{i + 1:05d}.simulated.test",
                role="applicant",
                organisation_id=org.id,
            )
            members.append(
                Member(
                    index=i,
                    actor=Actor.of(user),
                    reporting=rng.choices(kinds, weights)[0],
                    renews=rng.random() < RENEWS,
                    ambition=rng.uniform(0.2, 0.8),
                )
            )
    return World(engine, store, staff, members)
