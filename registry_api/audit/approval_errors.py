"""Errors of the approval audit::

ApprovalAuditError
├── DecisionNotFound (LookupError)   no such transaction, or no log at that index in it
├── NotADecision (ValueError)        the log is not a SharingApproved / SharingRefused / SharingRevoked
└── BadBlockRange (ValueError)       from_block after to_block
"""

from __future__ import annotations

__all__ = ["ApprovalAuditError", "BadBlockRange", "DecisionNotFound", "NotADecision"]


class ApprovalAuditError(Exception):
    """Root of the approval audit's errors."""


class DecisionNotFound(ApprovalAuditError, LookupError):
    """No such transaction on the chain, or no log at that index in it."""


class NotADecision(ApprovalAuditError, ValueError):
    """The log exists but is not a sharing decision of the deployment's SharingAgreements."""


class BadBlockRange(ApprovalAuditError, ValueError):
    """from_block is after to_block."""
