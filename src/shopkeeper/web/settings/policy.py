"""Settings › Frequency caps and quiet hours: the workspace's ContactPolicy — caps per channel
and over all channels, per day and week; quiet hours in the customer's time zone; whether
transactional messages obey them; the zone for customers without one. Admins change it."""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from shopkeeper import clock
from shopkeeper.auth.models import Workspace
from shopkeeper.auth.service import audit
from shopkeeper.consent.models import CHANNELS
from shopkeeper.consent.policy import ContactPolicy
from shopkeeper.errors import Invalid, NotFound
from shopkeeper.runtime import get_runtime
from shopkeeper.web.forms import Form, checked, field_errors, optional, text, values_of
from shopkeeper.web.session import Viewer, Web
from shopkeeper.web.settings.common import done, show

router = APIRouter()
PATH = "/settings/contact-policy"
SCOPES = ("all", *CHANNELS)
FIELDS = (
    *(f"caps.{scope}.{window}" for scope in SCOPES for window in ("day", "week")),
    "caps",
    "quiet_hours.start",
    "quiet_hours.end",
    "quiet_hours",
    "default_timezone",
)


@cache
def zones() -> list[str]:
    return sorted(available_timezones())


def _values(policy: ContactPolicy) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for scope, cap in policy.caps.items():
        values[f"caps.{scope}.day"] = "" if cap.day is None else str(cap.day)
        values[f"caps.{scope}.week"] = "" if cap.week is None else str(cap.week)
    hours = policy.quiet_hours
    values["quiet_hours_enabled"] = "1" if hours else ""
    values["quiet_hours.start"] = hours.start if hours else "21:00"
    values["quiet_hours.end"] = hours.end if hours else "08:00"
    values["quiet_hours_transactional"] = "1" if policy.quiet_hours_transactional else ""
    values["caps_transactional"] = "1" if policy.caps_transactional else ""
    values["default_timezone"] = policy.default_timezone
    return values


def _render(
    request: Request,
    web: Web,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    if values is None:
        with get_runtime(request).db.session() as s:
            workspace = s.get(Workspace, web.workspace_id)
            if workspace is None:
                raise NotFound("workspace not found")
            values = _values(ContactPolicy.of(workspace))
    return show(
        request,
        web,
        "policy",
        current="policy",
        status=status,
        errors=errors,
        values=values,
        scopes=SCOPES,
        zones=zones(),
    )


@router.get(PATH)
def policy_page(request: Request, web: Viewer) -> HTMLResponse:
    return _render(request, web)


def parse(form: FormData) -> ContactPolicy:
    """The form as the API's PUT body, checked by the same `ContactPolicy.parse`; a blank cap is no cap."""
    caps: dict[str, dict[str, str | None]] = {}
    for scope in SCOPES:
        day, week = optional(form, f"caps.{scope}.day"), optional(form, f"caps.{scope}.week")
        if day is not None or week is not None:
            caps[scope] = {"day": day, "week": week}
    quiet = None
    if checked(form, "quiet_hours_enabled"):
        quiet = {"start": text(form, "quiet_hours.start"), "end": text(form, "quiet_hours.end")}
    return ContactPolicy.parse(
        {
            "caps": caps,
            "quiet_hours": quiet,
            "quiet_hours_transactional": checked(form, "quiet_hours_transactional"),
            "caps_transactional": checked(form, "caps_transactional"),
            "default_timezone": text(form, "default_timezone") or "UTC",
        }
    )


@router.post(PATH)
def save_policy(request: Request, web: Viewer, form: Form) -> Response:
    web.principal.require("admin")
    try:
        policy = parse(form)
    except Invalid as exc:
        return _render(request, web, status=exc.status, errors=field_errors(exc, FIELDS), values=values_of(form))
    now = clock.now()
    with get_runtime(request).db.session(write=True) as s:
        workspace = s.get(Workspace, web.workspace_id)
        if workspace is None:
            raise NotFound("workspace not found")
        workspace.settings = {**(workspace.settings or {}), "contact_policy": policy.model_dump()}
        audit(
            s,
            web.principal,
            "contact_policy.update",
            subject_type="workspace",
            subject_id=workspace.id,
            details=policy.model_dump(),
            now=now,
        )
    return done(PATH, "policy-saved")
