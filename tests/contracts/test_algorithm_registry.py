"""Behaviour of the AlgorithmRegistry: submission, evaluation, listing, delisting and per-entry admission.

The module builds one small algorithm center per backend and every test starts from it (snapshot and revert).
BJ-PSB (org 2) owns catalog entry 1 and BJ-CMC (org 3) entry 2. CO-ZHCS (org 6, a company without roles)
submitted algorithms 1-5 and BJ-CMC algorithm 6; BJ-PSB's reviewer evaluated, listed and delisted them so that
each status is at hand (see `Algo`). Algorithms submitted by a test get ids from 7 on.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain_gateway.governance import role_id
from tests.contracts.support import Backend, ContractsChain, entry_input, pass_proposal

REVIEWER, REGISTRAR = role_id("REVIEWER"), role_id("REGISTRAR")
EIB, PSB, CMC, ZHCS = 1, 2, 3, 6
PASS_MARK = 60  # AlgorithmRegistry.PASS_MARK
PSB_ENTRY, CMC_ENTRY, UNKNOWN_ENTRY = 1, 2, 99
# IAlgorithmRegistry.AlgorithmInput as one ABI tuple: name, version, codeHash, outputs.
# inputHash = keccak256(abi.encode(input)) of exactly this type.
ALGORITHM_INPUT_TYPE = "(string,string,bytes32,string)"
ALGORITHM_FIELDS = ("submitterOrg", "status", "score", "codeHash", "reportHash", "inputHash")
OUTPUTS = '{"outputs":[{"name":"count","type":"int","per":"group"}]}'
DELISTED_BY_EVALUATION = "evaluation below pass mark"


class Status(IntEnum):
    NONE = 0
    SUBMITTED = 1
    EVALUATED = 2
    LISTED = 3
    DELISTED = 4


class Algo(IntEnum):
    """The module's algorithms: (id) submitter, what became of it."""

    LISTED = 1  # CO-ZHCS, scored 80, listed
    EVALUATED = 2  # CO-ZHCS, scored 85, not listed yet
    FAILED = 3  # CO-ZHCS, scored 40
    SUBMITTED = 4  # CO-ZHCS, not evaluated
    DELISTED = 5  # CO-ZHCS, scored 90, listed, delisted
    CMC_EVALUATED = 6  # BJ-CMC, scored 70 by BJ-PSB


NEXT_ID = 7
SCORES = {Algo.LISTED: 80, Algo.EVALUATED: 85, Algo.FAILED: 40, Algo.DELISTED: 90, Algo.CMC_EVALUATED: 70}
STATUS_OF = {
    Algo.LISTED: Status.LISTED,
    Algo.EVALUATED: Status.EVALUATED,
    Algo.FAILED: Status.EVALUATED,
    Algo.SUBMITTED: Status.SUBMITTED,
    Algo.DELISTED: Status.DELISTED,
    Algo.CMC_EVALUATED: Status.EVALUATED,
}


def algorithm_input(
    name: str, version: str = "1.0.0", *, code_hash: bytes | None = None, outputs: str = OUTPUTS
) -> tuple[str, str, bytes, str]:
    """An `IAlgorithmRegistry.AlgorithmInput` tuple in ABI order; the code hash derives from name and version."""
    return (name, version, keccak(text=f"code of {name} {version}") if code_hash is None else code_hash, outputs)


def input_hash(input_: tuple[Any, ...]) -> bytes:
    """keccak256(abi.encode(AlgorithmInput)) recomputed from the full input, as an auditor does."""
    return keccak(abi_encode([ALGORITHM_INPUT_TYPE], [tuple(input_)]))


def report_hash(text: str) -> bytes:
    return keccak(text=f"evaluation report: {text}")


def submit(chain: ContractsChain, org: str, input_: tuple[Any, ...]) -> int:
    """Submit `input_` as the main account of `org`; returns the algorithm id."""
    receipt = chain.transact(chain.algorithms.functions.submit(input_), chain.key(org))
    return int(chain.events(receipt, chain.algorithms, "AlgorithmSubmitted")[0]["algorithmId"])


def evaluate(chain: ContractsChain, org: str, algorithm_id: int, score: int, report: str = "ok") -> TxReceipt:
    fn = chain.algorithms.functions.evaluate(algorithm_id, report_hash(report), score)
    return chain.transact(fn, chain.key(org))


def list_(chain: ContractsChain, org: str, algorithm_id: int) -> TxReceipt:
    return chain.transact(chain.algorithms.functions.list(algorithm_id), chain.key(org))


def delist(chain: ContractsChain, org: str, algorithm_id: int, reason: str = "withdrawn from use") -> TxReceipt:
    return chain.transact(chain.algorithms.functions.delist(algorithm_id, reason), chain.key(org))


def admit(chain: ContractsChain, org: str, entry_id: int, algorithm_id: int) -> TxReceipt:
    return chain.transact(chain.algorithms.functions.admit(entry_id, algorithm_id), chain.key(org))


def read(chain: ContractsChain, fn: ContractFunction) -> Any:
    """`fn` called as a view from a named account: eth-tester otherwise lists every account to pick one (slow)."""
    return fn.call({"from": chain.account("CO-ZHCS")})


def algorithm_of(chain: ContractsChain, algorithm_id: int) -> dict[str, Any]:
    values = read(chain, chain.algorithms.functions.getAlgorithm(algorithm_id))
    return dict(zip(ALGORITHM_FIELDS, values, strict=True))


def status_of(chain: ContractsChain, algorithm_id: int) -> Status:
    return Status(algorithm_of(chain, algorithm_id)["status"])


def is_admitted(chain: ContractsChain, entry_id: int, algorithm_id: int) -> bool:
    return bool(read(chain, chain.algorithms.functions.isAdmitted(entry_id, algorithm_id)))


def status_changes(chain: ContractsChain, receipt: TxReceipt) -> list[dict[str, Any]]:
    return chain.events(receipt, chain.algorithms, "AlgorithmStatusChanged")


def change(algorithm_id: int, by_org: int, from_: Status, to: Status, reason: str = "") -> dict[str, Any]:
    return {"algorithmId": algorithm_id, "byOrg": by_org, "fromStatus": from_, "toStatus": to, "reason": reason}


@pytest.fixture(scope="module")
def algorithm_chain(contracts_backend: Backend) -> Iterator[ContractsChain]:
    """The seeded consortium plus this module's two entries and six algorithms; undone when the module is done."""
    chain = contracts_backend.chain
    undo = chain.snapshot()
    assert chain.create_entry("BJ-PSB", entry_input("卡口过车数据 checkpoint counts")) == PSB_ENTRY
    air = entry_input("空气质量 air quality", classification="city-pulse/air")
    assert chain.create_entry("BJ-CMC", air) == CMC_ENTRY
    names = {Algo.LISTED: "grouped_count", Algo.EVALUATED: "mean", Algo.FAILED: "histogram", Algo.SUBMITTED: "top_k"}
    for algo, name in names.items():
        assert submit(chain, "CO-ZHCS", algorithm_input(name)) == algo
    assert submit(chain, "CO-ZHCS", algorithm_input("grouped_count", "0.9.0")) == Algo.DELISTED
    assert submit(chain, "BJ-CMC", algorithm_input("cmc_mean")) == Algo.CMC_EVALUATED
    for algo, score in SCORES.items():
        evaluate(chain, "BJ-PSB", algo, score, algo.name)
    list_(chain, "BJ-PSB", Algo.LISTED)
    list_(chain, "BJ-PSB", Algo.DELISTED)
    delist(chain, "BJ-PSB", Algo.DELISTED, "superseded by 1.0.0")
    assert {algo: status_of(chain, algo) for algo in Algo} == STATUS_OF
    yield chain
    undo()


@pytest.fixture
def alg(algorithm_chain: ContractsChain) -> Iterator[ContractsChain]:
    """The module's algorithm center; whatever the test does is undone after it."""
    restore = algorithm_chain.snapshot()
    yield algorithm_chain
    restore()


class TestSubmission:
    def test_company_without_roles_submits_and_the_event_carries_the_full_input(self, alg: ContractsChain) -> None:
        input_ = algorithm_input("热力图 heatmap", "2.1.0", outputs='{"outputs":[{"name":"cells","type":"grid"}]}')
        receipt = alg.transact(alg.algorithms.functions.submit(input_), alg.key("CO-ZHCS"))

        [event] = alg.events(receipt, alg.algorithms, "AlgorithmSubmitted")
        event["input"] = dict(event["input"])
        assert event == {
            "algorithmId": NEXT_ID,
            "submitterOrg": ZHCS,
            "submitter": alg.account("CO-ZHCS"),
            "input": dict(zip(("name", "version", "codeHash", "outputs"), input_, strict=True)),
            "inputHash": input_hash(input_),
        }
        assert status_changes(alg, receipt) == []  # Submitted is where an algorithm starts, not a move

    def test_submitted_algorithm_is_stored_with_its_pinned_code_hash_and_input_hash(self, alg: ContractsChain) -> None:
        input_ = algorithm_input("median", "1.0.0")
        assert submit(alg, "CO-ZHCS", input_) == NEXT_ID

        assert algorithm_of(alg, NEXT_ID) == {
            "submitterOrg": ZHCS,
            "status": Status.SUBMITTED,
            "score": 0,
            "codeHash": input_[2],
            "reportHash": bytes(32),
            "inputHash": input_hash(input_),
        }
        assert alg.algorithms.functions.idOf("median", "1.0.0").call() == NEXT_ID
        assert alg.algorithms.functions.idOf("median", "1.0.1").call() == 0
        assert alg.algorithms.functions.algorithmCount().call() == NEXT_ID

    @pytest.mark.parametrize("org", ["BJ-EIB", "BJ-CY", "AU-BJ"])
    def test_any_active_member_submits_whatever_its_roles(self, alg: ContractsChain, org: str) -> None:
        assert submit(alg, org, algorithm_input(f"count by {org}")) == NEXT_ID
        assert algorithm_of(alg, NEXT_ID)["submitterOrg"] == alg.org_id(org)

    @pytest.mark.parametrize(
        ("input_", "error"),
        [
            (algorithm_input(""), "AlgorithmEmptyName"),
            (algorithm_input("mean", ""), "AlgorithmEmptyVersion"),
            (algorithm_input("mean", "2.0.0", code_hash=bytes(32)), "AlgorithmZeroCodeHash"),
        ],
        ids=["empty-name", "empty-version", "zero-code-hash"],
    )
    def test_incomplete_input_is_refused(self, alg: ContractsChain, input_: tuple[Any, ...], error: str) -> None:
        alg.assert_reverts(alg.algorithms.functions.submit(input_), alg.key("CO-ZHCS"), error)

    def test_name_and_version_are_submitted_once_whoever_submits(self, alg: ContractsChain) -> None:
        again = alg.algorithms.functions.submit(algorithm_input("mean", "1.0.0", code_hash=keccak(text="other code")))
        for org in ("CO-ZHCS", "BJ-PSB"):
            alg.assert_reverts(again, alg.key(org), "AlgorithmDuplicate", "mean", "1.0.0")
        # Another version of the same name is a new algorithm.
        assert submit(alg, "CO-ZHCS", algorithm_input("mean", "1.0.1")) == NEXT_ID

    def test_name_and_version_are_kept_apart(self, alg: ContractsChain) -> None:
        """Name "mean" version "1.0.0" and name "mean1" version ".0.0" read alike run together: two algorithms."""
        assert submit(alg, "CO-ZHCS", algorithm_input("mean1", ".0.0")) == NEXT_ID
        assert alg.algorithms.functions.idOf("mean", "1.0.0").call() == Algo.EVALUATED

    def test_account_outside_the_consortium_cannot_submit(self, alg: ContractsChain) -> None:
        stranger = alg.spare_key(0)
        fn = alg.algorithms.functions.submit(algorithm_input("anonymous"))
        alg.assert_reverts(fn, stranger, "ConsortiumUnknownAccount", alg.address_of(stranger))

    def test_suspended_member_cannot_submit(self, alg: ContractsChain) -> None:
        pass_proposal(alg, [("Consortium", "setMemberActive", ["CO-ZHCS", False])])
        fn = alg.algorithms.functions.submit(algorithm_input("median"))
        alg.assert_reverts(fn, alg.key("CO-ZHCS"), "ConsortiumOrgInactive", ZHCS)


class TestEvaluation:
    @pytest.mark.parametrize("score", [0, PASS_MARK - 1, PASS_MARK, 100])
    def test_first_evaluation_moves_a_submitted_algorithm_to_evaluated(self, alg: ContractsChain, score: int) -> None:
        receipt = evaluate(alg, "BJ-CMC", Algo.SUBMITTED, score, "first")

        assert alg.events(receipt, alg.algorithms, "AlgorithmEvaluated") == [
            {
                "algorithmId": Algo.SUBMITTED,
                "reviewerOrg": CMC,
                "reviewer": alg.account("BJ-CMC"),
                "reportHash": report_hash("first"),
                "score": score,
                "passed": score >= PASS_MARK,
            }
        ]
        assert status_changes(alg, receipt) == [change(Algo.SUBMITTED, CMC, Status.SUBMITTED, Status.EVALUATED)]
        stored = algorithm_of(alg, Algo.SUBMITTED)
        assert (stored["status"], stored["score"], stored["reportHash"]) == (
            Status.EVALUATED,
            score,
            report_hash("first"),
        )

    def test_re_evaluation_replaces_the_score_and_report_without_a_status_change(self, alg: ContractsChain) -> None:
        receipt = evaluate(alg, "BJ-EMB", Algo.FAILED, 75, "fixed")

        [event] = alg.events(receipt, alg.algorithms, "AlgorithmEvaluated")
        assert (event["reviewerOrg"], event["score"], event["passed"]) == (alg.org_id("BJ-EMB"), 75, True)
        assert status_changes(alg, receipt) == []
        stored = algorithm_of(alg, Algo.FAILED)
        assert (stored["status"], stored["score"], stored["reportHash"]) == (Status.EVALUATED, 75, report_hash("fixed"))

    def test_passing_re_evaluation_keeps_a_listed_algorithm_listed(self, alg: ContractsChain) -> None:
        receipt = evaluate(alg, "BJ-CMC", Algo.LISTED, PASS_MARK, "continual")
        assert status_changes(alg, receipt) == []
        assert (status_of(alg, Algo.LISTED), algorithm_of(alg, Algo.LISTED)["score"]) == (Status.LISTED, PASS_MARK)

    def test_re_evaluation_below_the_pass_mark_delists_a_listed_algorithm_at_once(self, alg: ContractsChain) -> None:
        admit(alg, "BJ-PSB", PSB_ENTRY, Algo.LISTED)
        assert is_admitted(alg, PSB_ENTRY, Algo.LISTED)

        receipt = evaluate(alg, "BJ-CMC", Algo.LISTED, PASS_MARK - 1, "drift found")

        [event] = alg.events(receipt, alg.algorithms, "AlgorithmEvaluated")
        assert (event["score"], event["passed"]) == (PASS_MARK - 1, False)
        assert status_changes(alg, receipt) == [
            change(Algo.LISTED, CMC, Status.LISTED, Status.DELISTED, DELISTED_BY_EVALUATION)
        ]
        assert status_of(alg, Algo.LISTED) == Status.DELISTED
        assert not is_admitted(alg, PSB_ENTRY, Algo.LISTED)

    @pytest.mark.parametrize("org", ["BJ-CY", "CO-ZHCS"])
    def test_only_a_reviewer_evaluates(self, alg: ContractsChain, org: str) -> None:
        fn = alg.algorithms.functions.evaluate(Algo.SUBMITTED, report_hash("x"), 90)
        alg.assert_reverts(fn, alg.key(org), "ConsortiumMissingRole", alg.account(org), REVIEWER)

    def test_approver_account_of_a_reviewer_org_cannot_evaluate(self, alg: ContractsChain) -> None:
        """The role belongs to an account, not to its whole org."""
        approver = alg.seeded.orgs["BJ-PSB"].approvers[0][1]
        fn = alg.algorithms.functions.evaluate(Algo.SUBMITTED, report_hash("x"), 90)
        alg.assert_reverts(fn, approver, "ConsortiumMissingRole", alg.address_of(approver), REVIEWER)

    def test_submitter_org_cannot_evaluate_its_own_algorithm(self, alg: ContractsChain) -> None:
        fn = alg.algorithms.functions.evaluate(Algo.CMC_EVALUATED, report_hash("self"), 100)
        alg.assert_reverts(fn, alg.key("BJ-CMC"), "AlgorithmSelfEvaluation", Algo.CMC_EVALUATED, CMC)

    @pytest.mark.parametrize("score", [101, 255])
    def test_score_above_100_is_refused(self, alg: ContractsChain, score: int) -> None:
        fn = alg.algorithms.functions.evaluate(Algo.SUBMITTED, report_hash("x"), score)
        alg.assert_reverts(fn, alg.key("BJ-PSB"), "AlgorithmBadScore", score)

    def test_delisted_algorithm_cannot_be_evaluated(self, alg: ContractsChain) -> None:
        fn = alg.algorithms.functions.evaluate(Algo.DELISTED, report_hash("again"), 100)
        alg.assert_reverts(
            fn, alg.key("BJ-CMC"), "AlgorithmIllegalStatus", Algo.DELISTED, Status.DELISTED, Status.EVALUATED
        )

    def test_pass_mark_is_published(self, alg: ContractsChain) -> None:
        assert alg.algorithms.functions.PASS_MARK().call() == PASS_MARK


class TestListing:
    def test_evaluated_algorithm_with_a_passing_score_is_listed(self, alg: ContractsChain) -> None:
        receipt = list_(alg, "BJ-CMC", Algo.EVALUATED)
        assert status_changes(alg, receipt) == [change(Algo.EVALUATED, CMC, Status.EVALUATED, Status.LISTED)]
        assert status_of(alg, Algo.EVALUATED) == Status.LISTED

    def test_score_on_the_pass_mark_is_enough_to_list(self, alg: ContractsChain) -> None:
        evaluate(alg, "BJ-PSB", Algo.SUBMITTED, PASS_MARK)
        list_(alg, "BJ-EIB", Algo.SUBMITTED)
        assert status_of(alg, Algo.SUBMITTED) == Status.LISTED

    def test_algorithm_whose_latest_score_fails_is_not_listed(self, alg: ContractsChain) -> None:
        fn = alg.algorithms.functions.list(Algo.FAILED)
        alg.assert_reverts(fn, alg.key("BJ-CMC"), "AlgorithmNotPassed", Algo.FAILED, SCORES[Algo.FAILED], PASS_MARK)
        # A later failing evaluation counts, not an earlier passing one.
        evaluate(alg, "BJ-CMC", Algo.EVALUATED, PASS_MARK - 1)
        fn = alg.algorithms.functions.list(Algo.EVALUATED)
        alg.assert_reverts(fn, alg.key("BJ-CMC"), "AlgorithmNotPassed", Algo.EVALUATED, PASS_MARK - 1, PASS_MARK)

    @pytest.mark.parametrize("algo", [Algo.SUBMITTED, Algo.LISTED, Algo.DELISTED])
    def test_only_an_evaluated_algorithm_can_be_listed(self, alg: ContractsChain, algo: Algo) -> None:
        fn = alg.algorithms.functions.list(algo)
        alg.assert_reverts(fn, alg.key("BJ-CMC"), "AlgorithmIllegalStatus", algo, STATUS_OF[algo], Status.LISTED)

    def test_submitter_org_cannot_list_its_own_algorithm(self, alg: ContractsChain) -> None:
        fn = alg.algorithms.functions.list(Algo.CMC_EVALUATED)
        alg.assert_reverts(fn, alg.key("BJ-CMC"), "AlgorithmSelfEvaluation", Algo.CMC_EVALUATED, CMC)
        list_(alg, "BJ-EMB", Algo.CMC_EVALUATED)  # a reviewer of any other org may
        assert status_of(alg, Algo.CMC_EVALUATED) == Status.LISTED

    def test_only_a_reviewer_lists(self, alg: ContractsChain) -> None:
        fn = alg.algorithms.functions.list(Algo.EVALUATED)
        alg.assert_reverts(fn, alg.key("BJ-CY"), "ConsortiumMissingRole", alg.account("BJ-CY"), REVIEWER)


class TestDelisting:
    @pytest.mark.parametrize("algo", [Algo.SUBMITTED, Algo.EVALUATED, Algo.LISTED])
    def test_any_reviewer_delists_with_a_reason(self, alg: ContractsChain, algo: Algo) -> None:
        reason = "个人信息泄露风险 re-identification risk"
        receipt = delist(alg, "BJ-EMB", algo, reason)
        assert status_changes(alg, receipt) == [
            change(algo, alg.org_id("BJ-EMB"), STATUS_OF[algo], Status.DELISTED, reason)
        ]
        assert status_of(alg, algo) == Status.DELISTED

    def test_reviewer_of_the_submitter_org_may_delist(self, alg: ContractsChain) -> None:
        """Taking an algorithm down is never self-serving, so the submitter's own reviewer may do it."""
        receipt = delist(alg, "BJ-CMC", Algo.CMC_EVALUATED, "withdrawn by its author")
        assert status_changes(alg, receipt) == [
            change(Algo.CMC_EVALUATED, CMC, Status.EVALUATED, Status.DELISTED, "withdrawn by its author")
        ]

    def test_delisting_is_final(self, alg: ContractsChain) -> None:
        key, fns, gone = alg.key("BJ-CMC"), alg.algorithms.functions, Algo.DELISTED
        alg.assert_reverts(
            fns.delist(gone, "again"), key, "AlgorithmIllegalStatus", gone, Status.DELISTED, Status.DELISTED
        )
        alg.assert_reverts(fns.list(gone), key, "AlgorithmIllegalStatus", gone, Status.DELISTED, Status.LISTED)
        alg.assert_reverts(fns.admit(PSB_ENTRY, gone), alg.key("BJ-PSB"), "AlgorithmNotListed", gone, Status.DELISTED)

    def test_only_a_reviewer_delists(self, alg: ContractsChain) -> None:
        fn = alg.algorithms.functions.delist(Algo.LISTED, "no")
        alg.assert_reverts(fn, alg.key("CO-ZHCS"), "ConsortiumMissingRole", alg.account("CO-ZHCS"), REVIEWER)


class TestAdmission:
    def test_registrar_of_the_entry_owner_admits_a_listed_algorithm(self, alg: ContractsChain) -> None:
        receipt = admit(alg, "BJ-PSB", PSB_ENTRY, Algo.LISTED)

        assert alg.events(receipt, alg.algorithms, "AlgorithmAdmitted") == [
            {"entryId": PSB_ENTRY, "algorithmId": Algo.LISTED, "ownerOrg": PSB, "by": alg.account("BJ-PSB")}
        ]
        assert is_admitted(alg, PSB_ENTRY, Algo.LISTED)
        assert not is_admitted(alg, CMC_ENTRY, Algo.LISTED)  # per entry

    def test_withdrawn_admission_no_longer_counts_and_can_be_given_again(self, alg: ContractsChain) -> None:
        admit(alg, "BJ-PSB", PSB_ENTRY, Algo.LISTED)
        fn = alg.algorithms.functions.withdraw(PSB_ENTRY, Algo.LISTED)
        receipt = alg.transact(fn, alg.key("BJ-PSB"))

        assert alg.events(receipt, alg.algorithms, "AlgorithmWithdrawn") == [
            {"entryId": PSB_ENTRY, "algorithmId": Algo.LISTED, "ownerOrg": PSB, "by": alg.account("BJ-PSB")}
        ]
        assert not is_admitted(alg, PSB_ENTRY, Algo.LISTED)
        alg.assert_reverts(fn, alg.key("BJ-PSB"), "AlgorithmNotAdmitted", PSB_ENTRY, Algo.LISTED)
        admit(alg, "BJ-PSB", PSB_ENTRY, Algo.LISTED)
        assert is_admitted(alg, PSB_ENTRY, Algo.LISTED)

    def test_admitting_twice_is_refused(self, alg: ContractsChain) -> None:
        admit(alg, "BJ-PSB", PSB_ENTRY, Algo.LISTED)
        fn = alg.algorithms.functions.admit(PSB_ENTRY, Algo.LISTED)
        alg.assert_reverts(fn, alg.key("BJ-PSB"), "AlgorithmAlreadyAdmitted", PSB_ENTRY, Algo.LISTED)

    def test_algorithm_never_admitted_cannot_be_withdrawn(self, alg: ContractsChain) -> None:
        fn = alg.algorithms.functions.withdraw(PSB_ENTRY, Algo.LISTED)
        alg.assert_reverts(fn, alg.key("BJ-PSB"), "AlgorithmNotAdmitted", PSB_ENTRY, Algo.LISTED)

    @pytest.mark.parametrize("algo", [Algo.SUBMITTED, Algo.EVALUATED, Algo.FAILED, Algo.DELISTED])
    def test_only_a_listed_algorithm_can_be_admitted(self, alg: ContractsChain, algo: Algo) -> None:
        fn = alg.algorithms.functions.admit(PSB_ENTRY, algo)
        alg.assert_reverts(fn, alg.key("BJ-PSB"), "AlgorithmNotListed", algo, STATUS_OF[algo])

    def test_registrar_of_another_org_cannot_admit_or_withdraw(self, alg: ContractsChain) -> None:
        admit(alg, "BJ-PSB", PSB_ENTRY, Algo.LISTED)
        for fn in (alg.algorithms.functions.admit, alg.algorithms.functions.withdraw):
            call = fn(PSB_ENTRY, Algo.LISTED)
            alg.assert_reverts(call, alg.key("BJ-CMC"), "AlgorithmNotEntryOwner", PSB_ENTRY, CMC, PSB)
        assert is_admitted(alg, PSB_ENTRY, Algo.LISTED)

    @pytest.mark.parametrize("org", ["CO-ZHCS", "approver"])
    def test_account_without_registrar_role_cannot_admit(self, alg: ContractsChain, org: str) -> None:
        key = alg.seeded.orgs["BJ-PSB"].approvers[0][1] if org == "approver" else alg.key(org)
        fn = alg.algorithms.functions.admit(PSB_ENTRY, Algo.LISTED)
        alg.assert_reverts(fn, key, "ConsortiumMissingRole", alg.address_of(key), REGISTRAR)

    def test_unknown_entry_reverts_with_the_catalog_error(self, alg: ContractsChain) -> None:
        for fn in (alg.algorithms.functions.admit, alg.algorithms.functions.withdraw):
            call = fn(UNKNOWN_ENTRY, Algo.LISTED)
            alg.assert_reverts(call, alg.key("BJ-PSB"), "CatalogUnknownEntry", UNKNOWN_ENTRY)

    def test_delisting_turns_an_admission_off_at_once_without_a_withdrawal(self, alg: ContractsChain) -> None:
        admit(alg, "BJ-PSB", PSB_ENTRY, Algo.LISTED)
        admit(alg, "BJ-CMC", CMC_ENTRY, Algo.LISTED)

        receipt = delist(alg, "BJ-EMB", Algo.LISTED, "unsafe")

        assert alg.events(receipt, alg.algorithms, "AlgorithmWithdrawn") == []
        assert not is_admitted(alg, PSB_ENTRY, Algo.LISTED)
        assert not is_admitted(alg, CMC_ENTRY, Algo.LISTED)

    def test_unknown_algorithm_is_never_admitted(self, alg: ContractsChain) -> None:
        assert not is_admitted(alg, PSB_ENTRY, NEXT_ID)
        assert not is_admitted(alg, PSB_ENTRY, 0)


class TestUnknownAlgorithm:
    @pytest.mark.parametrize("algorithm_id", [0, NEXT_ID])
    def test_unknown_algorithm_id_reverts_everywhere(self, alg: ContractsChain, algorithm_id: int) -> None:
        fns = alg.algorithms.functions
        calls = [
            (fns.getAlgorithm(algorithm_id), "BJ-PSB"),
            (fns.evaluate(algorithm_id, report_hash("x"), 90), "BJ-PSB"),
            (fns.list(algorithm_id), "BJ-PSB"),
            (fns.delist(algorithm_id, "x"), "BJ-PSB"),
            (fns.admit(PSB_ENTRY, algorithm_id), "BJ-PSB"),
        ]
        for fn, org in calls:
            alg.assert_reverts(fn, alg.key(org), "AlgorithmUnknown", algorithm_id)
