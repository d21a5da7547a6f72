"""Behaviour of the DeviceRegistry: code rules, registration, ownership, the life cycle and inspections.

Demo code rules: type 1 "camera.road" is "BJ-CAMR-" + 12 digits (20 characters), type 2 "BJ-CAMK-", ...
BJ-PSB (org 2) and BJ-CMC (org 3) are registrars; BJ-EIB (org 1) is the proposer of governed changes.
"""

from __future__ import annotations

import itertools
from enum import IntEnum
from typing import Any

import pytest
from eth_utils import keccak

from chain_gateway.governance import role_id
from tests.contracts.support import (
    BUILT_AT,
    ContractsChain,
    device_code,
    device_input,
    pass_proposal,
)

REGISTRAR = role_id("REGISTRAR")
PSB, CMC = 2, 3
CHARSET_DIGITS, CHARSET_UPPER, CHARSET_LOWER, CHARSET_HYPHEN = 1, 2, 4, 8


class Status(IntEnum):
    NONE = 0
    PLANNED = 1
    ACTIVE = 2
    SUSPENDED = 3
    REPLACED = 4
    RETIRED = 5


class Action(IntEnum):
    ACTIVATE = 0
    SUSPEND = 1
    RESUME = 2
    UPGRADE = 3
    REPLACE = 4
    RETIRE = 5


class Result(IntEnum):
    PASSED = 0
    ISSUES = 1
    FAILED = 2


# The legal moves of IDeviceRegistry.Action: (from, action) -> to. Every other pair is illegal.
LEGAL_MOVES: dict[tuple[Status, Action], Status] = {
    (Status.PLANNED, Action.ACTIVATE): Status.ACTIVE,
    (Status.ACTIVE, Action.SUSPEND): Status.SUSPENDED,
    (Status.SUSPENDED, Action.RESUME): Status.ACTIVE,
    (Status.ACTIVE, Action.UPGRADE): Status.ACTIVE,
    (Status.ACTIVE, Action.REPLACE): Status.REPLACED,
    (Status.SUSPENDED, Action.REPLACE): Status.REPLACED,
    (Status.PLANNED, Action.RETIRE): Status.RETIRED,
    (Status.ACTIVE, Action.RETIRE): Status.RETIRED,
    (Status.SUSPENDED, Action.RETIRE): Status.RETIRED,
}
REACHABLE = [Status.PLANNED, Status.ACTIVE, Status.SUSPENDED, Status.REPLACED, Status.RETIRED]
# How a device gets to each status: initial status at registration, then these actions.
PATH_TO: dict[Status, tuple[Status, tuple[Action, ...]]] = {
    Status.PLANNED: (Status.PLANNED, ()),
    Status.ACTIVE: (Status.ACTIVE, ()),
    Status.SUSPENDED: (Status.ACTIVE, (Action.SUSPEND,)),
    Status.REPLACED: (Status.ACTIVE, (Action.REPLACE,)),
    Status.RETIRED: (Status.PLANNED, (Action.RETIRE,)),
}

CODE = device_code(1)
SPARE = device_code(999_999)  # the replacement device of the life-cycle tests


def _device_at(net: ContractsChain, status: Status, org: str = "BJ-PSB") -> str:
    """Registers CODE (and SPARE, active) for `org` and moves CODE to `status`; returns CODE."""
    initial, actions = PATH_TO[status]
    net.register(org, device_input(CODE, status=initial), device_input(SPARE, status=Status.ACTIVE))
    for action in actions:
        net.lifecycle(org, CODE, action, SPARE if action == Action.REPLACE else "")
    assert net.status(CODE) == status
    return CODE


def _set_code_rule(net: ContractsChain, type_id: int, name: str, prefix: str, length: int, charset: int) -> Any:
    return pass_proposal(net, [("DeviceRegistry", "setCodeRule", [type_id, name, prefix, length, charset])])[1]


class TestDeviceRegistry:
    # ------------------------------------------------------------ code rules

    def test_code_rule_set_only_by_the_consortium(self, net: ContractsChain) -> None:
        fn = net.registry.functions.setCodeRule(20, "probe", "P-", 6, CHARSET_DIGITS)
        for org in ("BJ-EIB", "BJ-PSB"):
            net.assert_reverts(fn, net.key(org), "DeviceRegistryOnlyConsortium", net.account(org))
        net.assert_reverts(net.registry.functions.getCodeRule(20), net.key("BJ-PSB"), "DeviceRegistryUnknownType", 20)

        receipt = _set_code_rule(net, 20, "probe", "P-", 6, CHARSET_DIGITS | CHARSET_HYPHEN)
        assert net.events(receipt, net.registry, "CodeRuleSet") == [
            {"typeId": 20, "typeName": "probe", "prefix": "P-", "length": 6, "charset": 9}
        ]
        assert net.registry.functions.getCodeRule(20).call() == ("probe", "P-", 6, 9)

    def test_seeded_code_rules_are_readable(self, net: ContractsChain) -> None:
        assert net.registry.functions.getCodeRule(1).call() == ("camera.road", "BJ-CAMR-", 20, CHARSET_DIGITS)

    @pytest.mark.parametrize(
        ("type_id", "name", "prefix", "length", "charset"),
        [
            (0, "zero", "Z-", 6, CHARSET_DIGITS),  # type 0 means "none"
            (21, "", "Z-", 6, CHARSET_DIGITS),  # empty type name
            (21, "long prefix", "ZZZZZZ", 6, CHARSET_DIGITS),  # no room after the prefix
            (21, "no charset", "Z-", 6, 0),
            (21, "bad charset", "Z-", 6, 16),
        ],
    )
    def test_malformed_code_rule_is_rejected(
        self, net: ContractsChain, type_id: int, name: str, prefix: str, length: int, charset: int
    ) -> None:
        calls = [("DeviceRegistry", "setCodeRule", [type_id, name, prefix, length, charset])]
        proposal_id, _ = net.propose(net.key("BJ-EIB"), calls)
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "DeviceRegistryBadCodeRule", type_id
        )

    @pytest.mark.parametrize(
        ("code", "position"),
        [("T-AB-C", None), ("T-----", None), ("T-ab-C", 2), ("T-A1-C", 3), ("T-AB_C", 4), ("T-AB C", 4)],
    )
    def test_charset_allows_only_its_character_classes(
        self, net: ContractsChain, code: str, position: int | None
    ) -> None:
        _set_code_rule(net, 30, "upper-hyphen", "T-", 6, CHARSET_UPPER | CHARSET_HYPHEN)
        fn = net.registry.functions.registerDevice(device_input(code, type_id=30))
        if position is None:
            net.transact(fn, net.key("BJ-PSB"))
            assert net.registry.functions.exists(code).call()
        else:
            net.assert_reverts(fn, net.key("BJ-PSB"), "DeviceRegistryCodeCharacter", code, position)

    # ------------------------------------------------------------ registration

    def test_registrar_registers_one_device_with_the_full_record(self, net: ContractsChain) -> None:
        attributes = '{"height_m":6,"model":"海康 DS-2CD","vendor":"acme"}'
        record = device_input(CODE, status=Status.ACTIVE, lat=-33_868_800, lon=-151_209_300, attributes=attributes)
        receipt = net.register("BJ-PSB", record)

        attributes_hash = keccak(text=attributes)
        assert net.events(receipt, net.registry, "DeviceRegistered") == [
            {
                "codeHash": keccak(text=CODE),
                "ownerOrg": PSB,
                "code": CODE,
                "typeId": 1,
                "status": Status.ACTIVE,
                "district": 110105,
                "lat": -33_868_800,
                "lon": -151_209_300,
                "builtAt": BUILT_AT,
                "attributesHash": attributes_hash,
                "attributes": attributes,
            }
        ]
        assert net.registry.functions.getDevice(CODE).call() == (
            PSB,
            1,
            Status.ACTIVE,
            110105,
            -33_868_800,
            -151_209_300,
            BUILT_AT,
            0,
            attributes_hash,
        )
        assert net.registry.functions.exists(CODE).call()

    @pytest.mark.parametrize("attributes", ["", "{}", '{"名称":"朝阳路口"}'])
    def test_attributes_hash_is_keccak256_of_the_utf8_attributes(self, net: ContractsChain, attributes: str) -> None:
        net.register("BJ-PSB", device_input(CODE, attributes=attributes))
        assert net.registry.functions.getDevice(CODE).call()[8] == keccak(attributes.encode("utf-8"))

    def test_registrar_registers_many_devices_in_one_transaction(self, net: ContractsChain) -> None:
        inputs = [
            device_input(device_code(serial, type_id=type_id), type_id=type_id, status=status)
            for serial, (type_id, status) in enumerate(
                itertools.product((1, 2, 4), (Status.PLANNED, Status.ACTIVE)), start=1
            )
        ]
        receipt = net.register("BJ-CMC", *inputs)

        events = net.events(receipt, net.registry, "DeviceRegistered")
        assert [(e["code"], e["typeId"], e["status"], e["ownerOrg"]) for e in events] == [
            (i[0], i[1], i[2], CMC) for i in inputs
        ]
        for code, type_id, status, *_ in inputs:
            assert net.registry.functions.getDevice(code).call()[:3] == (CMC, type_id, status)

    def test_batch_registration_is_all_or_none(self, net: ContractsChain) -> None:
        bad = "BJ-CAMR-11010500000X"
        inputs = [device_input(device_code(1)), device_input(device_code(2)), device_input(bad)]
        fn = net.registry.functions.registerDevices(inputs)
        net.assert_reverts(fn, net.key("BJ-PSB"), "DeviceRegistryCodeCharacter", bad, 19)
        net.transact_reverting(fn, net.key("BJ-PSB"), gas=2_000_000)
        for code in (device_code(1), device_code(2)):
            assert not net.registry.functions.exists(code).call()

    def test_empty_batch_reverts(self, net: ContractsChain) -> None:
        net.assert_reverts(net.registry.functions.registerDevices([]), net.key("BJ-PSB"), "DeviceRegistryEmptyBatch")

    def test_code_is_unique_across_orgs(self, net: ContractsChain) -> None:
        net.register("BJ-PSB", device_input(CODE))
        for org in ("BJ-PSB", "BJ-CMC"):
            net.assert_reverts(
                net.registry.functions.registerDevice(device_input(CODE, status=Status.ACTIVE)),
                net.key(org),
                "DeviceRegistryDuplicateCode",
                CODE,
            )
        assert net.registry.functions.getDevice(CODE).call()[0] == PSB

    def test_code_is_unique_inside_one_batch(self, net: ContractsChain) -> None:
        inputs = [device_input(device_code(1)), device_input(device_code(2)), device_input(device_code(1))]
        net.assert_reverts(
            net.registry.functions.registerDevices(inputs),
            net.key("BJ-PSB"),
            "DeviceRegistryDuplicateCode",
            device_code(1),
        )

    @pytest.mark.parametrize(
        ("code", "error", "args"),
        [
            ("BJ-CAMR-1101050000011", "DeviceRegistryCodeLength", (20, 21)),
            ("BJ-CAMR-11010500001", "DeviceRegistryCodeLength", (20, 19)),
            ("", "DeviceRegistryCodeLength", (20, 0)),
            ("BJ-CAMR-11010500000é", "DeviceRegistryCodeLength", (20, 21)),  # length counts UTF-8 bytes
            ("BJ-CAMK-110105000001", "DeviceRegistryCodePrefix", ("BJ-CAMR-",)),
            ("bj-camr-110105000001", "DeviceRegistryCodePrefix", ("BJ-CAMR-",)),
            ("XBJ-CAMR-11010500001", "DeviceRegistryCodePrefix", ("BJ-CAMR-",)),
            ("BJ-CAMR-x10105000001", "DeviceRegistryCodeCharacter", (8,)),
            ("BJ-CAMR-1101-5000001", "DeviceRegistryCodeCharacter", (12,)),
            ("BJ-CAMR-11010500000A", "DeviceRegistryCodeCharacter", (19,)),
        ],
    )
    def test_code_rule_violation_reverts_with_its_error(
        self, net: ContractsChain, code: str, error: str, args: tuple[Any, ...]
    ) -> None:
        for fn in (
            net.registry.functions.registerDevice(device_input(code)),
            net.registry.functions.registerDevices([device_input(device_code(1)), device_input(code)]),
        ):
            net.assert_reverts(fn, net.key("BJ-PSB"), error, code, *args)

    def test_unknown_type_reverts(self, net: ContractsChain) -> None:
        net.assert_reverts(
            net.registry.functions.registerDevice(device_input(CODE, type_id=99)),
            net.key("BJ-PSB"),
            "DeviceRegistryUnknownType",
            99,
        )

    @pytest.mark.parametrize("status", [Status.NONE, Status.SUSPENDED, Status.REPLACED, Status.RETIRED])
    def test_initial_status_must_be_planned_or_active(self, net: ContractsChain, status: Status) -> None:
        net.assert_reverts(
            net.registry.functions.registerDevice(device_input(CODE, status=status)),
            net.key("BJ-PSB"),
            "DeviceRegistryBadInitialStatus",
            CODE,
            status,
        )

    @pytest.mark.parametrize(
        ("lat", "lon"),
        [(90_000_001, 0), (-90_000_001, 0), (0, 180_000_001), (0, -180_000_001), (2**31 - 1, -(2**31))],
    )
    def test_location_out_of_range_reverts(self, net: ContractsChain, lat: int, lon: int) -> None:
        net.assert_reverts(
            net.registry.functions.registerDevice(device_input(CODE, lat=lat, lon=lon)),
            net.key("BJ-PSB"),
            "DeviceRegistryBadLocation",
            lat,
            lon,
        )

    def test_location_on_the_range_limits_is_accepted(self, net: ContractsChain) -> None:
        corners = [(90_000_000, 180_000_000), (-90_000_000, -180_000_000)]
        net.register("BJ-PSB", *(device_input(device_code(i), lat=la, lon=lo) for i, (la, lo) in enumerate(corners)))
        assert net.registry.functions.getDevice(device_code(0)).call()[4:6] == corners[0]
        assert net.registry.functions.getDevice(device_code(1)).call()[4:6] == corners[1]

    def test_built_in_the_future_reverts(self, net: ContractsChain) -> None:
        future = net.latest_timestamp() + 86_400
        net.assert_reverts(
            net.registry.functions.registerDevice(device_input(CODE, built_at=future)),
            net.key("BJ-PSB"),
            "DeviceRegistryBadTime",
            future,
        )

    @pytest.mark.parametrize("org", ["CO-ZHCS", "AU-BJ"])  # a member without roles, an auditor
    def test_member_without_registrar_role_cannot_register(self, net: ContractsChain, org: str) -> None:
        net.assert_reverts(
            net.registry.functions.registerDevice(device_input(CODE)),
            net.key(org),
            "ConsortiumMissingRole",
            net.account(org),
            REGISTRAR,
        )

    def test_account_outside_the_consortium_cannot_register(self, net: ContractsChain) -> None:
        stranger = net.spare_key(0)
        net.assert_reverts(
            net.registry.functions.registerDevice(device_input(CODE)),
            stranger,
            "ConsortiumUnknownAccount",
            net.address_of(stranger),
        )

    # ------------------------------------------------------------ ownership

    @staticmethod
    def _writes(net: ContractsChain, code: str) -> dict[str, Any]:
        now = net.latest_timestamp()
        return {
            "update": net.registry.functions.updateDevice(code, 110108, 39_990_000, 116_300_000, "{}"),
            "lifecycle": net.registry.functions.changeLifecycle(code, Action.ACTIVATE, "", ""),
            "inspect": net.registry.functions.recordInspection(code, Result.PASSED, now, b"\x01" * 32, ""),
        }

    @pytest.mark.parametrize("write", ["update", "lifecycle", "inspect"])
    def test_registrar_cannot_change_another_orgs_device(self, net: ContractsChain, write: str) -> None:
        net.register("BJ-PSB", device_input(CODE))
        fn = self._writes(net, CODE)[write]
        net.assert_reverts(fn, net.key("BJ-CMC"), "DeviceRegistryNotOwner", CODE, CMC, PSB)

    @pytest.mark.parametrize("write", ["update", "lifecycle", "inspect"])
    def test_non_registrar_of_the_owner_org_cannot_change_its_device(self, net: ContractsChain, write: str) -> None:
        net.register("BJ-PSB", device_input(CODE))
        approver, approver_key = net.seeded.orgs["BJ-PSB"].approvers[0]
        fn = self._writes(net, CODE)[write]
        net.assert_reverts(fn, approver_key, "ConsortiumMissingRole", approver, REGISTRAR)

    @pytest.mark.parametrize("write", ["update", "lifecycle", "inspect"])
    def test_unknown_device_cannot_be_changed(self, net: ContractsChain, write: str) -> None:
        fn = self._writes(net, CODE)[write]
        net.assert_reverts(fn, net.key("BJ-PSB"), "DeviceRegistryUnknownDevice", CODE)

    def test_unknown_device_reads_revert(self, net: ContractsChain) -> None:
        net.assert_reverts(
            net.registry.functions.getDevice(CODE), net.key("BJ-PSB"), "DeviceRegistryUnknownDevice", CODE
        )
        assert not net.registry.functions.exists(CODE).call()

    def test_second_registrar_account_of_owner_org_may_change_its_device(self, net: ContractsChain) -> None:
        second = net.spare_key(0)
        net.add_member_account("BJ-PSB", second, ["REGISTRAR"])
        net.register("BJ-PSB", device_input(CODE))
        receipt = net.transact(net.registry.functions.changeLifecycle(CODE, Action.ACTIVATE, "", ""), second)
        assert net.events(receipt, net.registry, "DeviceLifecycleChanged")[0]["ownerOrg"] == PSB
        assert net.status(CODE) == Status.ACTIVE

    # ------------------------------------------------------------ updates

    def test_update_replaces_location_and_attributes_only(self, net: ContractsChain) -> None:
        net.register("BJ-PSB", device_input(CODE, status=Status.ACTIVE))
        attributes = '{"model":"X2"}'
        receipt = net.transact(
            net.registry.functions.updateDevice(CODE, 110108, 39_990_000, 116_300_000, attributes), net.key("BJ-PSB")
        )
        assert net.events(receipt, net.registry, "DeviceUpdated") == [
            {
                "codeHash": keccak(text=CODE),
                "ownerOrg": PSB,
                "code": CODE,
                "district": 110108,
                "lat": 39_990_000,
                "lon": 116_300_000,
                "attributesHash": keccak(text=attributes),
                "attributes": attributes,
            }
        ]
        assert net.registry.functions.getDevice(CODE).call() == (
            PSB,
            1,
            Status.ACTIVE,
            110108,
            39_990_000,
            116_300_000,
            BUILT_AT,
            0,
            keccak(text=attributes),
        )

    def test_update_with_bad_location_reverts(self, net: ContractsChain) -> None:
        net.register("BJ-PSB", device_input(CODE))
        net.assert_reverts(
            net.registry.functions.updateDevice(CODE, 110105, 0, 180_000_001, "{}"),
            net.key("BJ-PSB"),
            "DeviceRegistryBadLocation",
            0,
            180_000_001,
        )

    @pytest.mark.parametrize("status", [Status.REPLACED, Status.RETIRED])
    def test_replaced_or_retired_device_cannot_be_updated(self, net: ContractsChain, status: Status) -> None:
        _device_at(net, status)
        net.assert_reverts(
            net.registry.functions.updateDevice(CODE, 110105, 0, 0, "{}"),
            net.key("BJ-PSB"),
            "DeviceRegistryIllegalTransition",
            CODE,
            status,
            Action.UPGRADE,
        )

    # ------------------------------------------------------------ life cycle

    @pytest.mark.parametrize(
        ("status", "action"),
        list(itertools.product(REACHABLE, Action)),
        ids=[f"{s.name.lower()}-{a.name.lower()}" for s, a in itertools.product(REACHABLE, Action)],
    )
    def test_lifecycle_move_follows_the_legal_table(self, net: ContractsChain, status: Status, action: Action) -> None:
        _device_at(net, status)
        replaced_by = SPARE if action == Action.REPLACE else ""
        fn = net.registry.functions.changeLifecycle(CODE, action, replaced_by, "work order 42")
        to = LEGAL_MOVES.get((status, action))
        if to is None:
            net.assert_reverts(fn, net.key("BJ-PSB"), "DeviceRegistryIllegalTransition", CODE, status, action)
            assert net.status(CODE) == status
            return
        receipt = net.transact(fn, net.key("BJ-PSB"))
        assert net.events(receipt, net.registry, "DeviceLifecycleChanged") == [
            {
                "codeHash": keccak(text=CODE),
                "ownerOrg": PSB,
                "code": CODE,
                "action": action,
                "fromStatus": status,
                "toStatus": to,
                "replacedBy": replaced_by,
                "note": "work order 42",
            }
        ]
        assert net.status(CODE) == to

    def test_legal_table_matches_the_interface_comments(self) -> None:
        """The table above, written from IDeviceRegistry.Action's comments; a guard against editing one alone."""
        assert len(LEGAL_MOVES) == 9
        assert {a for _, a in LEGAL_MOVES} == set(Action)
        assert all(to not in (Status.NONE, Status.PLANNED) for to in LEGAL_MOVES.values())

    @pytest.mark.parametrize("replacement", ["unregistered", "other-org", "itself", "empty", "retired"])
    def test_replace_needs_another_planned_or_active_device_of_the_same_org(
        self, net: ContractsChain, replacement: str
    ) -> None:
        net.register("BJ-PSB", device_input(CODE, status=Status.ACTIVE))
        other_org_device = device_code(500)
        net.register("BJ-CMC", device_input(other_org_device))
        retired_device = device_code(501)
        net.register("BJ-PSB", device_input(retired_device, status=Status.ACTIVE))
        net.transact(net.registry.functions.changeLifecycle(retired_device, Action.RETIRE, "", ""), net.key("BJ-PSB"))
        replaced_by = {
            "unregistered": device_code(404),
            "other-org": other_org_device,
            "itself": CODE,
            "empty": "",
            "retired": retired_device,
        }[replacement]
        net.assert_reverts(
            net.registry.functions.changeLifecycle(CODE, Action.REPLACE, replaced_by, ""),
            net.key("BJ-PSB"),
            "DeviceRegistryBadReplacement",
            CODE,
            replaced_by,
        )

    def test_only_replace_takes_a_replacement(self, net: ContractsChain) -> None:
        _device_at(net, Status.ACTIVE)
        net.assert_reverts(
            net.registry.functions.changeLifecycle(CODE, Action.RETIRE, SPARE, ""),
            net.key("BJ-PSB"),
            "DeviceRegistryBadReplacement",
            CODE,
            SPARE,
        )

    # ------------------------------------------------------------ inspections

    @pytest.mark.parametrize("status", [Status.ACTIVE, Status.SUSPENDED])
    def test_inspection_of_active_or_suspended_device_is_recorded(self, net: ContractsChain, status: Status) -> None:
        _device_at(net, status)
        at = net.latest_timestamp() - 60
        report = keccak(text="report.pdf")
        receipt = net.transact(
            net.registry.functions.recordInspection(CODE, Result.ISSUES, at, report, "lens dirty"), net.key("BJ-PSB")
        )
        assert net.events(receipt, net.registry, "DeviceInspected") == [
            {
                "codeHash": keccak(text=CODE),
                "ownerOrg": PSB,
                "code": CODE,
                "result": Result.ISSUES,
                "inspectedAt": at,
                "reportHash": report,
                "note": "lens dirty",
            }
        ]
        assert net.registry.functions.getDevice(CODE).call()[7] == at

    @pytest.mark.parametrize("status", [Status.PLANNED, Status.REPLACED, Status.RETIRED])
    def test_inspection_of_planned_replaced_or_retired_device_reverts(
        self, net: ContractsChain, status: Status
    ) -> None:
        _device_at(net, status)
        net.assert_reverts(
            net.registry.functions.recordInspection(CODE, Result.PASSED, BUILT_AT, b"\x00" * 32, ""),
            net.key("BJ-PSB"),
            "DeviceRegistryNotInspectable",
            CODE,
            status,
        )

    def test_inspection_in_the_future_reverts(self, net: ContractsChain) -> None:
        _device_at(net, Status.ACTIVE)
        future = net.latest_timestamp() + 3_600
        net.assert_reverts(
            net.registry.functions.recordInspection(CODE, Result.PASSED, future, b"\x00" * 32, ""),
            net.key("BJ-PSB"),
            "DeviceRegistryBadTime",
            future,
        )

    def test_inspection_cannot_predate_the_previous_one(self, net: ContractsChain) -> None:
        _device_at(net, Status.ACTIVE)
        first = net.latest_timestamp() - 600
        inspect = net.registry.functions.recordInspection
        net.transact(inspect(CODE, Result.PASSED, first, b"\x00" * 32, ""), net.key("BJ-PSB"))
        net.assert_reverts(
            inspect(CODE, Result.PASSED, first - 1, b"\x00" * 32, ""),
            net.key("BJ-PSB"),
            "DeviceRegistryBadTime",
            first - 1,
        )
        # The same second again is not earlier: it is recorded.
        net.transact(inspect(CODE, Result.FAILED, first, b"\x00" * 32, "again"), net.key("BJ-PSB"))
        assert net.registry.functions.getDevice(CODE).call()[7] == first
