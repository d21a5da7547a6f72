"""Genesis files that carry the consortium's contracts: a Besu QBFT genesis, and the same `alloc` for geth Clique.

How: the contracts are deployed and seeded on a throw-away anvil (the target chain id, paris rules), anvil's
`anvil_dumpState` gives the whole state, and each contract account (code, nonce, balance and every non-zero
storage slot: AccessControl roles, OpenZeppelin's namespaced and EIP-1967-style slots alike, since the dump is the
state trie itself) becomes a genesis `alloc` entry at the same address. Immutables (EIP-712's cached chain id and
domain separator) are inside the runtime code, so the node runs with the chain id the genesis will have.
Externally owned accounts of the scratch chain are not carried: no key, balance or nonce of it reaches the file.

What genesis state lacks: events. The contracts hold the seeded members, roles and code rules, but no log says
so, and the indexer mirrors logs from `deploy_block` (0 here). See docs/besu-qbft.md, "What the indexer sees".

The consortium comes from `DEMO_ORGS` (dev keys) or from a founders file of addresses only (`ConsortiumSpec`);
the file's first org is the founder, and the scratch node impersonates its first ADMIN account to pass the
seeding proposals (the founder alone, threshold 1, until `threshold` is set last).
"""

from __future__ import annotations

import gzip
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

import rlp
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from eth_utils import is_address, to_canonical_address, to_checksum_address
from pydantic import BaseModel, Field, ValidationError, field_validator
from rlp.exceptions import RLPException
from web3 import Web3

from chain_gateway.deployments import ORG_KINDS, Deployment, FounderOrg, deploy_contracts
from chain_gateway.devnet import AnvilNode, seed_demo_consortium
from chain_gateway.errors import GatewayConfigError
from chain_gateway.governance import ROLE_NAMES, GovernedCall, contract, role_id

__all__ = [
    "FORK_OF_OPCODE",
    "LONDON_FORKS",
    "MIX_HASH_QBFT",
    "ConsortiumGenesis",
    "ConsortiumSpec",
    "GenesisAccount",
    "OrgSpec",
    "build_consortium",
    "contracts_alloc",
    "decode_qbft_extra_data",
    "load_spec",
    "newest_fork_needed",
    "opcodes_used",
    "qbft_extra_data",
    "qbft_genesis",
]

# Block-numbered forks up to London, all at block 0 (the Clique genesis of chain_gateway.clique uses the same list).
LONDON_FORKS = (
    "homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople", "petersburg", "istanbul",
    "muirGlacier", "berlin", "london",
)  # fmt: skip
# Besu's QBFT genesis constant ("Istanbul block identification"), from its QBFT configuration page.
MIX_HASH_QBFT = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
ZERO_HASH = "0x" + "00" * 32
SCRATCH_BALANCE_WEI = 10**24  # gas money of the scratch node's impersonated founder and deployer, never carried


class GenesisAccount(TypedDict, total=False):
    balance: str
    nonce: str
    code: str
    storage: dict[str, str]


class OrgSpec(BaseModel):
    """A founding org of the founders file: accounts are addresses, each with its roles (never keys)."""

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    kind: Literal["department", "district", "company", "auditor"]
    accounts: dict[str, list[str]] = Field(description="address -> role names (ADMIN, REGISTRAR, ...)")

    @field_validator("accounts")
    @classmethod
    def _addresses_and_roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for address, roles in value.items():
            if not is_address(address):
                raise ValueError(f"{address!r} is not an address")
            unknown = sorted(set(roles) - set(ROLE_NAMES))
            if unknown:
                raise ValueError(f"unknown roles {unknown} of {address}; known: {list(ROLE_NAMES)}")
            out[to_checksum_address(address)] = list(roles)
        return out


class ConsortiumSpec(BaseModel):
    """The founders file: orgs (the first one founds the consortium), threshold, code rules, review leads."""

    orgs: list[OrgSpec] = Field(min_length=1)
    threshold: int = Field(default=1, ge=1)
    code_rules: list[tuple[int, str, str, int, int]] = Field(
        default_factory=list, description="(type id, type name, prefix, length, charset)"
    )
    review_leads: dict[int, str] = Field(default_factory=dict, description="review domain (0..3) -> org code")

    def founder_admin(self) -> ChecksumAddress:
        founder = self.orgs[0]
        for address, roles in founder.accounts.items():
            if "ADMIN" in roles:
                return ChecksumAddress(address)
        raise GatewayConfigError(f"the founder org {founder.code} (first in the file) needs an ADMIN account")


def load_spec(path: Path) -> ConsortiumSpec:
    """Read a founders file (JSON); raise GatewayConfigError with the first problem in one line."""
    try:
        return ConsortiumSpec.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GatewayConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GatewayConfigError(f"{path}: {where}: {first['msg']}") from exc


@dataclass(frozen=True)
class ConsortiumGenesis:
    """The contracts as genesis accounts, and the deployments file that names them (deploy block 0)."""

    alloc: dict[str, GenesisAccount]  # lower-case address without 0x -> account
    deployment: Deployment


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    reply = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in reply:
        raise GatewayConfigError(f"{method} failed on the scratch node: {reply['error']}")
    return reply["result"]


def _seed_spec(w3: Web3, spec: ConsortiumSpec) -> Deployment:
    """Deploy with a random one-off deployer key and seed `spec` as its founder (impersonated on the scratch node)."""
    deployer_key = "0x" + secrets.token_hex(32)  # only ever on the scratch node; its nonce is not carried
    admin = spec.founder_admin()
    for address in (Account.from_key(deployer_key).address, admin):
        _rpc(w3, "anvil_setBalance", [address, hex(SCRATCH_BALANCE_WEI)])
    _rpc(w3, "anvil_impersonateAccount", [admin])
    founder = spec.orgs[0]
    deployment = deploy_contracts(
        w3, deployer_key, FounderOrg(code=founder.code, name=founder.name, kind=founder.kind, admin=admin)
    )
    members: list[GovernedCall] = []
    for org in spec.orgs:
        if org is not founder:
            members.append(("Consortium", "admitMember", [org.code, org.name, ORG_KINDS[org.kind]]))
        for address, roles in org.accounts.items():
            if address != admin:
                members.append(("Consortium", "addAccount", [org.code, address]))
            granted = [r for r in roles if (address, r) != (admin, "ADMIN")]  # the constructor made it ADMIN
            members += [("Consortium", "grantRole", [role_id(r), address]) for r in granted]
    consortium = contract(w3, deployment, "Consortium")
    calls: list[GovernedCall] = [
        ("DeviceRegistry", "setReviewBoard", [deployment["contracts"]["ReviewBoard"]["address"]]),
        *(("DeviceRegistry", "setCodeRule", list(rule)) for rule in spec.code_rules),
    ]
    _propose_as(w3, deployment, admin, members, "admit the founding members")
    for call in calls:
        _propose_as(w3, deployment, admin, [call], call[1])
    for domain, code in sorted(spec.review_leads.items()):
        org_id = int(consortium.functions.orgIdByCode(code).call())
        _propose_as(w3, deployment, admin, [("ReviewBoard", "setLeadOrg", [domain, org_id])], f"review lead {code}")
    if spec.threshold != 1:
        _propose_as(w3, deployment, admin, [("Consortium", "setThreshold", [spec.threshold])], "threshold")
    return deployment


def _propose_as(w3: Web3, deployment: Deployment, admin: str, calls: Sequence[GovernedCall], note: str) -> None:
    """One proposal by the founder's ADMIN account; with threshold 1 it executes in the same transaction."""
    if not calls:
        return
    consortium = contract(w3, deployment, "Consortium")
    if len(calls) == 1:
        name, fn, args = calls[0]
        target = contract(w3, deployment, name)
        address, data = target.address, target.encode_abi(fn, args=list(args))
    else:  # several Consortium calls: one multicall
        address = consortium.address
        data = consortium.encode_abi("multicall", args=[[consortium.encode_abi(f, args=list(a)) for _, f, a in calls]])
    proposal = int(consortium.functions.proposalCount().call())
    tx_hash = consortium.functions.propose(address, data, note).transact({"from": admin})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1 or not consortium.functions.getProposal(proposal).call()[1]:
        raise GatewayConfigError(f"seeding proposal {note!r} did not execute on the scratch node")


def _dump_accounts(w3: Web3) -> dict[str, Any]:
    blob = bytes.fromhex(_rpc(w3, "anvil_dumpState", [])[2:])
    state: dict[str, Any] = json.loads(gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob)
    return {address.lower(): account for address, account in state["accounts"].items()}


def _genesis_account(dumped: Mapping[str, Any]) -> GenesisAccount:
    storage = {k[2:].rjust(64, "0"): v[2:].rjust(64, "0") for k, v in dumped["storage"].items() if int(v, 16)}
    return GenesisAccount(
        balance=hex(int(dumped["balance"], 16)),
        nonce=hex(int(dumped["nonce"])),
        code=dumped["code"],
        storage=dict(sorted(storage.items())),
    )


def build_consortium(chain_id: int, spec: ConsortiumSpec | None = None) -> ConsortiumGenesis:
    """Deploy and seed the consortium (the demo one, or `spec`) on a scratch anvil and read back its contracts."""
    with AnvilNode(chain_id=chain_id) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment = seed_demo_consortium(w3).deployment if spec is None else _seed_spec(w3, spec)
        accounts = _dump_accounts(w3)
    alloc: dict[str, GenesisAccount] = {}
    contracts = dict(deployment["contracts"])
    for info in contracts.values():
        address = info["address"].lower()
        if not accounts.get(address, {}).get("code", "0x")[2:]:
            raise GatewayConfigError(f"no code at {info['address']} in the scratch node's state")
        alloc[address[2:]] = _genesis_account(accounts[address])
        info.update(tx_hash=HexStr(ZERO_HASH), block_number=0)  # no creation transaction: it is in the genesis
    return ConsortiumGenesis(alloc, Deployment(**{**deployment, "deploy_block": 0, "contracts": contracts}))


def contracts_alloc(
    chain_id: int, spec: ConsortiumSpec | None = None, deployment_path: Path | None = None
) -> dict[str, GenesisAccount]:
    """The `alloc` entries of the seeded contracts for any geth-style genesis (Clique, QBFT); with `deployment_path`
    also write the deployments file (deploy block 0, the same addresses) there."""
    from chain_gateway.deployments import write_deployment

    built = build_consortium(chain_id, spec)
    if deployment_path is not None:
        write_deployment(built.deployment, deployment_path)
    return built.alloc


# ---------------------------------------------------------------- QBFT


def qbft_extra_data(validators: Sequence[str]) -> HexStr:
    """QBFT genesis extraData: RLP([32 zero bytes vanity, [validators], no vote, round 0, no seals]), as Besu's
    `besu rlp encode --type=QBFT_EXTRA_DATA` writes it. Validators are kept in the order given."""
    vanity = b"\x00" * 32
    encoded = rlp.encode([vanity, [to_canonical_address(v) for v in validators], [], b"", []])
    return HexStr("0x" + encoded.hex())


def decode_qbft_extra_data(extra_data: str) -> list[ChecksumAddress]:
    """The validator list of a QBFT genesis extraData (checks the vanity, empty vote, round 0 and no seals)."""
    try:
        vanity, validators, vote, round_number, seals = rlp.decode(bytes.fromhex(extra_data.removeprefix("0x")))
    except (RLPException, ValueError) as exc:  # not hex, not RLP, or not a 5-item list
        raise GatewayConfigError(f"not a QBFT extraData: {exc}") from exc
    if not isinstance(vanity, bytes) or len(vanity) != 32 or vote or round_number or seals:
        raise GatewayConfigError("not a QBFT genesis extraData (vanity, no vote, round 0, no seals)")
    return [to_checksum_address(v) for v in validators]


def qbft_genesis(
    consortium: ConsortiumGenesis,
    validators: Sequence[str],
    *,
    block_period_s: int = 2,
    request_timeout_s: int = 4,
    epoch_length: int = 30_000,
    gas_limit: int = 30_000_000,
    free_gas: bool = True,
    funded: Mapping[str, int] | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A Besu QBFT genesis (block header validator selection) whose alloc carries the consortium's contracts.

    Validators are node addresses (`besu public-key export-address`), sorted ascending as Besu's docs ask.
    `free_gas`: base fee 0 (`zeroBaseFee`); nodes then run with `--min-gas-price=0`. `funded`: address -> wei.
    `timestamp`: of block 0, seconds (now by default: contracts compare `block.timestamp` with real dates).
    London rules at block 0: the contracts are compiled for paris and use no newer opcode (`newest_fork_needed`).
    """
    if len(validators) < 1:
        raise GatewayConfigError("a QBFT genesis needs at least one validator (four to tolerate one fault)")
    bad = [v for v in validators if not is_address(v)]
    if bad:
        raise GatewayConfigError(f"not addresses: {bad}")
    ordered = sorted({to_checksum_address(v) for v in validators}, key=lambda a: int(a, 16))
    bad = [a for a in funded or {} if not is_address(a)]
    if bad:
        raise GatewayConfigError(f"funded accounts are not addresses: {bad}")
    alloc = {a.lower().removeprefix("0x"): GenesisAccount(balance=hex(w)) for a, w in (funded or {}).items()}
    clash = set(alloc) & set(consortium.alloc)
    if clash:
        raise GatewayConfigError(f"funded accounts clash with contract addresses: {sorted(clash)}")
    alloc.update(consortium.alloc)
    config: dict[str, Any] = {
        "chainId": consortium.deployment["chain_id"],
        **{f"{fork}Block": 0 for fork in LONDON_FORKS},
        "qbft": {
            "blockperiodseconds": block_period_s,
            "epochlength": epoch_length,
            "requesttimeoutseconds": request_timeout_s,
        },
    }
    if free_gas:
        config["zeroBaseFee"] = True
    genesis: dict[str, Any] = {
        "config": config,
        "nonce": "0x0",
        "timestamp": hex(int(time.time()) if timestamp is None else timestamp),
        "extraData": qbft_extra_data(ordered),
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": MIX_HASH_QBFT,
        "coinbase": "0x" + "00" * 20,
        "alloc": alloc,
    }
    if free_gas:
        genesis["baseFeePerGas"] = "0x0"
    return genesis


# ---------------------------------------------------------------- fork rules the bytecode needs

# Opcodes introduced after Frontier/Homestead, by the fork that introduced them.
FORK_OF_OPCODE: dict[int, str] = {
    0xFD: "byzantium", 0x3D: "byzantium", 0x3E: "byzantium", 0xFA: "byzantium",  # REVERT, RETURNDATA*, STATICCALL
    0x1B: "constantinople", 0x1C: "constantinople", 0x1D: "constantinople",  # SHL, SHR, SAR
    0x3F: "constantinople", 0xF5: "constantinople",  # EXTCODEHASH, CREATE2
    0x46: "istanbul", 0x47: "istanbul",  # CHAINID, SELFBALANCE
    0x48: "london",  # BASEFEE
    0x5F: "shanghai",  # PUSH0
    0x5C: "cancun", 0x5D: "cancun", 0x5E: "cancun", 0x49: "cancun", 0x4A: "cancun",  # TLOAD, TSTORE, MCOPY, BLOB*
    0x1E: "osaka",  # CLZ
}  # fmt: skip
FORK_ORDER = ("frontier", "byzantium", "constantinople", "istanbul", "london", "shanghai", "cancun", "osaka")


def opcodes_used(code: bytes) -> set[int]:
    """The opcodes of runtime `code`, skipping PUSH data and solc's CBOR metadata at the end."""
    if len(code) >= 2:
        metadata = int.from_bytes(code[-2:], "big") + 2
        if metadata < len(code):
            code = code[:-metadata]
    seen: set[int] = set()
    i = 0
    while i < len(code):
        op = code[i]
        seen.add(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return seen


def newest_fork_needed(alloc: Mapping[str, GenesisAccount]) -> str:
    """The newest fork whose opcodes the allocated code uses (e.g. "istanbul": London rules are enough)."""
    forks = {FORK_OF_OPCODE.get(op, "frontier") for acc in alloc.values() for op in opcodes_used(_code(acc))}
    return max(forks, key=FORK_ORDER.index, default="frontier")


def _code(account: GenesisAccount) -> bytes:
    return bytes.fromhex(account.get("code", "0x").removeprefix("0x"))
