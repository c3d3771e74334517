"""Routes for GDPR: export everything about a customer (streamed), erase a customer."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from shopkeeper import clock
from shopkeeper.customers.service import canonical
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.errors import Invalid
from shopkeeper.privacy.erasure import erase_customer
from shopkeeper.privacy.export import export_chunks, plan_export
from shopkeeper.privacy.schemas import EraseIn, ErasureOut

router = APIRouter()


@router.get(
    "/customers/{customer_id}/export",
    summary="Everything stored about a customer, as one JSON document (streamed; see docs/privacy.md)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "the export document"}},
)
def export_customer(runtime: RuntimeDep, caller: Caller, customer_id: str) -> StreamingResponse:
    # Admin, not viewer: the document is the person's whole record, audit log included (and the
    # audit log is admin-only).
    caller.require("admin")
    now = clock.now()
    with runtime.db.session(write=True) as session:
        plan = plan_export(session, caller, customer_id, now=now)

    def body() -> Iterator[bytes]:
        with runtime.db.session() as session:
            yield from export_chunks(session, plan, now=now)

    return StreamingResponse(
        body(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{plan.customer_id}.json"'},
    )


@router.post("/customers/{customer_id}/erase", summary="Erase a customer for good (GDPR); confirm with its id")
def erase(runtime: RuntimeDep, caller: Caller, customer_id: str, body: EraseIn) -> ErasureOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        canonical(session, caller.workspace_id, customer_id)  # an unknown id is a 404 whatever the body says
        if body.confirm != customer_id:
            raise Invalid(
                f"confirm: repeat the customer id ({customer_id}) to confirm; an erasure cannot be undone",
                field="confirm",
            )
        erasure = erase_customer(session, caller, customer_id, now=clock.now())
    # This process's identity cache may still point identifiers at the erased ids; other
    # processes notice the epoch the erasure moved on.
    runtime.identity_cache.clear()
    return ErasureOut(
        customer_id=erasure.customer_id,
        erased_customer_ids=erasure.customer_ids,
        deleted=erasure.deleted,
        suppressed_addresses=erasure.suppressed_addresses,
    )
