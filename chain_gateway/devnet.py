"""The local development network: an anvil node and the demo consortium of DESIGN.md's default profile.

Dev keys only: they are derived from anvil's public test mnemonic and must never hold value.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account
from web3 import Web3

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.deployments import ORG_KINDS, Deployment, FounderOrg, deploy_contracts
from chain_gateway.errors import GatewayConfigError
from chain_gateway.governance import GovernedCall, contract, govern, role_id

__all__ = [
    "ANVIL_MNEMONIC",
    "DEMO_CODE_RULES",
    "DEMO_ORGS",
    "DEMO_REVIEW_LEADS",
    "AnvilNode",
    "DemoOrg",
    "SeededConsortium",
    "dev_key",
    "free_port",
    "seed_demo_consortium",
]

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNTS = 40
Account.enable_unaudited_hdwallet_features()

CHARSET_DIGITS = 1


@dataclass(frozen=True)
class DemoOrg:
    code: str
    name: str
    kind: str
    roles: tuple[str, ...]
    approvers: int = 0


# Lead departments per DOMAIN.md: imagery -> public security, city management, emergency, others -> economy
# and information. The founder (first ADMIN) is the economy and information bureau.
DEMO_ORGS: tuple[DemoOrg, ...] = (
    # The economy and information bureau also runs the data zone: RELAYER anchors its usage receipts.
    DemoOrg("BJ-EIB", "北京市经济和信息化局", "department", ("ADMIN", "REGISTRAR", "REVIEWER", "RELAYER"), approvers=2),
    DemoOrg("BJ-PSB", "北京市公安局", "department", ("ADMIN", "REGISTRAR", "REVIEWER"), approvers=2),
    DemoOrg("BJ-CMC", "北京市城市管理委员会", "department", ("ADMIN", "REGISTRAR", "REVIEWER"), approvers=2),
    DemoOrg("BJ-EMB", "北京市应急管理局", "department", ("REGISTRAR", "REVIEWER"), approvers=2),
    DemoOrg("BJ-CY", "北京市朝阳区人民政府", "district", ("REGISTRAR",), approvers=2),
    DemoOrg("CO-ZHCS", "北京智慧城市科技有限公司", "company", ()),
    DemoOrg("AU-BJ", "北京市审计局", "auditor", ("AUDITOR",)),
)
DEMO_THRESHOLD = 2  # of the three ADMIN orgs

# Lead org of each joint-review domain (IReviewBoard.Domain: imagery, city management, emergency, other).
DEMO_REVIEW_LEADS: tuple[tuple[int, str], ...] = ((0, "BJ-PSB"), (1, "BJ-CMC"), (2, "BJ-EMB"), (3, "BJ-EIB"))

# (type id, type name, prefix, length, charset): codes are "<prefix><6-digit district><6-digit serial>".
DEMO_CODE_RULES: tuple[tuple[int, str, str, int, int], ...] = (
    (1, "camera.road", "BJ-CAMR-", 20, CHARSET_DIGITS),
    (2, "camera.checkpoint", "BJ-CAMK-", 20, CHARSET_DIGITS),
    (3, "camera.face", "BJ-CAMF-", 20, CHARSET_DIGITS),
    (4, "sensor.air", "BJ-AIRQ-", 20, CHARSET_DIGITS),
    (5, "sensor.water-pressure", "BJ-WTRP-", 20, CHARSET_DIGITS),
    (6, "sensor.flood", "BJ-FLDS-", 20, CHARSET_DIGITS),
    (7, "sensor.gas", "BJ-GASS-", 20, CHARSET_DIGITS),
    (8, "sensor.traffic", "BJ-TRFC-", 20, CHARSET_DIGITS),
)


def dev_key(index: int) -> str:
    """The private key of anvil's dev account `index` (public test mnemonic)."""
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when its parent dies (even by kill -9)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _anvil_binary() -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    path = PROJECT_ROOT / "node_modules" / "@foundry-rs" / f"anvil-linux-{arch}" / "bin" / "anvil"
    if not path.exists():
        raise GatewayConfigError(f"{path} is missing: run scripts/setup (npm ci)")
    return path


@dataclass
class AnvilNode:
    """An anvil process on loopback; automining unless `block_time` (seconds) is given."""

    port: int = field(default_factory=free_port)
    block_time: float | None = None
    chain_id: int = 31337
    gas_limit: int = 300_000_000
    state_path: Path | None = None
    log_path: Path | None = None
    prune_history: int | None = None  # keep only this many block states in memory (large benchmark chains)
    genesis_path: Path | None = None  # start from this geth-style genesis.json (`--init`), e.g. chain_gateway.genesis
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AnvilNode:
        args = [
            str(_anvil_binary()),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(ANVIL_ACCOUNTS),
            "--mnemonic", ANVIL_MNEMONIC,
            "--gas-limit", str(self.gas_limit),
            "--hardfork", "paris",
        ]  # fmt: skip
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.state_path is not None:
            args += ["--state", str(self.state_path)]
        if self.prune_history is not None:
            args += ["--prune-history", str(self.prune_history)]
        if self.genesis_path is not None:
            args += ["--init", str(self.genesis_path)]
        with open(self.log_path or os.devnull, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches our handler, not the node directly
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise GatewayConfigError(f"anvil exited with {self.process.returncode}")
            try:
                httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise GatewayConfigError(f"anvil did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class SeededOrg:
    code: str
    name: str
    kind: str
    roles: tuple[str, ...]
    private_key: str
    account: str
    approvers: list[tuple[str, str]]  # (account, private key)


@dataclass
class SeededConsortium:
    deployment: Deployment
    deployer_key: str
    orgs: dict[str, SeededOrg]

    def admin_keys(self) -> list[str]:
        return [o.private_key for o in self.orgs.values() if "ADMIN" in o.roles]


def seed_demo_consortium(w3: Web3, orgs: tuple[DemoOrg, ...] = DEMO_ORGS) -> SeededConsortium:
    """Deploy the contracts and admit the demo orgs, their accounts, roles and code rules, by proposals.

    Dev account 0 deploys; accounts 1.. go to the orgs in order (main account first, then approvers).
    """
    index = 1
    seeded: dict[str, SeededOrg] = {}
    for org in orgs:
        key = dev_key(index)
        approvers = [(Account.from_key(k).address, k) for k in (dev_key(index + 1 + i) for i in range(org.approvers))]
        index += 1 + org.approvers
        seeded[org.code] = SeededOrg(
            org.code, org.name, org.kind, org.roles, key, Account.from_key(key).address, approvers
        )
    founder = seeded[orgs[0].code]
    deployer_key = dev_key(0)
    deployment = deploy_contracts(
        w3,
        deployer_key,
        FounderOrg(code=founder.code, name=founder.name, kind=founder.kind, admin=founder.account),  # type: ignore[typeddict-item]
    )
    calls: list[GovernedCall] = []
    for org in seeded.values():
        if org is not founder:
            calls.append(("Consortium", "admitMember", [org.code, org.name, ORG_KINDS[org.kind]]))
            calls.append(("Consortium", "addAccount", [org.code, org.account]))
        for role in org.roles:
            if not (org is founder and role == "ADMIN"):
                calls.append(("Consortium", "grantRole", [role_id(role), org.account]))
        for account, _ in org.approvers:
            calls.append(("Consortium", "addAccount", [org.code, account]))
            calls.append(("Consortium", "grantRole", [role_id("APPROVER"), account]))
    admins = [founder.private_key]
    govern(w3, deployment, admins, calls, "admit the demo consortium")
    for rule in DEMO_CODE_RULES:
        govern(w3, deployment, admins, [("DeviceRegistry", "setCodeRule", list(rule))], f"code rule {rule[1]}")
    members = contract(w3, deployment, "Consortium")
    org_ids = {code: int(members.functions.orgIdByCode(code).call()) for _, code in DEMO_REVIEW_LEADS}
    board = deployment["contracts"]["ReviewBoard"]["address"]
    review: list[GovernedCall] = [("DeviceRegistry", "setReviewBoard", [board])]
    review += [("ReviewBoard", "setLeadOrg", [domain, org_ids[code]]) for domain, code in DEMO_REVIEW_LEADS]
    for call in review:
        govern(w3, deployment, admins, [call], f"joint review: {call[1]}")
    consortium = SeededConsortium(deployment, deployer_key, seeded)
    govern(w3, deployment, admins, [("Consortium", "setThreshold", [DEMO_THRESHOLD])], "threshold 2 of 3")
    return consortium
