"""Behaviour of the ReviewBoard (联审): filing, the lead org's decision, registration of the approved devices in the
DeviceRegistry within the approval, withdrawal, and who may hook the board in and name the lead orgs.

Demo leads (chain_gateway.devnet.DEMO_REVIEW_LEADS): imagery BJ-PSB (org 2), city management BJ-CMC (org 3),
emergency BJ-EMB (org 4), other BJ-EIB (org 1); each holds REGISTRAR and REVIEWER. BJ-CY (org 5, a district with
REGISTRAR only) is the applicant of most tests; CO-ZHCS (org 6) holds no role. Projects filed by a test get ids 1, 2...
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import IntEnum
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain_gateway.devnet import DEMO_REVIEW_LEADS
from chain_gateway.governance import contract, role_id
from tests.contracts.support import ContractsChain, attributes_hash, device_code, device_input, pass_proposal

REGISTRAR, REVIEWER = role_id("REGISTRAR"), role_id("REVIEWER")
EIB, PSB, CMC, EMB, CY = 1, 2, 3, 4, 5
APPLICANT = "BJ-CY"
MAX_DEVICES = 200  # ReviewBoard.MAX_DEVICES
GAS_LARGE = 60_000_000  # a project of MAX_DEVICES devices (filing and approval)
# IDeviceRegistry.DeviceInput[] as one ABI type: devicesHash = keccak256(abi.encode(devices)) of exactly this type.
DEVICES_TYPE = "(string,uint16,uint8,uint32,int32,int32,uint40,string)[]"
PROJECT_FIELDS = (
    "applicantOrg",
    "domain",
    "status",
    "reviewerOrg",
    "deviceCount",
    "filedAt",
    "decidedAt",
    "devicesHash",
)
DEVICE_FIELDS = ("code", "typeId", "status", "district", "lat", "lon", "builtAt", "attributes")


class Domain(IntEnum):
    IMAGERY = 0
    CITY_MANAGEMENT = 1
    EMERGENCY = 2
    OTHER = 3


class Project(IntEnum):
    NONE = 0
    FILED = 1
    APPROVED = 2
    REFUSED = 3
    WITHDRAWN = 4


LEAD = {Domain(domain): code for domain, code in DEMO_REVIEW_LEADS}
REVIEWER_ORGS = ("BJ-EIB", "BJ-PSB", "BJ-CMC", "BJ-EMB")


def planned(serial: int, type_id: int = 1, **changes: Any) -> tuple[Any, ...]:
    """A planned DeviceInput of demo type `type_id` in Chaoyang, 10 m further north per serial."""
    lat = changes.pop("lat", 39_921_000 + 90 * serial)
    attributes = changes.pop("attributes", f'{{"carrier":"P-{serial}","vendor":"acme"}}')
    return device_input(device_code(serial, type_id), type_id=type_id, lat=lat, attributes=attributes, **changes)


def devices_hash(devices: Sequence[tuple[Any, ...]]) -> bytes:
    """keccak256(abi.encode(devices)), recomputed from the full list as an auditor does."""
    return keccak(abi_encode([DEVICES_TYPE], [list(devices)]))


def board_of(chain: ContractsChain) -> Contract:
    return contract(chain.w3, chain.deployment, "ReviewBoard")


def read(chain: ContractsChain, fn: ContractFunction) -> Any:
    """`fn` called as a view from a named account: eth-tester otherwise lists every account to pick one (slow)."""
    return fn.call({"from": chain.account("CO-ZHCS")})


def project_of(chain: ContractsChain, project_id: int) -> dict[str, Any]:
    values = read(chain, board_of(chain).functions.getProject(project_id))
    return dict(zip(PROJECT_FIELDS, values, strict=True))


def as_tuple(value: Any, fields: Sequence[str]) -> tuple[Any, ...]:
    """A decoded struct (web3 gives a mapping or a tuple) as a tuple in ABI order."""
    return tuple(value[f] for f in fields) if hasattr(value, "keys") else tuple(value)


def file(
    chain: ContractsChain, devices: Sequence[tuple[Any, ...]], domain: Domain = Domain.IMAGERY, org: str = APPLICANT
) -> tuple[int, TxReceipt]:
    """File `devices` as the registrar of `org`; returns the project id and the receipt."""
    fn = board_of(chain).functions.file(domain, f"新建视频监控项目 {len(devices)} 路", list(devices))
    receipt = chain.transact(fn, chain.key(org), gas=GAS_LARGE)
    [event] = chain.events(receipt, board_of(chain), "ProjectFiled")
    return int(event["projectId"]), receipt


def approve(chain: ContractsChain, project_id: int, devices: Sequence[tuple[Any, ...]], org: str) -> TxReceipt:
    fn = board_of(chain).functions.approve(project_id, list(devices))
    return chain.transact(fn, chain.key(org), gas=GAS_LARGE)


@pytest.fixture
def board(net: ContractsChain) -> ContractsChain:
    """The seeded consortium (review board hooked in, demo leads named); undone after the test."""
    return net


@pytest.fixture
def filed(board: ContractsChain) -> Iterator[tuple[ContractsChain, list[tuple[Any, ...]]]]:
    """Project 1: three planned road cameras filed by BJ-CY in the imagery domain."""
    devices = [planned(1), planned(2), planned(3)]
    project_id, _ = file(board, devices)
    assert project_id == 1
    yield board, devices


class TestSetup:
    def test_demo_seeding_hooks_the_board_into_the_ledger_and_names_a_lead_per_domain(
        self, board: ContractsChain
    ) -> None:
        assert read(board, board.registry.functions.reviewBoard()) == board_of(board).address
        leads = {d: read(board, board_of(board).functions.leadOrg(d)) for d in Domain}
        assert leads == {d: board.org_id(code) for d, code in LEAD.items()}
        assert read(board, board_of(board).functions.MAX_DEVICES()) == MAX_DEVICES
        assert read(board, board_of(board).functions.projectCount()) == 0


class TestFiling:
    def test_registrar_files_a_project_and_the_event_carries_every_planned_device(self, board: ContractsChain) -> None:
        devices = [planned(1), planned(2, type_id=3)]
        project_id, receipt = file(board, devices, Domain.IMAGERY)

        [event] = board.events(receipt, board_of(board), "ProjectFiled")
        event["devices"] = [as_tuple(d, DEVICE_FIELDS) for d in event["devices"]]
        assert event == {
            "projectId": 1,
            "applicantOrg": CY,
            "domain": Domain.IMAGERY,
            "title": "新建视频监控项目 2 路",
            "devices": devices,
            "devicesHash": devices_hash(devices),
            "applicant": board.account(APPLICANT),
        }
        block = board.w3.eth.get_block(receipt["blockNumber"])
        assert project_of(board, project_id) == {
            "applicantOrg": CY,
            "domain": Domain.IMAGERY,
            "status": Project.FILED,
            "reviewerOrg": 0,
            "deviceCount": 2,
            "filedAt": block["timestamp"],
            "decidedAt": 0,
            "devicesHash": devices_hash(devices),
        }
        assert read(board, board_of(board).functions.projectCount()) == 1

    def test_filing_puts_nothing_on_the_ledger(self, board: ContractsChain) -> None:
        receipt = file(board, [planned(1)])[1]
        assert board.events(receipt, board.registry, "DeviceRegistered") == []
        assert not read(board, board.registry.functions.exists(device_code(1)))

    def test_project_ids_count_up_across_applicants_and_domains(self, board: ContractsChain) -> None:
        assert file(board, [planned(1)], Domain.OTHER)[0] == 1
        assert file(board, [planned(2)], Domain.EMERGENCY, org="BJ-PSB")[0] == 2
        assert project_of(board, 2)["applicantOrg"] == PSB
        assert read(board, board_of(board).functions.projectCount()) == 2

    def test_project_of_the_maximum_size_is_filed(self, board: ContractsChain) -> None:
        devices = [planned(i) for i in range(1, MAX_DEVICES + 1)]
        project_id, _ = file(board, devices)
        assert project_of(board, project_id)["deviceCount"] == MAX_DEVICES

    @pytest.mark.parametrize("count", [0, MAX_DEVICES + 1])
    def test_device_count_outside_1_to_200_is_refused(self, board: ContractsChain, count: int) -> None:
        fn = board_of(board).functions.file(Domain.IMAGERY, "title", [planned(i) for i in range(count)])
        board.assert_reverts(fn, board.key(APPLICANT), "ReviewBadDeviceCount", count)

    @pytest.mark.parametrize("status", [2, 3, 5], ids=["active", "suspended", "retired"])
    def test_device_that_is_not_planned_is_refused_by_its_index(self, board: ContractsChain, status: int) -> None:
        devices = [planned(1), planned(2), planned(3, status=status)]
        fn = board_of(board).functions.file(Domain.IMAGERY, "title", devices)
        board.assert_reverts(fn, board.key(APPLICANT), "ReviewNotPlanned", 2)

    def test_empty_title_is_refused(self, board: ContractsChain) -> None:
        fn = board_of(board).functions.file(Domain.IMAGERY, "", [planned(1)])
        board.assert_reverts(fn, board.key(APPLICANT), "ReviewEmptyTitle")

    def test_domain_without_a_lead_org_takes_no_projects(self, board: ContractsChain) -> None:
        pass_proposal(board, [("ReviewBoard", "setLeadOrg", [Domain.EMERGENCY, 0])])
        fn = board_of(board).functions.file(Domain.EMERGENCY, "积水监测点新建", [planned(1, type_id=6)])
        board.assert_reverts(fn, board.key(APPLICANT), "ReviewNoLead", Domain.EMERGENCY)

    @pytest.mark.parametrize("org", ["CO-ZHCS", "AU-BJ"])
    def test_only_a_registrar_files(self, board: ContractsChain, org: str) -> None:
        fn = board_of(board).functions.file(Domain.IMAGERY, "title", [planned(1)])
        board.assert_reverts(fn, board.key(org), "ConsortiumMissingRole", board.account(org), REGISTRAR)

    def test_account_outside_the_consortium_cannot_file(self, board: ContractsChain) -> None:
        stranger = board.spare_key(0)
        fn = board_of(board).functions.file(Domain.IMAGERY, "title", [planned(1)])
        board.assert_reverts(fn, stranger, "ConsortiumUnknownAccount", board.address_of(stranger))

    def test_suspended_member_cannot_file(self, board: ContractsChain) -> None:
        pass_proposal(board, [("Consortium", "setMemberActive", [APPLICANT, False])])
        fn = board_of(board).functions.file(Domain.IMAGERY, "title", [planned(1)])
        board.assert_reverts(fn, board.key(APPLICANT), "ConsortiumOrgInactive", CY)


class TestApproval:
    def test_lead_reviewer_approves_and_the_devices_enter_the_ledger_as_planned_for_the_applicant(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, devices = filed
        receipt = approve(board, 1, devices, "BJ-PSB")

        assert board.events(receipt, board_of(board), "ProjectDecided") == [
            {"projectId": 1, "reviewerOrg": PSB, "approved": True, "reason": "", "reviewer": board.account("BJ-PSB")}
        ]
        registered = board.events(receipt, board.registry, "DeviceRegistered")
        assert [(e["code"], e["ownerOrg"], e["status"], e["typeId"]) for e in registered] == [
            (d[0], CY, 1, 1) for d in devices
        ]
        assert [e["attributes"] for e in registered] == [d[7] for d in devices]
        for code, type_id, _, district, lat, lon, built_at, attributes in devices:
            stored = read(board, board.registry.functions.getDevice(code))
            assert tuple(stored) == (CY, type_id, 1, district, lat, lon, built_at, 0, attributes_hash(attributes))
        timestamp = board.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        project = project_of(board, 1)
        assert (project["status"], project["reviewerOrg"], project["decidedAt"]) == (Project.APPROVED, PSB, timestamp)

    def test_approved_devices_belong_to_the_applicant_which_manages_their_life_cycle(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, devices = filed
        approve(board, 1, devices, "BJ-PSB")
        board.lifecycle(APPLICANT, devices[0][0], 0)  # activate: the applicant built it
        assert board.status(devices[0][0]) == 2
        fn = board.registry.functions.changeLifecycle(devices[1][0], 0, "", "")
        board.assert_reverts(fn, board.key("BJ-PSB"), "DeviceRegistryNotOwner", devices[1][0], PSB, CY)

    @pytest.mark.parametrize("domain", list(Domain), ids=[d.name.lower() for d in Domain])
    def test_only_a_reviewer_of_the_domains_lead_org_decides(self, board: ContractsChain, domain: Domain) -> None:
        devices = [planned(1)]
        project_id, _ = file(board, devices, domain)
        lead = board.org_id(LEAD[domain])
        for org in REVIEWER_ORGS:
            if org == LEAD[domain]:
                continue
            for fn in (
                board_of(board).functions.approve(project_id, devices),
                board_of(board).functions.refuse(project_id, "重复建设"),
            ):
                board.assert_reverts(fn, board.key(org), "ReviewNotLead", project_id, board.org_id(org), lead)
        approve(board, project_id, devices, LEAD[domain])
        assert project_of(board, project_id)["reviewerOrg"] == lead

    def test_lead_orgs_account_without_the_reviewer_role_cannot_decide(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, devices = filed
        approver = board.seeded.orgs["BJ-PSB"].approvers[0][1]
        fn = board_of(board).functions.approve(1, devices)
        board.assert_reverts(fn, approver, "ConsortiumMissingRole", board.address_of(approver), REVIEWER)
        board.assert_reverts(fn, board.key(APPLICANT), "ConsortiumMissingRole", board.account(APPLICANT), REVIEWER)

    @pytest.mark.parametrize("change", ["moved", "dropped", "reordered", "added"])
    def test_approval_must_resend_exactly_the_filed_devices(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]], change: str
    ) -> None:
        board, devices = filed
        sent = {
            "moved": [devices[0], devices[1], planned(3, lat=39_000_000)],
            "dropped": devices[:2],
            "reordered": [devices[1], devices[0], devices[2]],
            "added": [*devices, planned(4)],
        }[change]
        fn = board_of(board).functions.approve(1, sent)
        expected, actual = devices_hash(devices), devices_hash(sent)
        board.assert_reverts(fn, board.key("BJ-PSB"), "ReviewDevicesMismatch", 1, expected, actual)

    def test_device_registered_meanwhile_reverts_the_whole_approval(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, devices = filed
        board.register("BJ-PSB", device_input(devices[1][0], status=2))  # someone else filed the code since
        fn = board_of(board).functions.approve(1, devices)
        board.assert_reverts(fn, board.key("BJ-PSB"), "DeviceRegistryDuplicateCode", devices[1][0])

        receipt = board.transact_reverting(fn, board.key("BJ-PSB"), gas=GAS_LARGE)
        assert receipt["logs"] == []
        assert not read(board, board.registry.functions.exists(devices[0][0]))
        assert project_of(board, 1)["status"] == Project.FILED  # still open: the lead refuses it instead
        board.transact(board_of(board).functions.refuse(1, f"{devices[1][0]} 已登记"), board.key("BJ-PSB"))
        assert project_of(board, 1)["status"] == Project.REFUSED

    def test_codes_are_checked_against_their_rule_only_at_approval(self, board: ContractsChain) -> None:
        wrong_prefix = planned(1, type_id=2)[:1] + planned(1)[1:]  # a checkpoint code filed as a road camera
        devices = [planned(2), wrong_prefix]
        file(board, devices)
        fn = board_of(board).functions.approve(1, devices)
        board.assert_reverts(fn, board.key("BJ-PSB"), "DeviceRegistryCodePrefix", wrong_prefix[0], "BJ-CAMR-")

    def test_approval_of_the_maximum_size_registers_every_device(self, board: ContractsChain) -> None:
        devices = [planned(i) for i in range(1, MAX_DEVICES + 1)]
        project_id, _ = file(board, devices)
        receipt = approve(board, project_id, devices, "BJ-PSB")
        assert len(board.events(receipt, board.registry, "DeviceRegistered")) == MAX_DEVICES
        assert read(board, board.registry.functions.exists(devices[-1][0]))

    def test_decided_project_is_not_decided_or_withdrawn_again(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, devices = filed
        approve(board, 1, devices, "BJ-PSB")
        functions = board_of(board).functions
        board.assert_reverts(functions.approve(1, devices), board.key("BJ-PSB"), "ReviewNotFiled", 1, Project.APPROVED)
        board.assert_reverts(functions.refuse(1, "again"), board.key("BJ-PSB"), "ReviewNotFiled", 1, Project.APPROVED)
        board.assert_reverts(functions.withdraw(1), board.key(APPLICANT), "ReviewNotFiled", 1, Project.APPROVED)

    def test_a_new_lead_org_takes_over_the_open_projects_of_its_domain(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, devices = filed
        _, receipt = pass_proposal(board, [("ReviewBoard", "setLeadOrg", [Domain.IMAGERY, CMC])])
        assert board.events(receipt, board_of(board), "LeadOrgSet") == [{"domain": Domain.IMAGERY, "orgId": CMC}]
        fn = board_of(board).functions.approve(1, devices)
        board.assert_reverts(fn, board.key("BJ-PSB"), "ReviewNotLead", 1, PSB, CMC)
        approve(board, 1, devices, "BJ-CMC")
        assert project_of(board, 1)["reviewerOrg"] == CMC

    @pytest.mark.parametrize("project_id", [0, 2, 99])
    def test_unknown_project_is_refused_everywhere(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]], project_id: int
    ) -> None:
        board, devices = filed
        functions = board_of(board).functions
        for fn, org in (
            (functions.approve(project_id, devices), "BJ-PSB"),
            (functions.refuse(project_id, "x"), "BJ-PSB"),
            (functions.withdraw(project_id), APPLICANT),
            (functions.getProject(project_id), APPLICANT),
        ):
            board.assert_reverts(fn, board.key(org), "ReviewUnknownProject", project_id)


class TestRefusal:
    def test_refusal_with_a_reason_closes_the_project_and_registers_nothing(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, devices = filed
        reason = "30 米内已有同类摄像机，重复建设"
        receipt = board.transact(board_of(board).functions.refuse(1, reason), board.key("BJ-PSB"))

        assert board.events(receipt, board_of(board), "ProjectDecided") == [
            {
                "projectId": 1,
                "reviewerOrg": PSB,
                "approved": False,
                "reason": reason,
                "reviewer": board.account("BJ-PSB"),
            }
        ]
        assert board.events(receipt, board.registry, "DeviceRegistered") == []
        project = project_of(board, 1)
        assert (project["status"], project["reviewerOrg"]) == (Project.REFUSED, PSB)
        assert not any(read(board, board.registry.functions.exists(d[0])) for d in devices)
        fn = board_of(board).functions.approve(1, devices)
        board.assert_reverts(fn, board.key("BJ-PSB"), "ReviewNotFiled", 1, Project.REFUSED)

    def test_refusal_needs_a_reason(self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]) -> None:
        board, _ = filed
        board.assert_reverts(board_of(board).functions.refuse(1, ""), board.key("BJ-PSB"), "ReviewEmptyReason")


class TestWithdrawal:
    def test_applicant_withdraws_a_filed_project(self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]) -> None:
        board, devices = filed
        receipt = board.transact(board_of(board).functions.withdraw(1), board.key(APPLICANT))

        assert board.events(receipt, board_of(board), "ProjectWithdrawn") == [
            {"projectId": 1, "applicantOrg": CY, "by": board.account(APPLICANT)}
        ]
        assert project_of(board, 1)["status"] == Project.WITHDRAWN
        fn = board_of(board).functions.approve(1, devices)
        board.assert_reverts(fn, board.key("BJ-PSB"), "ReviewNotFiled", 1, Project.WITHDRAWN)
        fn = board_of(board).functions.withdraw(1)
        board.assert_reverts(fn, board.key(APPLICANT), "ReviewNotFiled", 1, Project.WITHDRAWN)

    @pytest.mark.parametrize("org", ["BJ-PSB", "BJ-EIB"])
    def test_another_orgs_registrar_cannot_withdraw(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]], org: str
    ) -> None:
        board, _ = filed
        fn = board_of(board).functions.withdraw(1)
        board.assert_reverts(fn, board.key(org), "ReviewNotApplicant", 1, board.org_id(org), CY)

    def test_applicant_account_without_the_registrar_role_cannot_withdraw(
        self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]
    ) -> None:
        board, _ = filed
        approver = board.seeded.orgs[APPLICANT].approvers[0][1]
        fn = board_of(board).functions.withdraw(1)
        board.assert_reverts(fn, approver, "ConsortiumMissingRole", board.address_of(approver), REGISTRAR)


class TestGovernance:
    def test_only_the_board_registers_reviewed_devices(self, board: ContractsChain) -> None:
        fn = board.registry.functions.registerReviewed(CY, [planned(1)])
        for org in ("BJ-PSB", "BJ-EIB"):
            board.assert_reverts(fn, board.key(org), "DeviceRegistryOnlyReviewBoard", board.account(org))

    def test_review_board_and_lead_orgs_are_set_only_by_the_consortium(self, board: ContractsChain) -> None:
        admin = board.key("BJ-EIB")
        fn = board.registry.functions.setReviewBoard(board.account("BJ-EIB"))
        board.assert_reverts(fn, admin, "DeviceRegistryOnlyConsortium", board.account("BJ-EIB"))
        fn = board_of(board).functions.setLeadOrg(Domain.IMAGERY, EIB)
        board.assert_reverts(fn, admin, "ReviewOnlyConsortium", board.account("BJ-EIB"))

    def test_unhooked_board_cannot_approve(self, filed: tuple[ContractsChain, list[tuple[Any, ...]]]) -> None:
        """The consortium moves the hook elsewhere: approvals revert as a whole, refusals still close projects."""
        board, devices = filed
        elsewhere = board.address_of(board.spare_key(1))
        _, receipt = pass_proposal(board, [("DeviceRegistry", "setReviewBoard", [elsewhere])])
        assert board.events(receipt, board.registry, "ReviewBoardSet") == [{"reviewBoard": elsewhere}]
        fn = board_of(board).functions.approve(1, devices)
        board.assert_reverts(fn, board.key("BJ-PSB"), "DeviceRegistryOnlyReviewBoard", board_of(board).address)
        assert project_of(board, 1)["status"] == Project.FILED
