"""The inclusion tracker against a real anvil: new blocks' transactions, success known from logs, rescans."""

from __future__ import annotations

from web3 import Web3

from chain_gateway.deployments import send_transaction
from chain_gateway.devnet import SeededConsortium
from chain_gateway.inclusions import InclusionTracker
from chain_gateway.rpc import JsonRpcClient

PSB = "BJ-PSB"


def _self_transfer(w3: Web3, chain: SeededConsortium) -> str:
    org = chain.orgs[PSB]
    receipt = send_transaction(w3, org.private_key, {"to": org.account, "value": 0, "gas": 21_000})
    return "0x" + bytes(receipt["transactionHash"]).hex()


def test_first_poll_asks_for_a_rescan_of_every_submitted_row(anvil_rpc: JsonRpcClient) -> None:
    assert InclusionTracker(anvil_rpc.batch).poll().rescan == "all"


def test_transaction_without_logs_in_a_new_block_needs_its_receipt(
    anvil_rpc: JsonRpcClient, w3: Web3, chain: SeededConsortium
) -> None:
    tracker = InclusionTracker(anvil_rpc.batch)
    tracker.poll()
    tx_hash = _self_transfer(w3, chain)  # emits no log: success cannot be told without the receipt

    new = tracker.poll()

    assert new.rescan == "none"
    assert tx_hash in new.mined and new.mined[tx_hash] is None


def test_transaction_that_logged_is_mined_with_status_one_and_its_block(
    anvil_rpc: JsonRpcClient, w3: Web3, chain: SeededConsortium
) -> None:
    tracker = InclusionTracker(anvil_rpc.batch)
    tracker.poll()
    org = chain.orgs[PSB]
    registry = w3.eth.contract(
        address=chain.deployment["contracts"]["DeviceRegistry"]["address"],
        abi=chain.deployment["contracts"]["DeviceRegistry"]["abi"],
    )
    data = registry.encode_abi(
        "registerDevice", [("BJ-CAMR-110105777001", 1, 1, 110105, 39_900_000, 116_400_000, 1_700_000_000, "{}")]
    )
    receipt = send_transaction(w3, org.private_key, {"to": registry.address, "data": data})

    new = tracker.poll()

    found = new.mined["0x" + bytes(receipt["transactionHash"]).hex()]
    assert found == {
        "status": "0x1",
        "blockNumber": hex(receipt["blockNumber"]),
        "blockHash": "0x" + bytes(receipt["blockHash"]).hex(),
    }


def test_blocks_that_do_not_extend_the_last_seen_ask_for_a_rescan(
    anvil_rpc: JsonRpcClient, w3: Web3, chain: SeededConsortium
) -> None:
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    _self_transfer(w3, chain)
    tracker = InclusionTracker(anvil_rpc.batch)
    tracker.poll()
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    _self_transfer(w3, chain)  # another block at the same height
    _self_transfer(w3, chain)

    assert tracker.poll().rescan == "all"
