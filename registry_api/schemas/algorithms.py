"""The algorithm center (算法中心) as clients send and read it: algorithms, evaluations, per-entry admissions."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from registry_api.encoding import canonical_json
from registry_api.schemas.common import MAX_ID, StrictModel

__all__ = [
    "ALGORITHM_STATUSES",
    "PASS_MARK",
    "AdmissionCreate",
    "AdmissionPublic",
    "AlgorithmCreate",
    "AlgorithmDetailPublic",
    "AlgorithmPublic",
    "AlgorithmStatus",
    "AlgorithmsPublic",
    "DelistingCreate",
    "EntryAlgorithmPublic",
    "EntryAlgorithmsPublic",
    "EvaluationCreate",
    "EvaluationPublic",
]

PASS_MARK = 60  # AlgorithmRegistry.PASS_MARK: the lowest latest score that may be listed
MAX_OUTPUTS_BYTES = 16_384  # of canonical JSON: the declared outputs travel in the event, every byte costs gas
MAX_REPORT_BYTES = 1_048_576  # a report is hashed here, never stored: 1 MiB is plenty for a test report
_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ZERO_HASH = "0x" + "0" * 64

AlgorithmStatus = Literal["submitted", "evaluated", "listed", "delisted"]
ALGORITHM_STATUSES: tuple[str, ...] = ("submitted", "evaluated", "listed", "delisted")


def _hash32(value: str, what: str) -> str:
    if not _HASH.match(value):
        raise ValueError(f"{what} is 0x and 64 hex digits (a keccak256)")
    if value == _ZERO_HASH:
        raise ValueError(f"{what} must not be zero")
    return value.lower()


class AlgorithmCreate(StrictModel):
    """An algorithm submitted for evaluation: name and version (unique together), code hash, declared outputs."""

    name: str = Field(min_length=1, max_length=100, examples=["grouped_count"])
    version: str = Field(min_length=1, max_length=50, examples=["1.0.0"])
    code_hash: str = Field(
        description="keccak256 of the implementation the zone runs (0x + 64 hex); the zone refuses other code",
        examples=["0x" + "ab" * 32],
    )
    outputs: dict[str, Any] = Field(
        description="the declared outputs, what may leave the zone (JSON object; stored as canonical JSON)",
        examples=[{"type": "table", "columns": ["group", "count"], "min_group_size": 10}],
    )

    @field_validator("code_hash")
    @classmethod
    def _code_hash(cls, value: str) -> str:
        return _hash32(value, "code_hash")

    @field_validator("outputs")
    @classmethod
    def _outputs_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(canonical_json(value).encode())
        except ValueError as exc:
            raise ValueError(f"outputs is not valid JSON: {exc}") from exc
        if size > MAX_OUTPUTS_BYTES:
            raise ValueError(f"outputs takes {size} bytes as canonical JSON; at most {MAX_OUTPUTS_BYTES}")
        return value


class EvaluationCreate(StrictModel):
    """An evaluation (测评): the report itself (hashed here, keccak256) or its hash, and a score 0..100."""

    report: str | dict[str, Any] | None = Field(
        default=None,
        description="the report as text, or as a JSON object (hashed as canonical JSON); it is not stored",
    )
    report_hash: str | None = Field(default=None, description="keccak256 of the report kept elsewhere (0x + 64 hex)")
    score: int = Field(ge=0, le=100, description=f"0..100; {PASS_MARK} or more passes")

    @field_validator("report_hash")
    @classmethod
    def _report_hash(cls, value: str | None) -> str | None:
        return None if value is None else _hash32(value, "report_hash")

    @field_validator("report")
    @classmethod
    def _report_size(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if value is None:
            return None
        text = value if isinstance(value, str) else canonical_json(value)
        if not text.strip() or len(text.encode()) > MAX_REPORT_BYTES:
            raise ValueError(f"a report is 1 byte to {MAX_REPORT_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _one_report(self) -> EvaluationCreate:
        if (self.report is None) == (self.report_hash is None):
            raise ValueError("give the report or its report_hash (exactly one)")
        return self


class DelistingCreate(StrictModel):
    """Why an algorithm is taken down (final: a fixed algorithm comes back as a new version)."""

    reason: str = Field(min_length=1, max_length=1_000, examples=["输出可识别个人信息"])


class AdmissionCreate(StrictModel):
    """A listed algorithm the entry's owner admits for the entry in the data zone."""

    algorithm_id: int = Field(ge=1, le=MAX_ID)


class AlgorithmPublic(BaseModel):
    id: int
    name: str
    version: str
    code_hash: str
    outputs: dict[str, Any]
    input_hash: str = Field(description="keccak256(abi.encode(AlgorithmInput)), as the contract computed it")
    submitter_org: str | None
    submitter: str
    status: str = Field(description="submitted | evaluated | listed | delisted")
    status_reason: str = Field(description="the delisting reason (empty otherwise)")
    score: int | None = Field(description="the latest evaluation's score; null before the first evaluation")
    report_hash: str | None
    passed: bool | None = Field(description=f"the latest score is {PASS_MARK} or more; null before an evaluation")
    submitted_at: str
    updated_at: str
    tx_hash: str = Field(description="of the submission")
    block_number: int = Field(description="of the submission")
    updated_tx_hash: str
    updated_block: int


class AlgorithmsPublic(BaseModel):
    data: list[AlgorithmPublic]
    count: int


class EvaluationPublic(BaseModel):
    reviewer_org: str | None
    reviewer: str
    report_hash: str
    score: int
    passed: bool
    tx_hash: str
    block_number: int
    time: str


class AdmissionPublic(BaseModel):
    """An entry that admits the algorithm (as its owner decided on-chain)."""

    entry_id: int
    entry_title: str | None = Field(description="null when the entry is another org's draft or not mirrored")
    owner_org: str | None
    admitted_by: str
    tx_hash: str
    block_number: int


class AlgorithmDetailPublic(AlgorithmPublic):
    evaluations: list[EvaluationPublic] = Field(description="every evaluation, oldest first")
    admissions: list[AdmissionPublic] = Field(description="the entries that admit it")


class EntryAlgorithmPublic(BaseModel):
    """An admission of an entry with the algorithm's current record."""

    algorithm: AlgorithmPublic
    usable: bool = Field(description="true only while the algorithm is listed: a delisted one counts for nothing")
    admitted_by: str
    tx_hash: str
    block_number: int


class EntryAlgorithmsPublic(BaseModel):
    entry_id: int
    data: list[EntryAlgorithmPublic]
    count: int
    usable: int = Field(description="how many of them are usable (listed)")
