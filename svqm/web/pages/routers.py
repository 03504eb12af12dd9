"""The list of page routers, in the order they are mounted."""

from __future__ import annotations

from fastapi import APIRouter

from svqm.web.pages import (
    account,
    admin,
    admin_dashboard,
    admin_ops,
    applicant,
    applicant_awards,
    applicant_forms,
    assessor,
    credentials,
    panel,
    public,
)

ALL: list[APIRouter] = [
    public.router,
    credentials.router,
    account.router,
    applicant.router,
    applicant_forms.router,
    applicant_awards.router,
    assessor.router,
    panel.router,
    admin_dashboard.router,
    admin.router,
    admin_ops.router,
]
