"""Debris a killed process leaves in the evidence store: staged `.part` files of an upload cut
off while copying, and blobs published just before the row that names them was committed.

Anything a row still names (an evidence version, a filed report, a report's supporting file, a message's file) is
kept, and so is anything younger than `min_age`: an upload in flight has a `.part` file, or a
blob whose row is about to commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from svqm.evidence.models import EvidenceItem
from svqm.evidence.storage import BlobStore
from svqm.workflow import messages
from svqm.workflow.models import AnnualReport, ReportFile


@dataclass
class Collected:
    temp_files: list[Path] = field(default_factory=list)
    orphan_blobs: list[Path] = field(default_factory=list)
    kept: int = 0
    size: int = 0
    applied: bool = False


def named_blobs(session: Session) -> set[str]:
    """Every SHA-256 a row names."""
    named = set(session.exec(select(EvidenceItem.sha256)).all())
    named |= set(session.exec(select(ReportFile.sha256)).all())
    named |= messages.named_blobs(session)
    return named | set(session.exec(select(AnnualReport.sha256)).all())


def collect(
    session: Session, store: BlobStore, *, apply: bool, min_age_seconds: float = 3600
) -> Collected:
    """What is debris (and, with `apply`, remove it): `.part` files and blobs no row names,
    older than `min_age_seconds`."""
    cutoff = time.time() - min_age_seconds
    found = Collected(applied=apply)

    def old(path: Path) -> bool:
        try:
            return path.stat().st_mtime <= cutoff
        except FileNotFoundError:
            return False

    found.temp_files = [p for p in store.leftover_temp_files() if old(p)]
    named = named_blobs(session)
    for blob in store.blob_files():
        if blob.name in named or not old(blob):
            found.kept += 1
        else:
            found.orphan_blobs.append(blob)
    for path in found.temp_files + found.orphan_blobs:
        try:
            found.size += path.stat().st_size
        except FileNotFoundError:
            continue
        if apply:
            path.unlink(missing_ok=True)
    return found
