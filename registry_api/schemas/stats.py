"""Assessment indicators (考核评估) as GET /v1/stats answers them: per district, per org, per district x org."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CatalogCounts",
    "DeviceCounts",
    "DistrictOrgStats",
    "DistrictStats",
    "OrgStats",
    "PeriodPublic",
    "SharingCounts",
    "StatsPublic",
    "StatsTotals",
]


class DeviceCounts(BaseModel):
    """Devices on the ledger at the period's `as_of`, registered in the period, and overdue for inspection."""

    total: int = Field(description="devices on the ledger (every status) at as_of")
    by_status: dict[str, int] = Field(description="planned, active, suspended, replaced, retired (all present)")
    by_type: dict[str, dict[str, int]] = Field(description="type name -> status -> devices (types with devices)")
    registered: int = Field(description="devices registered on-chain within the period")
    inspections_overdue: int = Field(
        description="active devices whose last inspection, or registration if never inspected, is more than "
        "overdue_days before as_of"
    )


class CatalogCounts(BaseModel):
    """Catalog entries created by as_of, by their current status and share condition (owner's org)."""

    total: int
    new: int = Field(description="entries created within the period")
    by_status: dict[str, int] = Field(description="draft, published, deprecated (all present)")
    by_share_condition: dict[str, int] = Field(description="unconditional, conditional, not_shareable (all present)")


class SharingCounts(BaseModel):
    """Sharing requests for the org's entries (the org approves them): decided in the period, or pending."""

    requested: int = Field(description="requests made within the period")
    granted: int = Field(description="grants within the period (revoked later or not)")
    refused: int = Field(description="refusals within the period")
    pending: int = Field(description="requests neither granted nor refused at as_of")
    median_approval_seconds: float | None = Field(
        description="median of grant time - request time (block times) over the period's grants; null if none"
    )


class PeriodPublic(BaseModel):
    """The period in the city's time zone (Beijing, UTC+8): calendar days `from`..`to`, both included."""

    model_config = ConfigDict(populate_by_name=True)
    month: str | None = Field(description="YYYY-MM when the period is a calendar month", examples=["2025-05"])
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    start: datetime = Field(description="first instant of the period (UTC)")
    end: datetime = Field(description="first instant after the period (UTC)")
    as_of: datetime = Field(description="the instant counted at: the period's last second or the ledger's time")
    complete: bool = Field(description="the ledger's time has passed the period's end")
    timezone: str = "Asia/Shanghai (UTC+8)"


class DistrictStats(BaseModel):
    district: int = Field(examples=[110105])
    name: str | None = Field(examples=["朝阳区"])
    devices: DeviceCounts


class OrgStats(BaseModel):
    org: str = Field(examples=["BJ-PSB"])
    name: str | None
    kind: str | None = Field(description="department | district | company | auditor")
    devices: DeviceCounts
    catalog: CatalogCounts
    sharing: SharingCounts


class DistrictOrgStats(BaseModel):
    district: int
    district_name: str | None
    org: str
    devices: DeviceCounts


class StatsTotals(BaseModel):
    devices: DeviceCounts
    catalog: CatalogCounts
    sharing: SharingCounts


class StatsPublic(BaseModel):
    """Every indicator of the period. `district` narrows the device indicators only (catalog entries and sharing
    requests have no district); `org` narrows everything to that owner org."""

    model_config = ConfigDict(populate_by_name=True)
    period: PeriodPublic
    overdue_days: int
    district: int | None = Field(description="the district filter, if any")
    org: str | None = Field(description="the org filter, if any")
    ledger_block: int | None = Field(description="the newest block of a device event counted (None: no devices)")
    totals: StatsTotals
    by_district: list[DistrictStats]
    by_org: list[OrgStats]
    by_district_org: list[DistrictOrgStats]
