"""Behaviour of the CarrierRegistry (感知载体): registration, usage, and reuse requests granted or refused by the
carrier's owner, with capacity taken at grant time.

BJ-PSB (org 2) owns pole POLE (4 slots, 2 ports) in every test; BJ-CMC (org 3) and BJ-EMB (org 4) are other
registrars applying to reuse it; CO-ZHCS (org 6) holds no role. Reuse requests made by a test get ids 1, 2...
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any

import pytest
from eth_utils import keccak
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain_gateway.governance import contract, role_id
from tests.contracts.support import ContractsChain, attributes_hash, pass_proposal

REGISTRAR = role_id("REGISTRAR")
PSB, CMC, EMB = 2, 3, 4
OWNER, REQUESTER, OTHER = "BJ-PSB", "BJ-CMC", "BJ-EMB"
POLE = "BJ-POLE-110105-0001"
SLOTS, PORTS = 4, 2
CARRIER_FIELDS = (
    "ownerOrg",
    "kind",
    "district",
    "lat",
    "lon",
    "slots",
    "slotsUsed",
    "ports",
    "portsUsed",
    "attributesHash",
)
INPUT_FIELDS = ("code", "kind", "district", "lat", "lon", "slots", "ports", "attributes")
REQUEST_FIELDS = ("carrierHash", "requesterOrg", "ownerOrg", "slots", "ports", "status", "requestedAt", "decidedAt")
PURPOSE = "在该杆加装空气质量传感器"


class Kind(IntEnum):
    POLE = 0
    MOUNT = 1
    CABINET = 2
    BUILDING = 3


class Reuse(IntEnum):
    NONE = 0
    REQUESTED = 1
    GRANTED = 2
    REFUSED = 3
    WITHDRAWN = 4


def carrier_input(
    code: str = POLE,
    *,
    kind: Kind = Kind.POLE,
    district: int = 110105,
    lat: int = 39_921_000,
    lon: int = 116_443_000,
    slots: int = SLOTS,
    ports: int = PORTS,
    attributes: str = '{"height_m":8,"power":"市电"}',
) -> tuple[Any, ...]:
    """An `ICarrierRegistry.CarrierInput` tuple in ABI order."""
    return (code, kind, district, lat, lon, slots, ports, attributes)


def carriers_of(chain: ContractsChain) -> Contract:
    return contract(chain.w3, chain.deployment, "CarrierRegistry")


def read(chain: ContractsChain, fn: ContractFunction) -> Any:
    """`fn` called as a view from a named account: eth-tester otherwise lists every account to pick one (slow)."""
    return fn.call({"from": chain.account("CO-ZHCS")})


def carrier_of(chain: ContractsChain, code: str = POLE) -> dict[str, Any]:
    return dict(zip(CARRIER_FIELDS, read(chain, carriers_of(chain).functions.getCarrier(code)), strict=True))


def request_of(chain: ContractsChain, request_id: int) -> dict[str, Any]:
    values = read(chain, carriers_of(chain).functions.getReuseRequest(request_id))
    return dict(zip(REQUEST_FIELDS, values, strict=True))


def usage(chain: ContractsChain, code: str = POLE) -> tuple[int, int]:
    c = carrier_of(chain, code)
    return c["slotsUsed"], c["portsUsed"]


def register(chain: ContractsChain, input_: tuple[Any, ...], org: str = OWNER) -> TxReceipt:
    return chain.transact(carriers_of(chain).functions.register(input_), chain.key(org))


def request_reuse(chain: ContractsChain, slots: int = 1, ports: int = 1, org: str = REQUESTER, code: str = POLE) -> int:
    receipt = chain.transact(carriers_of(chain).functions.requestReuse(code, slots, ports, PURPOSE), chain.key(org))
    return int(chain.events(receipt, carriers_of(chain), "CarrierReuseRequested")[0]["requestId"])


def decide(chain: ContractsChain, request_id: int, grant: bool, reason: str = "", org: str = OWNER) -> TxReceipt:
    return chain.transact(carriers_of(chain).functions.decideReuse(request_id, grant, reason), chain.key(org))


def timestamp_of(chain: ContractsChain, receipt: TxReceipt) -> int:
    return int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def as_tuple(value: Any, fields: Sequence[str]) -> tuple[Any, ...]:
    return tuple(value[f] for f in fields) if hasattr(value, "keys") else tuple(value)


@pytest.fixture
def poles(net: ContractsChain) -> ContractsChain:
    """The seeded consortium plus BJ-PSB's pole POLE; undone after the test."""
    register(net, carrier_input())
    return net


class TestRegistration:
    def test_registrar_registers_a_carrier_of_its_org_with_nothing_used(self, net: ContractsChain) -> None:
        input_ = carrier_input(kind=Kind.CABINET, slots=6, ports=8)
        receipt = register(net, input_)

        [event] = net.events(receipt, carriers_of(net), "CarrierRegistered")
        event["carrier"] = as_tuple(event["carrier"], INPUT_FIELDS)
        assert event == {
            "carrierHash": keccak(text=POLE),
            "ownerOrg": PSB,
            "carrier": input_,
            "attributesHash": attributes_hash(input_[7]),
            "by": net.account(OWNER),
        }
        assert carrier_of(net) == {
            "ownerOrg": PSB,
            "kind": Kind.CABINET,
            "district": 110105,
            "lat": 39_921_000,
            "lon": 116_443_000,
            "slots": 6,
            "slotsUsed": 0,
            "ports": 8,
            "portsUsed": 0,
            "attributesHash": attributes_hash(input_[7]),
        }

    def test_code_is_registered_once_whoever_registers(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.register(carrier_input(lat=40_000_000))
        for org in (OWNER, REQUESTER):
            poles.assert_reverts(fn, poles.key(org), "CarrierDuplicateCode", POLE)

    @pytest.mark.parametrize("code", ["", "P" * 65], ids=["empty", "65-bytes"])
    def test_code_of_0_or_more_than_64_bytes_is_refused(self, net: ContractsChain, code: str) -> None:
        fn = carriers_of(net).functions.register(carrier_input(code))
        net.assert_reverts(fn, net.key(OWNER), "CarrierBadCode", code)

    def test_code_of_64_bytes_is_accepted(self, net: ContractsChain) -> None:
        register(net, carrier_input("P" * 64))
        assert carrier_of(net, "P" * 64)["ownerOrg"] == PSB

    @pytest.mark.parametrize(("lat", "lon"), [(90_000_001, 0), (-90_000_001, 0), (0, 180_000_001), (0, -180_000_001)])
    def test_location_out_of_range_is_refused(self, net: ContractsChain, lat: int, lon: int) -> None:
        fn = carriers_of(net).functions.register(carrier_input(lat=lat, lon=lon))
        net.assert_reverts(fn, net.key(OWNER), "CarrierBadLocation", lat, lon)

    @pytest.mark.parametrize("org", ["CO-ZHCS", "AU-BJ"])
    def test_only_a_registrar_registers(self, net: ContractsChain, org: str) -> None:
        fn = carriers_of(net).functions.register(carrier_input())
        net.assert_reverts(fn, net.key(org), "ConsortiumMissingRole", net.account(org), REGISTRAR)

    def test_unknown_carrier_is_refused(self, net: ContractsChain) -> None:
        net.assert_reverts(carriers_of(net).functions.getCarrier(POLE), net.key(OWNER), "CarrierUnknown", POLE)


class TestUsage:
    def test_owner_sets_the_slots_and_ports_in_use(self, poles: ContractsChain) -> None:
        receipt = poles.transact(carriers_of(poles).functions.setUsage(POLE, 3, 1), poles.key(OWNER))
        assert poles.events(receipt, carriers_of(poles), "CarrierUsageChanged") == [
            {"carrierHash": keccak(text=POLE), "ownerOrg": PSB, "code": POLE, "slotsUsed": 3, "portsUsed": 1}
        ]
        assert usage(poles) == (3, 1)

    def test_usage_up_to_the_capacity_is_accepted(self, poles: ContractsChain) -> None:
        poles.transact(carriers_of(poles).functions.setUsage(POLE, SLOTS, PORTS), poles.key(OWNER))
        assert usage(poles) == (SLOTS, PORTS)

    @pytest.mark.parametrize(("slots", "ports"), [(SLOTS + 1, 0), (0, PORTS + 1)])
    def test_usage_beyond_the_capacity_is_refused(self, poles: ContractsChain, slots: int, ports: int) -> None:
        fn = carriers_of(poles).functions.setUsage(POLE, slots, ports)
        poles.assert_reverts(fn, poles.key(OWNER), "CarrierBadUsage", POLE, slots, SLOTS, ports, PORTS)

    def test_only_the_owner_sets_usage(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.setUsage(POLE, 1, 1)
        poles.assert_reverts(fn, poles.key(REQUESTER), "CarrierNotOwner", POLE, CMC, PSB)
        fn = carriers_of(poles).functions.setUsage("BJ-POLE-NONE", 1, 1)
        poles.assert_reverts(fn, poles.key(OWNER), "CarrierUnknown", "BJ-POLE-NONE")


class TestReuseRequest:
    def test_another_orgs_registrar_applies_and_no_capacity_is_taken_yet(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.requestReuse(POLE, 2, 1, PURPOSE)
        receipt = poles.transact(fn, poles.key(REQUESTER))

        assert poles.events(receipt, carriers_of(poles), "CarrierReuseRequested") == [
            {
                "requestId": 1,
                "carrierHash": keccak(text=POLE),
                "requesterOrg": CMC,
                "ownerOrg": PSB,
                "code": POLE,
                "slots": 2,
                "ports": 1,
                "purpose": PURPOSE,
                "requester": poles.account(REQUESTER),
            }
        ]
        assert request_of(poles, 1) == {
            "carrierHash": keccak(text=POLE),
            "requesterOrg": CMC,
            "ownerOrg": PSB,
            "slots": 2,
            "ports": 1,
            "status": Reuse.REQUESTED,
            "requestedAt": timestamp_of(poles, receipt),
            "decidedAt": 0,
        }
        assert usage(poles) == (0, 0)
        assert read(poles, carriers_of(poles).functions.reuseRequestCount()) == 1

    def test_own_carrier_is_not_requested(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.requestReuse(POLE, 1, 0, PURPOSE)
        poles.assert_reverts(fn, poles.key(OWNER), "CarrierOwnCarrier", POLE)

    def test_request_for_nothing_is_refused(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.requestReuse(POLE, 0, 0, PURPOSE)
        poles.assert_reverts(fn, poles.key(REQUESTER), "CarrierEmptyReuse")

    def test_request_needs_a_purpose(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.requestReuse(POLE, 1, 0, "")
        poles.assert_reverts(fn, poles.key(REQUESTER), "CarrierEmptyPurpose")

    @pytest.mark.parametrize(("slots", "ports"), [(2, 0), (0, 2), (3, 3)])
    def test_request_beyond_the_spare_capacity_is_refused(self, poles: ContractsChain, slots: int, ports: int) -> None:
        poles.transact(carriers_of(poles).functions.setUsage(POLE, 3, 1), poles.key(OWNER))
        fn = carriers_of(poles).functions.requestReuse(POLE, slots, ports, PURPOSE)
        poles.assert_reverts(fn, poles.key(REQUESTER), "CarrierNoCapacity", POLE, 1, 1)
        assert request_reuse(poles, 1, 1) == 1  # exactly the spare capacity is fine

    def test_only_a_registrar_applies(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.requestReuse(POLE, 1, 0, PURPOSE)
        poles.assert_reverts(fn, poles.key("CO-ZHCS"), "ConsortiumMissingRole", poles.account("CO-ZHCS"), REGISTRAR)

    def test_unknown_carrier_is_not_requested(self, poles: ContractsChain) -> None:
        fn = carriers_of(poles).functions.requestReuse("BJ-POLE-NONE", 1, 0, PURPOSE)
        poles.assert_reverts(fn, poles.key(REQUESTER), "CarrierUnknown", "BJ-POLE-NONE")


class TestDecision:
    def test_grant_takes_the_capacity_at_once(self, poles: ContractsChain) -> None:
        poles.transact(carriers_of(poles).functions.setUsage(POLE, 1, 0), poles.key(OWNER))
        request_id = request_reuse(poles, 2, 1)
        receipt = decide(poles, request_id, True, "同意共杆")

        assert poles.events(receipt, carriers_of(poles), "CarrierReuseDecided") == [
            {
                "requestId": request_id,
                "carrierHash": keccak(text=POLE),
                "ownerOrg": PSB,
                "granted": True,
                "reason": "同意共杆",
                "by": poles.account(OWNER),
            }
        ]
        assert poles.events(receipt, carriers_of(poles), "CarrierUsageChanged") == [
            {"carrierHash": keccak(text=POLE), "ownerOrg": PSB, "code": POLE, "slotsUsed": 3, "portsUsed": 1}
        ]
        assert usage(poles) == (3, 1)
        stored = request_of(poles, request_id)
        assert (stored["status"], stored["decidedAt"]) == (Reuse.GRANTED, timestamp_of(poles, receipt))

    def test_grant_rechecks_the_capacity_left_by_earlier_grants(self, poles: ContractsChain) -> None:
        first, second = request_reuse(poles, 3, 1), request_reuse(poles, 2, 1, org=OTHER)  # each fits alone
        decide(poles, first, True)
        fn = carriers_of(poles).functions.decideReuse(second, True, "")
        poles.assert_reverts(fn, poles.key(OWNER), "CarrierNoCapacity", POLE, SLOTS - 3, PORTS - 1)
        decide(poles, second, False, "杆位已满")
        assert request_of(poles, second)["status"] == Reuse.REFUSED
        assert usage(poles) == (3, 1)

    def test_grant_rechecks_the_capacity_after_the_owner_used_it(self, poles: ContractsChain) -> None:
        request_id = request_reuse(poles, 1, 0)
        poles.transact(carriers_of(poles).functions.setUsage(POLE, SLOTS, 0), poles.key(OWNER))
        fn = carriers_of(poles).functions.decideReuse(request_id, True, "")
        poles.assert_reverts(fn, poles.key(OWNER), "CarrierNoCapacity", POLE, 0, PORTS)

    def test_refusal_with_a_reason_takes_nothing(self, poles: ContractsChain) -> None:
        request_id = request_reuse(poles)
        receipt = decide(poles, request_id, False, "承重不足")
        [event] = poles.events(receipt, carriers_of(poles), "CarrierReuseDecided")
        assert (event["granted"], event["reason"]) == (False, "承重不足")
        assert poles.events(receipt, carriers_of(poles), "CarrierUsageChanged") == []
        assert (request_of(poles, request_id)["status"], usage(poles)) == (Reuse.REFUSED, (0, 0))

    def test_refusal_needs_a_reason(self, poles: ContractsChain) -> None:
        request_id = request_reuse(poles)
        fn = carriers_of(poles).functions.decideReuse(request_id, False, "")
        poles.assert_reverts(fn, poles.key(OWNER), "CarrierEmptyReason")

    @pytest.mark.parametrize(("org", "org_id"), [(REQUESTER, CMC), (OTHER, EMB)])
    def test_only_the_owners_registrar_decides(self, poles: ContractsChain, org: str, org_id: int) -> None:
        request_id = request_reuse(poles)
        fn = carriers_of(poles).functions.decideReuse(request_id, True, "")
        poles.assert_reverts(fn, poles.key(org), "CarrierNotOwner", POLE, org_id, PSB)

    def test_suspended_owner_cannot_decide(self, poles: ContractsChain) -> None:
        request_id = request_reuse(poles)
        pass_proposal(poles, [("Consortium", "setMemberActive", [OWNER, False])], proposer="BJ-EIB", voter="BJ-CMC")
        fn = carriers_of(poles).functions.decideReuse(request_id, True, "")
        poles.assert_reverts(fn, poles.key(OWNER), "ConsortiumOrgInactive", PSB)


class TestWithdrawalAndClosedRequests:
    def test_requester_withdraws_an_open_request(self, poles: ContractsChain) -> None:
        request_id = request_reuse(poles)
        receipt = poles.transact(carriers_of(poles).functions.withdrawReuse(request_id), poles.key(REQUESTER))
        assert poles.events(receipt, carriers_of(poles), "CarrierReuseWithdrawn") == [
            {"requestId": request_id, "requesterOrg": CMC, "by": poles.account(REQUESTER)}
        ]
        assert request_of(poles, request_id)["status"] == Reuse.WITHDRAWN

    @pytest.mark.parametrize(("org", "org_id"), [(OWNER, PSB), (OTHER, EMB)])
    def test_only_the_requester_withdraws(self, poles: ContractsChain, org: str, org_id: int) -> None:
        request_id = request_reuse(poles)
        fn = carriers_of(poles).functions.withdrawReuse(request_id)
        poles.assert_reverts(fn, poles.key(org), "CarrierNotRequester", request_id, org_id, CMC)

    @pytest.mark.parametrize("closing", ["granted", "refused", "withdrawn"])
    def test_closed_request_is_neither_decided_nor_withdrawn(self, poles: ContractsChain, closing: str) -> None:
        request_id = request_reuse(poles)
        if closing == "withdrawn":
            poles.transact(carriers_of(poles).functions.withdrawReuse(request_id), poles.key(REQUESTER))
        else:
            decide(poles, request_id, closing == "granted", "决定")
        status = {"granted": Reuse.GRANTED, "refused": Reuse.REFUSED, "withdrawn": Reuse.WITHDRAWN}[closing]
        functions = carriers_of(poles).functions
        for fn, org in (
            (functions.decideReuse(request_id, True, ""), OWNER),
            (functions.decideReuse(request_id, False, "again"), OWNER),
            (functions.withdrawReuse(request_id), REQUESTER),
        ):
            poles.assert_reverts(fn, poles.key(org), "CarrierRequestClosed", request_id, status)

    @pytest.mark.parametrize("request_id", [0, 2, 99])
    def test_unknown_request_is_refused_everywhere(self, poles: ContractsChain, request_id: int) -> None:
        request_reuse(poles)
        functions = carriers_of(poles).functions
        for fn, org in (
            (functions.decideReuse(request_id, True, ""), OWNER),
            (functions.withdrawReuse(request_id), REQUESTER),
            (functions.getReuseRequest(request_id), REQUESTER),
        ):
            poles.assert_reverts(fn, poles.key(org), "CarrierUnknownRequest", request_id)
