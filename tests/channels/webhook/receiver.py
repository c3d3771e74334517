"""A real HTTP server on loopback that keeps every request it receives and answers with the
statuses it is told to (then 200), as a webhook receiver would."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import free_port


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: tuple[str, int]  # the client's address and port: the same port, the same connection


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    answers: deque[int] = field(default_factory=deque)  # statuses for the next requests, then 200
    drip: float | None = None  # answer one byte of the body every `drip` seconds (a stalling receiver)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    def answer(self, *statuses: int) -> None:
        with self.lock:
            self.answers.extend(statuses)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: connection reuse is observable

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        Request(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            (self.client_address[0], self.client_address[1]),
                        )
                    )
                    status = receiver.answers.popleft() if receiver.answers else 200
                reply = b'{"received": true}' if status < 300 else f"status {status}".encode()
                if receiver.drip is not None:
                    reply = b" " * 600
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                if receiver.drip is None:
                    self.wfile.write(reply)
                    return
                try:
                    for byte in reply:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(receiver.drip)
                except OSError:
                    self.close_connection = True  # the client gave up: what the test wants to see

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
