"""Fault-injection toolkit for the reliability tests: a loopback TCP proxy that can pass,
delay, black-hole and reset connections, and helpers that freeze, crash and restart a
real redis-server (its data directory kept) or drop its pub/sub clients."""

from .proxy import FaultProxy
from .server import (
    aof_server,
    client_kill_pubsub,
    frozen,
    live_threads,
    set_pubsub_buffer_limit,
    wait_until,
)

__all__ = [
    "FaultProxy",
    "aof_server",
    "client_kill_pubsub",
    "frozen",
    "live_threads",
    "set_pubsub_buffer_limit",
    "wait_until",
]
