"""Settings from the environment (SVQM_*), each with a working local default."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_POLICIES = Path(__file__).resolve().parent.parent / "policies"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SVQM_", env_file=".env", extra="ignore")

    ENV: Literal["development", "production", "test"] = "development"
    # The service's name in every page's header and title: the service, not one of its schemes.
    SERVICE_NAME: str = "Social value accreditation"
    DATABASE_URL: str = "sqlite:///var/svqm.db"
    POLICIES_DIR: Path = _REPO_POLICIES
    # What an organisation's own charter holds: its pillars, their names and hints.
    CHARTER_FILE: Path = _REPO_POLICIES / "organisation" / "charter.yaml"
    VAR_DIR: Path = Path("var")
    EVIDENCE_DIR: Path = Path("var/evidence")
    MAIL_DIR: Path = Path("var/mail")
    MAX_UPLOAD_BYTES: int = 25 * 1024 * 1024
    # An OOXML package (docx/xlsx/pptx) is a zip: bound what it unpacks to, so a zip bomb is refused.
    MAX_UNPACKED_BYTES: int = 200 * 1024 * 1024
    MAX_ARCHIVE_ENTRIES: int = 2000
    SQLITE_BUSY_TIMEOUT_MS: int = 10_000
    # Signs the anonymous CSRF cookie of the sign-in and sign-up forms. Unset: a random key is
    # made once and kept in VAR_DIR/secret_key (never committed).
    SECRET_KEY: str = ""
    SESSION_IDLE_MINUTES: int = 60
    SESSION_MAX_HOURS: int = 12
    API_TOKEN_HOURS: int = 8
    # Sign-in throttling (counted in the database, so it holds across workers). Failures are
    # remembered for LOGIN_WINDOW_MINUTES. One account from one address gets LOGIN_FREE_FAILURES
    # tries, then must wait 1, 2, 4 ... seconds (at most LOGIN_MAX_DELAY_SECONDS) after each
    # failure: slowed, never locked, and only from that address. Past LOGIN_ACCOUNT_CEILING
    # failures from all addresses together, only addresses the owner signed in from in the last
    # KNOWN_SOURCE_DAYS may try. One address may fail LOGIN_SOURCE_MAX_FAILURES times across all
    # accounts, and sign up SIGNUP_PER_SOURCE_HOUR organisations an hour.
    LOGIN_WINDOW_MINUTES: int = 15
    LOGIN_FREE_FAILURES: int = 3
    LOGIN_MAX_DELAY_SECONDS: int = 300
    LOGIN_ACCOUNT_CEILING: int = 50
    LOGIN_SOURCE_MAX_FAILURES: int = 30
    KNOWN_SOURCE_DAYS: int = 30
    SIGNUP_PER_SOURCE_HOUR: int = 10
    # How long an admin-issued link to set up a second factor stays good (it works once).
    ENROLMENT_LINK_HOURS: int = 24
    # Secure cookies with the __Host- prefix; off only for plain-http development and tests.
    COOKIE_SECURE: bool = False
    TOTP_ISSUER: str = "svqm"
    RUN_SCHEDULER: bool = True
    # Where links in emails, calendar entries and signed credentials point.
    BASE_URL: str = "http://127.0.0.1:8000"
    # The accreditation body that signs award credentials (Open Badges 3.0, VC-JWT).
    ISSUER_NAME: str = "Social Value Quality Mark accreditation (demo issuer)"
    # The Ed25519 key that signs them: made on first run when missing. Unset: VAR_DIR/keys/.
    # Keep it (and back it up) outside the database: replacing it breaks every credential issued.
    ISSUER_KEY_FILE: Path | None = None
    # Mail: with no SMTP_HOST, messages go to the Maildir in MAIL_DIR.
    MAIL_FROM: str = "SVQM <no-reply@svqm.localhost>"
    SMTP_HOST: str = ""
    SMTP_PORT: int = 25
    SMTP_SECURITY: Literal["none", "starttls", "tls"] = "none"
    SMTP_USERNAME: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_TIMEOUT_SECONDS: float = 30
    # Delivery retries back off exponentially (with jitter) from this delay, up to the attempt
    # limit; then the message is dead-lettered for an admin to retry.
    OUTBOX_MAX_ATTEMPTS: int = 8
    OUTBOX_BACKOFF_SECONDS: float = 60
    OUTBOX_BACKOFF_MAX_SECONDS: float = 6 * 3600
    # A dispatcher's claim on a message; if it dies, another may send it after this long.
    OUTBOX_LEASE_SECONDS: float = 300
    OUTBOX_BATCH: int = 20
    # How long an emailed invitation to act for an organisation can be taken up.
    INVITATION_DAYS: int = 7
    # The regions an organisation may say it works in (shown and filtered in the directory and
    # the admin dashboard); a JSON list in SVQM_REGIONS. The default: England's 42 integrated
    # care systems would be the real list; these are a few of them, for the demo.
    REGIONS: list[str] = [
        "Cheshire and Merseyside",
        "Greater Manchester",
        "Lancashire and South Cumbria",
        "North East and North Cumbria",
        "West Yorkshire",
        "South Yorkshire",
        "Humber and North Yorkshire",
        "Birmingham and Solihull",
        "North Central London",
        "Kent and Medway",
    ]
    SWEEP_INTERVAL_SECONDS: float = 300
    DISPATCH_INTERVAL_SECONDS: float = 30

    @model_validator(mode="after")
    def _a_send_fits_in_its_claim(self) -> Settings:
        # A dispatcher sends only while one more send, at the SMTP timeout, still fits in its
        # claim's lease; a timeout as long as the lease would leave every message unsent.
        if self.SMTP_HOST and self.SMTP_TIMEOUT_SECONDS >= self.OUTBOX_LEASE_SECONDS:
            raise ValueError(
                f"SVQM_SMTP_TIMEOUT_SECONDS ({self.SMTP_TIMEOUT_SECONDS:g}) must be shorter than "
                f"SVQM_OUTBOX_LEASE_SECONDS ({self.OUTBOX_LEASE_SECONDS:g}): a send could outlast "
                "the claim on its message"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
