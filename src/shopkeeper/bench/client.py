"""The load generator's HTTP clients: a minimal keep-alive HTTP/1.1 client on asyncio streams,
and httpx.AsyncClient for comparison.

The client shares the machine's two cores with the server, so every microsecond it spends is
taken from the figure being measured. The raw client sends request bytes built before the clock
starts and reads only the status line, headers and body; httpx is kept to show the difference
(`--client httpx`). Measured here: ~0.15 ms of client CPU per 100-event request against ~1.2 ms
for httpx, and httpx added 1–2.5 ms to the p50 of a single /v1/track.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

import httpx

from shopkeeper.errors import Invalid

ClientKind = Literal["raw", "httpx"]
CLIENT_KINDS: tuple[ClientKind, ...] = ("raw", "httpx")


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 as we know it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to POST and with which write key (HTTP basic-auth user name, as Segment clients do)."""

    host: str
    port: int
    path: str
    write_key: str

    @classmethod
    def parse(cls, base_url: str, path: str, write_key: str) -> Endpoint:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise Invalid(f"--target: expected http://host:port, not {base_url!r}")
        return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/") + path, write_key)

    @property
    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode("ascii")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wire(self, body: bytes) -> bytes:
        """The whole request as it goes on the socket."""
        head = (
            f"POST {self.path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Authorization: {self.authorization}\r\n"
            "Content-Type: application/json\r\n"
            "User-Agent: shopkeeper-bench\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("ascii") + body


class Connection(Protocol):
    async def connect(self) -> None: ...

    async def post(self, prepared: bytes) -> tuple[int, bytes]:
        """Send one prepared request; return the status and the response body."""
        ...

    async def aclose(self) -> None: ...


def prepare(kind: ClientKind, endpoint: Endpoint, body: bytes) -> bytes:
    """What `Connection.post` of this kind takes: the whole request (raw) or just the body (httpx)."""
    return endpoint.wire(body) if kind == "raw" else body


def open_connection(kind: ClientKind, endpoint: Endpoint) -> Connection:
    return RawConnection(endpoint) if kind == "raw" else HttpxConnection(endpoint)


class RawConnection:
    """One keep-alive HTTP/1.1 connection: one request in flight, responses read in order."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.endpoint.host, self.endpoint.port)

    async def post(self, prepared: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            await self.connect()
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        try:
            writer.write(prepared)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, chunked, close = _parse_head(head)
            body = await _read_chunked(reader) if chunked else await reader.readexactly(length)
        except BaseException:
            await self.aclose()  # the stream is in an unknown state: the next post reconnects
            raise
        if close:
            await self.aclose()
        return status, body

    async def aclose(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _parse_head(head: bytes) -> tuple[int, int, bool, bool]:
    """Status, Content-Length, whether the body is chunked, whether the server will close."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0][:80]!r}")
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            close = "close" in value.lower()
    return int(parts[1]), length, chunked, close


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent by our server
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


class HttpxConnection:
    """httpx.AsyncClient limited to one keep-alive connection, so it compares like for like."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._client = httpx.AsyncClient(
            base_url=endpoint.base_url,
            headers={"Authorization": endpoint.authorization, "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(60.0),
        )

    async def connect(self) -> None:
        """httpx connects on the first request."""

    async def post(self, prepared: bytes) -> tuple[int, bytes]:
        response = await self._client.post(self.endpoint.path, content=prepared)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


# What a failed request can raise, counted as an error instead of ending the run.
REQUEST_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    ProtocolError,
    ValueError,
    httpx.HTTPError,
)
