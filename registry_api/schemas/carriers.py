"""Carriers (感知载体) as clients send and read them: poles and mounts, their usage, and reuse requests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from registry_api.errors import CodedValueError
from registry_api.schemas.common import StrictModel
from registry_api.schemas.devices import Location, LocationPublic, _check_attributes

__all__ = [
    "CARRIER_CODE_PATTERN",
    "CarrierCreate",
    "CarrierDetailPublic",
    "CarrierKind",
    "CarrierPublic",
    "CarriersPublic",
    "ReuseDecisionCreate",
    "ReuseRequestCreate",
    "ReuseRequestPublic",
    "ReuseRequestsPublic",
    "ReuseStatus",
    "UsageUpdate",
]

CARRIER_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # 1..64 bytes on-chain; URL-safe here
MAX_UINT16 = 65_535  # slots and ports are uint16 on-chain
MAX_PURPOSE = 500  # characters
MAX_REASON = 1_000  # characters

CarrierKind = Literal["pole", "mount", "cabinet", "building"]  # ICarrierRegistry.Kind in declaration order
ReuseStatus = Literal["requested", "granted", "refused", "withdrawn"]


class CarrierCreate(StrictModel):
    """A pole, mount, cabinet or building mount of the caller's org, with its mounting slots and network ports."""

    code: str = Field(pattern=CARRIER_CODE_PATTERN, examples=["BJ-POLE-110105-000001"])
    kind: CarrierKind = Field(description="pole (杆), mount (支架/挂点), cabinet (机箱/机柜), building (建筑物挂点)")
    district: int = Field(ge=100_000, le=999_999, examples=[110105], description="6-digit division code")
    location: Location
    slots: int = Field(ge=0, le=MAX_UINT16, description="mounting positions")
    ports: int = Field(ge=0, le=MAX_UINT16, description="network ports")
    attributes: dict[str, Any] = Field(default_factory=dict, examples=[{"height_m": 8, "power": "市电"}])

    _attrs = field_validator("attributes")(_check_attributes)


class UsageUpdate(StrictModel):
    """How many slots and ports the owner's own devices use (at most the capacity)."""

    slots_used: int = Field(ge=0, le=MAX_UINT16)
    ports_used: int = Field(ge=0, le=MAX_UINT16)


class ReuseRequestCreate(StrictModel):
    """A request to mount on another org's carrier: slots and/or ports, and what for."""

    slots: int = Field(default=0, ge=0, le=MAX_UINT16)
    ports: int = Field(default=0, ge=0, le=MAX_UINT16)
    purpose: str = Field(min_length=1, max_length=MAX_PURPOSE, examples=["加装空气质量传感器一台"])

    @model_validator(mode="after")
    def _something(self) -> ReuseRequestCreate:
        if self.slots == 0 and self.ports == 0:
            raise CodedValueError("VALIDATION_ERROR", "ask for at least one slot or port", subpath="slots")
        if not self.purpose.strip():
            raise CodedValueError("VALIDATION_ERROR", "the purpose must not be blank", subpath="purpose")
        return self


class ReuseDecisionCreate(StrictModel):
    """The owner's decision: a grant takes the slots and ports at once; a refusal needs a reason."""

    grant: bool
    reason: str = Field(default="", max_length=MAX_REASON)

    @model_validator(mode="after")
    def _reason(self) -> ReuseDecisionCreate:
        if not self.grant and not self.reason.strip():
            raise CodedValueError("VALIDATION_ERROR", "a refusal needs a reason", subpath="reason")
        return self


class CarrierPublic(BaseModel):
    """A carrier as the mirror holds it; `*_free` is capacity minus use."""

    code: str
    kind: str
    owner_org: str | None
    district: int
    location: LocationPublic
    slots: int
    slots_used: int
    slots_free: int
    ports: int
    ports_used: int
    ports_free: int
    attributes: dict[str, Any]
    attributes_hash: str
    tx_hash: str = Field(description="registration transaction")
    block_number: int = Field(description="registration block")
    updated_block: int
    distance_m: float | None = Field(default=None, description="with near=: metres from the point")


class CarriersPublic(BaseModel):
    data: list[CarrierPublic]
    count: int


class ReuseRequestPublic(BaseModel):
    """A reuse request; seen only by its requester org and the carrier's owner org."""

    id: int
    carrier_code: str
    requester_org: str | None
    owner_org: str | None
    requester: str
    slots: int
    ports: int
    purpose: str
    status: str = Field(description="requested | granted | refused | withdrawn")
    reason: str
    decided_by: str | None = Field(description="the deciding (owner) or withdrawing (requester) account")
    requested_at: str
    closed_at: str | None
    tx_hash: str = Field(description="request transaction")
    block_number: int
    closed_tx_hash: str | None
    closed_block: int | None


class ReuseRequestsPublic(BaseModel):
    data: list[ReuseRequestPublic]
    count: int


class CarrierDetailPublic(CarrierPublic):
    """A carrier with the reuse requests the caller may see (all of them for its owner, else the caller's own)."""

    reuse_requests: list[ReuseRequestPublic]
