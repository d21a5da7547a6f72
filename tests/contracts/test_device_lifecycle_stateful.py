"""The device life cycle as a state machine: random registrations, updates and moves by three registrar orgs.

Hypothesis keeps a model of every device (owner org, status, district) and predicts each move's outcome in the
contract's order of checks (owner, legal move, replacement); the chain must agree after every step. Across orgs:
a code already on the ledger, in any status, is refused to every org (alone, or inside a batch that then registers
none of its devices), so a code is unique city-wide and keeps the one owner that registered it; only a registrar
of that owner updates or moves it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.contracts.support import Backend, ContractsChain, device_code, device_input
from tests.contracts.test_device_registry import LEGAL_MOVES, REGISTRAR, Action, Status

ORGS = {"BJ-PSB": 2, "BJ-CMC": 3, "BJ-CY": 5}
NOT_REGISTRAR = "CO-ZHCS"  # a member org without REGISTRAR
DISTRICTS = (110105, 110106, 110108)
MAX_DEVICES = 5
MACHINE_SETTINGS = settings(
    max_examples=6,
    stateful_step_count=12,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    derandomize=True,  # the same runs every time: a failure here is a contract or model change
    suppress_health_check=[HealthCheck.too_slow],
)


class DeviceLifecycleMachine(RuleBasedStateMachine):
    chain: ContractsChain
    backend: Backend

    def __init__(self) -> None:
        super().__init__()
        self.restore = self.backend.isolate()
        self.model: dict[str, tuple[str, Status]] = {}
        self.districts: dict[str, int] = {}

    def teardown(self) -> None:
        self.restore()

    @precondition(lambda self: len(self.model) < MAX_DEVICES)
    @rule(org=st.sampled_from(sorted(ORGS)), status=st.sampled_from([Status.PLANNED, Status.ACTIVE]))
    def register(self, org: str, status: Status) -> None:
        code = device_code(len(self.model) + 1)
        self.chain.register(org, device_input(code, status=status))
        self.model[code] = (org, status)
        self.districts[code] = 110105

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), org=st.sampled_from(sorted(ORGS)), in_batch=st.booleans())
    def register_taken_code(self, data: st.DataObject, org: str, in_batch: bool) -> None:
        """Any org, the owner too, registers a code already on the ledger in any status: refused.

        In a batch with a new code the transaction is mined and reverts: the new code is not registered either.
        """
        code = data.draw(st.sampled_from(sorted(self.model)), label="code")
        functions, key = self.chain.registry.functions, self.chain.key(org)
        if not in_batch:
            fn = functions.registerDevice(device_input(code))
            self.chain.assert_reverts(fn, key, "DeviceRegistryDuplicateCode", code)
            return
        new = device_code(MAX_DEVICES + 1)
        fn = functions.registerDevices([device_input(new), device_input(code)])
        self.chain.assert_reverts(fn, key, "DeviceRegistryDuplicateCode", code)
        self.chain.transact_reverting(fn, key)
        assert functions.exists(new).call() is False

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), actor=st.sampled_from([*sorted(ORGS), NOT_REGISTRAR]), district=st.sampled_from(DISTRICTS))
    def update(self, data: st.DataObject, actor: str, district: int) -> None:
        """Any org updates any device's location: only a registrar of the owner, and not once replaced or retired."""
        code = data.draw(st.sampled_from(sorted(self.model)), label="code")
        owner, status = self.model[code]
        fn = self.chain.registry.functions.updateDevice(code, district, 39_921_000, 116_443_000, "{}")
        key = self.chain.key(actor)
        if actor not in ORGS:
            self.chain.assert_reverts(fn, key, "ConsortiumMissingRole", self.chain.account(actor), REGISTRAR)
        elif actor != owner:
            self.chain.assert_reverts(fn, key, "DeviceRegistryNotOwner", code, ORGS[actor], ORGS[owner])
        elif status in (Status.REPLACED, Status.RETIRED):
            self.chain.assert_reverts(fn, key, "DeviceRegistryIllegalTransition", code, status, Action.UPGRADE)
        else:
            self.chain.transact(fn, key)
            self.districts[code] = district

    @precondition(lambda self: any(self._legal_actions(code) for code in self.model))
    @rule(data=st.data())
    def legal_move(self, data: st.DataObject) -> None:
        """The owner makes a move the table allows (with a valid replacement): it must succeed."""
        code = data.draw(st.sampled_from([c for c in sorted(self.model) if self._legal_actions(c)]), label="code")
        action = data.draw(st.sampled_from(self._legal_actions(code)), label="action")
        owner, status = self.model[code]
        replaced_by = ""
        if action == Action.REPLACE:
            replaced_by = data.draw(st.sampled_from(self._replacements(code)), label="replacedBy")
        receipt = self.chain.lifecycle(owner, code, action, replaced_by)
        (event,) = self.chain.events(receipt, self.chain.registry, "DeviceLifecycleChanged")
        to = LEGAL_MOVES[(status, action)]
        assert (event["fromStatus"], event["toStatus"], event["replacedBy"]) == (status, to, replaced_by)
        self.model[code] = (owner, to)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), actor=st.sampled_from(sorted(ORGS)), action=st.sampled_from(list(Action)))
    def any_move(self, data: st.DataObject, actor: str, action: Action) -> None:
        """Any org tries any move on any device: the outcome is the one the model predicts."""
        code = data.draw(st.sampled_from(sorted(self.model)), label="code")
        replaced_by = ""
        if action == Action.REPLACE:
            replaced_by = data.draw(st.sampled_from([*sorted(self.model), device_code(9_999)]), label="replacedBy")
        owner, status = self.model[code]
        fn = self.chain.registry.functions.changeLifecycle(code, action, replaced_by, "")
        key = self.chain.key(actor)

        if actor != owner:
            self.chain.assert_reverts(fn, key, "DeviceRegistryNotOwner", code, ORGS[actor], ORGS[owner])
            return
        to = LEGAL_MOVES.get((status, action))
        if to is None:
            self.chain.assert_reverts(fn, key, "DeviceRegistryIllegalTransition", code, status, action)
            return
        if action == Action.REPLACE and (
            replaced_by == code
            or replaced_by not in self.model
            or self.model[replaced_by][0] != owner
            or self.model[replaced_by][1] not in (Status.PLANNED, Status.ACTIVE)
        ):
            self.chain.assert_reverts(fn, key, "DeviceRegistryBadReplacement", code, replaced_by)
            return
        self.chain.transact(fn, key)
        self.model[code] = (owner, to)

    def _replacements(self, code: str) -> list[str]:
        owner = self.model[code][0]
        return [
            c
            for c, (org, status) in sorted(self.model.items())
            if org == owner and c != code and status in (Status.PLANNED, Status.ACTIVE)
        ]

    def _legal_actions(self, code: str) -> list[Action]:
        status = self.model[code][1]
        return [a for (s, a) in LEGAL_MOVES if s == status and (a != Action.REPLACE or self._replacements(code))]

    @invariant()
    def chain_matches_model(self) -> None:
        for code, (owner, status) in self.model.items():
            device = self.chain.registry.functions.getDevice(code).call()
            assert (device[0], device[2], device[3]) == (ORGS[owner], status, self.districts[code]), code


def test_random_lifecycle_walks_agree_with_the_model(net: ContractsChain, contracts_backend: Backend) -> None:
    machine = type("Machine", (DeviceLifecycleMachine,), {"chain": net, "backend": contracts_backend})
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
