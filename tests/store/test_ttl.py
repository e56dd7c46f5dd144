"""TTLCache: entries expire on the injected clock, and memory stays bounded."""

from __future__ import annotations

import pytest

from core.clock import FakeClock
from core.store.ttl import TTLCache


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_value_is_readable_until_its_ttl_runs_out(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(clock)
    cache.put("ticket", "t-1", ttl=10)
    clock.advance(9.9)
    assert cache.get("ticket") == "t-1"
    clock.advance(0.1)
    assert cache.get("ticket") is None
    assert len(cache) == 0


def test_absent_key_reads_as_none(clock: FakeClock) -> None:
    assert TTLCache[int](clock).get("nothing") is None


def test_put_replaces_the_value_and_the_expiry(clock: FakeClock) -> None:
    cache: TTLCache[int] = TTLCache(clock)
    cache.put("k", 1, ttl=5)
    clock.advance(4)
    cache.put("k", 2, ttl=5)
    clock.advance(4)
    assert cache.get("k") == 2


def test_pop_is_single_use(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(clock)
    cache.put("code", "grant-1", ttl=60)
    assert cache.pop("code") == "grant-1"
    assert cache.pop("code") is None
    assert cache.get("code") is None


def test_pop_of_an_expired_entry_returns_none(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(clock)
    cache.put("code", "grant-1", ttl=60)
    clock.advance(60)
    assert cache.pop("code") is None


def test_add_once_detects_a_replay_until_the_key_expires(clock: FakeClock) -> None:
    seen: TTLCache[None] = TTLCache(clock)
    assert seen.add_once("jti-1", ttl=30) is True
    assert seen.add_once("jti-1", ttl=30) is False
    assert seen.add_once("jti-2", ttl=30) is True
    clock.advance(30)
    assert seen.add_once("jti-1", ttl=30) is True


def test_discard_forgets_a_key(clock: FakeClock) -> None:
    cache: TTLCache[int] = TTLCache(clock)
    cache.put("k", 1, ttl=5)
    cache.discard("k")
    cache.discard("never-there")
    assert cache.get("k") is None
    assert len(cache) == 0


def test_len_counts_only_live_entries(clock: FakeClock) -> None:
    cache: TTLCache[int] = TTLCache(clock)
    cache.put("short", 1, ttl=1)
    cache.put("long", 2, ttl=100)
    assert len(cache) == 2
    clock.advance(1)
    assert len(cache) == 1


def test_max_items_bound_holds_by_dropping_the_soonest_expiring(clock: FakeClock) -> None:
    cache: TTLCache[int] = TTLCache(clock, max_items=3)
    cache.put("a", 1, ttl=50)
    cache.put("b", 2, ttl=10)
    cache.put("c", 3, ttl=30)
    cache.put("d", 4, ttl=40)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == [1, 3, 4]
    for i in range(100):
        cache.put(f"k{i}", i, ttl=1000 + i)
        assert len(cache) <= 3
    assert [cache.get(f"k{i}") for i in (97, 98, 99)] == [97, 98, 99]


def test_overwriting_a_key_at_the_bound_evicts_nothing(clock: FakeClock) -> None:
    cache: TTLCache[int] = TTLCache(clock, max_items=2)
    cache.put("a", 1, ttl=10)
    cache.put("b", 2, ttl=20)
    cache.put("a", 3, ttl=10)
    assert (cache.get("a"), cache.get("b")) == (3, 2)


def test_expired_entries_are_swept_so_memory_stays_bounded(clock: FakeClock) -> None:
    cache: TTLCache[int] = TTLCache(clock)
    for i in range(10_000):
        cache.put(f"k{i}", i, ttl=1)
        clock.advance(0.01)
        cache.put("hot", i, ttl=5)  # rewriting one key must not grow the heap without bound
    assert len(cache) <= 101
    assert len(cache._heap) <= 2 * 101 + 64


def test_non_positive_ttl_is_rejected(clock: FakeClock) -> None:
    cache: TTLCache[int] = TTLCache(clock)
    with pytest.raises(ValueError):
        cache.put("k", 1, ttl=0)
    with pytest.raises(ValueError):
        cache.add_once("k", ttl=-1)


def test_max_items_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        TTLCache[int](clock, max_items=0)
