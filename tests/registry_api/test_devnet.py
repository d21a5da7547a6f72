"""The dev profile: what `scripts/run` prepares is complete, private and usable with its own credentials."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from fastapi.testclient import TestClient

from chain_gateway.devnet import DEMO_CODE_RULES, AnvilNode, SeededConsortium
from registry_api.app import create_app
from registry_api.city import district_by_code
from registry_api.demo import DEMO_FLEET, demo_devices
from registry_api.devnet import prepare_devnet


def test_prepared_devnet_writes_private_credentials_that_open_the_api(
    anvil: AnvilNode, chain: SeededConsortium, tmp_path: Path
) -> None:
    settings, seeded = prepare_devnet(anvil.url, "http://127.0.0.1:8000", tmp_path, tmp_path / "deployments")

    path = tmp_path / "dev" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    credentials = json.loads(path.read_text(encoding="utf-8"))
    assert {"api", "rpc", "chain_id", "deployments", "orgs"} <= credentials.keys()
    assert credentials["rpc"] == anvil.url and credentials["chain_id"] == 31337
    assert Path(credentials["deployments"]).exists()
    assert len(credentials["orgs"]) >= 5
    for code, org in credentials["orgs"].items():
        assert {"name", "token", "account", "private_key", "roles", "approvers"} <= org.keys(), code
        if code in DEMO_FLEET:  # data-owning orgs have at least two approvers
            assert len(org["approvers"]) >= 2, code
    keystore_files = {p.stem for p in (tmp_path / "dev" / "keystore").glob("0x*.json")}
    assert credentials["orgs"]["BJ-PSB"]["account"] in keystore_files

    with TestClient(create_app(settings.model_copy(update={"run_gateway_in_api": False}))) as client:
        client.app.state.indexer.sync_once()  # type: ignore[attr-defined]
        token = credentials["orgs"]["BJ-PSB"]["token"]
        members = client.get("/v1/members", headers={"Authorization": f"Bearer {token}"})
        assert members.status_code == 200
        assert {m["code"] for m in members.json()["data"]} == set(seeded.orgs)
        assert client.get("/v1/members", headers={"Authorization": "Bearer dct_forged"}).status_code == 401


def test_demo_fleet_is_deterministic_valid_and_inside_its_districts() -> None:
    fleet = demo_devices(60)
    assert fleet == demo_devices(60)
    patterns = {
        name: re.compile(rf"^{re.escape(prefix)}[0-9]{{{length - len(prefix)}}}$")
        for _, name, prefix, length, _ in DEMO_CODE_RULES
    }
    codes = [d["code"] for devices in fleet.values() for d in devices]
    assert len(codes) == len(set(codes)) == 60
    for org, devices in fleet.items():
        for d in devices:
            assert d["type"] in DEMO_FLEET[org]
            assert patterns[d["type"]].match(d["code"]), d["code"]
            district = district_by_code(d["district"])
            assert district is not None
            min_lon, min_lat, max_lon, max_lat = district.bbox
            assert min_lat <= d["location"]["lat"] <= max_lat and min_lon <= d["location"]["lon"] <= max_lon
