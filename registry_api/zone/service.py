"""The data zone as a service: jobs (resolve, run, release, spend, receipt) and rows behind a capability token.

A job, `ZoneService.run_job`:

1. the resolver decides `compute` with the algorithm and epsilon (grant, admission, budget: deny -> ZoneDenied);
2. the algorithm's code hash as mirrored from the chain must be a built-in implementation's
   (ALGORITHM_NOT_IMPLEMENTED otherwise), and the entry's classification must have a dataset here;
3. the implementation runs on the dataset; only `disclosure.release` output leaves: groups smaller than the
   policy's k suppressed, OpenDP noise spending epsilon;
4. ONE transaction spends the grant's budget and writes the receipt and the job. The spend is a conditional
   UPDATE of the grant's `privacy_budgets` row (`spent + epsilon <= budget`): on PostgreSQL it takes the row's
   lock and re-checks the condition on the latest committed value when a concurrent job held it, on SQLite
   the database's single writer does the same, so concurrent jobs can never spend more than the budget.
   A job that loses the race is refused (BUDGET_EXHAUSTED) and its result is never shown.

The owner org computes on its own entry without a budget (it may read the rows anyway), through the same
disclosure control. Rows (`ZoneService.rows`) are served only against a capability token verified offline as
a data holder would (`registry_api.capability.verify_capability`) and, unless the token is for the raw form,
desensitized per the entry's schema (`registry_api.zone.masking`).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak
from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel

from registry_api.auth import Principal
from registry_api.capability import CapabilityError, SigningKeys, verify_capability
from registry_api.encoding import canonical_json
from registry_api.models import PrivacyBudget, ZoneJob
from registry_api.receipts import ReceiptFields, StoredReceipt, append_receipt
from registry_api.resolver import MICROS, Resolution, Resolver, ResolveRequest, micros
from registry_api.zone.algorithms import implementation_for
from registry_api.zone.datasets import dataset_for
from registry_api.zone.disclosure import Released, release
from registry_api.zone.errors import BudgetRefused, UnknownAlgorithm, ZoneError
from registry_api.zone.masking import desensitize
from registry_api.zone.policy import admit_epsilon

__all__ = [
    "DataRows",
    "JobOutcome",
    "JobRequest",
    "ZoneDenied",
    "ZoneService",
    "create_zone_tables",
    "spend_budget",
]

MAX_ROWS_PAGE = 1_000


class ZoneDenied(ZoneError):
    """The resolver denied the job (or its budget ran out at the spend): `code` is the deny reason."""

    def __init__(self, resolution: Resolution, code: str | None = None, message: str | None = None) -> None:
        decision = resolution.decision
        super().__init__(message or decision.message, code=code or decision.reason or "DENIED")
        self.resolution = resolution


@dataclass(frozen=True)
class JobRequest:
    entry_id: int
    algorithm_id: int
    params: dict[str, Any]
    epsilon: float | None = None  # None: the policy's per-job maximum


@dataclass(frozen=True)
class JobOutcome:
    job: ZoneJob
    released: Released
    resolution: Resolution
    receipt: StoredReceipt
    remaining_epsilon: float | None  # None for the owner (no budget)


@dataclass(frozen=True)
class DataRows:
    entry_id: int
    form: str
    rows: list[dict[str, Any]]
    count: int
    claims: dict[str, Any]


def create_zone_tables(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine, tables=[PrivacyBudget.__table__, ZoneJob.__table__])  # type: ignore[list-item]


_BUDGETS = PrivacyBudget.__table__  # type: ignore[attr-defined]


def spend_budget(conn: Connection, grant_id: int, entry_id: int, epsilon_micros: int, budget_micros: int) -> int | None:
    """Spend `epsilon_micros` of grant `grant_id`'s budget in the caller's transaction: the micro-epsilon spent
    after it, or None (nothing spent) if it would overrun the budget.

    The conditional UPDATE locks the grant's row until the caller commits (see the module docstring).
    """
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    now = time.time()
    conn.execute(
        dialect_insert(_BUDGETS)
        .values(grant_id=grant_id, entry_id=entry_id, spent_micros=0, jobs=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["grant_id"])
    )
    after = conn.execute(
        update(_BUDGETS)
        .where(_BUDGETS.c.grant_id == grant_id, _BUDGETS.c.spent_micros + epsilon_micros <= budget_micros)
        .values(spent_micros=_BUDGETS.c.spent_micros + epsilon_micros, jobs=_BUDGETS.c.jobs + 1, updated_at=now)
        .returning(_BUDGETS.c.spent_micros)
    ).scalar_one_or_none()
    return None if after is None else int(after)


class ZoneService:
    """Runs jobs and serves rows for the data zone (see the module docstring)."""

    def __init__(self, engine: Engine, resolver: Resolver, masking_secret: bytes) -> None:
        self.engine = engine
        self.resolver = resolver
        self.masking_secret = masking_secret

    @property
    def keys(self) -> SigningKeys:
        return self.resolver.keys

    # ------------------------------------------------------------ jobs

    def run_job(self, principal: Principal, request: JobRequest) -> JobOutcome:
        """Resolve, run, release under disclosure control, spend and record (ZoneError subclasses on refusal)."""
        asked = ResolveRequest(request.entry_id, "compute", request.algorithm_id, request.epsilon)
        resolution = self.resolver.decide(principal, asked)
        decision, entry, facts = resolution.decision, resolution.entry, resolution.facts
        if not decision.permit:
            raise ZoneDenied(resolution)
        policy = decision.policy
        assert policy is not None and facts.algorithm is not None  # compute decisions carry both
        epsilon = request.epsilon if request.epsilon is not None else policy.max_epsilon_per_job
        grant = decision.grant
        if grant is not None:
            try:
                admit_epsilon(policy, epsilon, grant.spent_micros / MICROS)
            except BudgetRefused as exc:
                if exc.code == "PRIVACY_BUDGET_EXHAUSTED":
                    raise ZoneDenied(resolution, "BUDGET_EXHAUSTED", exc.message) from exc
                raise
        try:
            implementation = implementation_for(facts.algorithm.code_hash)
        except UnknownAlgorithm as exc:
            raise ZoneError(
                f"algorithm {facts.algorithm.algorithm_id} is listed with code hash {facts.algorithm.code_hash}, "
                "which no built-in implementation of this zone has",
                code="ALGORITHM_NOT_IMPLEMENTED",
                field="algorithm_id",
            ) from exc
        dataset = dataset_for(entry.classification, entry.entry_id)
        if dataset is None:
            raise ZoneError(
                f"the zone keeps no data for catalog entry {entry.entry_id} ({entry.classification})",
                code="DATASET_NOT_AVAILABLE",
                field="entry_id",
            )
        raw = implementation.execute(dataset, request.params)
        released = release(raw, k=policy.k, epsilon=epsilon)
        return self._record(principal, request, resolution, released, epsilon)

    def _record(
        self, principal: Principal, request: JobRequest, resolution: Resolution, released: Released, epsilon: float
    ) -> JobOutcome:
        decision, entry, facts = resolution.decision, resolution.entry, resolution.facts
        assert facts.algorithm is not None and decision.policy is not None
        grant = decision.grant
        result = released.as_dict()
        result_json = canonical_json(result)
        result_hash = "0x" + keccak(result_json.encode()).hex()
        job_id = uuid.uuid4().hex
        spent = micros(epsilon)
        budget = micros(decision.policy.epsilon_budget)
        now = time.time()
        remaining = None
        with self.engine.begin() as conn:
            if grant is not None:
                after = spend_budget(conn, grant.grant_id, entry.entry_id, spent, budget)
                if after is None:  # a concurrent job spent it first: nothing is written, nothing released
                    raise ZoneDenied(
                        resolution,
                        "BUDGET_EXHAUSTED",
                        f"grant {grant.grant_id}'s privacy budget cannot cover epsilon {epsilon:g} any more",
                    )
                remaining = max(0, budget - after) / MICROS
            receipt = append_receipt(
                conn.connection.cursor(),  # the same DBAPI connection, so the same transaction
                conn.dialect.name,
                ReceiptFields(
                    kind="job",
                    account=principal.account,
                    org_code=principal.org_code,
                    entry_id=entry.entry_id,
                    entry_version_hash=entry.version_hash,
                    action="compute",
                    form=decision.form,
                    grant_id=grant.grant_id if grant else 0,
                    algorithm_code_hash=facts.algorithm.code_hash,
                    result_hash=result_hash,
                    epsilon_micros=spent,
                    decided_block=facts.block_number,
                    issued_at=int(now),
                    ref=job_id,
                ),
            )
            job = ZoneJob(
                job_id=job_id,
                org_code=principal.org_code,
                account=principal.account,
                entry_id=entry.entry_id,
                entry_version_hash=entry.version_hash,
                algorithm_id=facts.algorithm.algorithm_id,
                algorithm_code_hash=facts.algorithm.code_hash,
                params=canonical_json(request.params),
                grant_id=grant.grant_id if grant else 0,
                epsilon_micros=spent,
                result=result_json,
                result_hash=result_hash,
                suppressed=released.suppressed_groups,
                receipt_id=receipt.receipt_id,
                decided_block=facts.block_number,
                created_at=now,
            )
            conn.execute(insert(ZoneJob.__table__), job.model_dump())  # type: ignore[attr-defined]
        return JobOutcome(job, released, resolution, receipt, remaining)

    def get_job(self, principal: Principal, job_id: str) -> ZoneJob | None:
        """The job `job_id` if it is the caller org's (others' jobs do not exist for it)."""
        with Session(self.engine) as session:
            job = session.get(ZoneJob, job_id)
        if job is None or job.org_code != principal.org_code:
            return None
        return job

    # ------------------------------------------------------------ rows

    def rows(self, principal: Principal, entry_id: int, form: str, token: str, limit: int, offset: int) -> DataRows:
        """A page of an entry's rows in `form`, if the capability token allows it (checked as a data holder does)."""
        claims = verify_capability(token, self.keys.jwks(), issuer=self.resolver.issuer, entry_id=entry_id, form=form)
        if claims.get("sub") != principal.org_code:
            raise CapabilityError("TOKEN_NOT_YOURS", f"the token was issued to {claims.get('sub')}, not to you")
        facts = self.resolver.facts(principal, ResolveRequest(entry_id, "read_desensitized"))
        entry = facts.entry
        dataset = dataset_for(entry.classification, entry.entry_id) if entry is not None else None
        if entry is None or dataset is None:
            raise ZoneError(f"the zone keeps no data for catalog entry {entry_id}", code="DATASET_NOT_AVAILABLE")
        page = dataset.rows[offset : offset + limit]
        if form == "raw":
            rows = [dict(r) for r in page]
        else:
            schema = json.loads(entry.schema) if entry.schema else {}
            rows = desensitize(page, schema if isinstance(schema, dict) else {}, self.masking_secret)
        return DataRows(entry_id, form, rows, len(dataset), claims)
