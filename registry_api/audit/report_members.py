"""Who an account was at a point of the chain: its member org and roles, replayed from the Consortium's logs.

The report does not ask the mirror (it is what an auditor checks) nor the contract's current state (roles change):
it replays MemberAdmitted, MemberStatusChanged, AccountAdded, RoleGranted and RoleRevoked in chain order, and
an activity reads the state left by every Consortium log before it, in its own transaction too (a proposal's
multicall may add an account and then grant it a role).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.abi import DecodedLog
from indexer.handlers import ORG_KINDS, role_name
from registry_api.schemas.audit_report import ReportParty

__all__ = ["Members", "OrgRecord"]


@dataclass
class OrgRecord:
    code: str
    name: str
    kind: str
    active: bool = True


@dataclass
class Members:
    """The Consortium's members, accounts and roles as far as the logs applied so far tell."""

    orgs: dict[int, OrgRecord] = field(default_factory=dict)
    account_org: dict[str, int] = field(default_factory=dict)  # checksum address -> org id
    roles: dict[str, set[str]] = field(default_factory=dict)  # checksum address -> role names
    _parties: dict[str, ReportParty] = field(default_factory=dict)  # `party` answers until the next change

    def apply(self, log: DecodedLog) -> None:
        """Move the state past one Consortium log (other events of the Consortium change no membership)."""
        self._parties.clear()
        event = log.key.partition(":")[2]
        args = log.args
        if event == "MemberAdmitted":
            kind = args["kind"]
            self.orgs[args["orgId"]] = OrgRecord(
                args["code"], args["name"], ORG_KINDS[kind] if 0 <= kind < len(ORG_KINDS) else str(kind)
            )
        elif event == "MemberStatusChanged" and args["orgId"] in self.orgs:
            self.orgs[args["orgId"]].active = bool(args["active"])
        elif event == "AccountAdded":
            self.account_org[args["account"]] = args["orgId"]
        elif event == "RoleGranted":
            self.roles.setdefault(args["account"], set()).add(role_name(args["role"]))
        elif event == "RoleRevoked":
            self.roles.get(args["account"], set()).discard(role_name(args["role"]))

    def org(self, org_id: int) -> OrgRecord | None:
        return self.orgs.get(org_id)

    def org_code(self, org_id: int) -> str:
        """The org's code, or `org #<id>` for an id the logs have not admitted."""
        record = self.orgs.get(org_id)
        return record.code if record is not None else f"org #{org_id}"

    def party(self, account: str) -> ReportParty:
        """`account` with its org and roles now (at the point the replay has reached); do not change the answer."""
        cached = self._parties.get(account)
        if cached is not None:
            return cached
        org_id = self.account_org.get(account)
        record = self.orgs.get(org_id) if org_id is not None else None
        party = ReportParty(
            account=account,
            org=record.code if record is not None else None,
            org_name=record.name if record is not None else None,
            org_active=record.active if record is not None else None,
            roles=sorted(self.roles.get(account, ())),
        )
        self._parties[account] = party
        return party
