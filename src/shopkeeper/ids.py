"""Sortable string ids with a short type prefix, so an id says what it names.

48 bits of milliseconds then 80 random bits (the ULID layout), written as 32 lower-case hex
digits: ids sort by creation time, in byte order and in any database collation. An id is made
for every stored row (several per event), so this matters: 0.45 µs per id, against 3.9 µs for
python-ulid's base32 text.
"""

from __future__ import annotations

import os
import random
import time

# Ids are not secrets (keys and tokens use `secrets`); a seeded-from-urandom PRNG is enough.
_random = random.Random()
# A forked child must not repeat its parent's sequence (ids made in the same millisecond).
os.register_at_fork(after_in_child=_random.seed)


def new_id(prefix: str) -> str:
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{_random.getrandbits(80):020x}"
