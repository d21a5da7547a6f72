"""The desensitized form: each schema rule applied, personal fields denied by default, bad rules refused."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_api.demo import DEMO_CATALOG
from registry_api.zone.datasets import dataset_for
from registry_api.zone.errors import InvalidSchema, ZoneValueError
from registry_api.zone.masking import check_schema, desensitize

SECRET = b"zone-secret-for-tests-0123456789"
MASK = "fields[0].mask"


def _one(value: Any, kind: str, mask: Any, *, personal: bool = False) -> Any:
    spec: dict[str, Any] = {"name": "f", "type": kind, "personal": personal}
    if mask is not None:
        spec["mask"] = mask
    (row,) = desensitize([{"f": value}], {"fields": [spec]}, SECRET)
    return row.get("f", "<dropped>")


def test_hash_is_an_hmac_with_the_zone_secret_not_a_plain_hash() -> None:
    masked = _one("13812345678", "string", "hash", personal=True)
    assert masked == hmac.new(SECRET, b"13812345678", hashlib.sha256).hexdigest()
    assert masked != hashlib.sha256(b"13812345678").hexdigest()
    (other,) = desensitize(
        [{"f": "13812345678"}], {"fields": [{"name": "f", "type": "string", "mask": "hash"}]}, b"x" * 32
    )
    assert other != masked  # another secret, another pseudonym
    assert _one("13812345678", "string", "hash") == masked  # the same value links across rows


def test_keep_last_4_and_mask_middle_hide_most_of_the_value() -> None:
    assert _one("13812345678", "string", "keep_last_4") == "*******5678"
    assert _one("1234", "string", "keep_last_4") == "****"  # nothing kept when the whole value is 4 characters
    assert _one("13812345678", "string", "mask_middle") == "13*******78"
    assert _one("张三丰", "string", "mask_middle") == "张**"
    assert _one("王五", "string", "mask_middle") == "王*"
    assert _one(None, "string", "mask_middle") is None


@given(st.text(min_size=1, max_size=40))
def test_masked_text_keeps_its_length_and_hides_at_least_half(text: str) -> None:
    last = _one(text, "string", "keep_last_4")
    assert last == ("*" * (len(text) - 4) + text[-4:] if len(text) > 4 else "*" * len(text))
    middle = _one(text, "string", "mask_middle")
    assert len(middle) == len(text) and middle.count("*") >= (len(text) + 1) // 2
    kept = [i for i, char in enumerate(middle) if char != "*"]
    assert all(middle[i] == text[i] for i in kept)  # what is kept is the value's own ends, not something else


@pytest.mark.parametrize(
    ("value", "kind", "mask", "expected"),
    [
        ("2026-02-01T12:34:56+08:00", "datetime", {"rule": "generalize", "to": "hour"}, "2026-02-01T12:00:00+08:00"),
        ("2026-02-01T12:34:56+08:00", "datetime", "generalize", "2026-02-01"),
        ("2026-02-01T12:34:56+08:00", "datetime", {"rule": "generalize", "to": "month"}, "2026-02"),
        ("2026-02-17", "date", {"rule": "generalize", "to": "month"}, "2026-02"),
        (37, "integer", {"rule": "generalize", "width": 10}, "[30, 40)"),
        (-0.25, "number", {"rule": "generalize", "width": 0.5}, "[-0.5, 0)"),
        (116.397128, "number", {"rule": "generalize", "decimals": 2}, 116.4),
        ({"lat": 39.916527, "lon": 116.397128}, "location", "generalize", {"lat": 39.917, "lon": 116.397}),
        ("not a time", "datetime", "generalize", None),  # withheld, never passed on in clear
    ],
)
def test_generalize_coarsens_times_numbers_and_places(value: Any, kind: str, mask: Any, expected: Any) -> None:
    assert _one(value, kind, mask) == expected


def test_personal_fields_without_a_rule_and_undeclared_columns_are_dropped() -> None:
    schema = {
        "fields": [
            {"name": "street", "type": "string"},
            {"name": "caller_name", "type": "string", "personal": True},
            {"name": "caller_phone", "type": "string", "personal": True, "mask": "drop"},
        ]
    }
    rows = [{"street": "望京街道", "caller_name": "张三", "caller_phone": "13812345678", "id_card": "110105..."}]
    assert desensitize(rows, schema, SECRET) == [{"street": "望京街道"}]


def test_demo_schemas_pass_and_mask_the_demo_data() -> None:
    for _owner, entry, _lineage in DEMO_CATALOG:
        assert check_schema(entry["schema"]) == [], entry["title"]
    hotline = next(e for _, e, _ in DEMO_CATALOG if e["classification"] == "城市体征/热线诉求")
    dataset = dataset_for(hotline["classification"], 5)
    assert dataset is not None
    masked = desensitize(dataset.rows[:200], hotline["schema"], SECRET)
    assert set(masked[0]) == {"received_at", "category", "street", "caller_phone"}
    for original, row in zip(dataset.rows[:200], masked, strict=True):
        assert row["caller_phone"] == "*******" + str(original["caller_phone"])[-4:]
        assert str(original["caller_name"]) not in str(row)


@pytest.mark.parametrize(
    ("field", "field_at", "code"),
    [
        ({"name": "f", "type": "string", "mask": "rot13"}, "fields[0].mask", "UNKNOWN_MASK_RULE"),
        (
            {"name": "f", "type": "string", "mask": {"rule": "hash", "salt": "x"}},
            "fields[0].mask",
            "UNKNOWN_MASK_OPTION",
        ),
        ({"name": "f", "type": "string", "mask": "generalize"}, "fields[0].mask", "MASK_NOT_APPLICABLE"),
        (
            {"name": "f", "type": "date", "mask": {"rule": "generalize", "to": "hour"}},
            "fields[0].mask",
            "INVALID_MASK_OPTION",
        ),
        (
            {"name": "f", "type": "number", "mask": {"rule": "generalize", "width": 0}},
            "fields[0].mask",
            "INVALID_MASK_OPTION",
        ),
        ({"name": "f", "type": "number", "mask": "generalize"}, "fields[0].mask", "INVALID_MASK_OPTION"),
        ({"name": "f", "type": "string", "personal": "yes"}, "fields[0].personal", "INVALID_FIELD"),
        ({"type": "string"}, "fields[0].name", "INVALID_FIELD"),
    ],
)
def test_bad_rules_are_problems_and_desensitize_refuses_them(field: dict[str, Any], field_at: str, code: str) -> None:
    problems = check_schema({"fields": [field]})
    assert [(p.field, p.code) for p in problems] == [(field_at, code)]
    with pytest.raises(InvalidSchema) as caught:
        desensitize([], {"fields": [field]}, SECRET)
    assert caught.value.field == field_at and caught.value.code == code


def test_schema_shape_problems_are_reported() -> None:
    assert [p.code for p in check_schema({"fields": "x"})] == ["INVALID_SCHEMA"]
    duplicate = check_schema({"fields": [{"name": "a", "type": "string"}, {"name": "a", "type": "string"}]})
    assert [(p.field, p.code) for p in duplicate] == [("fields[1].name", "DUPLICATE_FIELD")]


def test_a_weak_zone_secret_is_refused() -> None:
    with pytest.raises(ZoneValueError) as caught:
        desensitize([], {"fields": []}, b"short")
    assert caught.value.code == "ZONE_SECRET_WEAK"
