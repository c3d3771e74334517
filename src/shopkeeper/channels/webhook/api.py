"""Admin API for outbound webhook endpoints: list, create (the secret is shown once), change,
delete, rotate the secret. Every change is audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from shopkeeper import clock
from shopkeeper.auth.service import audit
from shopkeeper.channels.webhook import endpoints
from shopkeeper.channels.webhook.schemas import EndpointIn, EndpointOut, EndpointPatch, EndpointWithSecret
from shopkeeper.config import get_settings
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.messaging.models import WebhookEndpoint

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


def _allow_private() -> bool:
    # The same source as the provider's guard: the operator's environment.
    return get_settings().webhook_allow_private


def _out(row: WebhookEndpoint) -> EndpointOut:
    out = EndpointOut.model_validate(row)
    out.secret_hint = endpoints.secret_hint(row.secret)
    return out


def _with_secret(row: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret(**_out(row).model_dump(), secret=row.secret)


@router.get("/webhook-endpoints", summary="Outbound webhook endpoints")
def list_endpoints(runtime: RuntimeDep, caller: Caller) -> list[EndpointOut]:
    with runtime.db.session() as session:
        return [_out(row) for row in endpoints.list_endpoints(session, caller.workspace_id)]


@router.post(
    "/webhook-endpoints",
    status_code=201,
    summary="Add an endpoint; the answer holds its signing secret, shown this once",
)
def create_endpoint(runtime: RuntimeDep, caller: Caller, body: EndpointIn) -> EndpointWithSecret:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        row = endpoints.create_endpoint(
            session, caller.workspace_id, **body.model_dump(), allow_private=_allow_private(), now=now
        )
        audit(
            session,
            caller,
            "webhook_endpoint.create",
            subject_type="webhook_endpoint",
            subject_id=row.id,
            details={"url": row.url, "events": row.events},
            now=now,
        )
        return _with_secret(row)


@router.get("/webhook-endpoints/{endpoint_id}", summary="One endpoint (without its secret)")
def get_endpoint(runtime: RuntimeDep, caller: Caller, endpoint_id: str) -> EndpointOut:
    with runtime.db.session() as session:
        return _out(endpoints.get_endpoint(session, caller.workspace_id, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}", summary="Change an endpoint's URL, events or state")
def patch_endpoint(runtime: RuntimeDep, caller: Caller, endpoint_id: str, body: EndpointPatch) -> EndpointOut:
    caller.require("admin")
    now = clock.now()
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    with runtime.db.session(write=True) as session:
        row = endpoints.update_endpoint(
            session, caller.workspace_id, endpoint_id, changes, allow_private=_allow_private()
        )
        audit(
            session,
            caller,
            "webhook_endpoint.update",
            subject_type="webhook_endpoint",
            subject_id=row.id,
            details={k: v for k, v in changes.items() if v is not None},
            now=now,
        )
        return _out(row)


@router.delete("/webhook-endpoints/{endpoint_id}", summary="Remove an endpoint (its pending deliveries fail)")
def delete_endpoint(runtime: RuntimeDep, caller: Caller, endpoint_id: str) -> EndpointOut:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        row = endpoints.delete_endpoint(session, caller.workspace_id, endpoint_id)
        audit(
            session,
            caller,
            "webhook_endpoint.delete",
            subject_type="webhook_endpoint",
            subject_id=endpoint_id,
            details={"url": row.url},
            now=now,
        )
        return _out(row)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    summary="A new signing secret, effective at once and shown this once",
)
def rotate_secret(runtime: RuntimeDep, caller: Caller, endpoint_id: str) -> EndpointWithSecret:
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        row = endpoints.rotate_secret(session, caller.workspace_id, endpoint_id)
        audit(
            session,
            caller,
            "webhook_endpoint.rotate_secret",
            subject_type="webhook_endpoint",
            subject_id=row.id,
            now=now,
        )
        return _with_secret(row)
