"""The web application's routes, static files and the two answers every page shares: to the
login form when there is no session, 403 when a form lacks this session's CSRF token."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from shopkeeper.web import pages
from shopkeeper.web.session import CsrfFailed, LoginRequired, login_url

STATIC = Path(__file__).parent / "static" / "app"


def routers() -> list[APIRouter]:
    """Every page module's `router` (web/pages/<page>.py): a new page is one new file."""
    found = []
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{pages.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def install(app: FastAPI) -> None:
    for router in routers():
        app.include_router(router)
    app.mount("/static/app", StaticFiles(directory=STATIC), name="static-app")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            if request.headers.get("hx-request") == "true":  # htmx: reload the whole page at the form
                return Response(status_code=401, headers={"HX-Redirect": login_url(exc.next_path)})
            return RedirectResponse(login_url(exc.next_path), status_code=303)
        return HTMLResponse("Your session has ended: log in again.", status_code=401)

    @app.exception_handler(CsrfFailed)
    async def csrf_refused(request: Request, exc: CsrfFailed) -> Response:
        return HTMLResponse(
            "This form is out of date or came from another site (CSRF check): reload the page and try again.",
            status_code=403,
        )
