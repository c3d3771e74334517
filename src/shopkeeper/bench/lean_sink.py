"""A lean receiving SMTP server for the send bench: the stand-in for the mail relay a real
deployment hands its mail to (Postfix, a cloud relay), which runs on another machine and costs
the sender nothing. The bench runs both ends on the same two cores, so the receiver's own CPU is
taken from the sender: aiosmtpd reads DATA line by line in Python and costs about as much per
message as rendering and sending it (measured in docs/messaging.md), which would make the bench
measure the sink.

It speaks the part of RFC 5321 a submission client uses — EHLO/HELO, MAIL, RCPT, DATA, RSET,
NOOP, QUIT — with the command order checked (503 out of sequence), and PIPELINING (RFC 2920):
replies to every complete command in a segment go back in one write. A message ends at
CRLF.CRLF, found with one `bytes.find` per segment rather than per line.
"""

from __future__ import annotations

import asyncio
import re
from typing import cast

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_END = b"\r\n.\r\n"
EHLO_REPLY = b"250-sink.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n"


class Tally:
    """What the sink received: messages, and their distinct Message-IDs (a repeat is a duplicate send)."""

    def __init__(self) -> None:
        self.messages = 0
        self.ids: set[bytes] = set()

    def add(self, message: bytes) -> None:
        self.messages += 1
        head_end = message.find(b"\r\n\r\n")
        found = _MESSAGE_ID.search(message, 0, head_end if head_end >= 0 else len(message))
        if found:
            self.ids.add(found.group(1))


class LeanSmtp(asyncio.Protocol):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = bytearray()
        self.transport: asyncio.WriteTransport | None = None
        self.in_data = False
        self.scanned = 0  # bytes of the current message already searched for its end
        self.mail = False
        self.recipients = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # asyncio's or uvloop's TCP transport
        self.transport.write(b"220 sink.localhost ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        closing = False
        while not closing:
            if self.in_data:
                if not self._message(replies):
                    break
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            line = bytes(self.buffer[:line_end])
            del self.buffer[: line_end + 2]
            closing = self._command(line, replies)
        assert self.transport is not None
        if replies:
            self.transport.write(b"".join(replies))
        if closing:
            self.transport.close()

    def _message(self, replies: list[bytes]) -> bool:
        """Take one whole message off the buffer, if it is all there. The data starts right after
        the 354 reply, so an empty message is a lone '.' line."""
        if self.buffer.startswith(b".\r\n"):
            end, message = 0, b""
            del self.buffer[:3]
        else:
            end = self.buffer.find(_END, max(0, self.scanned - 4))
            if end < 0:
                self.scanned = len(self.buffer)
                return False
            message = bytes(self.buffer[: end + 2])
            del self.buffer[: end + len(_END)]
        self.tally.add(message)
        replies.append(b"250 2.0.0 queued\r\n")
        self.in_data, self.scanned, self.mail, self.recipients = False, 0, False, 0
        return True

    def _command(self, line: bytes, replies: list[bytes]) -> bool:
        """Answer one command; True when the connection is to close after the replies."""
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.mail, self.recipients = False, 0
            replies.append(EHLO_REPLY)
        elif verb == b"HELO":
            replies.append(b"250 sink.localhost\r\n")
        elif verb == b"MAIL":
            if self.mail:
                replies.append(b"503 5.5.1 nested MAIL command\r\n")
            else:
                self.mail = True
                replies.append(b"250 2.1.0 OK\r\n")
        elif verb == b"RCPT":
            if not self.mail:
                replies.append(b"503 5.5.1 MAIL first\r\n")
            else:
                self.recipients += 1
                replies.append(b"250 2.1.5 OK\r\n")
        elif verb == b"DATA":
            if not self.recipients:
                replies.append(b"503 5.5.1 RCPT first\r\n")
            else:
                self.in_data = True
                replies.append(b"354 end data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"RSET":
            self.mail, self.recipients = False, 0
            replies.append(b"250 2.0.0 OK\r\n")
        elif verb == b"NOOP":
            replies.append(b"250 2.0.0 OK\r\n")
        elif verb == b"QUIT":
            replies.append(b"221 2.0.0 bye\r\n")
            return True
        else:
            replies.append(b"502 5.5.2 command not implemented\r\n")
        return False


async def serve(host: str, port: int, tally: Tally) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: LeanSmtp(tally), host, port, reuse_address=True)
