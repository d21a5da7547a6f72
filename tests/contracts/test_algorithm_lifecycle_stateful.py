"""The algorithm life cycle as a state machine: random submissions, evaluations, listings and admissions.

Hypothesis keeps a model of every algorithm (submitter org, status, latest score, entries that admitted it) and
predicts each attempt's outcome in the contract's order of checks; the chain must agree after every step:
the stored record, and `isAdmitted`, which holds only while an admitted algorithm stays listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from web3.contract.contract import ContractFunction

from chain_gateway.governance import role_id
from tests.contracts.support import ContractsChain, entry_input
from tests.contracts.test_algorithm_registry import (
    DELISTED_BY_EVALUATION,
    PASS_MARK,
    Status,
    algorithm_input,
    algorithm_of,
    change,
    is_admitted,
    report_hash,
    status_changes,
)
from tests.contracts.test_device_lifecycle_stateful import MACHINE_SETTINGS as DEVICE_MACHINE_SETTINGS

ORGS = {"BJ-PSB": 2, "BJ-CMC": 3, "BJ-CY": 5, "CO-ZHCS": 6}
REVIEWERS = {"BJ-PSB", "BJ-CMC"}
REGISTRARS = {"BJ-PSB", "BJ-CMC", "BJ-CY"}
ENTRY_OWNERS = {1: "BJ-PSB", 2: "BJ-CMC"}  # entry id -> owner org, made before the machine runs
SCORES = (0, PASS_MARK - 1, PASS_MARK, 100, 101)
ACTIONS = ("evaluate", "list", "delist", "admit", "withdraw")
MAX_ALGORITHMS = 2
DELIST_REASON = "taken down"
# The device machine's settings (derandomized, no example database), one example fewer: each step here also
# reads every algorithm's record and admissions.
MACHINE_SETTINGS = settings(DEVICE_MACHINE_SETTINGS, max_examples=5)


@dataclass
class Model:
    """What the machine expects of one algorithm."""

    submitter: str
    status: Status = Status.SUBMITTED
    score: int = 0
    admitted: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Attempt:
    """One call: `action` by `actor` on algorithm `algorithm`; `arg` is the score or the entry id (else 0)."""

    action: str
    actor: str
    algorithm: int
    arg: int = 0


Outcome = tuple[str, tuple[object, ...]] | None  # (custom error, args), or None for success


class AlgorithmLifecycleMachine(RuleBasedStateMachine):
    chain: ContractsChain

    def __init__(self) -> None:
        super().__init__()
        self.restore = self.chain.snapshot()
        self.model: dict[int, Model] = {}

    def teardown(self) -> None:
        self.restore()

    # ------------------------------------------------------------ rules

    @precondition(lambda self: len(self.model) < MAX_ALGORITHMS)
    @rule(org=st.sampled_from(sorted(ORGS)))
    def submit(self, org: str) -> None:
        algorithm_id = len(self.model) + 1
        fn = self.chain.algorithms.functions.submit(algorithm_input(f"algorithm {algorithm_id}"))
        self.chain.transact(fn, self.chain.key(org))
        self.model[algorithm_id] = Model(org)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def any_attempt(self, data: st.DataObject) -> None:
        """Any org tries any action on any algorithm: the outcome is the one the model predicts."""
        attempts = self._all_attempts()
        # The action first, then whom by and on what: each action has its fair chance (evaluate has five scores).
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        self._run(data.draw(st.sampled_from([a for a in attempts if a.action == action]), label="attempt"))

    @precondition(lambda self: any(self._next_steps(i) for i in self.model))
    @rule(data=st.data())
    def next_step(self, data: st.DataObject) -> None:
        """An algorithm takes its next step along the life cycle, by any org that may take it.

        Random attempts mostly fail, so without this walks would seldom reach listing, admission, and the
        delisting of an admitted algorithm (by a reviewer, or by a failing re-evaluation).
        """
        algorithm = data.draw(st.sampled_from([i for i in sorted(self.model) if self._next_steps(i)]), label="algo")
        self._run(data.draw(st.sampled_from(self._next_steps(algorithm)), label="step"))

    # ------------------------------------------------------------ the model

    def _all_attempts(self) -> list[Attempt]:
        attempts = []
        for algorithm in sorted(self.model):
            for actor in sorted(ORGS):
                attempts += [Attempt("evaluate", actor, algorithm, s) for s in SCORES]
                attempts += [Attempt(a, actor, algorithm) for a in ("list", "delist")]
                attempts += [Attempt(a, actor, algorithm, e) for a in ("admit", "withdraw") for e in ENTRY_OWNERS]
        return attempts

    def _next_steps(self, algorithm: int) -> list[Attempt]:
        """The succeeding attempts that move `algorithm` on: evaluated, passed, listed, admitted, taken down."""
        m = self.model[algorithm]
        if m.status == Status.SUBMITTED or (m.status == Status.EVALUATED and m.score < PASS_MARK):
            wanted = {"evaluate"}
        elif m.status == Status.EVALUATED:
            wanted = {"list"}
        elif m.status == Status.LISTED and not m.admitted:
            wanted = {"admit"}
        elif m.status == Status.LISTED:  # admitted: more admissions, or a takedown (delisting, failing score)
            wanted = {"admit", "delist", "evaluate"}
        else:
            return []
        steps = [a for a in self._all_attempts() if a.algorithm == algorithm and a.action in wanted]
        if m.status == Status.LISTED:
            steps = [a for a in steps if a.action != "evaluate" or a.arg < PASS_MARK]
        return [a for a in steps if self._predict(a) is None]

    def _predict(self, a: Attempt) -> Outcome:
        """The contract's answer to `a`, checks in the contract's order."""
        m, org = self.model[a.algorithm], ORGS[a.actor]
        account = self.chain.account(a.actor)
        if a.action in ("evaluate", "list", "delist"):
            if a.actor not in REVIEWERS:
                return ("ConsortiumMissingRole", (account, role_id("REVIEWER")))
            if a.action != "delist" and a.actor == m.submitter:
                return ("AlgorithmSelfEvaluation", (a.algorithm, org))
        if a.action == "evaluate":
            if a.arg > 100:
                return ("AlgorithmBadScore", (a.arg,))
            if m.status == Status.DELISTED:
                return ("AlgorithmIllegalStatus", (a.algorithm, m.status, Status.EVALUATED))
        elif a.action == "list":
            if m.status != Status.EVALUATED:
                return ("AlgorithmIllegalStatus", (a.algorithm, m.status, Status.LISTED))
            if m.score < PASS_MARK:
                return ("AlgorithmNotPassed", (a.algorithm, m.score, PASS_MARK))
        elif a.action == "delist":
            if m.status == Status.DELISTED:
                return ("AlgorithmIllegalStatus", (a.algorithm, m.status, Status.DELISTED))
        else:  # admit, withdraw: a registrar of the entry's owner org
            if a.actor not in REGISTRARS:
                return ("ConsortiumMissingRole", (account, role_id("REGISTRAR")))
            owner = ENTRY_OWNERS[a.arg]
            if a.actor != owner:
                return ("AlgorithmNotEntryOwner", (a.arg, org, ORGS[owner]))
            if a.action == "admit" and m.status != Status.LISTED:
                return ("AlgorithmNotListed", (a.algorithm, m.status))
            if a.action == "admit" and a.arg in m.admitted:
                return ("AlgorithmAlreadyAdmitted", (a.arg, a.algorithm))
            if a.action == "withdraw" and a.arg not in m.admitted:
                return ("AlgorithmNotAdmitted", (a.arg, a.algorithm))
        return None

    def _apply(self, a: Attempt) -> list[dict[str, object]]:
        """Moves the model by the successful attempt `a`; returns the status changes it must emit."""
        m, org = self.model[a.algorithm], ORGS[a.actor]
        before = m.status
        if a.action == "evaluate":
            m.score = a.arg
            if before == Status.SUBMITTED:
                m.status = Status.EVALUATED
            elif before == Status.LISTED and a.arg < PASS_MARK:
                m.status = Status.DELISTED
                return [change(a.algorithm, org, before, m.status, DELISTED_BY_EVALUATION)]
        elif a.action == "list":
            m.status = Status.LISTED
        elif a.action == "delist":
            m.status = Status.DELISTED
            return [change(a.algorithm, org, before, m.status, DELIST_REASON)]
        elif a.action == "admit":
            m.admitted.add(a.arg)
        else:
            m.admitted.discard(a.arg)
        return [change(a.algorithm, org, before, m.status)] if m.status != before else []

    def _function(self, a: Attempt) -> ContractFunction:
        fns = self.chain.algorithms.functions
        if a.action == "evaluate":
            return fns.evaluate(a.algorithm, report_hash(f"score {a.arg}"), a.arg)
        if a.action == "list":
            return fns.list(a.algorithm)
        if a.action == "delist":
            return fns.delist(a.algorithm, DELIST_REASON)
        return getattr(fns, a.action)(a.arg, a.algorithm)

    def _run(self, a: Attempt) -> None:
        fn, key = self._function(a), self.chain.key(a.actor)
        expected = self._predict(a)
        if expected is not None:
            self.chain.assert_reverts(fn, key, expected[0], *expected[1])
            return
        receipt = self.chain.transact(fn, key)
        assert status_changes(self.chain, receipt) == self._apply(a), a

    @invariant()
    def chain_matches_model(self) -> None:
        for algorithm_id, m in self.model.items():
            stored = algorithm_of(self.chain, algorithm_id)
            assert (stored["submitterOrg"], stored["status"], stored["score"]) == (
                ORGS[m.submitter],
                m.status,
                m.score,
            ), algorithm_id
            for entry_id in ENTRY_OWNERS:
                expected = entry_id in m.admitted and m.status == Status.LISTED
                assert is_admitted(self.chain, entry_id, algorithm_id) == expected, (entry_id, algorithm_id)


def test_random_algorithm_walks_agree_with_the_model(net: ContractsChain) -> None:
    for entry_id, owner in ENTRY_OWNERS.items():
        assert net.create_entry(owner, entry_input(f"entry of {owner}")) == entry_id
    machine = type("Machine", (AlgorithmLifecycleMachine,), {"chain": net})
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
