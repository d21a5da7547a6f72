"""Catalog entries (感知数据目录) as clients send and read them, their versions, lineage and search facets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from registry_api.encoding import canonical_json
from registry_api.schemas.common import StrictModel

__all__ = [
    "FORM_BITS",
    "SHARE_CONDITIONS",
    "CatalogEntriesPublic",
    "CatalogEntryCreate",
    "CatalogEntryPublic",
    "CatalogEntryUpdate",
    "CatalogFacets",
    "CatalogStatusChange",
    "CatalogVersionPublic",
    "CatalogVersionsPublic",
    "FacetCount",
    "LineagePublic",
    "LineageRef",
]

# IDataCatalog.ShareCondition and the form bits of DataCatalog (FORM_RAW | FORM_DESENSITIZED | FORM_RESULT_ONLY).
SHARE_CONDITIONS = ("unconditional", "conditional", "not_shareable")
FORM_BITS = {"raw": 1, "desensitized": 2, "result_only": 4}
MAX_SCHEMA_BYTES = 16_384  # of canonical JSON: the schema travels in the event, every byte costs gas
MAX_LINEAGE = 200  # device codes or upstream entries per entry

ShareCondition = Literal["unconditional", "conditional", "not_shareable"]
Form = Literal["raw", "desensitized", "result_only"]
EntryStatus = Literal["draft", "published", "deprecated"]


class CatalogEntryBase(StrictModel):
    title: str = Field(min_length=1, max_length=200, examples=["卡口过车流量（小时统计）"])
    classification: str = Field(min_length=1, max_length=200, examples=["城市影像/交通卡口"])
    grade: int = Field(ge=1, le=4, description="sensitivity grade, 1 (lowest) .. 4 (highest)")
    share_condition: ShareCondition = Field(description="unconditional | conditional | not_shareable")
    forms: list[Form] = Field(min_length=1, description="forms the entry may be shared in")
    schema_: dict[str, Any] = Field(
        alias="schema", description="fields, types and per-field masking rules (JSON object)", examples=[{"fields": []}]
    )
    device_codes: list[str] = Field(default_factory=list, max_length=MAX_LINEAGE, description="producing devices")
    upstream: list[int] = Field(default_factory=list, max_length=MAX_LINEAGE, description="entries this derives from")

    @field_validator("forms")
    @classmethod
    def _unique_forms(cls, value: list[str]) -> list[str]:
        return sorted(set(value), key=lambda f: FORM_BITS[f])

    @field_validator("schema_")
    @classmethod
    def _schema_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(canonical_json(value).encode())
        except ValueError as exc:
            raise ValueError(f"schema is not valid JSON: {exc}") from exc
        if size > MAX_SCHEMA_BYTES:
            raise ValueError(f"schema takes {size} bytes as canonical JSON; at most {MAX_SCHEMA_BYTES}")
        return value

    @field_validator("upstream")
    @classmethod
    def _positive_ids(cls, value: list[int]) -> list[int]:
        if any(v < 1 or v >= 2**64 for v in value):
            raise ValueError("upstream entry ids are positive 64-bit integers")
        return value

    @field_validator("device_codes")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        if any(not code or len(code) > 64 for code in value):
            raise ValueError("device codes have 1..64 characters")
        return value


class CatalogEntryCreate(CatalogEntryBase):
    """A new entry (version 1.0) of the caller's org, as a draft or published at once."""

    publish: bool = Field(default=False, description="publish at once (else a draft)")


class CatalogEntryUpdate(CatalogEntryBase):
    """A new version of an entry: the whole record again; `major` makes it major+1.0, else major.minor+1."""

    major: bool = Field(default=False, description="a major change (e.g. incompatible schema)")


class CatalogStatusChange(StrictModel):
    status: Literal["published", "deprecated"] = Field(description="draft -> published -> deprecated")


class CatalogEntryPublic(BaseModel):
    id: int
    owner_org: str | None
    title: str
    classification: str
    grade: int
    share_condition: str
    forms: list[str]
    schema_: dict[str, Any] = Field(serialization_alias="schema")
    schema_hash: str
    device_codes: list[str]
    upstream: list[int]
    status: str
    version: str = Field(examples=["1.0"])
    version_hash: str
    tx_hash: str = Field(description="of the creation")
    block_number: int = Field(description="of the creation")
    updated_tx_hash: str
    updated_block: int


class FacetCount(BaseModel):
    value: str
    count: int


class CatalogFacets(BaseModel):
    """Counts over every entry matching the query and filters (not just the page)."""

    classification: list[FacetCount]
    grade: list[FacetCount]
    owner: list[FacetCount]
    share_condition: list[FacetCount]
    form: list[FacetCount]


class CatalogEntriesPublic(BaseModel):
    data: list[CatalogEntryPublic]
    count: int
    facets: CatalogFacets


class CatalogVersionPublic(BaseModel):
    version: str
    major: int
    minor: int
    title: str
    classification: str
    grade: int
    share_condition: str
    forms: list[str]
    schema_: dict[str, Any] = Field(serialization_alias="schema")
    schema_hash: str
    device_codes: list[str]
    upstream: list[int]
    version_hash: str
    tx_hash: str
    block_number: int
    time: str


class CatalogVersionsPublic(BaseModel):
    data: list[CatalogVersionPublic]
    count: int


class LineageRef(BaseModel):
    kind: Literal["device", "entry"]
    ref: str = Field(description="device code, or entry id as text")
    title: str | None = Field(default=None, description="the entry's title, or the device's type")
    owner_org: str | None = None
    status: str | None = Field(default=None, description="null when the mirror does not (yet) hold it")


class LineagePublic(BaseModel):
    """Where an entry's data comes from (devices, upstream entries) and which entries derive from it."""

    id: int
    devices: list[LineageRef]
    upstream: list[LineageRef]
    downstream: list[LineageRef]
