"""FastAPI dependencies shared by every router: the runtime and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shopkeeper.auth.http import credential_from_header
from shopkeeper.auth.principal import Principal
from shopkeeper.runtime import Runtime, get_runtime


def secret_principal(request: Request) -> Principal:
    """The admin API's caller: a secret key of the workspace every query is then scoped to."""
    runtime = get_runtime(request)
    return runtime.keys.require(credential_from_header(request.headers.get("authorization")), "secret")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Caller = Annotated[Principal, Depends(secret_principal)]
