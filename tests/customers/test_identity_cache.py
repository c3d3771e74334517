"""The identity cache stays bounded, keeps what is used, and forgets when identities moved."""

from __future__ import annotations

from shopkeeper.customers.identity_cache import IdentityCache


def test_the_cache_is_bounded_and_keeps_recently_used_entries() -> None:
    cache = IdentityCache(maxsize=100)
    cache.put("ws", "email", "hot@example.com", "cus_hot")
    for i in range(1000):
        cache.put("ws", "anonymous_id", f"a{i}", f"c{i}")
        assert cache.get("ws", "email", "hot@example.com") == "cus_hot"  # used all along: kept
        assert len(cache) <= 100
    assert cache.get("ws", "anonymous_id", "a0") is None  # cold: evicted
    assert cache.get("ws", "anonymous_id", "a999") == "c999"


def test_a_changed_epoch_drops_everything() -> None:
    cache = IdentityCache(maxsize=100)
    cache.observe_epoch("ws", 3)
    cache.put("ws", "user_id", "u1", "cus_1")
    cache.observe_epoch("ws", 3)
    assert cache.get("ws", "user_id", "u1") == "cus_1"
    cache.observe_epoch("ws", 4)
    assert cache.get("ws", "user_id", "u1") is None


def test_a_zero_size_cache_stores_nothing() -> None:
    cache = IdentityCache(maxsize=0)
    cache.put("ws", "user_id", "u1", "cus_1")
    assert cache.get("ws", "user_id", "u1") is None
