"""A counting SMTP sink for the send bench, run as its own process (`python -m
shopkeeper.bench.smtp_sink PORT COUNTFILE`) so that receiving does not share the sender's CPU
core and GIL. It accepts every message, counts messages and distinct Message-IDs, and writes
both to COUNTFILE when it gets SIGTERM."""

from __future__ import annotations

import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

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
