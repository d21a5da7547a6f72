"""The service on a real 4-signer Clique network of geth nodes: a signer stopped, the gateway's node stopped,
a node partitioned and rejoined. Nothing accepted is lost or written twice, and the SQL equals a replay."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from web3 import Web3

from chain_gateway.clique import CliqueNode
from chain_gateway.finality import clique_confirmations_advice
from chain_gateway.gateway import Gateway
from chain_gateway.governance import contract
from chain_gateway.outbox import CONFIRMED, Operation
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import Settings
from chain_gateway.web3_connect import connect_web3
from indexer.service import Indexer, ReorgInfo
from tests.chain_gateway.support import TERMINAL, device, registered_count, wait_until
from tests.faults.import_faults import mirrored_codes
from tests.indexer.support import assert_equals_fresh_replay
from tests.network.conftest import CLIQUE_CONFIRMATIONS, CliqueUnderTest, running
from tests.registry_api.import_support import ApiProcess, org_token
from tests.registry_api.support import device as api_device

PSB = "BJ-PSB"
CMC = "BJ-CMC"
SETTLE_SECONDS = 120.0  # generous: 1 s blocks, 3 confirmations, a 10 s rebroadcast period on failover


@contextmanager
def service(settings: Settings) -> Iterator[tuple[Gateway, Indexer]]:
    """The gateway and the indexer of one service on `settings`' nodes and database, closed afterwards."""
    gateway = Gateway.from_settings(settings)
    indexer = Indexer.from_settings(settings)
    try:
        gateway.create_tables()
        indexer.create_tables()
        yield gateway, indexer
    finally:
        gateway.close()
        indexer.close()


def register(gateway: Gateway, network: CliqueUnderTest, org: str, serials: Iterable[int]) -> list[Operation]:
    account = network.consortium.orgs[org].account
    return [
        gateway.enqueue(
            org_code=org,
            account=account,
            contract="DeviceRegistry",
            function="registerDevice",
            args=[device(serial)],
            idempotency_key=f"device-{serial}",
        )
        for serial in serials
    ]


def settled(gateway: Gateway, ops: list[Operation], timeout: float = SETTLE_SECONDS) -> list[Operation]:
    """The operations, fresh from the outbox, once every one is confirmed or failed."""
    current: list[Operation] = []

    def done() -> bool:
        current[:] = [gateway.get_operation(op.id) for op in ops]  # type: ignore[misc]
        return all(c.status in TERMINAL for c in current)

    def state() -> str:
        return f"settled: {Counter(c.status for c in current)} (gateway on {gateway.rpc.url})"

    wait_until(done, timeout=timeout, interval=0.2, what=state)
    return current


def codes(serials: Iterable[int]) -> list[str]:
    return [device(serial)[0] for serial in serials]


def assert_each_once_on_chain(w3: Web3, network: CliqueUnderTest, serials: Iterable[int]) -> None:
    counts = {code: registered_count(w3, network.consortium.deployment, code) for code in codes(serials)}
    assert {c: n for c, n in counts.items() if n != 1} == {}, "lost (0) or written twice (2+)"


def assert_mirror_is_replay(settings: Settings, node: CliqueNode, network: CliqueUnderTest, tmp_path: Path) -> None:
    replay = f"sqlite:///{tmp_path / 'replay.db'}"
    assert_equals_fresh_replay(settings.database_url, replay, node.url, network.consortium.deployment)


def head(node: CliqueNode) -> int:
    return int(node.rpc("eth_blockNumber"), 16)


def block_hash(node: CliqueNode, number: int) -> str | None:
    block = node.rpc("eth_getBlockByNumber", hex(number), False)
    return None if block is None else str(block["hash"])


def sealers(node: CliqueNode, first: int, last: int) -> set[str]:
    return {str(node.rpc("clique_getSigner", hex(n))).lower() for n in range(first, last + 1)}


def wait_indexed(indexer: Indexer, ops: list[Operation]) -> None:
    """Until the indexer's checkpoint passes every operation's block."""
    last = max(op.block_number or 0 for op in ops)
    wait_until(
        lambda: (indexer.checkpoint or 0) >= last,
        timeout=60,
        interval=0.2,
        what=lambda: f"indexed to {last}: checkpoint {indexer.checkpoint}, {indexer.status()}",
    )


def cut_off_free_to_seal(network: CliqueUnderTest, node: CliqueNode, attempts: int = 3) -> None:
    """Stop `node`'s miner and partition it at a moment it may seal the next block of its own fork.

    Its miner waits while it is cut off so that writes can reach its pool first; then it seals them into one
    block of its own, and one only: Clique lets a signer seal at most one of any 3 consecutive blocks. So it
    must have sealed neither of the 2 blocks below its head when it is cut off, or it could seal none. A seal
    under way when the miner stops still lands (after up to ~2.5 s of out-of-turn delay): 3 more blocks are
    awaited before looking, and the look is repeated once the node is alone.
    """
    node.rpc("miner_stop")
    mine = node.signer.lower()
    for _ in range(attempts):
        start = head(node)
        wait_until(lambda at=start: head(node) >= at + 3 and mine not in sealers(node, head(node) - 1, head(node)), 60)
        network.network.partition(node)
        if mine not in sealers(node, head(node) - 1, head(node)):
            return
        network.network.rejoin(node)
    raise AssertionError(f"node {node.index} sealed one of the 2 blocks below its head at each of {attempts} cuts")


def test_the_signers_are_accounts_of_the_member_orgs_that_run_the_nodes(network: CliqueUnderTest) -> None:
    node1 = network.nodes[0]
    members = contract(connect_web3(node1.url), network.consortium.deployment, "Consortium")
    signers = {str(a).lower() for a in node1.rpc("clique_getSigners", "latest")}
    assert signers == {n.signer.lower() for n in network.nodes}
    for node in network.nodes:
        assert members.functions.orgOf(node.signer).call() == members.functions.orgIdByCode(node.org).call() > 0


def test_confirmations_below_floor_half_plus_one_are_flagged_on_clique(network: CliqueUnderTest) -> None:
    with JsonRpcClient([network.nodes[0].url]) as rpc:
        assert clique_confirmations_advice(rpc, 1) == 3  # 4 signers: a lone signer may fork 1 block, two 2
        assert clique_confirmations_advice(rpc, CLIQUE_CONFIRMATIONS) is None


def test_chain_and_service_go_on_with_one_signer_stopped(
    network: CliqueUnderTest, keystore_dir: Path, tmp_path: Path
) -> None:
    node1, node2, _, node4 = network.nodes
    network.network.stop_node(node4)
    stopped_at = head(node1)
    settings = network.settings(tmp_path, keystore_dir, node1.url, node2.url)
    serials = range(1_000, 1_040)
    with service(settings) as (gateway, indexer), running(gateway, indexer):
        ops = settled(gateway, register(gateway, network, PSB, serials))
        wait_indexed(indexer, ops)

    assert [op.status for op in ops] == [CONFIRMED] * len(ops)
    now = head(node1)
    assert now > stopped_at + CLIQUE_CONFIRMATIONS
    during = sealers(node1, stopped_at + 1, now)
    assert node4.signer.lower() not in during and len(during) == 3  # the other three took turns
    assert_each_once_on_chain(connect_web3(node1.url), network, serials)
    assert mirrored_codes(settings.database_url) >= set(codes(serials))
    assert_mirror_is_replay(settings, node2, network, tmp_path)

    # the stopped signer comes back, syncs the blocks it missed and seals again
    network.network.start_node(node4)
    network.network.start_sealing([node4])
    wait_until(lambda: head(node4) >= now and block_hash(node4, now) == block_hash(node1, now), timeout=60)
    back = head(node1)
    wait_until(lambda: node4.signer.lower() in sealers(node1, back + 1, head(node1)), timeout=60, interval=0.5)


def test_gateway_fails_over_when_its_node_stops_and_nothing_is_lost(
    network: CliqueUnderTest, keystore_dir: Path, tmp_path: Path
) -> None:
    node1, node2, node3, _ = network.nodes
    settings = network.settings(tmp_path, keystore_dir, node1.url, node2.url, node3.url)
    before, after = range(2_000, 2_060), range(2_060, 2_090)
    with service(settings) as (gateway, indexer), running(gateway, indexer):
        first = register(gateway, network, PSB, before)
        # stop the gateway's node while the first writes are on their way (some sent, some in its pool only)
        wait_until(lambda: any(gateway.get_operation(op.id).nonce is not None for op in first), timeout=30)  # type: ignore[union-attr]
        network.network.stop_node(node1)
        second = register(gateway, network, PSB, after)
        ops = settled(gateway, first + second)
        wait_indexed(indexer, ops)
        assert gateway.rpc.url != node1.url and indexer.rpc.url != node1.url

    assert [op.status for op in ops] == [CONFIRMED] * len(ops)
    nonces = sorted(op.nonce for op in ops if op.nonce is not None)
    assert nonces == list(range(nonces[0], nonces[0] + len(ops)))  # one nonce per write, none reused
    assert_each_once_on_chain(connect_web3(node2.url), network, [*before, *after])
    assert mirrored_codes(settings.database_url) >= set(codes([*before, *after]))
    assert_mirror_is_replay(settings, node2, network, tmp_path)


def test_partitioned_node_rejoins_and_the_indexer_follows_the_reorg(
    network: CliqueUnderTest, keystore_dir: Path, tmp_path: Path
) -> None:
    """node4 is cut off; a gateway and an indexer on node4 alone see node4's own fork, which the rejoin undoes."""
    node1, _, _, node4 = network.nodes
    majority = network.settings(tmp_path, keystore_dir, node1.url, name="majority")
    isolated = network.settings(tmp_path, keystore_dir, node4.url, name="isolated")
    on_fork, on_majority = range(3_000, 3_010), range(3_100, 3_110)
    cut_off_free_to_seal(network, node4)
    reorgs: list[ReorgInfo] = []
    with service(majority) as (main_gateway, main_indexer), service(isolated) as (fork_gateway, indexer):
        with running(main_gateway, main_indexer, fork_gateway):
            fork_ops = register(fork_gateway, network, CMC, on_fork)
            main_ops = register(main_gateway, network, PSB, on_majority)
            wait_until(lambda: int(node4.rpc("txpool_status")["pending"], 16) >= len(fork_ops), timeout=30)
            fork_head = head(node4)
            node4.rpc("miner_start")
            wait_until(lambda: head(node4) > fork_head, timeout=30)
            fork_block = head(node4)
            fork_hash = block_hash(node4, fork_block)
            indexer.sync_once()
            assert mirrored_codes(isolated.database_url) >= set(codes(on_fork))  # the fork's writes, mirrored
            assert all(fork_gateway.get_operation(op.id).status != CONFIRMED for op in fork_ops)  # type: ignore[union-attr]
            settled(main_gateway, main_ops)
            assert block_hash(node1, fork_block) != fork_hash  # the majority sealed a different block there
            assert not mirrored_codes(isolated.database_url) & set(codes(on_majority))

            network.network.rejoin(node4)
            wait_until(lambda: block_hash(node4, fork_block) == block_hash(node1, fork_block), timeout=60)

            def caught_up() -> bool:
                result = indexer.sync_once()
                if result.reorg is not None:
                    reorgs.append(result.reorg)
                ops = [fork_gateway.get_operation(op.id) for op in fork_ops]
                return all(op is not None and op.status in TERMINAL for op in ops) and (indexer.checkpoint or 0) >= max(
                    op.block_number or 0 for op in ops if op is not None
                )

            wait_until(caught_up, timeout=SETTLE_SECONDS, interval=0.5)
            fork_ops = settled(fork_gateway, fork_ops)

    assert [op.status for op in fork_ops] == [CONFIRMED] * len(fork_ops)
    assert reorgs and reorgs[0].ancestor < fork_block <= reorgs[0].old_checkpoint, reorgs
    assert all(op.block_hash != fork_hash for op in fork_ops)  # confirmed on the canonical chain, not the fork
    assert_each_once_on_chain(connect_web3(node1.url), network, [*on_fork, *on_majority])
    assert_mirror_is_replay(isolated, node1, network, tmp_path)
    assert mirrored_codes(isolated.database_url) >= set(codes([*on_fork, *on_majority]))


def test_gateway_and_indexer_leave_a_node_that_is_cut_off_and_still_answers(
    network: CliqueUnderTest, keystore_dir: Path, tmp_path: Path
) -> None:
    """node4 is partitioned but up: its chain stops, so writes sent there would wait for the rejoin. The gateway
    and the indexer see its head fall behind, move to node1 and the writes are confirmed while node4 is still out."""
    node1, _, _, node4 = network.nodes
    settings = network.settings(tmp_path, keystore_dir, node4.url, node1.url).model_copy(
        update={"rpc_check_seconds": 1.0, "rpc_max_lag_blocks": 2}
    )
    serials = range(4_000, 4_020)
    with service(settings) as (gateway, indexer):
        network.network.partition(node4)
        with running(gateway, indexer):
            ops = settled(gateway, register(gateway, network, PSB, serials))
            wait_indexed(indexer, ops)
            assert int(node4.rpc("net_peerCount"), 16) == 0  # still cut off: confirmed without it
            assert gateway.rpc.url == node1.url and indexer.rpc.url == node1.url

    assert [op.status for op in ops] == [CONFIRMED] * len(ops)
    assert all(op.block_hash == block_hash(node1, op.block_number or 0) for op in ops)
    assert_each_once_on_chain(connect_web3(node1.url), network, serials)
    assert_mirror_is_replay(settings, node1, network, tmp_path)


def test_the_api_process_runs_unchanged_on_the_clique_network(
    network: CliqueUnderTest, keystore_dir: Path, tmp_path: Path
) -> None:
    """`dirchain serve` with several endpoints: a device filed over REST is confirmed, mirrored and read back with
    its on-chain trail and storage proof, and /healthz reports the indexer's lag in blocks of the geth chain."""
    node1, node2, _, _ = network.nodes
    settings = network.settings(tmp_path, keystore_dir, node1.url, node2.url)
    body = api_device(9_001)
    with ApiProcess(settings, tmp_path, confirmations=str(CLIQUE_CONFIRMATIONS)) as api:
        api.start()
        token = org_token(settings.database_url, PSB, network.consortium.orgs[PSB].account, "clique")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=10) as client:
            wait_until(lambda: client.get(f"/v1/members/{PSB}").status_code == 200, timeout=60)  # roles mirrored
            accepted = client.post("/v1/devices", json={"devices": [body]}, headers={"Idempotency-Key": "clique-1"})
            assert accepted.status_code == 202, accepted.text
            link = accepted.json()["links"]["operation"]
            wait_until(lambda: client.get(link).json()["status"] in TERMINAL, timeout=SETTLE_SECONDS, interval=0.5)
            op = client.get(link).json()
            assert op["status"] == CONFIRMED, op
            wait_until(lambda: client.get(f"/v1/devices/{body['code']}").status_code == 200, timeout=60)
            stored = client.get(f"/v1/devices/{body['code']}").json()
            trail = client.get(f"/v1/audit/records/device/{body['code']}").json()
            health = client.get("/healthz").json()

    assert (stored["tx_hash"], stored["block_number"]) == (op["tx_hash"], op["block_number"])
    assert block_hash(node2, op["block_number"]) == op["block_hash"]
    assert stored["location"] == body["location"] and stored["attributes"] == body["attributes"]
    assert op["tx_hash"] in {event["tx_hash"] for event in trail["trail"]["data"]}, trail
    assert trail["verified"], trail["failed"]  # geth's eth_getProof proves the stored record under its state root
    assert health["indexer"]["lag"] is not None and health["indexer"]["lag"] <= 5, health
