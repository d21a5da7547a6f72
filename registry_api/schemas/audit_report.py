"""The audit report of a time range as GET /v1/audit/report?format=json answers it: who did what, and when.

Everything in it is read from the chain: the logs of the deployment's contracts in the range, the transactions'
senders, and the members, accounts and roles replayed from the Consortium's logs up to each activity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActionCount",
    "AuditActivity",
    "AuditEntry",
    "AuditReportPublic",
    "ReportParty",
    "ReportRange",
    "ReportSubject",
]


class ReportParty(BaseModel):
    """An account as the chain knew it at the activity: its member org and the roles it held then."""

    account: str = Field(description="checksum address")
    org: str | None = Field(description="member org code; null for an account of no member org (e.g. a relayer)")
    org_name: str | None = None
    org_active: bool | None = Field(default=None, description="false while the org was suspended")
    roles: list[str] = Field(default_factory=list, description="AccessControl roles held then, by name")


class ReportSubject(BaseModel):
    """What an activity was about: a device code, catalog entry id, sharing request id, algorithm id, ..."""

    kind: str = Field(examples=["device", "catalog_entry", "sharing_request", "algorithm", "project", "carrier"])
    id: str = Field(examples=["BJ-CAMR-110105000001", "3"])


class AuditActivity(BaseModel):
    """One log of the deployment: its place in the transaction, subject, summary and decoded arguments."""

    log_index: int
    subject: ReportSubject
    summary: str = Field(description="one line for a human")
    args: dict[str, Any] = Field(description="the event's arguments as decoded from the log (enums as numbers)")


class AuditEntry(BaseModel):
    """One line of the chronological list: one activity, or several of one kind in one transaction (a bulk
    registration of 250 devices is one entry with count 250; `activities` holds each of them)."""

    time: datetime = Field(description="block time, Beijing time (UTC+8)")
    unix: int = Field(description="block time, unix seconds")
    block: int
    tx_hash: str
    log_index: int = Field(description="the first activity's log index")
    contract: str
    event: str
    action: str = Field(description="kind of action, as counted in the summary", examples=["register device"])
    actor: ReportParty = Field(description="the transaction's sender")
    signer: ReportParty | None = Field(
        default=None, description="who signed the decision, when it is not the sender: the approver of a sharing "
        "decision (the sender only relayed it)"
    )  # fmt: skip
    subject: ReportSubject = Field(description="the first activity's subject")
    summary: str
    count: int = Field(description="activities in this entry")
    activities: list[AuditActivity]


class ActionCount(BaseModel):
    """How often one org did one kind of action in the range (the org is the signer's, else the sender's)."""

    org: str | None = Field(description="member org code; null for accounts of no member org")
    action: str
    activities: int
    transactions: int


class ReportRange(BaseModel):
    """The time range asked for (both ends included) and the blocks whose times fall in it."""

    model_config = ConfigDict(populate_by_name=True)
    from_: datetime = Field(alias="from", description="Beijing time")
    to: datetime = Field(description="Beijing time, included")
    from_unix: int
    to_unix: int
    from_block: int | None = Field(description="first block in the range; null when no block falls in it")
    to_block: int | None = Field(description="last block in the range; null when no block falls in it")
    head_block: int = Field(description="the chain's head when the report was made")


class AuditReportPublic(BaseModel):
    """The report: header, the org x action summary, and a page of the chronological list (`limit`, `offset`)."""

    range: ReportRange
    chain_id: int
    deploy_block: int
    contracts: dict[str, str] = Field(description="contract name -> address, from the deployment file")
    produced_at: datetime = Field(description="when the report was made, Beijing time")
    activity_count: int = Field(description="logs in the range")
    transaction_count: int = Field(description="transactions with logs in the range")
    summary: list[ActionCount] = Field(description="org x kind of action, by org then action")
    count: int = Field(description="entries of the whole chronological list")
    limit: int
    offset: int
    data: list[AuditEntry] = Field(description="entries offset..offset+limit, in chain order")
