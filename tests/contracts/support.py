"""Helpers for the contract behaviour tests: one `ContractsChain` per backend, custom-error decoding, inputs.

Reverts are checked by simulating the call with `eth_call` from the sender and decoding the revert data
against every custom error the compiler emitted (`errors_abi` of the build), so an error raised by a contract
the callee calls (the Consortium's `requireRole` under DeviceRegistry) is recognised by its own name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.exceptions import Revert
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_tester import PyEVMBackend
from eth_typing import ChecksumAddress
from eth_utils import function_signature_to_4byte_selector, keccak, to_canonical_address, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from chain_gateway.deployments import Deployment, send_transaction
from chain_gateway.devnet import SeededConsortium, dev_key
from chain_gateway.eip712 import Decision, decision_typed_data, sign_typed_data
from chain_gateway.governance import GovernedCall, contract, govern, role_id

__all__ = [
    "Backend",
    "BUILT_AT",
    "ENTRY_INPUT_TYPE",
    "ContractsChain",
    "DecodedRevert",
    "SignedDecision",
    "ErrorDecoder",
    "RevertExpected",
    "Simulator",
    "attributes_hash",
    "device_code",
    "device_input",
    "entry_input",
    "pass_proposal",
    "pyevm_simulator",
    "rpc_simulator",
]

GAS_PER_CALL = 3_000_000  # gas of one test transaction (no estimate: eth-tester runs every call twice otherwise)
BUILT_AT = 1_700_000_000  # unix seconds, safely in the past on every backend
# First dev key not used by seed_demo_consortium (0 deploys, 1..16 belong to the demo orgs).
FIRST_SPARE_DEV_KEY = 20

# Demo code rules: "<prefix><6-digit district><6-digit serial>", 20 characters, digits after the prefix.
TYPE_PREFIX = {1: "BJ-CAMR-", 2: "BJ-CAMK-", 3: "BJ-CAMF-", 4: "BJ-AIRQ-", 5: "BJ-WTRP-", 6: "BJ-FLDS-"}
# IDataCatalog.EntryInput as one ABI tuple: title, classification, grade, shareCondition, forms, schema,
# deviceCodes, upstream. versionHash = keccak256(abi.encode(input)) of exactly this type.
ENTRY_INPUT_TYPE = "(string,string,uint8,uint8,uint8,string,string[],uint64[])"
SIGNATURE_LIFETIME = 3_600  # seconds a test signature stays valid after the latest block


class RevertExpected(AssertionError):
    """A call expected to revert succeeded, or reverted with another error."""


@dataclass(frozen=True)
class DecodedRevert:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _ErrorAbi:
    name: str
    types: tuple[str, ...]


class ErrorDecoder:
    """Decodes revert data into (custom error name, args) using every error ABI of the build."""

    def __init__(self, errors_abi: Sequence[dict[str, Any]]) -> None:
        self._by_selector: dict[bytes, _ErrorAbi] = {}
        for item in errors_abi:
            types = tuple(i["type"] for i in item["inputs"])
            signature = f"{item['name']}({','.join(types)})"
            self._by_selector[function_signature_to_4byte_selector(signature)] = _ErrorAbi(item["name"], types)
        self._by_selector[function_signature_to_4byte_selector("Error(string)")] = _ErrorAbi("Error", ("string",))
        self._by_selector[function_signature_to_4byte_selector("Panic(uint256)")] = _ErrorAbi("Panic", ("uint256",))

    def decode(self, data: bytes) -> DecodedRevert:
        if len(data) < 4:
            return DecodedRevert("<empty>", (data,))
        error = self._by_selector.get(data[:4])
        if error is None:
            return DecodedRevert("<unknown>", (data,))
        values = abi_decode(list(error.types), data[4:])
        args = tuple(to_checksum_address(v) if t == "address" else v for t, v in zip(error.types, values, strict=True))
        return DecodedRevert(error.name, args)


Simulator = Callable[[ChecksumAddress, ChecksumAddress, bytes], "bytes | None"]
"""Runs a call (sender, target, calldata) on the latest state: its revert data, or None if it succeeded."""


def rpc_simulator(w3: Web3) -> Simulator:
    """`eth_call` over JSON-RPC (anvil, any node): the revert data is the error's `data` field."""

    def simulate(sender: ChecksumAddress, to: ChecksumAddress, data: bytes) -> bytes | None:
        call = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(GAS_PER_CALL)}
        response = w3.provider.make_request("eth_call", [call, "latest"])  # type: ignore[arg-type]
        error = response.get("error")
        if error is None:
            return None
        raw = error.get("data") if isinstance(error, dict) else None
        if isinstance(raw, dict):  # some nodes nest it: {"data": "0x..."}
            raw = raw.get("data")
        if not isinstance(raw, str):
            raise AssertionError(f"eth_call failed without revert data: {error!r}")
        return bytes.fromhex(raw.removeprefix("0x"))

    return simulate


def pyevm_simulator(w3: Web3, pyevm: PyEVMBackend) -> Simulator:
    """The call run by py-evm on the head block's state.

    eth-tester turns a revert into `TransactionFailed(str(error))`, which loses the raw data of custom errors,
    so the call is made on py-evm's chain (public API) and the data is read from its `Revert`.
    """

    def simulate(sender: ChecksumAddress, to: ChecksumAddress, data: bytes) -> bytes | None:
        chain = pyevm.chain
        head = chain.get_canonical_head()
        tx = chain.get_vm(head).create_unsigned_transaction(
            nonce=w3.eth.get_transaction_count(sender),
            gas_price=0,
            gas=GAS_PER_CALL,
            to=to_canonical_address(to),
            value=0,
            data=data,
        )
        try:
            chain.get_transaction_result(SpoofTransaction(tx, from_=to_canonical_address(sender)), head)
        except Revert as exc:
            return bytes(exc.args[0])
        return None

    return simulate


def device_code(serial: int, type_id: int = 1, district: int = 110105) -> str:
    """A code that follows demo rule `type_id`: prefix, six-digit district, six-digit serial."""
    return f"{TYPE_PREFIX[type_id]}{district:06d}{serial:06d}"


def device_input(
    code: str,
    *,
    type_id: int = 1,
    status: int = 1,
    district: int = 110105,
    lat: int = 39_921_000,
    lon: int = 116_443_000,
    built_at: int = BUILT_AT,
    attributes: str = '{"model":"X1","vendor":"acme"}',
) -> tuple[str, int, int, int, int, int, int, str]:
    """An `IDeviceRegistry.DeviceInput` tuple in ABI order (status 1 = Planned)."""
    return (code, type_id, status, district, lat, lon, built_at, attributes)


def entry_input(
    title: str = "卡口过车数据 checkpoint vehicle counts",
    *,
    classification: str = "city-imagery/traffic",
    grade: int = 3,
    share_condition: int = 1,
    forms: int = 0b111,
    schema: str = '{"fields":[{"name":"count","type":"int"}]}',
    device_codes: Sequence[str] = (),
    upstream: Sequence[int] = (),
) -> tuple[str, str, int, int, int, str, list[str], list[int]]:
    """An `IDataCatalog.EntryInput` tuple in ABI order (share condition 1 = Conditional, forms all three)."""
    return (title, classification, grade, share_condition, forms, schema, list(device_codes), list(upstream))


@dataclass(frozen=True)
class SignedDecision:
    """A decision signed by an approver, as `approve`/`refuse`/`revoke` take it (after the reason)."""

    approver: ChecksumAddress
    nonce: int
    deadline: int
    signature: bytes

    @property
    def args(self) -> tuple[ChecksumAddress, int, int, bytes]:
        return (self.approver, self.nonce, self.deadline, self.signature)


@dataclass
class ContractsChain:
    """The demo consortium deployed on one backend, with helpers to act as its members and check reverts."""

    backend: str
    w3: Web3
    seeded: SeededConsortium
    simulate: Simulator
    decoder: ErrorDecoder = field(init=False)
    consortium: Contract = field(init=False)
    registry: Contract = field(init=False)
    catalog: Contract = field(init=False)
    sharing: Contract = field(init=False)
    algorithms: Contract = field(init=False)

    def __post_init__(self) -> None:
        self.decoder = ErrorDecoder(self.deployment["errors_abi"])
        self.consortium = contract(self.w3, self.deployment, "Consortium")
        self.registry = contract(self.w3, self.deployment, "DeviceRegistry")
        self.catalog = contract(self.w3, self.deployment, "DataCatalog")
        self.sharing = contract(self.w3, self.deployment, "SharingAgreements")
        self.algorithms = contract(self.w3, self.deployment, "AlgorithmRegistry")

    @property
    def deployment(self) -> Deployment:
        return self.seeded.deployment

    # ------------------------------------------------------------ identities

    def key(self, org: str) -> str:
        """The main account key of demo org `org` (it holds the org's roles)."""
        return self.seeded.orgs[org].private_key

    def account(self, org: str) -> ChecksumAddress:
        return to_checksum_address(self.seeded.orgs[org].account)

    def org_id(self, org: str) -> int:
        return int(self.consortium.functions.orgIdByCode(org).call())

    def admin_keys(self) -> list[str]:
        return self.seeded.admin_keys()

    @staticmethod
    def spare_key(index: int) -> str:
        """A funded dev key that belongs to no org (index 0, 1, ...)."""
        return dev_key(FIRST_SPARE_DEV_KEY + index)

    @staticmethod
    def address_of(key: str) -> ChecksumAddress:
        return to_checksum_address(Account.from_key(key).address)

    # ------------------------------------------------------------ transactions and reverts

    def transact(self, fn: ContractFunction, key: str, gas: int = GAS_PER_CALL) -> TxReceipt:
        """Send `fn` signed by `key` with a fixed gas limit; fails the test if it reverts."""
        tx = fn.build_transaction({"from": self.address_of(key), "gas": gas})
        return send_transaction(self.w3, key, tx)  # type: ignore[arg-type, return-value]

    def transact_reverting(self, fn: ContractFunction, key: str, gas: int = GAS_PER_CALL) -> TxReceipt:
        """Send `fn` as a real transaction that must be mined and revert (status 0); returns its receipt."""
        sender = self.address_of(key)
        tx = fn.build_transaction({"from": sender, "gas": gas, "nonce": self.w3.eth.get_transaction_count(sender)})
        signed = Account.sign_transaction(tx, key)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        assert receipt["status"] == 0, "transaction was expected to revert"
        return receipt

    def revert_of(self, fn: ContractFunction, sender: str) -> DecodedRevert:
        """Simulates `fn` from `sender` (address or key); returns the decoded custom error it reverts with."""
        address = to_checksum_address(sender if Web3.is_address(sender) else self.address_of(sender))
        calldata = _hex_bytes(self._encode(fn))
        data = self.simulate(address, to_checksum_address(fn.address), calldata)
        if data is None:
            raise RevertExpected(f"{fn.fn_name} from {address} did not revert")
        return self.decoder.decode(data)

    def _encode(self, fn: ContractFunction) -> str:
        target = self.w3.eth.contract(address=fn.address, abi=fn.contract_abi)
        return target.encode_abi(fn.fn_name, args=list(fn.args), kwargs=dict(fn.kwargs))

    def assert_reverts(self, fn: ContractFunction, sender: str, name: str, *args: Any) -> None:
        """`fn` called from `sender` reverts with custom error `name(*args)`."""
        got = self.revert_of(fn, sender)
        expected = DecodedRevert(name, tuple(to_checksum_address(a) if _is_address(a) else a for a in args))
        if got != expected:
            raise RevertExpected(f"expected {expected}, got {got}")

    def events(self, receipt: TxReceipt, contract_: Contract, event: str) -> list[dict[str, Any]]:
        """The args of every `event` that `contract_` emitted in `receipt`, in log order."""
        found = getattr(contract_.events, event)().process_receipt(receipt, errors=DISCARD)
        return [dict(e["args"]) for e in found if to_checksum_address(e["address"]) == contract_.address]

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    # ------------------------------------------------------------ state and time

    def snapshot(self) -> Callable[[], None]:
        """Snapshot the backend's state now; returns the function that puts it back (call it once)."""
        if self.backend == "eth-tester":
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            snapshot_id = tester.take_snapshot()
            return lambda: tester.revert_to_snapshot(snapshot_id)
        snapshot = self._rpc("evm_snapshot", [])
        return lambda: self._rpc("evm_revert", [snapshot])

    def advance_time(self, seconds: int) -> int:
        """Mine one empty block `seconds` after the latest one; returns its timestamp (unix seconds)."""
        target = self.latest_timestamp() + seconds
        if self.backend == "eth-tester":
            # eth-tester travels the pending block to the time given and mines the block one second before it
            self.w3.provider.ethereum_tester.time_travel(target + 1)  # type: ignore[attr-defined]
        else:
            self._rpc("evm_setNextBlockTimestamp", [target])
            self._rpc("evm_mine", [])
        assert self.latest_timestamp() == target
        return target

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method} failed: {response['error']}")
        return response["result"]

    # ------------------------------------------------------------ catalog and sharing

    def create_entry(self, org: str, input_: tuple[Any, ...], publish: bool = True) -> int:
        """Create a catalog entry as the registrar of `org`; returns its id."""
        receipt = self.transact(self.catalog.functions.createEntry(input_, publish), self.key(org))
        return int(self.events(receipt, self.catalog, "CatalogEntryVersioned")[0]["entryId"])

    def request(
        self, org: str, entry_id: int, form: int = 2, purpose: str = "traffic study", duration: int = 86_400
    ) -> int:
        """Request `form` of `entry_id` as the main account of `org`; returns the request id."""
        fn = self.sharing.functions.request(entry_id, form, purpose, duration)
        receipt = self.transact(fn, self.key(org))
        return int(self.events(receipt, self.sharing, "SharingRequested")[0]["requestId"])

    def sign_decision(
        self,
        key: str,
        request_id: int,
        decision: Decision = Decision.APPROVE,
        reason: str = "",
        *,
        nonce: int | None = None,
        deadline: int | None = None,
        contract_address: str | None = None,
        chain_id: int | None = None,
    ) -> SignedDecision:
        """`key`'s EIP-712 signature of a decision (chain_gateway.eip712), by default with its next nonce."""
        approver = self.address_of(key)
        if nonce is None:
            nonce = int(self.sharing.functions.nonces(approver).call())
        if deadline is None:
            deadline = self.latest_timestamp() + SIGNATURE_LIFETIME
        typed = decision_typed_data(
            chain_id=self.w3.eth.chain_id if chain_id is None else chain_id,
            contract=contract_address or self.sharing.address,
            request_id=request_id,
            decision=decision,
            reason=reason,
            nonce=nonce,
            deadline=deadline,
        )
        return SignedDecision(approver, nonce, deadline, _hex_bytes(sign_typed_data(key, typed)))

    # ------------------------------------------------------------ governance

    def govern(
        self, calls: Sequence[GovernedCall], description: str = "test", keys: Sequence[str] | None = None
    ) -> int:
        """Pass `calls` as one proposal voted by the demo admins (or `keys`); returns the proposal id."""
        return govern(self.w3, self.deployment, list(keys or self.admin_keys()), calls, description)

    def propose(self, key: str, calls: Sequence[GovernedCall], description: str = "test") -> tuple[int, TxReceipt]:
        """Propose `calls` (one call, or Consortium calls bundled by multicall) from `key` without more votes."""
        target, data = self.encode_calls(calls)
        proposal_id = int(self.consortium.functions.proposalCount().call())
        receipt = self.transact(self.consortium.functions.propose(target, data, description), key)
        return proposal_id, receipt

    def encode_calls(self, calls: Sequence[GovernedCall]) -> tuple[ChecksumAddress, bytes]:
        if {name for name, _, _ in calls} == {"Consortium"}:
            encoded = [self.consortium.encode_abi(fn, args=list(args)) for _, fn, args in calls]
            return self.consortium.address, _hex_bytes(self.consortium.encode_abi("multicall", args=[encoded]))
        if len(calls) != 1:
            raise ValueError("calls on another contract go one per proposal")
        name, fn, args = calls[0]
        target = contract(self.w3, self.deployment, name)
        return target.address, _hex_bytes(target.encode_abi(fn, args=list(args)))

    def add_member_account(self, org: str, key: str, roles: Sequence[str] = ()) -> ChecksumAddress:
        """Attach the account of `key` to `org` and grant it `roles`, by one governed proposal."""
        address = self.address_of(key)
        calls: list[GovernedCall] = [("Consortium", "addAccount", [org, address])]
        calls += [("Consortium", "grantRole", [role_id(r), address]) for r in roles]
        self.govern(calls, f"account for {org}")
        return address

    # ------------------------------------------------------------ devices

    def register(self, org: str, *inputs: tuple[Any, ...]) -> TxReceipt:
        """Register `inputs` as the registrar of `org`: one `registerDevice`, or `registerDevices` for many."""
        if len(inputs) == 1:
            return self.transact(self.registry.functions.registerDevice(inputs[0]), self.key(org))
        gas = 300_000 * len(inputs) + 500_000
        return self.transact(self.registry.functions.registerDevices(list(inputs)), self.key(org), gas=gas)

    def lifecycle(self, org: str, code: str, action: int, replaced_by: str = "", note: str = "") -> TxReceipt:
        return self.transact(self.registry.functions.changeLifecycle(code, action, replaced_by, note), self.key(org))

    def status(self, code: str) -> int:
        return int(self.registry.functions.getDevice(code).call()[2])


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 42 and Web3.is_address(value)


def _hex_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))


def attributes_hash(attributes: str) -> bytes:
    return keccak(text=attributes)


@dataclass
class Backend:
    """One backend's seeded chain; `isolate()` takes a snapshot and returns the function that restores it."""

    chain: ContractsChain
    isolate: Callable[[], Callable[[], None]]


def pass_proposal(
    chain: ContractsChain, calls: Sequence[GovernedCall], proposer: str = "BJ-EIB", voter: str = "BJ-PSB"
) -> tuple[int, TxReceipt]:
    """Propose `calls` as `proposer`'s admin and vote as `voter`'s (threshold 2): the executing vote's receipt."""
    proposal_id, _ = chain.propose(chain.key(proposer), calls)
    receipt = chain.transact(chain.consortium.functions.vote(proposal_id), chain.key(voter))
    return proposal_id, receipt
