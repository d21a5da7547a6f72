"""Devices (sensing front ends) as clients send and read them."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from registry_api.encoding import canonical_json, to_unix
from registry_api.errors import CodedValueError
from registry_api.schemas.common import StrictModel

__all__ = [
    "MAX_ATTRIBUTES_BYTES",
    "MAX_BATCH",
    "DeviceBatchCreate",
    "DeviceCreate",
    "DeviceEventPublic",
    "DeviceEventsPublic",
    "DevicePublic",
    "DeviceUpdate",
    "DevicesCreateBody",
    "DevicesPublic",
    "InspectionCreate",
    "LifecycleChange",
    "Location",
    "personal_data_key",
]

MAX_BATCH = 500  # devices per POST (one registerDevices transaction)
MAX_ATTRIBUTES_BYTES = 8_192  # of canonical JSON: attributes travel in the event, every byte costs gas
MAX_NOTE = 1_000  # characters
CLOCK_SKEW_SECONDS = 300

# Keys that name personal data (PIPL): compared lower-cased with separators removed.
_PERSONAL_KEYS = {
    "name", "fullname", "realname", "personname", "ownername", "contactname", "contact", "contactperson",
    "username", "phone", "phonenumber", "mobile", "mobilephone", "telephone", "tel", "cellphone",
    "idcard", "idcardno", "idcardnumber", "idnumber", "idno", "identitycard", "citizenid", "nationalid",
    "passport", "passportno", "email", "emailaddress", "homeaddress", "birthday", "dateofbirth", "dob",
    "faceimage", "face", "fingerprint", "licenseplate", "plate", "platenumber",
    "姓名", "联系人", "电话", "手机", "手机号", "联系电话", "身份证", "身份证号", "护照", "邮箱", "住址", "车牌",
}  # fmt: skip
# Parts that name personal data wherever they appear in a key ("contact_phone_no", "ownerIdCard"); "phone" alone
# is not one of them: "microphone" is equipment.
_PERSONAL_PARTS = (
    "phonenumber", "phoneno", "mobileno", "idcard", "passport", "email", "身份证", "手机", "电话", "姓名", "车牌",
)  # fmt: skip
_SEPARATORS = re.compile(r"[\s_\-.]+")


@lru_cache(maxsize=4_096)
def _names_personal_data(key: str) -> bool:
    """Whether an attribute key names personal data (keys repeat across a file's rows: cached)."""
    norm = _SEPARATORS.sub("", key.lower())
    return norm in _PERSONAL_KEYS or any(part in norm for part in _PERSONAL_PARTS)


def personal_data_key(value: Any, path: str = "") -> str | None:
    """The path of the first key in `value` (nested objects and lists) that names personal data, or None."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if _names_personal_data(str(key)):
                return f"{path}.{key}" if path else str(key)
            if isinstance(inner, dict | list):
                found = personal_data_key(inner, f"{path}.{key}" if path else str(key))
                if found:
                    return found
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found = personal_data_key(inner, f"{path}[{i}]")
            if found:
                return found
    return None


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    key = personal_data_key(value)
    if key is not None:
        raise CodedValueError(
            "PERSONAL_DATA_NOT_ALLOWED",
            f"attribute {key!r} looks like personal data; no personal data goes on-chain",
            subpath=key,
        )
    try:
        size = len(canonical_json(value).encode())
    except ValueError as exc:  # NaN or infinity
        raise ValueError(f"attributes are not valid JSON: {exc}") from exc
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"attributes take {size} bytes as canonical JSON; at most {MAX_ATTRIBUTES_BYTES}")
    return value


def _date_or_datetime(value: Any) -> Any:
    """Let a plain ISO date through as midnight UTC; everything else goes to pydantic's datetime parsing."""
    if isinstance(value, str) and len(value) == len("2024-01-01"):
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        except ValueError:
            return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, datetime.min.time(), tzinfo=UTC)
    return value


DateOrDateTime = Annotated[datetime, BeforeValidator(_date_or_datetime)]


def _not_future(value: datetime) -> datetime:
    if to_unix(value) > time.time() + CLOCK_SKEW_SECONDS:
        raise ValueError("must not be in the future")
    if to_unix(value) < 0:
        raise ValueError("must be after 1970-01-01")
    return value


class Location(StrictModel):
    """WGS-84 degrees; stored on-chain as integer micro-degrees."""

    lat: float = Field(ge=-90, le=90, examples=[39.9219])
    lon: float = Field(ge=-180, le=180, examples=[116.4436])


class DeviceCreate(StrictModel):
    """A device to register."""

    code: str = Field(min_length=1, max_length=64, examples=["BJ-CAMR-110105000001"])
    type: str = Field(min_length=1, max_length=64, examples=["camera.road"], description="a type of GET /v1/code-rules")
    district: int = Field(ge=100_000, le=999_999, examples=[110105], description="6-digit division code")
    location: Location
    built_at: DateOrDateTime = Field(examples=["2023-06-01"], description="ISO date or datetime, not in the future")
    status: Literal["planned", "active"] = "active"
    attributes: dict[str, Any] = Field(default_factory=dict, examples=[{"vendor": "海康威视", "model": "DS-2CD3T47G2"}])

    _built = field_validator("built_at")(_not_future)
    _attrs = field_validator("attributes")(_check_attributes)


class DeviceBatchCreate(StrictModel):
    """Many devices in one transaction (all or none are registered)."""

    devices: list[DeviceCreate] = Field(min_length=1, max_length=MAX_BATCH)


def _body_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "devices" in value else "single"


DevicesCreateBody = Annotated[
    Annotated[DeviceCreate, Tag("single")] | Annotated[DeviceBatchCreate, Tag("batch")],
    Discriminator(_body_kind),
]


class DeviceUpdate(StrictModel):
    """New district, location and/or attributes (what is left out keeps its value)."""

    district: int | None = Field(default=None, ge=100_000, le=999_999)
    location: Location | None = None
    attributes: dict[str, Any] | None = None

    _attrs = field_validator("attributes")(lambda v: None if v is None else _check_attributes(v))

    @model_validator(mode="after")
    def _something(self) -> DeviceUpdate:
        if self.district is None and self.location is None and self.attributes is None:
            raise ValueError("give at least one of district, location, attributes")
        return self


class LifecycleChange(StrictModel):
    """A life-cycle move: activate (planned->active), suspend, resume, upgrade, replace (by another device), retire."""

    action: Literal["activate", "suspend", "resume", "upgrade", "replace", "retire"]
    replaced_by: str | None = Field(default=None, max_length=64, description="for replace: the new device's code")
    note: str = Field(default="", max_length=MAX_NOTE)

    @model_validator(mode="after")
    def _replacement(self) -> LifecycleChange:
        if self.action == "replace" and not self.replaced_by:
            raise CodedValueError("VALIDATION_ERROR", "replace needs replaced_by", subpath="replaced_by")
        if self.action != "replace" and self.replaced_by:
            raise CodedValueError("VALIDATION_ERROR", "only replace takes replaced_by", subpath="replaced_by")
        return self


class InspectionCreate(StrictModel):
    """A periodic inspection (巡检) of an active or suspended device."""

    result: Literal["passed", "issues", "failed"]
    inspected_at: DateOrDateTime = Field(description="ISO date or datetime, not in the future")
    report_hash: str | None = Field(
        default=None, pattern=r"^0x[0-9a-fA-F]{64}$", description="keccak256/sha256 of the report, 0x + 64 hex"
    )
    note: str = Field(default="", max_length=MAX_NOTE)

    _at = field_validator("inspected_at")(_not_future)


class LocationPublic(BaseModel):
    lat: float
    lon: float


class DevicePublic(BaseModel):
    """A device as the mirror of the chain holds it."""

    code: str
    type: str | None
    type_id: int
    owner_org: str | None
    district: int
    location: LocationPublic
    built_at: str
    status: str
    attributes: dict[str, Any]
    attributes_hash: str
    tx_hash: str = Field(description="registration transaction")
    block_number: int = Field(description="registration block")
    replaced_by: str | None = None
    last_inspected_at: str | None = None
    updated_block: int
    distance_m: float | None = Field(default=None, description="with near=: metres from the point")


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int


class DeviceEventPublic(BaseModel):
    """One on-chain event about a device, in chain order."""

    event: str
    tx_hash: str
    block_number: int
    block_hash: str
    log_index: int
    time: str
    sender: str | None
    args: dict[str, Any]


class DeviceEventsPublic(BaseModel):
    data: list[DeviceEventPublic]
    count: int
