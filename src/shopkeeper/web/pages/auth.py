"""The login form and logging out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shopkeeper import clock
from shopkeeper.auth.principal import Principal
from shopkeeper.auth.service import audit
from shopkeeper.runtime import get_runtime
from shopkeeper.web import session as web_session
from shopkeeper.web.render import page
from shopkeeper.web.session import COOKIE, LIFETIME, Viewer

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to another."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, None, "app/login.html", next=_safe_next(next), email="", error=None, workspaces=[])


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/",
    workspace: Annotated[str | None, Form(max_length=80)] = None,
) -> Response:
    runtime = get_runtime(request)
    now = clock.now()
    with runtime.db.session(write=True) as session:
        matched = web_session.authenticate(session, email, password, workspace or None)
        if len(matched) != 1:
            error = "Wrong email or password." if not matched else None
            choices = [(w.slug, w.name) for _, w in matched]
            return page(
                request,
                None,
                "app/login.html",
                status=401 if not matched else 200,
                next=_safe_next(next),
                email=email,
                error=error,
                workspaces=choices,
            )
        user, _ = matched[0]
        token = web_session.start(session, user, now, request.headers.get("user-agent"))
        principal = Principal(workspace_id=user.workspace_id, actor=f"user:{user.id}", role=user.role)
        audit(session, principal, "web.login", subject_type="user", subject_id=user.id, now=now, details={})
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, web: Viewer) -> Response:
    with get_runtime(request).db.session(write=True) as session:
        web_session.end(session, request.cookies.get(COOKIE), clock.now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
