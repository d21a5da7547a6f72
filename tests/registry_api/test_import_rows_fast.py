"""The import's hand-checked fast path gives exactly what the DeviceCreate schema path gives, row for row."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_gateway.devnet import DEMO_CODE_RULES
from indexer.models import CodeRule
from registry_api.crud import device_input
from registry_api.imports import rows
from registry_api.imports.formats import Position, RawRecord
from registry_api.imports.rows import AcceptedRow, RowValidator
from registry_api.schemas.devices import DeviceCreate
from registry_api.synthetic_city import write_city

RULES = {
    name: CodeRule(type_id=t, type_name=name, prefix=p, length=n, charset=c, block_number=0, tx_hash="0x")
    for t, name, p, n, c in DEMO_CODE_RULES
}
ORG = "BJ-PSB"
NOW = 1_750_000_000.0


# Per field: plain good values, and values near every limit of DeviceCreate and of the fast path's plain forms.
_GOOD: dict[str, st.SearchStrategy[Any]] = {
    "code": st.integers(0, 999_999).map(lambda n: f"BJ-CAMR-110105{n:06d}"),
    "type": st.just("camera.road"),
    "district": st.integers(110_101, 110_119).map(str),
    "lat": st.floats(39.5, 40.5).map(lambda x: f"{x:.6f}"),
    "lon": st.floats(116.0, 117.0).map(lambda x: f"{x:.{int(x * 1e6) % 9}f}"),
    "built_at": st.dates(min_value=date(1970, 1, 1), max_value=date(2024, 12, 31)).map(str),
    "status": st.sampled_from(["active", "planned"]),
    "attributes": st.dictionaries(st.sampled_from(["brand", "model", "carrier"]), st.text(max_size=8), max_size=3),
}
_degrees = st.one_of(
    st.sampled_from(["-0", "90", "90.0000001", "-180", "180.5", "1e2", " 39.9", "39.", ".5", "nan", "inf", "-0.0"]),
    st.tuples(st.floats(-200, 200), st.integers(0, 20)).map(lambda t: f"{t[0]:.{t[1]}f}"),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-200, 200),
)
_values = st.one_of(st.text(max_size=6), st.integers(), st.floats(), st.none(), st.lists(st.integers(), max_size=2))
_EDGE: dict[str, st.SearchStrategy[Any]] = {
    "code": st.sampled_from(
        ["BJ-CAMR-11010500000", "bj-camr-110105000001", "X" * 64, "X" * 65, "BJ-CAMR-11010500000é"]
    ),
    "type": st.sampled_from(["sensor.air", "unknown.kind", "t" * 65, 5]),
    "district": st.one_of(
        st.sampled_from(["100000", "999999", "099999", "1000000", "110105.0", "+110105", "11_0105", "abc", "١١٠١٠٥"]),
        st.integers(99_990, 1_000_010).map(str),
        st.integers(99_990, 1_000_010),
        st.booleans(),
    ),
    "lat": _degrees,
    "lon": _degrees,
    "built_at": st.sampled_from(
        [
            "2024-02-30",
            "1969-12-31",
            "1970-01-01",
            "2999-01-01",
            "2024-W01-1",
            "20240101",
            "2024-01-01T10:00:00",
            "2024-01-01T10:00:00+08:00",
            "2024-1-1",
            "0001-01-01",
            "２０２４-01-01",
        ]
    ),  # fmt: skip
    "status": st.sampled_from(["retired", "Active", 2]),
    "attributes": st.one_of(
        st.dictionaries(st.sampled_from(["brand", "phone", "owner_name", "x" * 40]), _values, max_size=3),
        st.just({"big": "x" * 9_000}),
        st.just({"nested": {"contact-phone": "1"}}),
        st.sampled_from([[], "text", 5]),
    ),
}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A good body with up to two fields spoilt, one left out or one unknown now and then."""
    values = {name: draw(good) for name, good in _GOOD.items()}
    for name in draw(st.lists(st.sampled_from(sorted(_EDGE)), max_size=2, unique=True)):
        values[name] = draw(_EDGE[name])
    location: dict[str, Any] = {"lat": values.pop("lat"), "lon": values.pop("lon")}
    body: dict[str, Any] = {**values, "location": location}
    change = draw(st.sampled_from(["none", "none", "none", "drop", "extra", "alt"]))
    if change == "drop":
        del body[draw(st.sampled_from(sorted(body)))]
    elif change == "extra":
        body["extra"] = "x"
    elif change == "alt":
        location["alt"] = "1"
    return body


@settings(max_examples=600, deadline=None)
@given(bodies())
def test_a_body_the_fast_path_takes_validates_to_the_same_fields(body: dict[str, Any]) -> None:
    fast = rows._plain_fields(body)
    if fast is None:
        return  # not sure: the schema decides
    device = DeviceCreate.model_validate(body)
    assert rows._Fields.of(device) == fast
    rule = RULES["camera.road"]
    assert fast.device_input(rule.type_id) == device_input(device, rule.type_id)


def _slow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "_plain_fields", lambda body: None)


@st.composite
def records(draw: st.DrawFn) -> RawRecord:
    body = draw(bodies())
    values: dict[str, Any] = {k: v for k, v in body.items() if k != "location"}
    location = body.get("location", {})
    if draw(st.booleans()) and all(isinstance(v, str) for v in location.values()):
        values.update(location)  # flat lat/lon columns, as a CSV has them
    elif "location" in body:
        values["location"] = location
    if draw(st.booleans()):
        values["owner_org"] = draw(st.sampled_from([ORG, "BJ-CMC"]))
    return RawRecord(1, 2, Position(0, 0, 0), values)


@settings(max_examples=400, deadline=None)
@given(st.lists(records(), min_size=1, max_size=5))
def test_fast_and_schema_paths_report_every_row_alike(batch: list[RawRecord]) -> None:
    validator = RowValidator(RULES, ORG, now=NOW)
    fast = [validator.check(r) for r in batch]
    with pytest.MonkeyPatch.context() as patch:
        _slow(patch)
        slow = [validator.check(r) for r in batch]
    assert fast == slow


def test_synthetic_city_rows_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_city(tmp_path, 300, seed=3)
    with (tmp_path / "devices.csv").open(encoding="utf-8", newline="") as f:
        records = [RawRecord(i, i + 1, Position(0, 0, 0), row) for i, row in enumerate(csv.DictReader(f), start=1)]
    validator = RowValidator(RULES, ORG)
    ours = [r for r in records if r.values and r.values["owner_org"] == ORG]
    fast = [validator.check(r) for r in ours]
    assert ours and all(isinstance(r, AcceptedRow) for r in fast)
    schema_calls = 0
    validate = DeviceCreate.model_validate

    def counted(body: Any) -> DeviceCreate:
        nonlocal schema_calls
        schema_calls += 1
        return validate(body)

    monkeypatch.setattr(DeviceCreate, "model_validate", counted)
    assert [validator.check(r) for r in ours] == fast
    assert schema_calls == 0
    _slow(monkeypatch)
    assert [validator.check(r) for r in ours] == fast
    assert schema_calls == len(ours)
