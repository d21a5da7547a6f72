"""Proves sharing decisions from the chain alone: the call that carried each, its signature, its signer's standing.

For each decision log: the call that carried it (the transaction's input, or a call inside it found by the node's
tracer), the EIP-712 digest rebuilt and the signer recovered (`approval_signature`), the signer's org, its
status and the APPROVER role at that log's exact place in the chain, replayed from the Consortium's logs and
cross-checked with the node's state at that block (`approval_roles`), the deadline against the block's time,
the owner org against the request's, and the nonce against the approver's earlier decisions. Reads are batched
per `prove` call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from eth_utils import to_checksum_address

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from indexer.abi import EventDecoder
from registry_api.audit.approval_chain import TOPICS_PER_FILTER, ChainFacts, fetch_logs, traced_calls, uint_topic
from registry_api.audit.approval_errors import DecisionNotFound, NotADecision
from registry_api.audit.approval_roles import MembershipHistory, NodeStanding, standings_on_node
from registry_api.audit.approval_signature import (
    DECISION_EVENTS,
    CallDecoder,
    DecisionCall,
    DecisionEvent,
    signature_checks,
)
from registry_api.schemas.audit_approvals import CallPath, DecisionProvenance, ProvenanceCheck

__all__ = ["CONTRACT", "DecisionProver"]

CONTRACT = "SharingAgreements"


def _address_topic(address: str) -> str:
    return "0x" + address.lower()[2:].rjust(64, "0")


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), TOPICS_PER_FILTER):
        yield list(values[start : start + TOPICS_PER_FILTER])


class DecisionProver:
    """Proves decisions of one deployment; reads are batched per call of `prove` and shared through `facts`."""

    def __init__(self, rpc: JsonRpcClient, deployment: Deployment, facts: ChainFacts | None = None) -> None:
        self.rpc = rpc
        self.deployment = deployment
        self.facts = facts or ChainFacts(rpc)
        info = deployment["contracts"][CONTRACT]
        self.contract = to_checksum_address(info["address"])
        self.events = EventDecoder(deployment, [CONTRACT])
        self.calls = CallDecoder(info["abi"])
        self.decision_topics = [self.events.by_key[key].topic0 for key in DECISION_EVENTS]

    # ------------------------------------------------------------ reading decision logs

    def decisions(
        self, from_block: int, to_block: int, request_ids: Sequence[int] | None = None
    ) -> list[DecisionEvent]:
        """The decision logs of `from_block..to_block` (of `request_ids` only, if given), in chain order."""
        if request_ids is None:
            return self.decode_logs(fetch_logs(self.rpc, self.contract, [self.decision_topics], from_block, to_block))
        raw: list[dict[str, object]] = []
        for chunk in _chunks([uint_topic(i) for i in sorted(set(request_ids))]):
            raw += fetch_logs(self.rpc, self.contract, [self.decision_topics, chunk], from_block, to_block)
        return self.decode_logs(raw)

    def decode_logs(self, raw: Iterable[dict[str, object]]) -> list[DecisionEvent]:
        """The decisions among raw eth_getLogs entries, in chain order (other events are left out)."""
        decoded = (self.events.decode(log) for log in raw)
        found = [DecisionEvent.from_log(d) for d in decoded if d is not None and d.key in DECISION_EVENTS]
        return sorted(found, key=lambda e: e.position)

    def event_at(self, tx_hash: str, log_index: int) -> DecisionEvent:
        """The decision logged at `log_index` by transaction `tx_hash` (from its receipt)."""
        receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:
            raise DecisionNotFound(f"no transaction {tx_hash} on the chain")
        log = next((entry for entry in receipt["logs"] if int(entry["logIndex"], 16) == log_index), None)
        if log is None:
            raise DecisionNotFound(f"transaction {tx_hash} has no log {log_index}")
        decoded = self.events.decode(log)
        if decoded is None or decoded.key not in DECISION_EVENTS:
            what = decoded.key if decoded is not None else f"a log of {log['address']}"
            raise NotADecision(f"log {log_index} of {tx_hash} is {what}, not a sharing decision of {self.contract}")
        return DecisionEvent.from_log(decoded)

    # ------------------------------------------------------------ proving

    def prove(self, events: Sequence[DecisionEvent]) -> list[DecisionProvenance]:
        """The provenance of each decision, in the order given."""
        if not events:
            return []
        top = max(e.block_number for e in events)
        self.facts.load(blocks={e.block_number for e in events}, txs={e.tx_hash for e in events})
        chain_id = self.facts.chain_id
        history = MembershipHistory.fetch(self.rpc, self.deployment, top)
        owners = self._request_owners([e.request_id for e in events], top)
        earlier = self._decisions_by_approver([e.approver for e in events], top)
        calls = [self._call_of(e) for e in events]
        findings = [
            signature_checks(e, found[0], chain_id, self.contract) if found else None
            for e, found in zip(events, calls, strict=True)
        ]
        queries = [(f.signer, e.block_number) for e, f in zip(events, findings, strict=True) if f and f.signer]
        node = iter(standings_on_node(self.rpc, self.deployment, queries))
        proofs: list[DecisionProvenance] = []
        for event, found, signed in zip(events, calls, findings, strict=True):
            call = found[0] if found else None
            checks = [self._call_check(event, found)]
            if signed is not None:
                checks += signed.checks
            signer = signed.signer if signed else None
            checks += self._owner_checks(event, owners.get(event.request_id))
            checks += self._standing_checks(event, signer, history, next(node) if signer else None)
            checks.append(self._deadline_check(event, call))
            checks.append(self._nonce_check(event, earlier.get(event.approver, [])))
            proofs.append(
                DecisionProvenance(
                    chain_id=chain_id,
                    contract=self.contract,
                    tx_hash=event.tx_hash,
                    log_index=event.log_index,
                    block_number=event.block_number,
                    block_hash=event.block_hash,
                    block_time=self.facts.block_time(event.block_number),
                    event=event.event,
                    decision=event.decision,
                    request_id=event.request_id,
                    approver=event.approver,
                    owner_org_id=event.owner_org_id,
                    nonce=str(event.nonce),
                    reason=event.reason,
                    relayer=self.facts.sender(event.tx_hash),
                    call_path=found[1] if found else None,
                    deadline=call.deadline if call else None,
                    signature="0x" + call.signature.hex() if call else None,
                    digest="0x" + signed.digest.hex() if signed else None,
                    signer=signer,
                    checks=checks,
                    verified=all(c.ok is not False for c in checks),
                )
            )
        return proofs

    def _call_of(self, event: DecisionEvent) -> tuple[DecisionCall, CallPath] | None:
        """The call that carried `event`'s decision and how it was made ("direct" or "internal").

        The gateway calls SharingAgreements directly; a relay through another contract is found with the node's
        call tracer. Of several decision calls in one transaction, the one naming the event's request, approver
        and nonce is taken (the others carry the transaction's other decisions).
        """
        tx = self.facts.tx(event.tx_hash)
        if tx is None:
            return None
        if str(tx.get("to") or "").lower() == self.contract.lower():
            direct = self.calls.decode(bytes.fromhex(str(tx["input"])[2:]))
            if direct is not None:
                return direct, "direct"
        inputs = traced_calls(self.rpc, event.tx_hash, self.contract) or []
        candidates = [c for c in (self.calls.decode(data) for data in inputs) if c is not None]
        for call in candidates:
            if (call.request_id, call.approver, call.nonce) == (event.request_id, event.approver, event.nonce):
                return call, "internal"
        return (candidates[0], "internal") if len(candidates) == 1 else None

    def _call_check(self, event: DecisionEvent, found: tuple[DecisionCall, CallPath] | None) -> ProvenanceCheck:
        expected = f"{CONTRACT}.{event.decision}"
        if found is None:
            return ProvenanceCheck(
                name="call",
                ok=False,
                expected=expected,
                actual=None,
                detail="no approve/refuse/revoke call carrying this decision in the transaction (nor, if the node "
                "traces calls, inside it)",
            )
        call, path = found
        actual = f"{CONTRACT}.{call.function}"
        return ProvenanceCheck(name="call", ok=actual == expected, expected=expected, actual=actual, detail=path)

    def _owner_checks(self, event: DecisionEvent, owner: int | None) -> list[ProvenanceCheck]:
        return [
            ProvenanceCheck(
                name="owner_org",
                ok=owner == event.owner_org_id,
                expected=owner,
                actual=event.owner_org_id,
                detail="the owner org the request was filed against (SharingRequested) vs the one the decision names",
            )
        ]

    def _standing_checks(
        self, event: DecisionEvent, signer: str | None, history: MembershipHistory, node: NodeStanding | None
    ) -> list[ProvenanceCheck]:
        """The signer's org, that org's status and the APPROVER role at the log's place, and the node's state."""
        if signer is None:
            return [
                ProvenanceCheck(
                    name=name, ok=False, expected=expected, actual=None, detail="no signer could be recovered"
                )
                for name, expected in (
                    ("signer_org", event.owner_org_id),
                    ("org_active", True),
                    ("approver_role", True),
                )
            ]
        at = history.standing(signer, event.position)
        checks = [
            ProvenanceCheck(name=name, ok=actual == expected, expected=expected, actual=actual, detail=detail)
            for name, expected, actual, detail in (
                ("signer_org", event.owner_org_id, at.org_id, "the signer's org then (Consortium AccountAdded)"),
                ("org_active", True, at.org_active, "its org was not suspended (MemberAdmitted, MemberStatusChanged)"),
                ("approver_role", True, at.has_role, "the signer held APPROVER then (RoleGranted, RoleRevoked)"),
            )
        ]
        after_block = history.standing(signer, (event.block_number + 1, 0))
        if node is None or node.standing is None:
            checks.append(
                ProvenanceCheck(
                    name="node_state",
                    ok=None,
                    expected=after_block.describe(),
                    actual=None,
                    detail=node.problem if node else "not read",
                )
            )
        else:
            same_block = "" if after_block == at else "; the standing changed later in the same block"
            checks.append(
                ProvenanceCheck(
                    name="node_state",
                    ok=node.standing == after_block,
                    expected=after_block.describe(),
                    actual=node.standing.describe(),
                    detail=f"eth_call orgOf, requireMember, hasRole at block {event.block_number} vs the replayed "
                    f"logs through that block{same_block}",
                )
            )
        return checks

    def _deadline_check(self, event: DecisionEvent, call: DecisionCall | None) -> ProvenanceCheck:
        block_time = self.facts.block_time(event.block_number)
        deadline = call.deadline if call else None
        ok = block_time is not None and deadline is not None and block_time <= deadline
        return ProvenanceCheck(
            name="deadline",
            ok=ok,
            expected=f"block time <= {deadline}",
            actual=block_time,
            detail="the signature's deadline against the time of the block that included it",
        )

    def _nonce_check(self, event: DecisionEvent, earlier: list[DecisionEvent]) -> ProvenanceCheck:
        before = sum(1 for e in earlier if e.position < event.position)
        return ProvenanceCheck(
            name="nonce_sequence",
            ok=event.nonce == before,
            expected=str(before),
            actual=str(event.nonce),
            detail="nonces are per approver and used in order: the approver's decisions logged before this one",
        )

    def _request_owners(self, request_ids: Sequence[int], to_block: int) -> dict[int, int]:
        """The owner org of each request, from its SharingRequested log."""
        topic0 = self.events.by_key[f"{CONTRACT}:SharingRequested"].topic0
        owners: dict[int, int] = {}
        for chunk in _chunks([uint_topic(i) for i in sorted(set(request_ids))]):
            raw = fetch_logs(self.rpc, self.contract, [topic0, chunk], self.deployment["deploy_block"], to_block)
            for log in raw:
                decoded = self.events.decode(log)
                if decoded is not None:
                    owners[int(decoded.args["requestId"])] = int(decoded.args["ownerOrg"])
        return owners

    def _decisions_by_approver(self, approvers: Sequence[str], to_block: int) -> dict[str, list[DecisionEvent]]:
        """Every decision of each approver up to `to_block` (the approver is the events' second topic)."""
        found: dict[str, list[DecisionEvent]] = defaultdict(list)
        for chunk in _chunks([_address_topic(a) for a in sorted(set(approvers))]):
            topics = [self.decision_topics, None, chunk]
            raw = fetch_logs(self.rpc, self.contract, topics, self.deployment["deploy_block"], to_block)
            for event in self.decode_logs(raw):
                found[event.approver].append(event)
        return found
