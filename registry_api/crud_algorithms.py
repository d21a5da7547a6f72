"""Reads of the algorithm-center mirror, and the contract arguments of algorithm writes.

Pure lookups for the resolver and the data zone (SQL over the indexer's tables, never the chain):

- `get_algorithm(session, algorithm_id)`: the mirrored algorithm row, or None.
- `admitted_algorithms(session, entry_id, listed_only=True)`: the algorithms an entry admits, by id.
- `is_admitted(session, entry_id, algorithm_id)`: admitted for the entry AND listed, as the contract's
  `isAdmitted` answers. An admission of a delisted algorithm stays in `entry_algorithms` (the owner did not
  withdraw it) but counts for nothing, so delisting takes effect everywhere as soon as it is indexed.

Algorithms and their evaluations are visible to every member; an admission names its entry's title only to
those who may see the entry (drafts only to their owner org).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak
from sqlalchemy import func
from sqlmodel import Session, col, select

from indexer.models import Algorithm, AlgorithmEvaluation, CatalogEntry, EntryAlgorithm, Member
from registry_api.crud_catalog import org_codes
from registry_api.encoding import canonical_json, from_unix
from registry_api.schemas.algorithms import (
    PASS_MARK,
    AdmissionPublic,
    AlgorithmCreate,
    AlgorithmDetailPublic,
    AlgorithmPublic,
    EntryAlgorithmPublic,
    EntryAlgorithmsPublic,
    EvaluationCreate,
    EvaluationPublic,
)

__all__ = [
    "AlgorithmFilter",
    "admitted_algorithms",
    "algorithm_detail",
    "algorithm_input",
    "entry_algorithms",
    "get_algorithm",
    "is_admitted",
    "list_algorithms",
    "report_hash",
]

LISTED = "listed"


# ---------------------------------------------------------------- lookups for the resolver and the zone


def get_algorithm(session: Session, algorithm_id: int) -> Algorithm | None:
    """The mirrored algorithm `algorithm_id` (status, code hash, latest score, ...), or None if there is none."""
    return session.get(Algorithm, algorithm_id)


def admitted_algorithms(session: Session, entry_id: int, listed_only: bool = True) -> list[Algorithm]:
    """The algorithms admitted for `entry_id`, by id; only the listed ones (those that count) unless told otherwise."""
    query = (
        select(Algorithm)
        .join(EntryAlgorithm, col(EntryAlgorithm.algorithm_id) == col(Algorithm.algorithm_id))
        .where(EntryAlgorithm.entry_id == entry_id)
    )
    if listed_only:
        query = query.where(Algorithm.status == LISTED)
    return list(session.exec(query.order_by(col(Algorithm.algorithm_id))).all())


def is_admitted(session: Session, entry_id: int, algorithm_id: int) -> bool:
    """True while `algorithm_id` is admitted for `entry_id` AND listed (the contract's `isAdmitted`)."""
    found = session.exec(
        select(EntryAlgorithm.algorithm_id)
        .join(Algorithm, col(Algorithm.algorithm_id) == col(EntryAlgorithm.algorithm_id))
        .where(
            EntryAlgorithm.entry_id == entry_id,
            EntryAlgorithm.algorithm_id == algorithm_id,
            Algorithm.status == LISTED,
        )
    ).first()
    return found is not None


# ---------------------------------------------------------------- contract arguments


def algorithm_input(body: AlgorithmCreate) -> dict[str, Any]:
    """The contract's AlgorithmInput struct (JSON form); outputs as canonical JSON, as the mirror keeps them."""
    return {
        "name": body.name,
        "version": body.version,
        "codeHash": body.code_hash,
        "outputs": canonical_json(body.outputs),
    }


def report_hash(body: EvaluationCreate) -> str:
    """The evaluation's report hash: given, or keccak256 of the report text (a JSON report as canonical JSON)."""
    if body.report_hash is not None:
        return body.report_hash
    text = body.report if isinstance(body.report, str) else canonical_json(body.report)
    return "0x" + keccak(text=text).hex()


# ---------------------------------------------------------------- API reads


@dataclass(frozen=True)
class AlgorithmFilter:
    """Filters of GET /v1/algorithms; `submitter` is an org code."""

    status: str | None = None
    name: str | None = None
    submitter: str | None = None


def _outputs(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value) if value else {}
    except ValueError:
        return {"value": value}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _public(row: Algorithm, orgs: dict[int, str]) -> AlgorithmPublic:
    return AlgorithmPublic(
        id=row.algorithm_id,
        name=row.name,
        version=row.version,
        code_hash=row.code_hash,
        outputs=_outputs(row.outputs),
        input_hash=row.input_hash,
        submitter_org=orgs.get(row.submitter_org_id),
        submitter=row.submitter,
        status=row.status,
        status_reason=row.status_reason,
        score=row.score,
        report_hash=row.report_hash,
        passed=None if row.score is None else row.score >= PASS_MARK,
        submitted_at=from_unix(row.submitted_at),
        updated_at=from_unix(row.updated_at),
        tx_hash=row.submitted_tx_hash,
        block_number=row.submitted_block,
        updated_tx_hash=row.updated_tx_hash,
        updated_block=row.updated_block,
    )


def _where(query: Any, f: AlgorithmFilter) -> Any:
    if f.status is not None:
        query = query.where(Algorithm.status == f.status)
    if f.name is not None:
        query = query.where(Algorithm.name == f.name)
    if f.submitter is not None:
        org_id = select(Member.org_id).where(Member.code == f.submitter).scalar_subquery()
        query = query.where(col(Algorithm.submitter_org_id) == org_id)
    return query


def list_algorithms(session: Session, f: AlgorithmFilter, limit: int, offset: int) -> tuple[list[AlgorithmPublic], int]:
    """One page of algorithms matching `f`, by id, and how many match in all."""
    total = session.exec(_where(select(func.count()).select_from(Algorithm), f)).one()
    rows = session.exec(
        _where(select(Algorithm), f).order_by(col(Algorithm.algorithm_id)).offset(offset).limit(limit)
    ).all()
    orgs = org_codes(session, {r.submitter_org_id for r in rows})
    return [_public(r, orgs) for r in rows], int(total)


def algorithm_detail(session: Session, algorithm_id: int, viewer_org_id: int | None) -> AlgorithmDetailPublic | None:
    """An algorithm with every evaluation (oldest first) and the entries that admit it, or None."""
    row = get_algorithm(session, algorithm_id)
    if row is None:
        return None
    evaluations = session.exec(
        select(AlgorithmEvaluation)
        .where(AlgorithmEvaluation.algorithm_id == algorithm_id)
        .order_by(col(AlgorithmEvaluation.block_number), col(AlgorithmEvaluation.log_index))
    ).all()
    admissions = session.exec(
        select(EntryAlgorithm, CatalogEntry)
        .outerjoin(CatalogEntry, col(CatalogEntry.entry_id) == col(EntryAlgorithm.entry_id))
        .where(EntryAlgorithm.algorithm_id == algorithm_id)
        .order_by(col(EntryAlgorithm.entry_id))
    ).all()
    org_ids = {
        row.submitter_org_id,
        *(e.reviewer_org_id for e in evaluations),
        *(a.owner_org_id for a, _ in admissions),
    }
    orgs = org_codes(session, org_ids)
    return AlgorithmDetailPublic(
        **_public(row, orgs).model_dump(),
        evaluations=[
            EvaluationPublic(
                reviewer_org=orgs.get(e.reviewer_org_id),
                reviewer=e.reviewer,
                report_hash=e.report_hash,
                score=e.score,
                passed=e.passed,
                tx_hash=e.tx_hash,
                block_number=e.block_number,
                time=from_unix(e.block_time),
            )
            for e in evaluations
        ],
        admissions=[
            AdmissionPublic(
                entry_id=a.entry_id,
                entry_title=entry.title if entry is not None and _visible(entry, viewer_org_id) else None,
                owner_org=orgs.get(a.owner_org_id),
                admitted_by=a.admitted_by,
                tx_hash=a.tx_hash,
                block_number=a.block_number,
            )
            for a, entry in admissions
        ],
    )


def _visible(entry: CatalogEntry, viewer_org_id: int | None) -> bool:
    return entry.status != "draft" or entry.owner_org_id == viewer_org_id


def entry_algorithms(session: Session, entry_id: int, limit: int, offset: int) -> EntryAlgorithmsPublic:
    """One page of the algorithms admitted for `entry_id` (listed or not), each flagged usable when listed."""
    where = EntryAlgorithm.entry_id == entry_id
    total = session.exec(select(func.count()).select_from(EntryAlgorithm).where(where)).one()
    usable = session.exec(
        select(func.count())
        .select_from(EntryAlgorithm)
        .join(Algorithm, col(Algorithm.algorithm_id) == col(EntryAlgorithm.algorithm_id))
        .where(where, Algorithm.status == LISTED)
    ).one()
    rows = session.exec(
        select(EntryAlgorithm, Algorithm)
        .join(Algorithm, col(Algorithm.algorithm_id) == col(EntryAlgorithm.algorithm_id))
        .where(where)
        .order_by(col(EntryAlgorithm.algorithm_id))
        .offset(offset)
        .limit(limit)
    ).all()
    orgs = org_codes(session, {a.submitter_org_id for _, a in rows})
    data = [
        EntryAlgorithmPublic(
            algorithm=_public(algorithm, orgs),
            usable=algorithm.status == LISTED,
            admitted_by=admission.admitted_by,
            tx_hash=admission.tx_hash,
            block_number=admission.block_number,
        )
        for admission, algorithm in rows
    ]
    return EntryAlgorithmsPublic(entry_id=entry_id, data=data, count=int(total), usable=int(usable))
