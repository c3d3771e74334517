"""Rendering a page: one Jinja2 environment, the layout's shared context (the user, the
workspace, the CSRF token, the navigation) and the security headers every page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from shopkeeper import __version__
from shopkeeper.web.session import Web

env = Environment(
    loader=PackageLoader("shopkeeper", "web/templates"),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
NAV = (
    ("dashboard", "/", "Dashboard"),
    ("customers", "/customers", "Customers"),
    ("inbox", "/inbox", "Inbox"),
    ("segments", "/segments", "Segments"),
    ("journeys", "/journeys", "Journeys"),
    ("templates", "/templates", "Templates"),
    ("analytics", "/analytics", "Analytics"),
    ("settings", "/settings", "Settings"),
)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Scripts only from this server (vendored htmx and Chart.js); no inline script.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def when(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
    """A time for people: UTC, with the zone said (the API gives ISO 8601)."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime(fmt) + " UTC"


def ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


env.filters["when"] = when
env.filters["ago"] = ago
env.globals["version"] = __version__


def render(name: str, **context: Any) -> str:
    return env.get_template(name).render(**context)


def page(
    request: Request, web: Web | None, name: str, *, section: str = "", status: int = 200, **context: Any
) -> HTMLResponse:
    """A full page in the layout, or only its fragment when htmx asks for one (`HX-Target`)."""
    html = render(
        name,
        web=web,
        nav=NAV,
        section=section,
        htmx=request.headers.get("hx-request") == "true",
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def fragment(name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **context), status_code=status, headers=HEADERS)


def error_page(request: Request, web: Web | None, status: int, message: str) -> HTMLResponse:
    """A refusal in the layout (403 for a role, 404 for what is not in this workspace)."""
    return page(request, web, "app/error.html", status=status, status_code=status, message=message)
