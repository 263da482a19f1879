"""Audit events about no session (SSH dashboards opening and closing): one script, checked
before it writes, on every backend."""

from __future__ import annotations

import pytest

from core import InvalidInput, SessionStore


def test_audit_appends_one_event_with_actor_and_address(store: SessionStore) -> None:
    before = store.event_head()
    seq = store.audit("ssh_connect", actor="alice@ssh-key:SHA256:AbCdEfGhIjKl", ip="127.0.0.1")
    store.audit("ssh_disconnect", actor="alice@ssh-key:SHA256:AbCdEfGhIjKl", ip="::1")
    newest, older = store.events(limit=2)
    assert older.seq == seq and newest.seq == seq + 1
    assert (older.kind, older.actor, older.data["ip"]) == ("ssh_connect", "alice@ssh-key:SHA256:AbCdEfGhIjKl",
                                                          "127.0.0.1")
    assert (newest.kind, newest.data["ip"], newest.sid, newest.username) == ("ssh_disconnect", "::1", "", "")
    assert store.event_head() != before


@pytest.mark.parametrize(("kind", "actor", "ip"), [
    ("login", "alice@ssh-key:x", "127.0.0.1"),        # a session kind: not an audit event
    ("ssh_connect", "", "127.0.0.1"),                  # who is required
    ("ssh_connect", "eve\x1b[2J@ssh-key:x", "127.0.0.1"),  # control characters refused
    ("ssh_connect", "alice@ssh-key:x", "not-an-address"),
])
def test_audit_refuses_bad_arguments_and_writes_nothing(store: SessionStore, kind: str, actor: str,
                                                        ip: str) -> None:
    with pytest.raises(InvalidInput):
        store.audit(kind, actor=actor, ip=ip)
    assert store.events(limit=5) == []


def test_audit_script_checks_its_own_preconditions(store: SessionStore) -> None:
    """The script refuses an unknown kind itself, before any write, whoever calls it."""
    script = store.ctx.write("audit", store.ctx.clock(), "alice", "flushall", "")
    with pytest.raises(Exception, match="unknown event kind"):
        store._scripts["audit"](keys=script.keys, args=script.args)
    assert store.events(limit=5) == []
    assert store.client.get(store.schema.event_seq) is None
