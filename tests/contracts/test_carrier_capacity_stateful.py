"""Carriers and their reuse as a state machine: registrations, the owner's own use, reuse requests and decisions.

Hypothesis keeps a model of every carrier (owner, capacity, what the owner's own devices use, what granted reuse
takes) and of every reuse request, and predicts each attempt's outcome in the contract's order of checks. After
every step the chain must agree: a carrier's use is its owner's own use plus every granted reuse, so its spare
capacity is never negative and never above the total, and a decided or withdrawn request never moves again.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
)
from web3.contract import Contract

from tests.contracts.stateful import (
    ANVIL_ONLY,
    ChainMachine,
    Outcome,
    machine_settings,
    read_all,
    run_machine,
    run_predicted,
)
from tests.contracts.support import ContractsChain
from tests.contracts.test_carrier_registry import REGISTRAR, Reuse, carrier_input, carriers_of

ORG_IDS = {"BJ-PSB": 2, "BJ-CMC": 3, "BJ-EMB": 4, "CO-ZHCS": 6}
REGISTRARS = {"BJ-PSB", "BJ-CMC", "BJ-EMB"}
CODES = ("BJ-POLE-110105-0001", "BJ-CAB-110105-0002")
PURPOSE = "加装空气质量传感器"
MACHINE_SETTINGS = machine_settings(max_examples=8, steps=25)


@dataclass
class Carrier:
    owner: str
    slots: int
    ports: int
    own_slots: int = 0
    own_ports: int = 0
    reused_slots: int = 0
    reused_ports: int = 0

    @property
    def used(self) -> tuple[int, int]:
        return self.own_slots + self.reused_slots, self.own_ports + self.reused_ports

    @property
    def free(self) -> tuple[int, int]:
        return self.slots - self.used[0], self.ports - self.used[1]


@dataclass
class Request:
    code: str
    requester: str
    slots: int
    ports: int
    status: Reuse = Reuse.REQUESTED


class CarrierCapacityMachine(ChainMachine):
    carriers: Contract

    def __init__(self) -> None:
        super().__init__()
        self.first_request = int(self.carriers.functions.reuseRequestCount().call()) + 1
        self.model: dict[str, Carrier] = {}
        self.requests: list[Request] = []

    # ------------------------------------------------------------ rules

    @initialize(psb_slots=st.integers(1, 4), cmc_slots=st.integers(1, 4))
    def carriers_of_two_orgs(self, psb_slots: int, cmc_slots: int) -> None:
        """Every walk starts with a carrier of BJ-PSB and one of BJ-CMC, so attempts meet carriers from the start."""
        self.register("BJ-PSB", CODES[0], psb_slots)
        self.register("BJ-CMC", CODES[1], cmc_slots)

    @rule(org=st.sampled_from(sorted(ORG_IDS)), code=st.sampled_from(CODES), slots=st.integers(0, 4))
    def register(self, org: str, code: str, slots: int) -> None:
        ports = 4 - slots
        expected: Outcome = None
        if org not in REGISTRARS:
            expected = ("ConsortiumMissingRole", (self.chain.account(org), REGISTRAR))
        elif code in self.model:
            expected = ("CarrierDuplicateCode", (code,))
        fn = self.carriers.functions.register(carrier_input(code, slots=slots, ports=ports))
        if run_predicted(self.chain, fn, self.chain.key(org), expected) is not None:
            self.model[code] = Carrier(org, slots, ports)

    @rule(data=st.data(), org=st.sampled_from(sorted(ORG_IDS)), own=st.tuples(st.integers(0, 4), st.integers(0, 4)))
    def set_own_use(self, data: st.DataObject, org: str, own: tuple[int, int]) -> None:
        """Any org reports what its own devices use on a carrier; mostly the owner, as it does in practice."""
        code = data.draw(st.sampled_from(CODES), label="code")
        if code in self.model and data.draw(st.booleans(), label="as owner"):
            org = self.model[code].owner
        c = self.model.get(code)
        expected = self._predict_registrar(org) or self._predict_known(code)
        if expected is None and c is not None and c.owner != org:
            expected = ("CarrierNotOwner", (code, ORG_IDS[org], ORG_IDS[c.owner]))
        if expected is None and c is not None:
            used = (own[0] + c.reused_slots, own[1] + c.reused_ports)
            if used[0] > c.slots or used[1] > c.ports:
                expected = ("CarrierBadUsage", (code, used[0], c.slots, used[1], c.ports))
        fn = self.carriers.functions.setUsage(code, *own)
        receipt = run_predicted(self.chain, fn, self.chain.key(org), expected)
        if receipt is None or c is None:
            return
        c.own_slots, c.own_ports = own
        (event,) = self.chain.events(receipt, self.carriers, "CarrierUsageChanged")
        assert (event["slotsUsed"], event["portsUsed"]) == c.used

    @rule(
        data=st.data(),
        org=st.sampled_from(sorted(ORG_IDS)),
        wanted=st.tuples(st.integers(0, 3), st.integers(0, 2)),
    )
    def request_reuse(self, data: st.DataObject, org: str, wanted: tuple[int, int]) -> None:
        """Any org applies to reuse a carrier; mostly a registrar of another org, as it does in practice."""
        code = data.draw(st.sampled_from(CODES), label="code")
        if code in self.model and data.draw(st.booleans(), label="as another registrar"):
            org = data.draw(st.sampled_from(sorted(REGISTRARS - {self.model[code].owner})), label="requester")
        c = self.model.get(code)
        expected = self._predict_registrar(org) or self._predict_known(code)
        if expected is None and c is not None:
            if c.owner == org:
                expected = ("CarrierOwnCarrier", (code,))
            elif wanted == (0, 0):
                expected = ("CarrierEmptyReuse", ())
            elif wanted[0] > c.free[0] or wanted[1] > c.free[1]:
                expected = ("CarrierNoCapacity", (code, *c.free))
        fn = self.carriers.functions.requestReuse(code, *wanted, PURPOSE)
        if run_predicted(self.chain, fn, self.chain.key(org), expected) is not None:
            self.requests.append(Request(code, org, *wanted))

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), org=st.sampled_from(sorted(ORG_IDS)), grant=st.booleans(), reason=st.sampled_from(("", "满")))
    def decide(self, data: st.DataObject, org: str, grant: bool, reason: str) -> None:
        """Any org decides any request; mostly the carrier's owner."""
        index, request_id = self._draw_request(data)
        if index < len(self.requests) and data.draw(st.booleans(), label="as owner"):
            org = self.model[self.requests[index].code].owner
        expected = self._predict_open(index, request_id) or self._predict_registrar(org)
        if expected is None:
            r = self.requests[index]
            c = self.model[r.code]
            if org != c.owner:
                expected = ("CarrierNotOwner", (r.code, ORG_IDS[org], ORG_IDS[c.owner]))
            elif grant and (r.slots > c.free[0] or r.ports > c.free[1]):
                expected = ("CarrierNoCapacity", (r.code, *c.free))
            elif not grant and not reason:
                expected = ("CarrierEmptyReason", ())
        fn = self.carriers.functions.decideReuse(request_id, grant, reason)
        if run_predicted(self.chain, fn, self.chain.key(org), expected) is None:
            return
        r = self.requests[index]
        r.status = Reuse.GRANTED if grant else Reuse.REFUSED
        if grant:
            self.model[r.code].reused_slots += r.slots
            self.model[r.code].reused_ports += r.ports

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), org=st.sampled_from(sorted(ORG_IDS)))
    def withdraw(self, data: st.DataObject, org: str) -> None:
        index, request_id = self._draw_request(data)
        expected = self._predict_open(index, request_id) or self._predict_registrar(org)
        if expected is None and org != self.requests[index].requester:
            requester = self.requests[index].requester
            expected = ("CarrierNotRequester", (request_id, ORG_IDS[org], ORG_IDS[requester]))
        fn = self.carriers.functions.withdrawReuse(request_id)
        if run_predicted(self.chain, fn, self.chain.key(org), expected) is not None:
            self.requests[index].status = Reuse.WITHDRAWN

    @precondition(lambda self: any(r.status == Reuse.REQUESTED for r in self.requests))
    @rule(data=st.data())
    def owner_decides_open_request(self, data: st.DataObject) -> None:
        """The owner grants an open request that fits the spare capacity, else refuses it with a reason.

        Random decisions mostly fail, so without this walks would seldom grant reuse and then change own use.
        """
        open_ = [i for i, r in enumerate(self.requests) if r.status == Reuse.REQUESTED]
        index = data.draw(st.sampled_from(open_), label="request")
        r = self.requests[index]
        c = self.model[r.code]
        grant = r.slots <= c.free[0] and r.ports <= c.free[1]
        fn = self.carriers.functions.decideReuse(self.first_request + index, grant, "" if grant else "满")
        receipt = self.chain.transact(fn, self.chain.key(c.owner))
        r.status = Reuse.GRANTED if grant else Reuse.REFUSED
        if grant:
            c.reused_slots += r.slots
            c.reused_ports += r.ports
            (event,) = self.chain.events(receipt, self.carriers, "CarrierUsageChanged")
            assert (event["slotsUsed"], event["portsUsed"]) == c.used

    # ------------------------------------------------------------ the model

    def _draw_request(self, data: st.DataObject) -> tuple[int, int]:
        """(index in the model, request id) of a request, mostly an open one, or of the next id (no such request)."""
        open_ = [i for i, r in enumerate(self.requests) if r.status == Reuse.REQUESTED]
        index = data.draw(st.sampled_from(open_ * 3 + list(range(len(self.requests) + 1))), label="request")
        return index, self.first_request + index

    def _predict_registrar(self, org: str) -> Outcome:
        return None if org in REGISTRARS else ("ConsortiumMissingRole", (self.chain.account(org), REGISTRAR))

    def _predict_known(self, code: str) -> Outcome:
        return None if code in self.model else ("CarrierUnknown", (code,))

    def _predict_open(self, index: int, request_id: int) -> Outcome:
        if index == len(self.requests):
            return ("CarrierUnknownRequest", (request_id,))
        if self.requests[index].status != Reuse.REQUESTED:
            return ("CarrierRequestClosed", (request_id, self.requests[index].status))
        return None

    @invariant()
    def chain_matches_model(self) -> None:
        fns = self.carriers.functions
        codes = sorted(self.model)
        request_ids = range(self.first_request, self.first_request + len(self.requests))
        calls = [fns.reuseRequestCount(), *(fns.getCarrier(c) for c in codes)]
        results = read_all(self.chain, calls + [fns.getReuseRequest(i) for i in request_ids])
        assert results[0] == self.first_request - 1 + len(self.requests)
        for code, stored in zip(codes, results[1 : 1 + len(codes)], strict=True):
            c = self.model[code]
            owner, slots, slots_used, ports, ports_used = stored[0], stored[5], stored[6], stored[7], stored[8]
            assert 0 <= slots_used <= slots and 0 <= ports_used <= ports, code  # spare capacity within [0, total]
            assert (owner, slots, ports, (slots_used, ports_used)) == (ORG_IDS[c.owner], c.slots, c.ports, c.used)
        for r, stored in zip(self.requests, results[1 + len(codes) :], strict=True):
            assert (stored[1], stored[3], stored[4], stored[5]) == (ORG_IDS[r.requester], r.slots, r.ports, r.status)


@ANVIL_ONLY
def test_random_carrier_walks_keep_use_equal_to_own_use_plus_granted_reuse(net: ContractsChain) -> None:
    run_machine(CarrierCapacityMachine, net, MACHINE_SETTINGS, carriers=carriers_of(net))


# Found by the machine: setUsage overwrote the carrier's whole use with the owner's own, dropping granted reuse,
# so the slots granted to another org showed as spare and could be granted twice.


@ANVIL_ONLY
def test_owner_setting_its_own_use_keeps_granted_reuse_counted(net: ContractsChain) -> None:
    carriers, code = carriers_of(net), CODES[0]
    net.transact(carriers.functions.register(carrier_input(code, slots=3, ports=1)), net.key("BJ-PSB"))
    net.transact(carriers.functions.requestReuse(code, 2, 1, PURPOSE), net.key("BJ-CMC"))
    net.transact(carriers.functions.decideReuse(1, True, ""), net.key("BJ-PSB"))

    receipt = net.transact(carriers.functions.setUsage(code, 1, 0), net.key("BJ-PSB"))

    (event,) = net.events(receipt, carriers, "CarrierUsageChanged")
    assert (event["slotsUsed"], event["portsUsed"]) == (3, 1)
    net.assert_reverts(carriers.functions.setUsage(code, 2, 0), net.key("BJ-PSB"), "CarrierBadUsage", code, 4, 3, 1, 1)
    fn = carriers.functions.requestReuse(code, 1, 0, PURPOSE)
    net.assert_reverts(fn, net.key("BJ-EMB"), "CarrierNoCapacity", code, 0, 0)
