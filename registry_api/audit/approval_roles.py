"""Who held a role in which org at a point of the chain, replayed from the Consortium's logs and read from the
node's state at a block.

The Consortium logs every change an approver's standing depends on: MemberAdmitted (an org, active),
MemberStatusChanged (suspended or reinstated), AccountAdded (an account joins an org; accounts never leave one)
and AccessControl's RoleGranted / RoleRevoked. Replaying them up to a log's (block, log index) gives the standing
at that exact point, inside its block; `standings_on_node` reads the same facts with `eth_call` at a block (the
state after it) where the node still has that state, as a cross-check of the replay.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer
from indexer.abi import DecodedLog, EventDecoder
from registry_api.audit.approval_chain import RPC_BATCH, fetch_logs

__all__ = ["APPROVER_ROLE", "MembershipHistory", "NodeStanding", "Position", "Standing", "standings_on_node"]

APPROVER_ROLE = "0x" + keccak(text="APPROVER").hex()
Position = tuple[int, int]  # (block number, log index): a point between two logs of the chain
_EVENTS = ("MemberAdmitted", "MemberStatusChanged", "AccountAdded", "RoleGranted", "RoleRevoked")
_ORG_OF = function_signature_to_4byte_selector("orgOf(address)")
_REQUIRE_MEMBER = function_signature_to_4byte_selector("requireMember(address)")
_HAS_ROLE = function_signature_to_4byte_selector("hasRole(bytes32,address)")


@dataclass(frozen=True)
class Standing:
    """An account's place in the consortium: its org (0: none), whether that org is active, whether it holds the
    role."""

    org_id: int
    org_active: bool
    has_role: bool

    def describe(self, role: str = "APPROVER") -> str:
        if self.org_id == 0:
            org = "no org"
        else:
            org = f"org {self.org_id} ({'active' if self.org_active else 'suspended'})"
        return f"{org}, {'holds' if self.has_role else 'lacks'} {role}"


class _Timeline:
    """Values set at positions; `at(p)` is the last value set strictly before `p`."""

    def __init__(self) -> None:
        self.positions: list[Position] = []
        self.values: list[Any] = []

    def set(self, position: Position, value: Any) -> None:
        self.positions.append(position)  # logs are replayed in chain order, so the lists stay sorted
        self.values.append(value)

    def at(self, position: Position, default: Any) -> Any:
        i = bisect.bisect_left(self.positions, position)
        return self.values[i - 1] if i else default


class MembershipHistory:
    """Orgs, their accounts and one role's holders over time, from the Consortium's logs in chain order.

    Invariant: `standing(account, p)` is what the contract's `orgOf`, `requireMember` and `hasRole` would have
    answered for a call made at position `p` (after every log before `p`, none after).
    """

    def __init__(self, logs: Sequence[DecodedLog], role: str = APPROVER_ROLE) -> None:
        self.role = role.lower()
        self.through_block = max((log.block_number for log in logs), default=-1)
        self._org_of: dict[str, _Timeline] = defaultdict(_Timeline)
        self._active: dict[int, _Timeline] = defaultdict(_Timeline)
        self._role: dict[str, _Timeline] = defaultdict(_Timeline)
        for log in sorted(logs, key=lambda entry: (entry.block_number, entry.log_index)):
            position, a, name = (log.block_number, log.log_index), log.args, log.key.split(":", 1)[1]
            if name == "MemberAdmitted":
                self._active[int(a["orgId"])].set(position, True)
            elif name == "MemberStatusChanged":
                self._active[int(a["orgId"])].set(position, bool(a["active"]))
            elif name == "AccountAdded":
                self._org_of[a["account"].lower()].set(position, int(a["orgId"]))
            elif name in ("RoleGranted", "RoleRevoked") and a["role"].lower() == self.role:
                self._role[a["account"].lower()].set(position, name == "RoleGranted")

    @classmethod
    def fetch(
        cls, rpc: JsonRpcClient, deployment: Deployment, to_block: int, role: str = APPROVER_ROLE
    ) -> MembershipHistory:
        """The history from the Consortium's deployment to `to_block` (one filtered eth_getLogs, split if refused)."""
        decoder = EventDecoder(deployment, ["Consortium"])
        topics = [decoder.by_key[f"Consortium:{name}"].topic0 for name in _EVENTS]
        address = deployment["contracts"]["Consortium"]["address"]
        raw = fetch_logs(rpc, address, [topics], deployment["deploy_block"], to_block)
        decoded = [d for d in (decoder.decode(log) for log in raw) if d is not None]
        history = cls(decoded, role)
        history.through_block = max(history.through_block, to_block)
        return history

    def standing(self, account: str, before: Position) -> Standing:
        """The standing of `account` just before position `before`."""
        if before[0] > self.through_block + 1:
            raise ValueError(f"the history runs to block {self.through_block}, not {before[0]}")
        org_id: int = self._org_of[account.lower()].at(before, 0)
        active: bool = self._active[org_id].at(before, False) if org_id else False
        held: bool = self._role[account.lower()].at(before, False)
        return Standing(org_id, active, held)


@dataclass(frozen=True)
class NodeStanding:
    """An account's standing as the node's state after a block says, or why the node could not say."""

    standing: Standing | None
    problem: str = ""


def _call(to: str, data: bytes, block: int) -> tuple[str, list[Any]]:
    return "eth_call", [{"to": to, "data": "0x" + data.hex()}, hex(block)]


def standings_on_node(
    rpc: JsonRpcClient, deployment: Deployment, queries: Sequence[tuple[str, int]], role: str = APPROVER_ROLE
) -> list[NodeStanding]:
    """The standing of each (account, block) from the Consortium's state after that block, by `eth_call`.

    `orgOf` and `hasRole` answer from state; `requireMember` reverts for an account of a suspended org. A node
    that no longer has a block's state (pruned history) answers the first two with an error: that query's
    standing is None with the node's message.
    """
    consortium = deployment["contracts"]["Consortium"]["address"]
    role_id = bytes.fromhex(role[2:])
    calls: list[tuple[str, list[Any]]] = []
    for account, block in queries:
        encoded = abi_encode(["address"], [to_checksum_address(account)])
        calls.append(_call(consortium, _ORG_OF + encoded, block))
        calls.append(_call(consortium, _REQUIRE_MEMBER + encoded, block))
        calls.append(_call(consortium, _HAS_ROLE + abi_encode(["bytes32", "address"], [role_id, account]), block))
    answers: list[Any] = []
    for start in range(0, len(calls), RPC_BATCH):
        answers += rpc.batch(calls[start : start + RPC_BATCH])
    results: list[NodeStanding] = []
    for i in range(len(queries)):
        org_of, member, has_role = answers[3 * i : 3 * i + 3]
        if isinstance(org_of, RpcErrorAnswer) or isinstance(has_role, RpcErrorAnswer):
            failed = org_of if isinstance(org_of, RpcErrorAnswer) else has_role
            results.append(NodeStanding(None, f"the node has no state at block {queries[i][1]}: {failed.message}"))
            continue
        org_id = int(abi_decode(["uint32"], bytes.fromhex(org_of[2:]))[0])
        held = bool(abi_decode(["bool"], bytes.fromhex(has_role[2:]))[0])
        active = org_id != 0 and not isinstance(member, RpcErrorAnswer)
        results.append(NodeStanding(Standing(org_id, active, held)))
    return results
