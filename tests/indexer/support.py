"""Helpers of the indexer tests: an indexer on a database, device, catalog and sharing transactions, signed
decisions, the replay comparison."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3 import Web3

from chain_gateway.deployments import Deployment, send_transaction
from chain_gateway.devnet import SeededConsortium
from chain_gateway.eip712 import Decision, decision_typed_data, sign_typed_data
from chain_gateway.governance import contract
from chain_gateway.rpc import JsonRpcClient
from indexer.service import Indexer, create_mirror_engine
from indexer.snapshot import dump_mirror, mirror_differences

__all__ = [
    "CONDITIONAL",
    "DESENSITIZED",
    "NOT_SHAREABLE",
    "RAW",
    "REGISTRAR_ORG",
    "REQUESTER_ORG",
    "RESULT_ONLY",
    "UNCONDITIONAL",
    "SignedDecision",
    "assert_equals_fresh_replay",
    "call",
    "catalog_call",
    "device_input",
    "entry_input",
    "open_indexer",
    "registry_call",
    "relay_approval",
    "relay_refusal",
    "relay_revocation",
    "request_sharing",
    "sign_decision",
]

REGISTRAR_ORG = "BJ-PSB"
REQUESTER_ORG = "BJ-CMC"
PLANNED, ACTIVE = 1, 2  # IDeviceRegistry.Status
UNCONDITIONAL, CONDITIONAL, NOT_SHAREABLE = 0, 1, 2  # IDataCatalog.ShareCondition
RAW, DESENSITIZED, RESULT_ONLY = 1, 2, 4  # DataCatalog form bits
SIGNATURE_LIFETIME = 3_600  # seconds a test signature stays valid after the latest block
DAY = 86_400  # seconds


def device_input(
    serial: int, *, district: int = 110105, status: int = PLANNED, lat: int = 39_921_000, lon: int = 116_443_000
) -> tuple[Any, ...]:
    """A type 1 (camera.road) DeviceInput: code BJ-CAMR-<district><6-digit serial>."""
    code = f"BJ-CAMR-{district:06d}{serial:06d}"
    attributes = json.dumps({"brand": "hik", "pole": f"P-{serial}"}, sort_keys=True, separators=(",", ":"))
    return (code, 1, status, district, lat + serial, lon - serial, 1_700_000_000, attributes)


def registry_call(w3: Web3, chain: SeededConsortium, function: str, *args: Any) -> dict[str, Any]:
    """Send DeviceRegistry.`function`(*args) as the BJ-PSB registrar and return the receipt."""
    key = chain.orgs[REGISTRAR_ORG].private_key
    registry = contract(w3, chain.deployment, "DeviceRegistry")
    tx = getattr(registry.functions, function)(*args).build_transaction({"from": Account.from_key(key).address})
    return send_transaction(w3, key, tx)


def call(w3: Web3, chain: SeededConsortium, key: str, contract_name: str, function: str, *args: Any) -> dict[str, Any]:
    """Send `contract_name`.`function`(*args) signed with `key` and return the receipt (raises if reverted)."""
    target = contract(w3, chain.deployment, contract_name)
    tx = getattr(target.functions, function)(*args).build_transaction({"from": Account.from_key(key).address})
    return send_transaction(w3, key, tx)


def entry_input(
    title: str,
    *,
    devices: list[str] | None = None,
    upstream: list[int] | None = None,
    grade: int = 3,
    condition: int = CONDITIONAL,
    forms: int = DESENSITIZED | RESULT_ONLY,
    fields: tuple[str, ...] = ("hour", "checkpoint_code", "vehicle_count"),
    classification: str = "城市影像/交通卡口",
) -> tuple[Any, ...]:
    """An IDataCatalog.EntryInput tuple whose schema lists `fields` as {"fields": [{"name", "type"}]}."""
    schema = json.dumps({"fields": [{"name": f, "type": "string"} for f in fields]}, separators=(",", ":"))
    return (title, classification, grade, condition, forms, schema, devices or [], upstream or [])


def catalog_call(w3: Web3, chain: SeededConsortium, function: str, *args: Any) -> dict[str, Any]:
    """Send DataCatalog.`function`(*args) as the BJ-PSB registrar (entries are owned by BJ-PSB)."""
    return call(w3, chain, chain.orgs[REGISTRAR_ORG].private_key, "DataCatalog", function, *args)


def request_sharing(
    w3: Web3, chain: SeededConsortium, entry_id: int, form: int = DESENSITIZED, duration: int = 30 * DAY
) -> int:
    """Request `form` of `entry_id` as the BJ-CMC account; returns the new request id."""
    sharing = contract(w3, chain.deployment, "SharingAgreements")
    request_id = int(sharing.functions.requestCount().call()) + 1
    key = chain.orgs[REQUESTER_ORG].private_key
    call(w3, chain, key, "SharingAgreements", "request", entry_id, form, "交通拥堵治理研判", duration)
    return request_id


@dataclass(frozen=True)
class SignedDecision:
    """An approver's EIP-712 decision, as the relay functions take it."""

    approver: str
    nonce: int
    deadline: int
    signature: bytes


def sign_decision(
    w3: Web3,
    chain: SeededConsortium,
    request_id: int,
    approver_index: int,
    decision: Decision = Decision.APPROVE,
    reason: str = "",
    org: str = REGISTRAR_ORG,
) -> SignedDecision:
    """`org`'s approver number `approver_index` signs `decision` on `request_id` with its own key."""
    approver, key = chain.orgs[org].approvers[approver_index]
    sharing = contract(w3, chain.deployment, "SharingAgreements")
    nonce = int(sharing.functions.nonces(approver).call())
    deadline = int(w3.eth.get_block("latest")["timestamp"]) + SIGNATURE_LIFETIME
    typed = decision_typed_data(
        chain_id=chain.deployment["chain_id"],
        contract=sharing.address,
        request_id=request_id,
        decision=decision,
        reason=reason,
        nonce=nonce,
        deadline=deadline,
    )
    return SignedDecision(approver, nonce, deadline, bytes.fromhex(sign_typed_data(key, typed)[2:]))


def relay_approval(w3: Web3, chain: SeededConsortium, request_id: int, signed: SignedDecision) -> dict[str, Any]:
    """Relay an approver's signed approval from the deployer account (anyone may relay: only the signature counts)."""
    sig = (signed.approver, signed.nonce, signed.deadline, signed.signature)
    return call(w3, chain, chain.deployer_key, "SharingAgreements", "approve", request_id, *sig)


def relay_refusal(
    w3: Web3, chain: SeededConsortium, request_id: int, signed: SignedDecision, reason: str
) -> dict[str, Any]:
    sig = (signed.approver, signed.nonce, signed.deadline, signed.signature)
    return call(w3, chain, chain.deployer_key, "SharingAgreements", "refuse", request_id, reason, *sig)


def relay_revocation(
    w3: Web3, chain: SeededConsortium, request_id: int, signed: SignedDecision, reason: str
) -> dict[str, Any]:
    sig = (signed.approver, signed.nonce, signed.deadline, signed.signature)
    return call(w3, chain, chain.deployer_key, "SharingAgreements", "revoke", request_id, reason, *sig)


@contextmanager
def open_indexer(database_url: str, rpc_url: str, deployment: Deployment, **kwargs: Any) -> Iterator[Indexer]:
    """An indexer with tables created; its leader lock released, its engine and RPC client closed afterwards."""
    engine = create_mirror_engine(database_url)
    rpc = JsonRpcClient([rpc_url])
    try:
        with Indexer(engine, rpc, deployment, **kwargs) as indexer:  # a scheduled indexer keeps its lock until closed
            indexer.create_tables()
            yield indexer
    finally:
        rpc.close()
        engine.dispose()


def assert_equals_fresh_replay(database_url: str, replay_url: str, rpc_url: str, deployment: Deployment) -> None:
    """Index the chain from scratch into `replay_url` and assert every mirror table equals `database_url`'s.

    The replay takes the catch-up path (fetched by a child process, read indexes built after the load), the
    mirror under test usually the live one (a fetching thread, indexes kept up row by row): both must agree.
    """
    with open_indexer(replay_url, rpc_url, deployment, process_min_blocks=0) as fresh:
        fresh.sync_once()
        expected = dump_mirror(fresh.engine)
    engine = create_mirror_engine(database_url)
    try:
        actual = dump_mirror(engine)
    finally:
        engine.dispose()
    assert mirror_differences(actual, expected) == {}
    assert actual == expected
