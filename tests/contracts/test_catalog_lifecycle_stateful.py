"""Catalog entries as a state machine: random creations, revisions and status changes by members of three orgs.

Hypothesis keeps a model of every entry (owner org, status, version, hash of the current record) and predicts
each attempt's outcome in the contract's order of checks; after every step the chain must agree, every entry
keeps the owner that created it, and its version (major.minor) has only ever gone up. Actors include a member of
the owner org without REGISTRAR and a member org without any role: neither may change anything.
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

from tests.contracts.stateful import (
    ANVIL_ONLY,
    ChainMachine,
    Outcome,
    machine_settings,
    read_all,
    run_machine,
    run_predicted,
)
from tests.contracts.support import ContractsChain, entry_input
from tests.contracts.test_data_catalog import (
    LEGAL_MOVES,
    REGISTRAR,
    Condition,
    Status,
    change,
    expected_version,
    record_of,
    status_changes,
    version_hash,
    versioned,
)

ORG_IDS = {"BJ-PSB": 2, "BJ-CMC": 3, "CO-ZHCS": 6}
# actor -> (org, holds REGISTRAR); "BJ-PSB/approver" is an account of BJ-PSB with APPROVER only.
ACTORS = {"BJ-PSB": ("BJ-PSB", True), "BJ-CMC": ("BJ-CMC", True), "BJ-PSB/approver": ("BJ-PSB", False)}
ACTORS |= {"CO-ZHCS": ("CO-ZHCS", False)}
MAX_ENTRIES = 4
MACHINE_SETTINGS = machine_settings(max_examples=8, steps=25)


@dataclass
class Entry:
    """What the machine expects of one entry."""

    owner: str
    status: Status
    major: int = 1
    minor: int = 0
    version_hash: bytes = b""


class CatalogLifecycleMachine(ChainMachine):
    def __init__(self) -> None:
        super().__init__()
        self.first_id = int(self.chain.catalog.functions.entryCount().call()) + 1
        self.model: dict[int, Entry] = {}
        self.seen_versions: dict[int, tuple[int, int]] = {}
        self.revision = 0

    # ------------------------------------------------------------ rules

    @initialize(psb_publishes=st.booleans(), cmc_publishes=st.booleans())
    def one_entry_per_registrar_org(self, psb_publishes: bool, cmc_publishes: bool) -> None:
        """Every walk starts with an entry of each registrar org, so attempts meet entries from the first step."""
        self.create("BJ-PSB", psb_publishes, 3, Condition.CONDITIONAL)
        self.create("BJ-CMC", cmc_publishes, 2, Condition.UNCONDITIONAL)

    @precondition(lambda self: len(self.model) < MAX_ENTRIES)
    @rule(
        actor=st.sampled_from(sorted(ACTORS)),
        publish=st.booleans(),
        grade=st.integers(1, 4),
        condition=st.sampled_from(list(Condition)),
    )
    def create(self, actor: str, publish: bool, grade: int, condition: Condition) -> None:
        input_ = entry_input(f"entry {len(self.model)}", grade=grade, share_condition=condition)
        fn = self.chain.catalog.functions.createEntry(input_, publish)
        org, registrar = ACTORS[actor]
        expected: Outcome = None if registrar else ("ConsortiumMissingRole", (self._address(actor), REGISTRAR))
        receipt = run_predicted(self.chain, fn, self._key(actor), expected)
        if receipt is None:
            return
        entry_id = self.first_id + len(self.model)
        status = Status.PUBLISHED if publish else Status.DRAFT
        assert versioned(self.chain, receipt) == [expected_version(entry_id, ORG_IDS[org], 1, 0, input_)]
        changes = [change(entry_id, ORG_IDS[org], Status.NONE, Status.DRAFT)]
        if publish:
            changes.append(change(entry_id, ORG_IDS[org], Status.DRAFT, Status.PUBLISHED))
        assert status_changes(self.chain, receipt) == changes
        self.model[entry_id] = Entry(org, status, version_hash=version_hash(record_of(input_)))

    @rule(data=st.data(), actor=st.sampled_from(sorted(ACTORS)), major=st.booleans(), grade=st.integers(1, 4))
    def revise(self, data: st.DataObject, actor: str, major: bool, grade: int, entry_id: int | None = None) -> None:
        """Any actor revises any entry (or one that does not exist): the outcome is the one the model predicts."""
        if entry_id is None:
            entry_id = data.draw(self._entry_ids(), label="entry")
        self.revision += 1
        input_ = entry_input(f"revision {self.revision}", grade=grade)
        fn = self.chain.catalog.functions.reviseEntry(entry_id, input_, major)
        expected = self._predict_owned(actor, entry_id)
        entry = self.model.get(entry_id)
        if expected is None and entry is not None and entry.status == Status.DEPRECATED:
            expected = ("CatalogIllegalStatus", (entry_id, Status.DEPRECATED, Status.DEPRECATED))
        receipt = run_predicted(self.chain, fn, self._key(actor), expected)
        if receipt is None or entry is None:
            return
        entry.major, entry.minor = (entry.major + 1, 0) if major else (entry.major, entry.minor + 1)
        entry.version_hash = version_hash(record_of(input_))
        owner_id = ORG_IDS[entry.owner]
        assert versioned(self.chain, receipt) == [
            expected_version(entry_id, owner_id, entry.major, entry.minor, input_)
        ]
        assert status_changes(self.chain, receipt) == []

    @rule(data=st.data(), actor=st.sampled_from(sorted(ACTORS)), to=st.sampled_from(list(Status)))
    def set_status(self, data: st.DataObject, actor: str, to: Status, entry_id: int | None = None) -> None:
        """Any actor moves any entry to any status: only the owner's registrars, only along the legal moves."""
        if entry_id is None:
            entry_id = data.draw(self._entry_ids(), label="entry")
        expected = self._predict_owned(actor, entry_id)
        entry = self.model.get(entry_id)
        if expected is None and entry is not None and (entry.status, to) not in LEGAL_MOVES:
            expected = ("CatalogIllegalStatus", (entry_id, entry.status, to))
        receipt = run_predicted(
            self.chain, self.chain.catalog.functions.setStatus(entry_id, to), self._key(actor), expected
        )
        if receipt is None or entry is None:
            return
        assert status_changes(self.chain, receipt) == [change(entry_id, ORG_IDS[entry.owner], entry.status, to)]
        entry.status = to

    @rule(data=st.data(), major=st.booleans())
    def owner_acts(self, data: st.DataObject, major: bool) -> None:
        """The owner's registrar revises an entry or moves it along a legal move: both must succeed.

        Random attempts mostly fail, so without this walks would seldom reach later versions and statuses.
        """
        entry_id = data.draw(st.sampled_from(sorted(self.model)), label="entry")
        entry = self.model[entry_id]
        moves = sorted(to for (from_, to) in LEGAL_MOVES if from_ == entry.status)
        if entry.status != Status.DEPRECATED and data.draw(st.booleans(), label="revise"):
            self.revise(data, entry.owner, major, grade=4, entry_id=entry_id)
        elif moves:
            self.set_status(data, entry.owner, data.draw(st.sampled_from(moves), label="to"), entry_id=entry_id)

    # ------------------------------------------------------------ the model

    def _entry_ids(self) -> st.SearchStrategy[int]:
        """An entry of the model, or the next id (no such entry yet)."""
        return st.sampled_from([*sorted(self.model), self.first_id + len(self.model)])

    def _predict_owned(self, actor: str, entry_id: int) -> Outcome:
        """The first failing check of DataCatalog._owned, or None."""
        org, registrar = ACTORS[actor]
        if not registrar:
            return ("ConsortiumMissingRole", (self._address(actor), REGISTRAR))
        entry = self.model.get(entry_id)
        if entry is None:
            return ("CatalogUnknownEntry", (entry_id,))
        if entry.owner != org:
            return ("CatalogNotOwner", (entry_id, ORG_IDS[org], ORG_IDS[entry.owner]))
        return None

    def _key(self, actor: str) -> str:
        if actor == "BJ-PSB/approver":
            return self.chain.seeded.orgs["BJ-PSB"].approvers[0][1]
        return self.chain.key(actor)

    def _address(self, actor: str) -> str:
        return self.chain.address_of(self._key(actor))

    @invariant()
    def chain_matches_model(self) -> None:
        catalog = self.chain.catalog.functions
        ids = sorted(self.model)
        count, *entries = read_all(self.chain, [catalog.entryCount(), *(catalog.getEntry(i) for i in ids)])
        assert count == self.first_id - 1 + len(self.model)
        for entry_id, stored in zip(ids, entries, strict=True):
            m = self.model[entry_id]
            owner, status, major, minor, stored_hash = stored[0], stored[4], stored[5], stored[6], stored[7]
            assert (owner, status, major, minor, stored_hash) == (
                ORG_IDS[m.owner],
                m.status,
                m.major,
                m.minor,
                m.version_hash,
            ), entry_id
            # versions only go up: checked on the chain's own numbers, not only against the model
            assert (major, minor) >= self.seen_versions.get(entry_id, (1, 0)), entry_id
            self.seen_versions[entry_id] = (major, minor)


@ANVIL_ONLY
def test_random_catalog_walks_keep_one_owner_legal_statuses_and_rising_versions(net: ContractsChain) -> None:
    run_machine(CatalogLifecycleMachine, net, MACHINE_SETTINGS)
