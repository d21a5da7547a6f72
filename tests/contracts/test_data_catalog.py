"""Behaviour of the DataCatalog: entries with lineage, versions (major.minor) with auditable hashes, status.

The module builds one small catalog per backend and every test starts from it (snapshot and revert):
BJ-PSB (org 2) owns two cameras and entries 1 (draft), 2 (published) and 3 (deprecated); BJ-CMC (org 3) owns an
air-quality sensor and entry 4 (published). Entries created by a test get ids from 5 on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from enum import IntEnum
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak
from web3.types import TxReceipt

from chain_gateway.governance import role_id
from tests.contracts.support import (
    ENTRY_INPUT_TYPE,
    Backend,
    ContractsChain,
    device_code,
    device_input,
    entry_input,
)

REGISTRAR = role_id("REGISTRAR")
PSB, CMC = 2, 3
CAMERA, CHECKPOINT, AIR = device_code(1), device_code(2, type_id=2), device_code(1, type_id=4)
DRAFT_ID, PUBLISHED_ID, DEPRECATED_ID, CMC_ID = 1, 2, 3, 4
NEXT_ID = 5
ENTRY_FIELDS = ("title", "classification", "grade", "shareCondition", "forms", "schema", "deviceCodes", "upstream")


class Status(IntEnum):
    NONE = 0
    DRAFT = 1
    PUBLISHED = 2
    DEPRECATED = 3


class Condition(IntEnum):
    UNCONDITIONAL = 0
    CONDITIONAL = 1
    NOT_SHAREABLE = 2


LEGAL_MOVES = {
    (Status.DRAFT, Status.PUBLISHED),
    (Status.DRAFT, Status.DEPRECATED),
    (Status.PUBLISHED, Status.DEPRECATED),
}
ENTRY_AT = {Status.DRAFT: DRAFT_ID, Status.PUBLISHED: PUBLISHED_ID, Status.DEPRECATED: DEPRECATED_ID}


@pytest.fixture(scope="module")
def catalog_chain(contracts_backend: Backend) -> Iterator[ContractsChain]:
    """The seeded consortium plus this module's devices and four entries; undone when the module is done."""
    chain = contracts_backend.chain
    undo = chain.snapshot()
    chain.register("BJ-PSB", device_input(CAMERA), device_input(CHECKPOINT, type_id=2))
    chain.register("BJ-CMC", device_input(AIR, type_id=4))
    assert chain.create_entry("BJ-PSB", entry_input("draft", device_codes=[CAMERA]), publish=False) == DRAFT_ID
    assert chain.create_entry("BJ-PSB", entry_input("published", device_codes=[CAMERA])) == PUBLISHED_ID
    assert chain.create_entry("BJ-PSB", entry_input("deprecated"), publish=False) == DEPRECATED_ID
    chain.transact(chain.catalog.functions.setStatus(DEPRECATED_ID, Status.DEPRECATED), chain.key("BJ-PSB"))
    assert chain.create_entry("BJ-CMC", entry_input("空气质量 air quality", device_codes=[AIR])) == CMC_ID
    yield chain
    undo()


@pytest.fixture
def cat(catalog_chain: ContractsChain) -> Iterator[ContractsChain]:
    """The module's catalog; whatever the test does is undone after it."""
    restore = catalog_chain.snapshot()
    yield catalog_chain
    restore()


def version_hash(record: Mapping[str, Any]) -> bytes:
    """keccak256(abi.encode(EntryInput)) recomputed from a version's full record, as an auditor does."""
    return keccak(abi_encode([ENTRY_INPUT_TYPE], [tuple(record[f] for f in ENTRY_FIELDS)]))


def record_of(input_: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(ENTRY_FIELDS, input_, strict=True))


def versioned(chain: ContractsChain, receipt: TxReceipt) -> list[dict[str, Any]]:
    """The CatalogEntryVersioned events of `receipt`, with the entry record as a plain dict."""
    return [{**e, "entry": dict(e["entry"])} for e in chain.events(receipt, chain.catalog, "CatalogEntryVersioned")]


def expected_version(entry_id: int, owner: int, major: int, minor: int, input_: tuple[Any, ...]) -> dict[str, Any]:
    record = record_of(input_)
    return {
        "entryId": entry_id,
        "ownerOrg": owner,
        "major": major,
        "minor": minor,
        "entry": record,
        "versionHash": version_hash(record),
    }


def status_changes(chain: ContractsChain, receipt: TxReceipt) -> list[dict[str, Any]]:
    return chain.events(receipt, chain.catalog, "CatalogEntryStatusChanged")


def change(entry_id: int, owner: int, from_: Status, to: Status) -> dict[str, Any]:
    return {"entryId": entry_id, "ownerOrg": owner, "fromStatus": from_, "toStatus": to}


class TestDataCatalog:
    # ------------------------------------------------------------ creation

    def test_draft_entry_is_created_at_version_1_0_with_its_full_record(self, cat: ContractsChain) -> None:
        input_ = entry_input("卡口过车数据", grade=2, forms=0b011, device_codes=[CAMERA, CHECKPOINT])
        receipt = cat.transact(cat.catalog.functions.createEntry(input_, False), cat.key("BJ-PSB"))

        assert versioned(cat, receipt) == [expected_version(NEXT_ID, PSB, 1, 0, input_)]
        assert status_changes(cat, receipt) == [change(NEXT_ID, PSB, Status.NONE, Status.DRAFT)]
        grade, condition, forms = 2, Condition.CONDITIONAL, 0b011
        expected = (PSB, grade, condition, forms, Status.DRAFT, 1, 0, version_hash(record_of(input_)))
        assert cat.catalog.functions.getEntry(NEXT_ID).call() == expected
        assert cat.catalog.functions.entryCount().call() == NEXT_ID

    def test_published_entry_goes_through_draft_in_the_same_transaction(self, cat: ContractsChain) -> None:
        input_ = entry_input(share_condition=Condition.UNCONDITIONAL, grade=1, forms=0b100)
        receipt = cat.transact(cat.catalog.functions.createEntry(input_, True), cat.key("BJ-CMC"))

        assert versioned(cat, receipt) == [expected_version(NEXT_ID, CMC, 1, 0, input_)]
        assert status_changes(cat, receipt) == [
            change(NEXT_ID, CMC, Status.NONE, Status.DRAFT),
            change(NEXT_ID, CMC, Status.DRAFT, Status.PUBLISHED),
        ]
        assert cat.catalog.functions.getEntry(NEXT_ID).call()[4] == Status.PUBLISHED

    def test_lineage_links_devices_and_older_entries_of_any_org(self, cat: ContractsChain) -> None:
        input_ = entry_input("derived index", device_codes=[AIR, CAMERA], upstream=[PUBLISHED_ID, CMC_ID, DRAFT_ID])
        receipt = cat.transact(cat.catalog.functions.createEntry(input_, True), cat.key("BJ-CMC"))
        [event] = versioned(cat, receipt)
        assert event["entry"]["deviceCodes"] == [AIR, CAMERA]
        assert event["entry"]["upstream"] == [PUBLISHED_ID, CMC_ID, DRAFT_ID]

    @pytest.mark.parametrize("org", ["CO-ZHCS", "AU-BJ"])  # a member without roles, an auditor
    def test_only_registrars_create_entries(self, cat: ContractsChain, org: str) -> None:
        fn = cat.catalog.functions.createEntry(entry_input(), True)
        cat.assert_reverts(fn, cat.key(org), "ConsortiumMissingRole", cat.account(org), REGISTRAR)

    def test_approver_of_the_org_is_not_a_registrar(self, cat: ContractsChain) -> None:
        approver, key = cat.seeded.orgs["BJ-PSB"].approvers[0]
        fn = cat.catalog.functions.createEntry(entry_input(), True)
        cat.assert_reverts(fn, key, "ConsortiumMissingRole", approver, REGISTRAR)

    def test_account_outside_the_consortium_cannot_create(self, cat: ContractsChain) -> None:
        stranger = cat.spare_key(0)
        fn = cat.catalog.functions.createEntry(entry_input(), True)
        cat.assert_reverts(fn, stranger, "ConsortiumUnknownAccount", cat.address_of(stranger))

    def test_lineage_to_an_unknown_device_is_refused(self, cat: ContractsChain) -> None:
        unknown = device_code(424_242)
        fn = cat.catalog.functions.createEntry(entry_input(device_codes=[CAMERA, unknown]), True)
        cat.assert_reverts(fn, cat.key("BJ-PSB"), "CatalogUnknownDevice", unknown)

    @pytest.mark.parametrize(
        ("upstream", "bad"),
        [
            pytest.param([0], 0, id="zero"),  # id 0 is never an entry
            pytest.param([PUBLISHED_ID, NEXT_ID], NEXT_ID, id="itself"),
            pytest.param([NEXT_ID + 1], NEXT_ID + 1, id="newer"),  # newer than itself, and unknown
            pytest.param([2**64 - 1], 2**64 - 1, id="max-id"),
        ],
    )
    def test_lineage_to_self_newer_or_unknown_entries_is_refused(
        self, cat: ContractsChain, upstream: list[int], bad: int
    ) -> None:
        fn = cat.catalog.functions.createEntry(entry_input(upstream=upstream), True)
        cat.assert_reverts(fn, cat.key("BJ-PSB"), "CatalogUnknownUpstream", bad)

    @pytest.mark.parametrize(
        ("change_", "error", "args"),
        [
            pytest.param({"title": ""}, "CatalogEmptyTitle", (), id="empty-title"),
            pytest.param({"grade": 0}, "CatalogBadGrade", (0,), id="grade-0"),
            pytest.param({"grade": 5}, "CatalogBadGrade", (5,), id="grade-5"),
            pytest.param({"forms": 0}, "CatalogBadForms", (0,), id="no-form"),
            pytest.param({"forms": 8}, "CatalogBadForms", (8,), id="form-8"),
            pytest.param({"forms": 0b1111}, "CatalogBadForms", (0b1111,), id="forms-15"),
        ],
    )
    def test_bad_input_is_refused(
        self, cat: ContractsChain, change_: dict[str, Any], error: str, args: tuple[Any, ...]
    ) -> None:
        fields = dict(change_)  # the parameter is shared by both backends' runs: never mutate it
        title = fields.pop("title", "t")
        fn = cat.catalog.functions.createEntry(entry_input(title, **fields), True)
        cat.assert_reverts(fn, cat.key("BJ-PSB"), error, *args)

    @pytest.mark.parametrize("grade", [1, 4])
    def test_grades_on_the_limits_are_accepted(self, cat: ContractsChain, grade: int) -> None:
        cat.create_entry("BJ-PSB", entry_input(grade=grade))
        assert cat.catalog.functions.getEntry(NEXT_ID).call()[1] == grade

    def test_unknown_entries_cannot_be_read_or_changed(self, cat: ContractsChain) -> None:
        for entry_id in (0, NEXT_ID):
            cat.assert_reverts(
                cat.catalog.functions.getEntry(entry_id), cat.key("BJ-PSB"), "CatalogUnknownEntry", entry_id
            )
            for fn in (
                cat.catalog.functions.reviseEntry(entry_id, entry_input(), False),
                cat.catalog.functions.setStatus(entry_id, Status.PUBLISHED),
            ):
                cat.assert_reverts(fn, cat.key("BJ-PSB"), "CatalogUnknownEntry", entry_id)

    # ------------------------------------------------------------ versions

    def test_minor_and_major_revisions_number_versions_and_hash_each_record(self, cat: ContractsChain) -> None:
        key = cat.key("BJ-PSB")
        revisions = [
            (False, 1, 1, entry_input("published v1.1", device_codes=[CAMERA])),
            (False, 1, 2, entry_input("published v1.2", device_codes=[CAMERA, CHECKPOINT], forms=0b110)),
            (True, 2, 0, entry_input("published v2", grade=4, share_condition=Condition.NOT_SHAREABLE, forms=4)),
            (False, 2, 1, entry_input("published v2.1", grade=4, upstream=[DRAFT_ID])),
            (True, 3, 0, entry_input("published v3", grade=1, share_condition=Condition.UNCONDITIONAL)),
        ]
        for major_change, major, minor, input_ in revisions:
            receipt = cat.transact(cat.catalog.functions.reviseEntry(PUBLISHED_ID, input_, major_change), key)
            [event] = versioned(cat, receipt)
            assert event == expected_version(PUBLISHED_ID, PSB, major, minor, input_)
            assert event["versionHash"] == version_hash(event["entry"])  # the event alone suffices
            assert status_changes(cat, receipt) == []
            _, _, grade, condition, forms, *_ = input_
            assert cat.catalog.functions.getEntry(PUBLISHED_ID).call() == (
                PSB,
                grade,
                condition,
                forms,
                Status.PUBLISHED,  # a revision keeps the status
                major,
                minor,
                event["versionHash"],
            )

    def test_draft_can_be_revised(self, cat: ContractsChain) -> None:
        input_ = entry_input("draft v1.1")
        receipt = cat.transact(cat.catalog.functions.reviseEntry(DRAFT_ID, input_, False), cat.key("BJ-PSB"))
        assert versioned(cat, receipt) == [expected_version(DRAFT_ID, PSB, 1, 1, input_)]
        assert cat.catalog.functions.getEntry(DRAFT_ID).call()[4] == Status.DRAFT

    def test_revision_checks_its_input_like_creation(self, cat: ContractsChain) -> None:
        key = cat.key("BJ-PSB")
        unknown = device_code(424_242)
        cases = [
            (entry_input(upstream=[PUBLISHED_ID]), "CatalogUnknownUpstream", (PUBLISHED_ID,)),  # itself
            (entry_input(upstream=[DEPRECATED_ID]), "CatalogUnknownUpstream", (DEPRECATED_ID,)),  # newer
            (entry_input(device_codes=[unknown]), "CatalogUnknownDevice", (unknown,)),
            (entry_input(grade=9), "CatalogBadGrade", (9,)),
            (entry_input(forms=0), "CatalogBadForms", (0,)),
            (entry_input(""), "CatalogEmptyTitle", ()),
        ]
        for input_, error, args in cases:
            for major_change in (False, True):
                fn = cat.catalog.functions.reviseEntry(PUBLISHED_ID, input_, major_change)
                cat.assert_reverts(fn, key, error, *args)

    def test_another_org_cannot_revise_or_change_status(self, cat: ContractsChain) -> None:
        for fn in (
            cat.catalog.functions.reviseEntry(PUBLISHED_ID, entry_input(), False),
            cat.catalog.functions.reviseEntry(PUBLISHED_ID, entry_input(), True),
            cat.catalog.functions.setStatus(PUBLISHED_ID, Status.DEPRECATED),
        ):
            cat.assert_reverts(fn, cat.key("BJ-CMC"), "CatalogNotOwner", PUBLISHED_ID, CMC, PSB)

    def test_non_registrar_of_the_owner_org_cannot_revise(self, cat: ContractsChain) -> None:
        approver, key = cat.seeded.orgs["BJ-PSB"].approvers[0]
        fn = cat.catalog.functions.reviseEntry(PUBLISHED_ID, entry_input(), False)
        cat.assert_reverts(fn, key, "ConsortiumMissingRole", approver, REGISTRAR)

    def test_second_registrar_account_of_the_owner_org_may_revise(self, cat: ContractsChain) -> None:
        second = cat.spare_key(0)
        cat.add_member_account("BJ-PSB", second, ["REGISTRAR"])
        receipt = cat.transact(cat.catalog.functions.reviseEntry(PUBLISHED_ID, entry_input(), True), second)
        assert versioned(cat, receipt)[0]["major"] == 2

    @pytest.mark.parametrize("major_change", [False, True])
    def test_deprecated_entry_cannot_be_revised(self, cat: ContractsChain, major_change: bool) -> None:
        fn = cat.catalog.functions.reviseEntry(DEPRECATED_ID, entry_input(), major_change)
        dep = Status.DEPRECATED
        cat.assert_reverts(fn, cat.key("BJ-PSB"), "CatalogIllegalStatus", DEPRECATED_ID, dep, dep)

    # ------------------------------------------------------------ status

    @pytest.mark.parametrize(
        ("from_", "to"),
        list(itertools.product([Status.DRAFT, Status.PUBLISHED, Status.DEPRECATED], list(Status))),
        ids=lambda s: s.name.lower(),
    )
    def test_status_moves_only_draft_to_published_to_deprecated(
        self, cat: ContractsChain, from_: Status, to: Status
    ) -> None:
        entry_id = ENTRY_AT[from_]
        fn = cat.catalog.functions.setStatus(entry_id, to)
        if (from_, to) not in LEGAL_MOVES:
            cat.assert_reverts(fn, cat.key("BJ-PSB"), "CatalogIllegalStatus", entry_id, from_, to)
            return
        before = cat.catalog.functions.getEntry(entry_id).call()
        receipt = cat.transact(fn, cat.key("BJ-PSB"))
        assert status_changes(cat, receipt) == [change(entry_id, PSB, from_, to)]
        assert versioned(cat, receipt) == []
        after = cat.catalog.functions.getEntry(entry_id).call()
        assert after == (*before[:4], to, *before[5:])  # only the status changed

    def test_status_outside_the_enum_is_refused_by_the_abi_decoder(self, cat: ContractsChain) -> None:
        data = function_signature_to_4byte_selector("setStatus(uint64,uint8)") + abi_encode(
            ["uint64", "uint8"], [PUBLISHED_ID, len(Status)]
        )
        raw = cat.simulate(cat.account("BJ-PSB"), cat.catalog.address, data)
        assert raw == b""  # reverted without data: Solidity rejects an invalid enum value in calldata
