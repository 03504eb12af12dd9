"""Migration 0014_i18: the invoice and counter tables come, keep a unique number, and go back;
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0013_i18_eligibility"
MINE = "0014_i18_invoices"
T = "2026-01-05 09:00:00+00:00"
ROW = (
    "INSERT INTO invoice (number, kind, organisation_id, scheme, level, turnover_band, "
    "description, amount_pence, vat_pence, vat_percent, status, issued_at, due_at, reference, "
    "payment_method, payment_reference, version) VALUES ('INV-000001', 'invoice', 1, 'svqm', "
    "'bronze', '', 'fee', 49500, 9900, 20, 'unpaid', :t, :t, 'INV-000001', '', '', 1)"
)


def test_invoices_table_holds_one_number_once_and_goes_back(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    with blank.begin() as c:
        c.execute(
            text("INSERT INTO organisation (id, name, sector, created_at) VALUES (1, 'A', '', :t)"),
            {"t": T},
        )
    upgrade(blank, MINE)
    assert {"invoice", "invoice_counter"} <= set(inspect(blank).get_table_names())
    with blank.begin() as c:
        c.execute(text(ROW), {"t": T})
    with pytest.raises(IntegrityError), blank.begin() as c:
        c.execute(text(ROW), {"t": T})
    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    assert "invoice" not in inspect(blank).get_table_names()
