"""The bucketed layout: one user's keys and the indexes they write share one hash slot.

On Redis Cluster a script may touch only keys of one slot. So the layout is split into a
fixed number of buckets; bucket ``b`` is the whole single-node layout (sessions, per-user
keys, indexes, event log, counters, overview, settings) under the prefix
``<prefix>{<tag b>}``, where ``tag b`` is a short string whose CRC16 slot falls in the
``b``-th equal share of the 16,384 slots. A user belongs to one bucket (from the routing
tag every session id carries, :func:`core.tokens.user_tag`), so a login, a logout and a
logout-all stay one atomic script in one slot, and readers merge the buckets.

The count is fixed for the life of a deployment: changing it moves every user to another
bucket (README, "Redis Cluster and Sentinel").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from .schema import Schema
from .tokens import SID_RE, user_tag

DEFAULT_BUCKETS = 64
MAX_BUCKETS = 1024


@cache
def bucket_tag(bucket: int, count: int) -> str:
    """The hash tag of ``bucket`` (without braces): the first ``sw<bucket>-<n>`` whose slot
    lies in the bucket's share of the slot range, so buckets spread evenly over masters
    that own equal slot ranges (what ``redis-cli --cluster create`` assigns)."""
    low = bucket * REDIS_CLUSTER_HASH_SLOTS // count
    high = (bucket + 1) * REDIS_CLUSTER_HASH_SLOTS // count
    n = 0
    while True:
        tag = f"sw{bucket}-{n}"
        if low <= key_slot(tag.encode()) < high:
            return tag
        n += 1


@dataclass(frozen=True, slots=True)
class Buckets:
    """Routes users, session ids and anonymous ids to buckets, and names each bucket's keys."""

    prefix: str = ""
    count: int = DEFAULT_BUCKETS
    schemas: tuple[Schema, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_BUCKETS:
            raise ValueError(f"bucket count must be between 1 and {MAX_BUCKETS}, not {self.count}")
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError("a prefix used with buckets may not contain { or }: it would move the hash tag")
        object.__setattr__(self, "schemas", tuple(
            Schema(f"{self.prefix}{{{bucket_tag(b, self.count)}}}") for b in range(self.count)))

    def schema(self, bucket: int) -> Schema:
        return self.schemas[bucket]

    def of_user(self, username: str) -> int:
        return int(user_tag(username), 16) % self.count

    def of_sid(self, sid: str) -> int:
        """The bucket of a session id: its last four hex digits are its user's routing tag.
        An id of another shape (not written by sessionwatch) goes to bucket 0."""
        if SID_RE.match(sid):
            return int(sid[-4:], 16) % self.count
        return 0

    def of_anonymous(self, aid: str) -> int:
        """The bucket of an anonymous session id (a hex digest): its first four digits."""
        try:
            return int(aid[:4], 16) % self.count
        except ValueError:
            return 0
