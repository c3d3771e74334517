"""Ids sort by creation time and do not collide."""

from __future__ import annotations

import time

from shopkeeper.ids import new_id


def test_ids_sort_by_creation_time_and_are_unique() -> None:
    earlier = [new_id("evt") for _ in range(1000)]
    time.sleep(0.002)
    later = new_id("evt")
    assert all(e < later for e in earlier)
    assert len(set(earlier)) == 1000
    assert later.startswith("evt_") and len(later) == 36
    assert later == later.lower()
