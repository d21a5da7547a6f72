"""The default profile of DESIGN.md (`scripts/run`): anvil, deploy, demo consortium, indexer and API.

No configuration: everything lives under var/ (SQLite mirror and outbox, dev keystore, credentials) and the
chain is fresh on every start, so the mirror is reset with it. Dev keys only (anvil's public mnemonic).
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import create_engine
from sqlmodel import SQLModel
from web3 import Web3

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.deployments import ORG_KINDS, FounderOrg, deploy_contracts, write_deployment
from chain_gateway.devnet import DEMO_CODE_RULES, AnvilNode, SeededConsortium, seed_demo_consortium
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from chain_gateway.settings import VAR_DIR, Settings
from registry_api.city import DISTRICTS

__all__ = ["app", "demo_devices", "prepare_devnet"]

app = typer.Typer(help="The local development network: anvil, the demo consortium, indexer and API.")
console = Console(soft_wrap=True)  # paths and commands stay on one line, terminal or not
DEV_DIR = VAR_DIR / "dev"
CREDENTIALS_PATH = DEV_DIR / "credentials.json"
DEV_PASSWORD = SecretStr("dev-only-password")

# Which demo org files which device types (lead departments own imagery / city management sensors).
DEMO_FLEET: dict[str, tuple[str, ...]] = {
    "BJ-PSB": ("camera.road", "camera.checkpoint", "camera.face"),
    "BJ-CMC": ("sensor.water-pressure", "sensor.gas"),
    "BJ-EMB": ("sensor.flood",),
    "BJ-EIB": ("sensor.air",),
    "BJ-CY": ("camera.road", "sensor.traffic"),
}
VENDORS = {
    "camera": [("海康威视", "DS-2CD3T47G2"), ("大华", "DH-IPC-HFW5442"), ("宇视", "IPC2124SR3")],
    "sensor": [("聚光科技", "AQMS-900"), ("汉威科技", "HW-P100"), ("威胜信息", "WS-IOT-3")],
}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def demo_devices(count: int, seed: int = 2026) -> dict[str, list[dict[str, Any]]]:
    """A deterministic, realistic set of demo devices per owner org, in the API's device format."""
    rng = random.Random(seed)
    prefixes = {rule[1]: rule[2] for rule in DEMO_CODE_RULES}
    fleet: dict[str, list[dict[str, Any]]] = {org: [] for org in DEMO_FLEET}
    serial = 0
    owners = list(DEMO_FLEET)
    for i in range(count):
        org = owners[i % len(owners)]
        dtype = rng.choice(DEMO_FLEET[org])
        district = next(d for d in DISTRICTS if d.code == 110105) if org == "BJ-CY" else rng.choice(DISTRICTS)
        min_lon, min_lat, max_lon, max_lat = district.bbox
        serial += 1
        vendor, model = rng.choice(VENDORS[dtype.split(".")[0]])
        fleet[org].append(
            {
                "code": f"{prefixes[dtype]}{district.code}{serial:06d}",
                "type": dtype,
                "district": district.code,
                "location": {
                    "lat": round(rng.uniform(min_lat, max_lat), 6),
                    "lon": round(rng.uniform(min_lon, max_lon), 6),
                },
                "built_at": (date(2018, 1, 1) + timedelta(days=rng.randrange(0, 2500))).isoformat(),
                "status": "active" if rng.random() > 0.1 else "planned",
                "attributes": {"vendor": vendor, "model": model, "network": "政务外网", "power": "市电"},
            }
        )
    return fleet


def prepare_devnet(
    rpc_url: str, api_url: str, var_dir: Path = VAR_DIR, deployments_dir: Path = PROJECT_ROOT / "deployments"
) -> tuple[Settings, SeededConsortium]:
    """Deploy and seed the demo consortium on `rpc_url`; write deployment, keystore, database and credentials."""
    import chain_gateway.outbox  # noqa: F401 - registers the outbox tables
    import indexer.models  # noqa: F401 - registers the mirror tables
    from registry_api.auth import issue_token  # the API's own tables are registered on import

    dev_dir = var_dir / "dev"
    dev_dir.mkdir(parents=True, exist_ok=True)
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    seeded = seed_demo_consortium(w3)
    chain_id = seeded.deployment["chain_id"]
    deployment_path = deployments_dir / f"{chain_id}.json"
    write_deployment(seeded.deployment, deployment_path)

    keystore = Keystore(dev_dir / "keystore", DEV_PASSWORD)
    for org in seeded.orgs.values():
        keystore.add(org.private_key, DEV_SCRYPT_N)
        for _, key in org.approvers:
            keystore.add(key, DEV_SCRYPT_N)

    database = var_dir / "dirchain.db"
    for stale in var_dir.glob("dirchain.db*"):
        stale.unlink()  # a fresh chain means a fresh mirror and outbox
    settings = Settings(
        rpc_urls=[rpc_url],
        chain_id=chain_id,
        deployments_path=deployment_path,
        database_url=f"sqlite:///{database}",
        keystore_dir=dev_dir / "keystore",
        keystore_password=DEV_PASSWORD,
    )
    engine = create_engine(settings.database_url)
    SQLModel.metadata.create_all(engine)
    orgs: dict[str, Any] = {}
    for org in seeded.orgs.values():
        orgs[org.code] = {
            "name": org.name,
            "kind": org.kind,
            "token": issue_token(engine, org.code, org.account, "devnet"),
            "account": org.account,
            "private_key": org.private_key,
            "roles": list(org.roles),
            "approvers": [{"account": a, "private_key": k} for a, k in org.approvers],
        }
    engine.dispose()
    credentials = {
        "api": api_url,
        "rpc": rpc_url,
        "chain_id": chain_id,
        "deployments": str(deployment_path),
        "note": "dev keys only (anvil's public test mnemonic); never use them on a real network",
        "orgs": orgs,
    }
    fd = os.open(dev_dir / "credentials.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle, ensure_ascii=False, indent=2)
    return settings, seeded


def _post_demo_devices(api_url: str, tokens: dict[str, str], count: int) -> None:
    """File the demo fleet through the public API, as registrars would (runs once the API answers)."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for _ in range(200):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        for org, devices in demo_devices(count).items():
            response = client.post(
                "/v1/devices",
                json={"devices": devices},
                headers={"Authorization": f"Bearer {tokens[org]}", "Idempotency-Key": f"demo-fleet-{org}"},
            )
            if response.status_code != 202:
                console.print(f"[red]demo devices of {org} refused: {response.status_code} {response.text}")
    console.print(f"[green]demo fleet of {count} devices filed through POST /v1/devices")


@app.command("up")
def up(
    api_port: Annotated[int, typer.Option(help="API port on 127.0.0.1")] = 8000,
    rpc_port: Annotated[int, typer.Option(help="anvil port on 127.0.0.1 (a free one if taken)")] = 8545,
    block_time: Annotated[float, typer.Option(help="seconds between blocks (interval mining)")] = 1.0,
    devices: Annotated[int, typer.Option(help="demo devices to file at start")] = 60,
) -> None:
    """Start anvil, deploy, seed the demo consortium and serve the API with indexer and gateway (Ctrl-C stops)."""
    from registry_api.app import create_app

    if not _port_free(api_port):
        raise typer.BadParameter(f"port {api_port} is taken; stop the other process or pass --api-port")
    if not _port_free(rpc_port):
        from chain_gateway.devnet import free_port

        rpc_port = free_port()
    DEV_DIR.mkdir(parents=True, exist_ok=True)
    node = AnvilNode(port=rpc_port, block_time=block_time, log_path=DEV_DIR / "anvil.log").start()
    try:
        api_url = f"http://127.0.0.1:{api_port}"
        with console.status("deploying contracts and seeding the demo consortium"):
            settings, seeded = prepare_devnet(node.url, api_url)
        settings = settings.model_copy(update={"api_port": api_port})
        tokens = json.loads(CREDENTIALS_PATH.read_text(encoding="utf-8"))["orgs"]
        console.print(f"[bold]anvil[/] {node.url} (chain {seeded.deployment['chain_id']}, {block_time:g} s blocks)")
        console.print(f"[bold]contracts[/] {settings.deployments_path}")
        console.print(f"[bold]credentials[/] {CREDENTIALS_PATH} ({len(tokens)} orgs: tokens, accounts, dev keys)")
        console.print(f"[bold]API docs[/] {api_url}/docs    [bold]health[/] {api_url}/healthz")
        console.print(
            f'try: curl -H "Authorization: Bearer $(jq -r \'.orgs["BJ-PSB"].token\' {CREDENTIALS_PATH})" '
            f"{api_url}/v1/devices"
        )
        if devices:
            threading.Thread(
                target=_post_demo_devices,
                args=(api_url, {k: v["token"] for k, v in tokens.items()}, devices),
                daemon=True,
            ).start()
        uvicorn.run(create_app(settings), host="127.0.0.1", port=api_port, log_level="warning")
    finally:
        node.stop()


@app.command("deploy")
def deploy(
    rpc: Annotated[str, typer.Option(help="JSON-RPC URL of the chain")] = "http://127.0.0.1:8545",
    demo: Annotated[bool, typer.Option(help="seed the demo consortium with dev keys (local chains only)")] = False,
    founder_code: Annotated[str, typer.Option(help="code of the founding (first ADMIN) org")] = "BJ-EIB",
    founder_name: Annotated[str, typer.Option(help="name of the founding org")] = "北京市经济和信息化局",
    founder_kind: Annotated[str, typer.Option(help=f"one of {sorted(ORG_KINDS)}")] = "department",
    founder_admin: Annotated[str, typer.Option(help="ADMIN account of the founding org")] = "",
) -> None:
    """Deploy the contracts to `--rpc` and write deployments/<chainId>.json.

    The deployer key comes from DIRCHAIN_DEPLOYER_KEY (never from the command line, so it stays out of
    shell history). With --demo the demo consortium is seeded with anvil's dev keys instead.
    """
    w3 = Web3(Web3.HTTPProvider(rpc))
    if demo:
        deployment = seed_demo_consortium(w3).deployment
    else:
        key = os.environ.get("DIRCHAIN_DEPLOYER_KEY")
        if not key or not founder_admin:
            raise typer.BadParameter("set DIRCHAIN_DEPLOYER_KEY and pass --founder-admin (or use --demo)")
        founder = FounderOrg(
            code=founder_code,
            name=founder_name,
            kind=founder_kind,
            admin=Web3.to_checksum_address(founder_admin),
        )
        deployment = deploy_contracts(w3, key, founder)
    path = PROJECT_ROOT / "deployments" / f"{deployment['chain_id']}.json"
    write_deployment(deployment, path)
    console.print(f"deployed {', '.join(deployment['contracts'])} at block {deployment['deploy_block']} -> {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
