"""The loopback cluster fixture itself: six nodes, slots covered, keys spread over the three
masters, a flush that empties every master."""

from __future__ import annotations

import pytest
import redis

from tests.faults.cluster import SLOTS, ClusterGroup

pytestmark = [pytest.mark.real]


def test_cluster_has_three_masters_each_with_a_replica(flushed_cluster: ClusterGroup) -> None:
    view = flushed_cluster.view()
    masters = [v for v in view if v.master and v.slots]
    assert len(masters) == 3 and sum(v.slots for v in masters) == SLOTS
    assert sorted(v.master_id for v in view if not v.master) == sorted(v.node_id for v in masters)
    assert {m.port for m in flushed_cluster.masters()} == {v.port for v in masters}


def test_cluster_client_spreads_keys_and_flush_empties_every_master(
        flushed_cluster: ClusterGroup) -> None:
    client = flushed_cluster.client()
    try:
        for i in range(300):
            client.set(f"k{i}", i)
        holders = {flushed_cluster.master_for_key(f"k{i}").port for i in range(300)}
        assert holders == {m.port for m in flushed_cluster.masters()}
        assert client.get("k7") == "7"
        flushed_cluster.flushall()
        for m in flushed_cluster.masters():
            assert redis.Redis(port=m.port).dbsize() == 0
    finally:
        client.close()
