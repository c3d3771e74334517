"""Logging in to the web UI: argon2-checked passwords, server-side sessions behind an HttpOnly,
SameSite=Lax cookie, and a CSRF token per session that every form and htmx request carries.

A page's handler asks for `Viewer` (any logged-in user) and checks a role with
`web.principal.require(...)`, exactly as the API does with a key; everything it reads is scoped
to the session's workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shopkeeper import clock
from shopkeeper.auth.models import User, Workspace
from shopkeeper.auth.passwords import hash_password, verify_password
from shopkeeper.auth.principal import Principal
from shopkeeper.customers.normalize import normalise_email
from shopkeeper.runtime import get_runtime
from shopkeeper.web.models import WebSession

COOKIE = "shopkeeper_session"
LIFETIME = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=5)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, actions answer 401."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfFailed(Exception):
    """A state-changing request without this session's token: refused with 403."""


@dataclass(frozen=True, slots=True)
class Web:
    """The logged-in user, their workspace and what they may do."""

    user: User
    workspace: Workspace
    principal: Principal
    csrf: str
    session_id: str

    @property
    def workspace_id(self) -> str:
        return self.workspace.id


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def candidates(session: Session, email: str) -> list[tuple[User, Workspace]]:
    """Every active account with this email, in any workspace (one person may work for several)."""
    normalised = normalise_email(email)
    if normalised is None:
        return []
    rows = session.execute(
        select(User, Workspace)
        .join(Workspace, Workspace.id == User.workspace_id)
        .where(User.email == normalised, User.disabled.is_(False), User.password_hash.is_not(None))
        .order_by(Workspace.name)
    ).all()
    return [(u, w) for u, w in rows]


def authenticate(
    session: Session, email: str, password: str, workspace_slug: str | None
) -> list[tuple[User, Workspace]]:
    """The accounts this password opens (several: the caller asks which workspace)."""
    matched = []
    for user, workspace in candidates(session, email):
        if workspace_slug and workspace.slug != workspace_slug:
            continue
        if user.password_hash and verify_password(user.password_hash, password):
            matched.append((user, workspace))
    if not matched:
        # The same work when no account exists, so timing does not tell who has one.
        verify_password(_dummy_hash(), password)
    return matched


def start(session: Session, user: User, now: datetime, user_agent: str | None) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=_digest(token),
            workspace_id=user.workspace_id,
            user_id=user.id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + LIFETIME,
            last_seen_at=now,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return token


def end(session: Session, token: str | None, now: datetime) -> None:
    if token:
        session.execute(update(WebSession).where(WebSession.id == _digest(token)).values(revoked_at=now))


def _lookup(request: Request) -> Web | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    now = clock.now()
    runtime = get_runtime(request)
    with runtime.db.session() as session:
        row = session.execute(
            select(WebSession, User, Workspace)
            .join(User, User.id == WebSession.user_id)
            .join(Workspace, Workspace.id == WebSession.workspace_id)
            .where(WebSession.id == _digest(token))
        ).first()
        if row is None:
            return None
        web_session, user, workspace = row
        if web_session.revoked_at is not None or web_session.expires_at <= now or user.disabled:
            return None
        if user.workspace_id != web_session.workspace_id:
            return None
        session.expunge_all()
    if now - web_session.last_seen_at > TOUCH_EVERY:
        with runtime.db.session(write=True) as session:
            session.execute(update(WebSession).where(WebSession.id == web_session.id).values(last_seen_at=now))
    principal = Principal(workspace_id=workspace.id, actor=f"user:{user.id}", role=user.role)
    return Web(user, workspace, principal, web_session.csrf, web_session.id)


async def current(request: Request) -> Web:
    web = _lookup(request)
    if web is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        await _check_csrf(request, web)
    request.state.web = web
    return web


async def _check_csrf(request: Request, web: Web) -> None:
    """htmx sends the token as a header (set once on <body>); a plain form as a field."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)  # Starlette keeps the parsed form
            sent = value if isinstance(value, str) else None
    if sent is None or not hmac.compare_digest(sent, web.csrf):
        raise CsrfFailed()


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path if next_path.startswith("/") and not next_path.startswith("//") else "/")


Viewer = Annotated[Web, Depends(current)]


@cache
def _dummy_hash() -> str:
    """Verified against when no account matches, so a wrong email costs what a wrong password does."""
    return hash_password(secrets.token_hex(16))
