"""The FastAPI factory: mounts each domain's router, maps domain errors to JSON once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from shopkeeper import __version__
from shopkeeper.auth.api import router as workspace_router
from shopkeeper.channels.chat.api import router as chat_admin_router
from shopkeeper.channels.chat.relay import ChatRelay
from shopkeeper.channels.chat.socket import router as chat_router
from shopkeeper.channels.email import double_opt_in as _email_double_opt_in  # noqa: F401 - sends confirmations
from shopkeeper.channels.push.public import router as push_router
from shopkeeper.channels.sms.webhooks import router as sms_webhooks_router
from shopkeeper.channels.social.webhooks import router as social_webhooks_router
from shopkeeper.channels.voice.api import router as calls_router
from shopkeeper.channels.webhook.api import router as webhook_endpoints_router
from shopkeeper.config import Settings, get_settings
from shopkeeper.consent.api import router as consent_router
from shopkeeper.consent.public import router as public_consent_router
from shopkeeper.customers.api import router as customers_router
from shopkeeper.db.migrate import upgrade
from shopkeeper.errors import ShopkeeperError
from shopkeeper.events.api import router as tracking_router
from shopkeeper.guard_middleware import InputGuard
from shopkeeper.inbox import hooks as _inbox_hooks  # noqa: F401 - every inbound message joins a conversation
from shopkeeper.inbox import timeline as _inbox_timeline  # noqa: F401 - notes on the 360° timeline
from shopkeeper.inbox.api import router as inbox_router
from shopkeeper.inbox.public import router as csat_router
from shopkeeper.journeys import optimiser as _channel_learning  # noqa: F401 - learns from auto-chosen sends
from shopkeeper.journeys.api import router as journeys_router
from shopkeeper.messaging.api import router as messaging_router
from shopkeeper.messaging.public import router as tracking_links_router
from shopkeeper.privacy.api import router as privacy_router
from shopkeeper.runtime import Runtime, get_runtime
from shopkeeper.segments.api import router as segments_router
from shopkeeper.web.routes import install as install_web

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message, "field": field}})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ShopkeeperError)
    async def _domain(request: Request, exc: ShopkeeperError) -> Response:
        web = getattr(request.state, "web", None)
        if web is not None:  # a page of the web UI: the refusal in its layout, not JSON
            from shopkeeper.web.render import error_page

            return error_page(request, web, exc.status, exc.message)
        return _error(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            where, loc = loc[0], loc[1:]
        else:
            where = "request"
        field = ".".join(loc) or where
        message = first.get("msg", "invalid request")
        if first.get("type") == "missing":
            message = "is required"
        elif first.get("type") == "json_invalid":
            message = "malformed JSON"
        return _error(400, "invalid", f"{field}: {message}", field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal", "internal error; it has been logged")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.should_auto_migrate:
            upgrade(settings.database_url)
        runtime.writer.start()
        runtime.maintenance.start()
        runtime.segments.start()
        runtime.segment_schedule.start()
        if settings.delivery_in_process:
            runtime.delivery.start()
            runtime.inbox.start()
            runtime.journeys.start()
        chat_relay = ChatRelay(runtime.db)  # chat messages handed off in other processes
        chat_relay.start()
        inbound_smtp = None
        if settings.inbound_smtp_port is not None:
            from shopkeeper.channels.email.inbound import InboundSmtpServer

            # SO_REUSEPORT: the processes of `serve --workers N` share the port.
            inbound_smtp = InboundSmtpServer.from_settings(runtime.db, settings, reuse_port=True).start()
        app.state.inbound_smtp = inbound_smtp
        try:
            yield
        finally:
            if inbound_smtp is not None:
                inbound_smtp.stop()
            chat_relay.stop()
            runtime.writer.stop()
            runtime.delivery.stop()
            runtime.inbox.stop()
            runtime.journeys.stop()
            runtime.segments.stop()
            runtime.segment_schedule.stop()
            runtime.maintenance.stop()
            runtime.db.dispose()

    app = FastAPI(
        title="Shopkeeper",
        version=__version__,
        description="Customer communication platform: profiles, ingestion, consent, messaging, journeys.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(InputGuard)
    _install_error_handlers(app)
    app.include_router(tracking_router)
    app.include_router(customers_router)
    app.include_router(workspace_router)
    app.include_router(consent_router)
    app.include_router(privacy_router)
    app.include_router(public_consent_router)
    app.include_router(segments_router)
    app.include_router(messaging_router)
    app.include_router(tracking_links_router)
    app.include_router(sms_webhooks_router)
    app.include_router(social_webhooks_router)
    app.include_router(chat_router)
    app.include_router(chat_admin_router)
    app.include_router(push_router)
    app.include_router(webhook_endpoints_router)
    app.include_router(calls_router)
    app.include_router(inbox_router)
    app.include_router(journeys_router)
    app.include_router(csat_router)
    install_web(app)

    @app.get("/health", tags=["meta"], summary="Liveness and database reachability (public, no data)")
    def health(request: Request) -> dict[str, str]:
        with get_runtime(request).db.session() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    return app
