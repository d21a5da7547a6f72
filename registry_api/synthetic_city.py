"""A synthetic city for scale runs: devices, carriers and catalog entries over Beijing's 16 districts.

Deterministic for a seed (the same seed and size give the same bytes), streamed (10M rows need no more memory
than 10 rows), and valid by construction: every device code follows the demo consortium's code rule of its type
(prefix, 20 characters, digits after the prefix) and is unique city-wide; every point lies in its district's box.

The mix follows the city plan (DOMAIN.md): imagery (cameras of public security) and pulse sensors (city
management, emergency, the economy and information bureau), denser in the core districts; ~8 % of devices are
owned by the Chaoyang district government itself. Devices hang on carriers (poles and mounts), about four per
carrier. Catalog entries group devices by owner, type and district.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

from registry_api.city import DISTRICTS

__all__ = [
    "DEVICE_COLUMNS",
    "DEVICE_TYPES",
    "DISTRICT_OWNER",
    "CityDevice",
    "DeviceType",
    "CatalogGroups",
    "carrier_record",
    "generate_devices",
    "write_city",
]

DEVICE_COLUMNS = ("code", "type", "district", "lat", "lon", "built_at", "status", "owner_org", "attributes")
DEVICES_PER_CARRIER = 4
PROGRESS_ROWS = 10_000
SERIALS_PER_TYPE_AND_DISTRICT = 1_000_000  # the 6 digits after the district code
BUILT_FROM = date(2010, 1, 1)
BUILT_DAYS = 6_000  # built_at falls in 2010-01-01 .. 2026-06
ACTIVE_SHARE = 0.92
# Share of the city's devices per district (%), roughly by population: the core and Chaoyang/Haidian hold most.
DISTRICT_WEIGHTS = {
    110101: 4.0, 110102: 5.0, 110105: 16.0, 110106: 9.0, 110107: 3.0, 110108: 14.0, 110109: 1.5, 110111: 5.0,
    110112: 8.0, 110113: 6.0, 110114: 8.0, 110115: 8.0, 110116: 2.0, 110117: 2.0, 110118: 2.0, 110119: 1.5,
}  # fmt: skip
CARRIER_SPREAD_DEG = 0.0003  # devices stand within ~30 m of their carrier
DISTRICT_OWNER = {110105: "BJ-CY"}  # districts that register devices of their own
DISTRICT_SHARE = 0.25  # of a self-registering district's pulse sensors


class DeviceType(NamedTuple):
    name: str
    prefix: str  # the demo code rule's prefix (chain_gateway.devnet.DEMO_CODE_RULES)
    owner: str  # the department that registers it
    weight: float  # share of all devices
    brands: tuple[str, ...]


DEVICE_TYPES: tuple[DeviceType, ...] = (
    DeviceType("camera.road", "BJ-CAMR-", "BJ-PSB", 0.30, ("hikvision", "dahua", "uniview")),
    DeviceType("camera.checkpoint", "BJ-CAMK-", "BJ-PSB", 0.08, ("hikvision", "dahua")),
    DeviceType("camera.face", "BJ-CAMF-", "BJ-PSB", 0.05, ("hikvision", "megvii", "sensetime")),
    DeviceType("sensor.air", "BJ-AIRQ-", "BJ-EIB", 0.10, ("sailhero", "hebei-sinta")),
    DeviceType("sensor.water-pressure", "BJ-WTRP-", "BJ-CMC", 0.12, ("siemens", "e+h", "sinomeasure")),
    DeviceType("sensor.flood", "BJ-FLDS-", "BJ-EMB", 0.10, ("vega", "hach")),
    DeviceType("sensor.gas", "BJ-GASS-", "BJ-CMC", 0.10, ("honeywell", "hanwei")),
    DeviceType("sensor.traffic", "BJ-TRFC-", "BJ-PSB", 0.15, ("hikvision", "huawei")),
)


@dataclass(frozen=True)
class CityDevice:
    """One device row as the bulk import takes it (coordinates in degrees, 6 decimals)."""

    code: str
    type: str
    district: int
    lat: float
    lon: float
    built_at: str  # ISO date
    status: str
    owner_org: str
    attributes: str  # canonical JSON
    carrier: str  # the carrier it hangs on (also in `attributes`)
    carrier_at: tuple[float, float] | None  # the carrier's (lat, lon) when this is its first device, else None

    def row(self) -> tuple[object, ...]:
        return (self.code, self.type, self.district, f"{self.lat:.6f}", f"{self.lon:.6f}", self.built_at,
                self.status, self.owner_org, self.attributes)  # fmt: skip


def _status(rng: random.Random) -> str:
    """Registered as active or planned (the import's choice; later life-cycle changes are transactions of their own)."""
    return "active" if rng.random() < ACTIVE_SHARE else "planned"


def _near(
    rng: random.Random, centre: tuple[float, float], box: tuple[float, float, float, float]
) -> tuple[float, float]:
    """A point within CARRIER_SPREAD_DEG of `centre` (lat, lon), kept inside `box`."""
    min_lon, min_lat, max_lon, max_lat = box
    lat = min(max_lat, max(min_lat, centre[0] + rng.uniform(-CARRIER_SPREAD_DEG, CARRIER_SPREAD_DEG)))
    lon = min(max_lon, max(min_lon, centre[1] + rng.uniform(-CARRIER_SPREAD_DEG, CARRIER_SPREAD_DEG)))
    return round(lat, 6), round(lon, 6)


def generate_devices(count: int, seed: int = 1) -> Iterator[CityDevice]:
    """`count` devices in a deterministic order; raises ValueError if a (type, district) would run out of codes."""
    rng = random.Random(seed)
    types = list(DEVICE_TYPES)
    type_weights = [t.weight for t in types]
    district_weights = [DISTRICT_WEIGHTS[d.code] for d in DISTRICTS]
    serials: dict[tuple[str, int], int] = {}
    placed: dict[int, int] = {}  # devices per district so far
    carriers: dict[int, tuple[float, float]] = {}  # district -> its current carrier's (lat, lon)
    for _ in range(count):
        kind = rng.choices(types, type_weights)[0]
        district = rng.choices(DISTRICTS, district_weights)[0]
        serial = serials.get((kind.prefix, district.code), 0)
        if serial >= SERIALS_PER_TYPE_AND_DISTRICT:
            raise ValueError(f"more than {SERIALS_PER_TYPE_AND_DISTRICT:,} {kind.name} devices in {district.code}")
        serials[(kind.prefix, district.code)] = serial + 1
        min_lon, min_lat, max_lon, max_lat = district.bbox
        owner = kind.owner
        if district.code in DISTRICT_OWNER and kind.name.startswith("sensor.") and rng.random() < DISTRICT_SHARE:
            owner = DISTRICT_OWNER[district.code]
        number = placed.get(district.code, 0)
        placed[district.code] = number + 1
        first_on_carrier = number % DEVICES_PER_CARRIER == 0
        if first_on_carrier:  # a new carrier somewhere in the district
            carriers[district.code] = (rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon))
        carrier = f"BJ-POLE-{district.code}{number // DEVICES_PER_CARRIER:08d}"
        lat, lon = _near(rng, carriers[district.code], district.bbox)
        attributes = {"brand": rng.choice(kind.brands), "carrier": carrier, "model": f"M{rng.randrange(100, 999)}"}
        yield CityDevice(
            code=f"{kind.prefix}{district.code:06d}{serial:06d}",
            type=kind.name,
            district=district.code,
            lat=lat,
            lon=lon,
            built_at=(BUILT_FROM + timedelta(days=rng.randrange(BUILT_DAYS))).isoformat(),
            status=_status(rng),
            owner_org=owner,
            attributes=json.dumps(attributes, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            carrier=carrier,
            carrier_at=(round(carriers[district.code][0], 6), round(carriers[district.code][1], 6))
            if first_on_carrier
            else None,
        )


def carrier_record(device: CityDevice) -> dict[str, object] | None:
    """The carrier `device` is the first device of, as a record (poles for cameras, mounts for sensors), or None."""
    if device.carrier_at is None:
        return None
    lat, lon = device.carrier_at
    kind = "pole" if device.type.startswith("camera.") else "mount"
    return {"code": device.carrier, "kind": kind, "district": device.district, "lat": lat, "lon": lon, "slots": 6,
            "ports": 4, "owner_org": device.owner_org}  # fmt: skip


class CatalogGroups:
    """Catalog entries, one per (owner, type, district), each listing up to `sample` of its devices as lineage."""

    def __init__(self, sample: int = 20) -> None:
        self.sample = sample
        self.groups: dict[tuple[str, str, int], list[str]] = {}

    def add(self, device: CityDevice) -> None:
        codes = self.groups.setdefault((device.owner_org, device.type, device.district), [])
        if len(codes) < self.sample:
            codes.append(device.code)

    def entries(self) -> Iterator[dict[str, object]]:
        for (owner, kind, district), codes in sorted(self.groups.items()):
            imagery = kind.startswith("camera.")
            yield {
                "owner_org": owner,
                "title": f"{kind} {district}",
                "classification": "城市影像" if imagery else "城市脉搏",
                "grade": 3 if imagery else 2,
                "share_condition": "conditional" if imagery else "unconditional",
                "forms": ["result_only"] if imagery else ["raw", "desensitized"],
                "device_codes": codes,
            }


def write_city(
    out: Path, devices: int, seed: int = 1, progress: Callable[[int], None] | None = None
) -> dict[str, Path]:
    """Write devices.csv (the bulk import's format), carriers.ndjson and catalog.ndjson into `out`, in one pass;
    `progress(rows)` is called every `PROGRESS_ROWS` devices."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("devices.csv", "carriers.ndjson", "catalog.ndjson")}
    catalog = CatalogGroups()
    with (
        paths["devices.csv"].open("w", encoding="utf-8", newline="") as device_file,
        paths["carriers.ndjson"].open("w", encoding="utf-8") as carrier_file,
    ):
        writer = csv.writer(device_file)
        writer.writerow(DEVICE_COLUMNS)
        for index, device in enumerate(generate_devices(devices, seed), 1):
            writer.writerow(device.row())
            carrier = carrier_record(device)
            if carrier is not None:
                carrier_file.write(json.dumps(carrier, ensure_ascii=False) + "\n")
            catalog.add(device)
            if progress is not None and index % PROGRESS_ROWS == 0:
                progress(index)
    with paths["catalog.ndjson"].open("w", encoding="utf-8") as f:
        for entry in catalog.entries():
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    if progress is not None:
        progress(devices)
    return paths
