"""The joint-review board as a state machine: projects filed, approved, refused and withdrawn by any org.

Hypothesis keeps a model of every project (applicant, domain, devices, status, deciding org) and of the devices
that approvals put on the ledger, and predicts each attempt's outcome in the contracts' order of checks. After
every step the chain must agree: a project leaves Filed once, only by the lead org's reviewer (approve, refuse)
or the applicant's registrar (withdraw); an approval registers all its devices for the applicant or, when one
code is already on the ledger, none of them and the project stays filed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from web3.contract import Contract

from chain_gateway.governance import role_id
from tests.contracts.stateful import (
    ANVIL_ONLY,
    ChainMachine,
    Outcome,
    machine_settings,
    read_all,
    run_machine,
    run_predicted,
)
from tests.contracts.support import ContractsChain, device_code
from tests.contracts.test_review_board import LEAD, Domain, Project, board_of, planned

ORG_IDS = {"BJ-EIB": 1, "BJ-PSB": 2, "BJ-CMC": 3, "BJ-EMB": 4, "BJ-CY": 5, "CO-ZHCS": 6}
REGISTRARS = {"BJ-EIB", "BJ-PSB", "BJ-CMC", "BJ-EMB", "BJ-CY"}
REVIEWERS = {"BJ-EIB", "BJ-PSB", "BJ-CMC", "BJ-EMB"}
SERIALS = (1, 2, 3)  # device serials the projects draw from: projects overlap, so approvals can collide
MAX_PROJECTS = 5
MACHINE_SETTINGS = machine_settings(max_examples=6, steps=20)


@dataclass
class Filed:
    applicant: str
    domain: Domain
    serials: tuple[int, ...]
    status: Project = Project.FILED
    reviewer: str | None = None


class ReviewBoardMachine(ChainMachine):
    board: Contract

    def __init__(self) -> None:
        super().__init__()
        self.first_id = int(self.board.functions.projectCount().call()) + 1
        self.projects: list[Filed] = []
        self.devices: dict[int, str] = {}  # serial -> owner org, for the devices approvals registered

    # ------------------------------------------------------------ rules

    @precondition(lambda self: len(self.projects) < MAX_PROJECTS)
    @rule(
        org=st.sampled_from(sorted(ORG_IDS)),
        domain=st.sampled_from(list(Domain)),
        serials=st.lists(st.sampled_from(SERIALS), min_size=1, max_size=2, unique=True),
    )
    def file(self, org: str, domain: Domain, serials: list[int]) -> None:
        expected: Outcome = None
        if org not in REGISTRARS:
            expected = ("ConsortiumMissingRole", (self.chain.account(org), role_id("REGISTRAR")))
        fn = self.board.functions.file(domain, "新建项目", [planned(s) for s in serials])
        if run_predicted(self.chain, fn, self.chain.key(org), expected) is not None:
            self.projects.append(Filed(org, domain, tuple(serials)))

    @precondition(lambda self: bool(self.projects))
    @rule(data=st.data(), org=st.sampled_from(sorted(ORG_IDS)), approve=st.booleans())
    def decide(self, data: st.DataObject, org: str, approve: bool) -> None:
        """Any org approves or refuses any project; half the time the domain's lead org, as in practice."""
        index, project_id = self._draw_project(data)
        if index < len(self.projects) and data.draw(st.booleans(), label="as lead"):
            org = LEAD[self.projects[index].domain]
        expected: Outcome = None
        if org not in REVIEWERS:
            expected = ("ConsortiumMissingRole", (self.chain.account(org), role_id("REVIEWER")))
        elif index == len(self.projects):
            expected = ("ReviewUnknownProject", (project_id,))
        else:
            p = self.projects[index]
            lead = LEAD[p.domain]
            if org != lead:
                expected = ("ReviewNotLead", (project_id, ORG_IDS[org], ORG_IDS[lead]))
            elif p.status != Project.FILED:
                expected = ("ReviewNotFiled", (project_id, p.status))
            elif approve:
                taken = [s for s in p.serials if s in self.devices]
                if taken:
                    expected = ("DeviceRegistryDuplicateCode", (device_code(taken[0]),))
        serials = self.projects[index].serials if index < len(self.projects) else (1,)
        functions = self.board.functions
        fn = (
            functions.approve(project_id, [planned(s) for s in serials])
            if approve
            else functions.refuse(project_id, "重复建设")
        )
        if run_predicted(self.chain, fn, self.chain.key(org), expected) is None:
            return
        p = self.projects[index]
        p.status, p.reviewer = (Project.APPROVED if approve else Project.REFUSED), org
        if approve:
            self.devices |= dict.fromkeys(p.serials, p.applicant)

    @precondition(lambda self: bool(self.projects))
    @rule(data=st.data(), org=st.sampled_from(sorted(ORG_IDS)))
    def withdraw(self, data: st.DataObject, org: str) -> None:
        """Any org withdraws any project; half the time the applicant."""
        index, project_id = self._draw_project(data)
        if index < len(self.projects) and data.draw(st.booleans(), label="as applicant"):
            org = self.projects[index].applicant
        expected: Outcome = None
        if org not in REGISTRARS:
            expected = ("ConsortiumMissingRole", (self.chain.account(org), role_id("REGISTRAR")))
        elif index == len(self.projects):
            expected = ("ReviewUnknownProject", (project_id,))
        elif org != self.projects[index].applicant:
            applicant = self.projects[index].applicant
            expected = ("ReviewNotApplicant", (project_id, ORG_IDS[org], ORG_IDS[applicant]))
        elif self.projects[index].status != Project.FILED:
            expected = ("ReviewNotFiled", (project_id, self.projects[index].status))
        fn = self.board.functions.withdraw(project_id)
        if run_predicted(self.chain, fn, self.chain.key(org), expected) is not None:
            self.projects[index].status = Project.WITHDRAWN

    # ------------------------------------------------------------ the model

    def _draw_project(self, data: st.DataObject) -> tuple[int, int]:
        """(index in the model, project id) of a project, mostly a filed one, or of the next id (no such project)."""
        filed = [i for i, p in enumerate(self.projects) if p.status == Project.FILED]
        index = data.draw(st.sampled_from(filed * 3 + list(range(len(self.projects) + 1))), label="project")
        return index, self.first_id + index

    @invariant()
    def chain_matches_model(self) -> None:
        board, registry = self.board.functions, self.chain.registry.functions
        ids = range(self.first_id, self.first_id + len(self.projects))
        codes = [device_code(s) for s in SERIALS]
        calls = [board.projectCount(), *(board.getProject(i) for i in ids), *(registry.exists(c) for c in codes)]
        results = read_all(self.chain, calls)
        assert results[0] == self.first_id - 1 + len(self.projects)
        for p, stored in zip(self.projects, results[1 : 1 + len(self.projects)], strict=True):
            reviewer = ORG_IDS[p.reviewer] if p.reviewer else 0
            assert (stored[0], stored[1], stored[2], stored[3]) == (ORG_IDS[p.applicant], p.domain, p.status, reviewer)
        for serial, exists in zip(SERIALS, results[1 + len(self.projects) :], strict=True):
            assert exists == (serial in self.devices), serial
        owned = sorted(self.devices)
        stored_devices = read_all(self.chain, [registry.getDevice(device_code(s)) for s in owned])
        for serial, device in zip(owned, stored_devices, strict=True):
            assert device[0] == ORG_IDS[self.devices[serial]], serial  # one owner: the applicant that got it approved


@ANVIL_ONLY
def test_random_review_walks_decide_each_project_once_and_register_all_or_none(net: ContractsChain) -> None:
    run_machine(ReviewBoardMachine, net, MACHINE_SETTINGS, board=board_of(net))
