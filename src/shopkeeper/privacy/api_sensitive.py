"""Routes for the sensitive-trait registry and the allowances that record why marketing may use one."""

from __future__ import annotations

from fastapi import APIRouter

from shopkeeper import clock
from shopkeeper.deps import Caller, RuntimeDep
from shopkeeper.privacy import service
from shopkeeper.privacy.schemas import AllowanceIn, AllowanceOut, SensitiveTraitIn, SensitiveTraitOut

router = APIRouter()


@router.get("/sensitive-traits", summary="Traits this workspace treats as sensitive")
def list_sensitive_traits(runtime: RuntimeDep, caller: Caller) -> list[SensitiveTraitOut]:
    caller.require("viewer")
    with runtime.db.session() as session:
        return [SensitiveTraitOut.model_validate(r) for r in service.sensitive_traits(session, caller.workspace_id)]


@router.post("/sensitive-traits", status_code=201, summary="Mark a trait as sensitive")
def add_sensitive_trait(runtime: RuntimeDep, caller: Caller, body: SensitiveTraitIn) -> SensitiveTraitOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        row = service.add_sensitive_trait(session, caller, name=body.name, category=body.category, now=clock.now())
        return SensitiveTraitOut.model_validate(row)


@router.delete("/sensitive-traits/{trait_id}", summary="Stop treating a trait as sensitive")
def remove_sensitive_trait(runtime: RuntimeDep, caller: Caller, trait_id: str) -> SensitiveTraitOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        return SensitiveTraitOut.model_validate(service.remove_sensitive_trait(session, caller, trait_id, clock.now()))


@router.get("/sensitive-allowances", summary="Allowances to use sensitive traits for marketing, newest first")
def list_allowances(runtime: RuntimeDep, caller: Caller, include_revoked: bool = False) -> list[AllowanceOut]:
    caller.require("viewer")
    with runtime.db.session() as session:
        rows = service.allowances(session, caller.workspace_id, include_revoked=include_revoked)
        return [AllowanceOut.model_validate(r) for r in rows]


@router.post("/sensitive-allowances", status_code=201, summary="Allow a marketing use of a sensitive trait, saying why")
def allow_use(runtime: RuntimeDep, caller: Caller, body: AllowanceIn) -> AllowanceOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        row = service.allow_use(
            session, caller, trait=body.trait, usage=body.usage, reason=body.reason, now=clock.now()
        )
        return AllowanceOut.model_validate(row)


@router.delete("/sensitive-allowances/{allowance_id}", summary="Revoke an allowance (the record stays)")
def revoke_allowance(runtime: RuntimeDep, caller: Caller, allowance_id: str) -> AllowanceOut:
    caller.require("admin")
    with runtime.db.session(write=True) as session:
        return AllowanceOut.model_validate(service.revoke_allowance(session, caller, allowance_id, clock.now()))
