"""Approval provenance: each sharing decision shown, from the chain alone, to come from an approver of the owner.

Public functions:

- `decision_provenance(rpc, deployment, tx_hash, log_index)`: one decision log proved (`approval_prover`): the
  call that carried it, the EIP-712 digest rebuilt and the signer recovered (`approval_signature`), the signer's
  org, its status and the APPROVER role at that log's place in the chain, replayed from the Consortium's logs and
  cross-checked with `eth_call` at that block (`approval_roles`), the deadline and the nonce.
- `audit_approvals(rpc, deployment, engine, ...)`: every decision of a block range or of one request, proved,
  and the mirror's `sharing_approvals` rows compared with the logs (`approval_mirror`): a forged, edited or
  missing row is reported with its id and the fields that differ.

Errors are in `approval_errors` (re-exported here).
"""

from __future__ import annotations

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from registry_api.audit.approval_errors import ApprovalAuditError, BadBlockRange, DecisionNotFound, NotADecision
from registry_api.audit.approval_mirror import audit_approvals
from registry_api.audit.approval_prover import DecisionProver
from registry_api.schemas.audit_approvals import ApprovalsAudit, DecisionProvenance

__all__ = [
    "ApprovalAuditError",
    "ApprovalsAudit",
    "BadBlockRange",
    "DecisionNotFound",
    "DecisionProvenance",
    "DecisionProver",
    "NotADecision",
    "audit_approvals",
    "decision_provenance",
]


def decision_provenance(rpc: JsonRpcClient, deployment: Deployment, tx_hash: str, log_index: int) -> DecisionProvenance:
    """The provenance of the decision logged at `log_index` (its index in the block) by `tx_hash`, from the chain.

    Raises DecisionNotFound (no such transaction, or no such log in it) or NotADecision (the log is another event).
    """
    prover = DecisionProver(rpc, deployment)
    return prover.prove([prover.event_at(tx_hash.lower(), log_index)])[0]
