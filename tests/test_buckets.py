"""The bucketed layout's routing: one user's keys in one slot, buckets spread evenly."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from core.buckets import Buckets
from core.tokens import new_token


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_a_users_keys_and_the_indexes_they_write_share_one_slot() -> None:
    buckets = Buckets("app:", 64)
    for name in ("alice", "bob", "zoë", "x" * 300):
        _token, sid = new_token(name)
        b = buckets.of_user(name)
        assert buckets.of_sid(sid) == b
        s = buckets.schema(b)
        keys = [s.session(sid), s.cache(sid), s.user_sessions(name), s.user_active(name), *s.global_keys(),
                *s.overview_keys(), s.settings, s.minute_counter("logins", 1), s.channel]
        assert len({slot(k) for k in keys}) == 1


def test_buckets_cover_the_slot_range_evenly() -> None:
    buckets = Buckets(count=64)
    slots = sorted(slot(buckets.schema(b).events) for b in range(64))
    thirds = [sum(1 for s in slots if s * 3 // 16384 == i) for i in range(3)]
    assert len(set(slots)) == 64
    assert max(thirds) - min(thirds) <= 1


def test_users_spread_over_buckets() -> None:
    buckets = Buckets(count=16)
    counts = [0] * 16
    for i in range(8000):
        counts[buckets.of_user(f"user{i}")] += 1
    assert max(counts) < 1.25 * 500 and min(counts) > 0.75 * 500


@pytest.mark.parametrize("count", [0, 1025])
def test_bucket_count_is_bounded(count: int) -> None:
    with pytest.raises(ValueError):
        Buckets(count=count)


def test_a_prefix_may_not_carry_its_own_hash_tag() -> None:
    with pytest.raises(ValueError):
        Buckets("{x}")
