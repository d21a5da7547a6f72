"""Joint review (联审) as clients send and read it: projects of planned devices, the review view, decisions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from registry_api.errors import CodedValueError
from registry_api.schemas.common import StrictModel
from registry_api.schemas.devices import DeviceCreate, LocationPublic

__all__ = [
    "DEFAULT_RADIUS_M",
    "MAX_PROJECT_DEVICES",
    "MAX_RADIUS_M",
    "REVIEW_DOMAINS",
    "NearbyCarrierPublic",
    "NearbyDevicePublic",
    "PlannedDeviceCreate",
    "PlannedDevicePublic",
    "RefusalCreate",
    "ReviewCreate",
    "ReviewDetailPublic",
    "ReviewDomain",
    "ReviewPublic",
    "ReviewStatus",
    "ReviewsPublic",
]

MAX_PROJECT_DEVICES = 200  # ReviewBoard.MAX_DEVICES: an approval registers them all in one transaction
MAX_TITLE = 200  # characters
MAX_REASON = 1_000  # characters
MAX_CARRIER_CODE = 64  # CarrierRegistry: codes of 1..64 bytes
DEFAULT_RADIUS_M = 100.0  # metres around each planned device in the review view
MAX_RADIUS_M = 5_000.0

# IReviewBoard.Domain in declaration order, and who leads each (set by the consortium, see GET /v1/reviews/{id}).
ReviewDomain = Literal["imagery", "city_management", "emergency", "other"]
REVIEW_DOMAINS: tuple[str, ...] = ("imagery", "city_management", "emergency", "other")
ReviewStatus = Literal["filed", "approved", "refused", "withdrawn"]


class PlannedDeviceCreate(DeviceCreate):
    """A device the project plans to build, as POST /v1/devices takes it with status planned.

    `attributes.carrier` (optional) names the carrier (GET /v1/carriers) it will be mounted on.
    """

    status: Literal["planned"] = "planned"

    @field_validator("status", mode="before")
    @classmethod
    def _planned(cls, value: Any) -> Any:
        if value != "planned":
            raise CodedValueError(
                "NOT_PLANNED", "a project plans new devices: status is planned (existing ones go to POST /v1/devices)"
            )
        return value

    @field_validator("attributes")
    @classmethod
    def _carrier(cls, value: dict[str, Any]) -> dict[str, Any]:
        carrier = value.get("carrier")
        if carrier is not None and (not isinstance(carrier, str) or not 0 < len(carrier) <= MAX_CARRIER_CODE):
            raise CodedValueError(
                "VALIDATION_ERROR", f"carrier is a carrier code of 1..{MAX_CARRIER_CODE} characters", subpath="carrier"
            )
        return value


class ReviewCreate(StrictModel):
    """A construction project of planned front ends, filed for joint review by the lead org of its domain."""

    domain: ReviewDomain = Field(
        description="imagery (public security), city_management (city management commission), emergency "
        "(emergency bureau) or other (economy and information bureau)"
    )
    title: str = Field(min_length=1, max_length=MAX_TITLE, examples=["朝阳区望京街道新建视频监控点位"])
    devices: list[PlannedDeviceCreate] = Field(min_length=1, max_length=MAX_PROJECT_DEVICES)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the title must not be blank")
        return value


class RefusalCreate(StrictModel):
    """Why the lead org refuses the project (e.g. existing devices of the same type nearby)."""

    reason: str = Field(min_length=1, max_length=MAX_REASON, examples=["30 米内已有同类摄像机，重复建设"])

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the reason must not be blank")
        return value


class ReviewPublic(BaseModel):
    """A project as the mirror holds it; times are block times (ISO 8601, UTC)."""

    id: int
    domain: str
    title: str
    status: str = Field(description="filed | approved | refused | withdrawn")
    applicant_org: str | None
    applicant: str = Field(description="the filing account")
    lead_org: str | None = Field(description="the domain's lead org now: who decides a filed project")
    reviewer_org: str | None = Field(description="the lead org that decided")
    reviewer: str | None
    reason: str = Field(description="the refusal's reason")
    device_count: int
    devices_hash: str = Field(description="keccak256(abi.encode(devices)) as filed; the approval re-sends them")
    filed_at: str
    closed_at: str | None = Field(description="decision or withdrawal")
    tx_hash: str = Field(description="filing transaction")
    block_number: int = Field(description="filing block")
    closed_tx_hash: str | None
    closed_block: int | None


class ReviewsPublic(BaseModel):
    data: list[ReviewPublic]
    count: int


class NearbyDevicePublic(BaseModel):
    """An existing device of the same type near a planned one (retired and replaced ones are left out)."""

    code: str
    type: str | None
    owner_org: str | None
    status: str
    location: LocationPublic
    distance_m: float


class NearbyCarrierPublic(BaseModel):
    """A carrier with a spare mounting slot near a planned device (POST /v1/carriers/{code}/reuse-requests)."""

    code: str
    kind: str
    owner_org: str | None
    location: LocationPublic
    distance_m: float
    slots_free: int
    ports_free: int


class PlannedDevicePublic(BaseModel):
    """A planned device exactly as filed, with what already exists around it."""

    position: int
    code: str
    type: str | None
    type_id: int
    district: int
    location: LocationPublic
    built_at: str
    attributes: dict[str, Any]
    attributes_hash: str
    carrier: str | None = Field(description="the carrier named in attributes.carrier")
    on_ledger: bool = Field(description="a device with this code is on the ledger (after approval, or filed meanwhile)")
    nearby_devices: list[NearbyDevicePublic] = Field(description="nearest first, at most 20")
    nearby_devices_count: int
    nearby_carriers: list[NearbyCarrierPublic] = Field(description="with a spare slot, nearest first, at most 10")


class ReviewDetailPublic(ReviewPublic):
    """THE review view: the project, its planned devices and, for each, existing same-type devices and carriers
    with spare capacity within `radius_m`."""

    radius_m: float
    devices_with_neighbours: int = Field(description="planned devices with an existing same-type device in radius")
    devices: list[PlannedDevicePublic]
