"""A counting SMTP sink for the send bench, run as its own process (`python -m
shopkeeper.bench.smtp_sink PORT COUNTFILE [lean|aiosmtpd]`) so that receiving does not share the
sender's GIL. It accepts every message, counts messages and distinct Message-IDs, and writes
both to COUNTFILE when it gets SIGTERM. `lean` (the default) is `bench.lean_sink`; `aiosmtpd` is
the full server the inbound mail path uses, kept to show what the receiver itself costs."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shopkeeper.bench.lean_sink import Tally, serve

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingHandler:
    def __init__(self) -> None:
        self.messages = 0
        self.ids: set[bytes] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        found = _MESSAGE_ID.search(envelope.original_content or b"")
        if found:
            self.ids.add(found.group(1))
        return "250 2.0.0 queued"


def main() -> None:
    port, count_file = int(sys.argv[1]), Path(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "lean"
    if kind == "lean":
        _serve_lean(port, count_file)
    else:
        _serve_aiosmtpd(port, count_file)


def _serve_lean(port: int, count_file: Path) -> None:
    tally = Tally()

    async def run() -> None:
        server = await serve("127.0.0.1", port, tally)
        done = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
        print("ready", flush=True)
        await done.wait()
        server.close()

    import uvloop  # the receiving side of a real relay is not Python's default loop either

    uvloop.run(run())
    count_file.write_text(f"{tally.messages} {len(tally.ids)}")


def _serve_aiosmtpd(port: int, count_file: Path) -> None:
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    controller.stop()
    count_file.write_text(f"{handler.messages} {len(handler.ids)}")


if __name__ == "__main__":
    main()
