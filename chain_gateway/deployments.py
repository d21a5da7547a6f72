"""Deploy the contracts and read/write `deployments/<chainId>.json`.

The file is the one thing outside tools need to use the chain (web3, cast, an auditor): contract names,
addresses, ABIs, deploy block and transaction, compiler version, source hashes and bytecode hashes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from chain_gateway.compiler import load_artifacts
from chain_gateway.errors import GatewayConfigError

__all__ = [
    "ContractDeployment",
    "Deployment",
    "FounderOrg",
    "deploy_contracts",
    "load_deployment",
    "send_transaction",
    "write_deployment",
]

ORG_KINDS = {"department": 1, "district": 2, "company": 3, "auditor": 4}


class ContractDeployment(TypedDict):
    address: ChecksumAddress
    abi: list[dict[str, Any]]
    tx_hash: HexStr
    block_number: int
    source: str
    bytecode_keccak: HexStr
    deployed_bytecode_keccak: HexStr


class Deployment(TypedDict):
    chain_id: int
    deploy_block: int
    compiler: dict[str, Any]
    source_hashes: dict[str, str]
    contracts: dict[str, ContractDeployment]
    errors_abi: list[dict[str, Any]]


class FounderOrg(TypedDict):
    code: str
    name: str
    kind: str  # department | district | company | auditor
    admin: ChecksumAddress


def send_transaction(w3: Web3, private_key: str, tx: dict[str, Any]) -> dict[str, Any]:
    """Sign `tx` with `private_key`, send it, wait for the receipt and raise if it reverted.

    For deployment and seeding only; service writes go through the outbox (`chain_gateway.gateway`).
    """
    account = Account.from_key(private_key)
    tx = dict(tx)
    tx.setdefault("from", account.address)
    tx.setdefault("chainId", w3.eth.chain_id)
    tx.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    if "gas" not in tx:
        tx["gas"] = int(w3.eth.estimate_gas(tx) * 1.2) + 50_000  # type: ignore[arg-type]
    if "gasPrice" not in tx and "maxFeePerGas" not in tx:
        tx["gasPrice"] = w3.eth.gas_price
    signed = Account.sign_transaction(tx, private_key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = dict(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120))
    if receipt["status"] != 1:
        raise GatewayConfigError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def _deploy_one(
    w3: Web3, private_key: str, artifact: dict[str, Any], args: list[Any]
) -> tuple[ContractDeployment, dict[str, Any]]:
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    sender = Account.from_key(private_key).address
    tx = factory.constructor(*args).build_transaction({"from": sender, "gas": 15_000_000})
    receipt = send_transaction(w3, private_key, tx)
    address = to_checksum_address(receipt["contractAddress"])
    return (
        ContractDeployment(
            address=address,
            abi=artifact["abi"],
            tx_hash=HexStr("0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x")),
            block_number=int(receipt["blockNumber"]),
            source=artifact["source"],
            bytecode_keccak=HexStr("0x" + keccak(hexstr=artifact["bytecode"]).hex()),
            deployed_bytecode_keccak=HexStr("0x" + keccak(hexstr=artifact["deployed_bytecode"]).hex()),
        ),
        receipt,
    )


def deploy_contracts(w3: Web3, deployer_key: str, founder: FounderOrg) -> Deployment:
    """Deploy Consortium (with `founder` as its first ADMIN org), DeviceRegistry, DataCatalog, SharingAgreements,
    AlgorithmRegistry, ReviewBoard and CarrierRegistry.

    The consortium must still hook the review board into the DeviceRegistry (`setReviewBoard`) and name the lead
    org of each review domain (`setLeadOrg`) by proposals; the dev profile's seeding does.
    """
    artifacts = load_artifacts()
    kind = ORG_KINDS.get(founder["kind"])
    if kind is None:
        raise GatewayConfigError(f"unknown org kind {founder['kind']!r}; one of {sorted(ORG_KINDS)}")
    consortium, _ = _deploy_one(
        w3,
        deployer_key,
        artifacts["contracts"]["Consortium"],
        [founder["code"], founder["name"], kind, founder["admin"]],
    )
    registry, _ = _deploy_one(w3, deployer_key, artifacts["contracts"]["DeviceRegistry"], [consortium["address"]])
    catalog, _ = _deploy_one(
        w3, deployer_key, artifacts["contracts"]["DataCatalog"], [consortium["address"], registry["address"]]
    )
    sharing, _ = _deploy_one(
        w3, deployer_key, artifacts["contracts"]["SharingAgreements"], [consortium["address"], catalog["address"]]
    )
    algorithms, _ = _deploy_one(
        w3, deployer_key, artifacts["contracts"]["AlgorithmRegistry"], [consortium["address"], catalog["address"]]
    )
    review, _ = _deploy_one(
        w3, deployer_key, artifacts["contracts"]["ReviewBoard"], [consortium["address"], registry["address"]]
    )
    carriers, _ = _deploy_one(w3, deployer_key, artifacts["contracts"]["CarrierRegistry"], [consortium["address"]])
    return Deployment(
        chain_id=int(w3.eth.chain_id),
        deploy_block=consortium["block_number"],
        compiler=artifacts["compiler"],
        source_hashes=artifacts["source_hashes"],
        contracts={
            "Consortium": consortium,
            "DeviceRegistry": registry,
            "DataCatalog": catalog,
            "SharingAgreements": sharing,
            "AlgorithmRegistry": algorithms,
            "ReviewBoard": review,
            "CarrierRegistry": carriers,
        },
        errors_abi=artifacts["errors_abi"],
    )


def write_deployment(deployment: Deployment, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(deployment, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load_deployment(path: Path) -> Deployment:
    if not path.exists():
        raise GatewayConfigError(f"deployment file {path} is missing: run scripts/deploy")
    data: Deployment = json.loads(path.read_text(encoding="utf-8"))
    return data
