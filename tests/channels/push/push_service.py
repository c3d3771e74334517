"""A push service on loopback, and a browser's side of a subscription.

`Browser` holds what a browser keeps private (the subscription's P-256 key and auth secret) and
hands out what `PushSubscription.toJSON()` shows. `PushService` is a real HTTP server that, like
a push service, checks the VAPID authorization (the JWT verified against the public key it
carries, and its claims), then decrypts the aes128gcm body with the browser's key using
`http_ece`, so a test sees exactly what the service worker would get."""

from __future__ import annotations

import base64
import os
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from shopkeeper import clock


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> bytes:
        data: bytes = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        return data


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    claims: dict[str, Any]
    vapid_key: str
    payload: dict[str, Any]


class PushService:
    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}  # path → the browser subscribed there
        self.deliveries: list[Delivery] = []
        self.refusals: list[str] = []
        self.answers: dict[str, int] = {}  # path → status to answer instead of 201
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, why = service.receive(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                if status == 201:
                    self.send_header("Location", f"/messages/{secrets.token_hex(4)}")
                self.send_header("Content-Length", str(len(why)))
                self.end_headers()
                self.wfile.write(why)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def subscribe(self, browser: Browser | None = None) -> tuple[Browser, dict[str, Any]]:
        """A new subscription on this service (what pushManager.subscribe() would return)."""
        browser = browser or Browser()
        path = f"/push/{secrets.token_urlsafe(24)}"
        self.browsers[path] = browser
        return browser, browser.subscription(self.origin + path)

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if path in self.answers:
            return self.answers[path], b"as configured"
        browser = self.browsers.get(path)
        if browser is None:
            return 404, b"no such subscription"
        why = self._check(headers)
        if why:
            with self._lock:
                self.refusals.append(why)
            return 403, why.encode()
        auth = headers["authorization"]
        params = dict(part.split("=", 1) for part in auth.split(" ", 1)[1].split(","))
        claims = orjson.loads(unb64url(params["t"].split(".")[1]))
        payload = orjson.loads(browser.decrypt(body))
        with self._lock:
            self.deliveries.append(Delivery(path, headers, claims, params["k"], payload))
        return 201, b""

    def _check(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("vapid t="):
            return "no VAPID authorization"
        try:
            if not Vapid02.verify(auth):
                return "the VAPID signature does not match its key"
        except Exception as exc:  # noqa: BLE001 - any malformed header is a refusal
            return f"malformed VAPID header: {exc}"
        params = dict(part.split("=", 1) for part in auth.split(" ", 1)[1].split(","))
        claims = orjson.loads(unb64url(params["t"].split(".")[1]))
        if claims.get("aud") != self.origin:
            return f"aud {claims.get('aud')} is not {self.origin}"
        now = clock.now().timestamp()
        if not now < claims.get("exp", 0) <= now + 24 * 3600:
            return "exp not within the next 24 hours"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            return "no sub contact"
        if headers.get("content-encoding") != "aes128gcm":
            return "not aes128gcm"
        if "ttl" not in headers:
            return "no TTL"
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
