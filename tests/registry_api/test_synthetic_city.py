"""The synthetic city: deterministic, unique and rule-abiding codes, points inside their districts, and a devices
file that the bulk import's own reader and row checks accept row by row."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from chain_gateway.devnet import DEMO_CODE_RULES
from indexer.models import CodeRule
from registry_api.city import district_by_code
from registry_api.imports.formats import inspect_file, iter_records
from registry_api.imports.rows import AcceptedRow, RowValidator
from registry_api.synthetic_city import DEVICE_TYPES, DEVICES_PER_CARRIER, generate_devices, write_city

RULES = {
    name: CodeRule(
        type_id=i, type_name=name, prefix=prefix, length=length, charset=charset, block_number=1, tx_hash="0x"
    )  # fmt: skip
    for i, name, prefix, length, charset in DEMO_CODE_RULES
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_seed_writes_the_same_city_and_another_seed_another(tmp_path: Path) -> None:
    first = write_city(tmp_path / "a", 2_000, seed=7)
    again = write_city(tmp_path / "b", 2_000, seed=7)
    other = write_city(tmp_path / "c", 2_000, seed=8)

    for name in first:
        assert digest(first[name]) == digest(again[name]), name
    assert digest(first["devices.csv"]) != digest(other["devices.csv"])


def test_codes_are_unique_follow_their_rules_and_points_lie_in_their_district() -> None:
    devices = list(generate_devices(20_000, seed=3))

    assert len({d.code for d in devices}) == len(devices)
    types = Counter(d.type for d in devices)
    for kind in DEVICE_TYPES:  # every type present, near its share
        assert abs(types[kind.name] / len(devices) - kind.weight) < 0.02, kind.name
    districts = Counter(d.district for d in devices)
    assert len(districts) == 16
    assert districts[110101] / len(devices) > districts[110119] / len(devices)  # Dongcheng denser than Yanqing
    assert {d.owner_org for d in devices} == {"BJ-PSB", "BJ-EIB", "BJ-CMC", "BJ-EMB", "BJ-CY"}
    for device in devices:
        district = district_by_code(device.district)
        assert district is not None
        min_lon, min_lat, max_lon, max_lat = district.bbox
        assert min_lat <= device.lat <= max_lat and min_lon <= device.lon <= max_lon
        assert json.loads(device.attributes)["carrier"].startswith(f"BJ-POLE-{device.district}")


def test_the_bulk_import_accepts_every_generated_row(tmp_path: Path) -> None:
    paths = write_city(tmp_path, 3_000, seed=11)
    layout = inspect_file(paths["devices.csv"], "csv")
    validators: dict[str, RowValidator] = {}

    results = []
    for record in iter_records(paths["devices.csv"], layout, layout.start):
        owner = record.values["owner_org"] if record.values else ""
        validator = validators.setdefault(owner, RowValidator(RULES, owner))
        results.append(validator.check(record))

    assert len(results) == 3_000
    assert all(isinstance(r, AcceptedRow) for r in results), [r for r in results if not isinstance(r, AcceptedRow)][:3]


def test_carriers_and_catalog_cover_every_device(tmp_path: Path) -> None:
    paths = write_city(tmp_path, 4_000, seed=5)
    devices = list(generate_devices(4_000, seed=5))
    carriers = [json.loads(line) for line in paths["carriers.ndjson"].read_text(encoding="utf-8").splitlines()]
    entries = [json.loads(line) for line in paths["catalog.ndjson"].read_text(encoding="utf-8").splitlines()]

    assert {json.loads(d.attributes)["carrier"] for d in devices} == {c["code"] for c in carriers}
    assert len({c["code"] for c in carriers}) == len(carriers)
    per_district = Counter(d.district for d in devices)
    assert len(carriers) == sum(-(-n // DEVICES_PER_CARRIER) for n in per_district.values())  # up to 4 devices each
    groups = {(d.owner_org, d.type, d.district) for d in devices}
    assert len(entries) == len(groups)
    codes = {d.code for d in devices}
    assert all(set(e["device_codes"]) <= codes and e["device_codes"] for e in entries)
