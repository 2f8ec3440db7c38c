"""The shared Redis Cluster and Sentinel group themselves (scripts/brokers/redis-cluster.sh,
redis-sentinel.sh), and the fixtures and helpers over them: three masters with a replica each
and every slot served, keys spread over the masters as the cluster says, a sentinel group that
names its master and replica and fails over to the replica, a fresh client following it."""

from __future__ import annotations

from itertools import pairwise

import pytest
import redis
import redis.exceptions as rexc
from redis.cluster import RedisCluster

from tests.integration.conftest import KeyFactory
from tests.integration.redis_cluster_faults import (
    cluster_healthy,
    cluster_info,
    cluster_kill_master,
    cluster_masters,
    cluster_nodes,
    cluster_replicas_of,
    cluster_restart_node,
    cluster_wait_failed,
    cluster_wait_healthy,
    cluster_wait_promoted,
)
from tests.integration.redis_sentinel_faults import (
    sentinel_failover,
    sentinel_fields,
    sentinel_master,
    sentinel_wait_healthy,
)
from tests.integration.redis_topology import SLOTS, Address, command, wait_for
from tests.integration.redis_topology_fixtures import sentinel_client

pytestmark = pytest.mark.integration


def test_the_cluster_has_three_masters_with_a_replica_each_and_every_slot(
    redis_cluster_nodes: list[Address],
) -> None:
    assert len(redis_cluster_nodes) == 6
    for address in redis_cluster_nodes:
        info = cluster_info(address)
        assert info["cluster_state"] == "ok", (address, info)
        assert (info["cluster_slots_assigned"], info["cluster_slots_ok"]) == (str(SLOTS),) * 2
        assert (info["cluster_known_nodes"], info["cluster_size"]) == ("6", "3")
    view = cluster_nodes(redis_cluster_nodes[0])
    assert {node.address for node in view} == set(redis_cluster_nodes)
    assert not [node for node in view if node.failed]
    masters = [node for node in view if node.is_master]
    assert len(masters) == 3
    replicas = {m.id: [n for n in view if n.master_id == m.id] for m in masters}
    assert all(len(of) == 1 for of in replicas.values()), replicas
    # every slot served exactly once
    served = sorted(r for m in masters for r in m.slots)
    assert (served[0][0], served[-1][1]) == (0, SLOTS - 1)
    assert all(a[1] + 1 == b[0] for a, b in pairwise(served)), served
    assert sum(m.slot_count for m in masters) == SLOTS
    # each node agrees on who is master of what
    for address in redis_cluster_nodes[1:]:
        assert {(n.id, n.slots) for n in cluster_nodes(address) if n.is_master} == {
            (m.id, m.slots) for m in masters
        }


def test_keys_set_through_the_client_land_on_the_master_of_their_slot(
    redis_cluster_client: RedisCluster,
    redis_cluster_key: KeyFactory,
    redis_cluster_nodes: list[Address],
) -> None:
    keys = [redis_cluster_key() for _ in range(30)]
    for key in keys:
        assert redis_cluster_client.set(key, f"value-of-{key}")
    masters = [n for n in cluster_nodes(redis_cluster_nodes[0]) if n.is_master]
    landed: dict[Address, list[str]] = {}
    for key in keys:
        slot = int(command(redis_cluster_nodes[0], "CLUSTER", "KEYSLOT", key))
        assert slot == redis_cluster_client.keyslot(key)  # type: ignore[no-untyped-call]
        [owner] = [m for m in masters if m.owns(slot)]
        landed.setdefault(owner.address, []).append(key)
        # on that master itself, not through the client's routing; MOVED on the other masters
        assert command(owner.address, "GET", key) == f"value-of-{key}"
        for other in masters:
            if other is not owner:
                with pytest.raises(rexc.MovedError, match=f"^{slot} "):
                    command(other.address, "GET", key)
    assert len(landed) == 3, landed  # 30 random keys: all three masters, but for 3 * (2/3)^30


def test_a_killed_master_is_replaced_by_its_replica_and_rejoins_as_one(
    redis_cluster_client: RedisCluster, redis_cluster_key: KeyFactory
) -> None:
    cluster_wait_healthy()  # a node another test restarted may still be syncing
    key = redis_cluster_key()
    redis_cluster_client.set(key, "kept")
    slot = int(command(cluster_masters()[0].address, "CLUSTER", "KEYSLOT", key))
    [victim] = [m for m in cluster_masters() if m.owns(slot)]
    [heir] = cluster_replicas_of(victim.address[1])
    # replication is asynchronous: without this the key could be lost with the master
    assert command(victim.address, "WAIT", 1, 5000) == 1
    port = cluster_kill_master(victim.address[1])
    try:
        cluster_wait_failed(port)
        assert cluster_wait_promoted(port) == heir
        assert command(heir, "GET", key) == "kept"  # replicated before the kill
    finally:
        cluster_restart_node(port)  # waits until the whole cluster is healthy again
    assert cluster_healthy()
    role = command(victim.address, "ROLE")
    assert (role[0], role[1], int(role[2])) == ("slave", *heir)
    assert redis_cluster_client.get(key) == "kept"  # the client follows the new owner


def test_the_sentinels_name_the_master_and_see_one_replica_and_each_other(
    redis_sentinels: list[Address],
    redis_sentinel_master: str,
    redis_sentinel_nodes: list[Address],
) -> None:
    master = sentinel_wait_healthy(redis_sentinels, redis_sentinel_master, timeout=15)
    assert master in redis_sentinel_nodes  # either of the two, after a failover
    [replica] = [node for node in redis_sentinel_nodes if node != master]
    for address in redis_sentinels:
        replicas = map(
            sentinel_fields, command(address, "SENTINEL", "REPLICAS", redis_sentinel_master)
        )
        assert [(r["ip"], int(r["port"])) for r in replicas] == [replica]
        others = map(
            sentinel_fields, command(address, "SENTINEL", "SENTINELS", redis_sentinel_master)
        )
        assert sorted((s["ip"], int(s["port"])) for s in others) == sorted(
            a for a in redis_sentinels if a != address
        )
    assert command(master, "ROLE")[0] == "master"
    role = command(replica, "ROLE")
    assert (role[0], role[1], int(role[2])) == ("slave", master[0], master[1])


def test_a_failover_moves_the_master_to_the_replica_and_a_fresh_client_follows(
    redis_sentinels: list[Address],
    redis_sentinel_master: str,
    redis_sentinel_client: redis.Redis,
    redis_sentinel_key: KeyFactory,
) -> None:
    before, after = redis_sentinel_key(), redis_sentinel_key()
    assert redis_sentinel_client.set(before, "1")
    assert redis_sentinel_client.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
    old, new = sentinel_failover(redis_sentinels, redis_sentinel_master, timeout=20)
    assert old != new
    assert sentinel_master(redis_sentinels, redis_sentinel_master) == new
    sentinel, client = sentinel_client(redis_sentinels, redis_sentinel_master)
    try:
        assert client.set(after, "2")
        assert client.get(before) == "1"  # replicated before the switch
    finally:
        client.close()
        sentinel.close()
    assert command(new, "GET", after) == "2"  # written on the new master itself
    with pytest.raises(rexc.ReadOnlyError):
        command(old, "SET", after, "3")  # the old master is a replica now
    assert (
        wait_for("the write replicated to the old master", lambda: command(old, "GET", after), 5)
        == "2"
    )
    # healthy again for later tests, with the master where it is now
    assert sentinel_wait_healthy(redis_sentinels, redis_sentinel_master, timeout=20) == new
