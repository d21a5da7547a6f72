"""The default profile of DESIGN.md (`scripts/run`): anvil, deploy, demo consortium, indexer and API.

No configuration: everything lives under var/ (SQLite mirror and outbox, dev keystore, credentials) and the
chain is fresh on every start, so the mirror is reset with it. Dev keys only (anvil's public mnemonic).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import create_engine
from sqlmodel import SQLModel
from web3 import Web3

from chain_gateway.clique import CliqueNetwork, register_validators
from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.deployments import ORG_KINDS, FounderOrg, deploy_contracts, write_deployment
from chain_gateway.devnet import AnvilNode, SeededConsortium, free_port, seed_demo_consortium
from chain_gateway.errors import GatewayConfigError
from chain_gateway.finality import safe_confirmations
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from chain_gateway.logs import configure_logging
from chain_gateway.settings import VAR_DIR, Settings
from chain_gateway.web3_connect import connect_web3
from registry_api.demo import DemoFilingError, file_demo_data

__all__ = ["app", "prepare_devnet"]

app = typer.Typer(help="The local development network: anvil, the demo consortium, indexer and API.")
console = Console(soft_wrap=True)  # paths and commands stay on one line, terminal or not
DEV_DIR = VAR_DIR / "dev"
CREDENTIALS_PATH = DEV_DIR / "credentials.json"
DEV_PASSWORD = SecretStr("dev-only-password")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def prepare_devnet(
    rpc_url: str, api_url: str, var_dir: Path = VAR_DIR, deployments_dir: Path = PROJECT_ROOT / "deployments"
) -> tuple[Settings, SeededConsortium]:
    """Deploy and seed the demo consortium on `rpc_url`; write deployment, keystore, database and credentials."""
    import chain_gateway.outbox  # noqa: F401 - registers the outbox tables
    import indexer.models  # noqa: F401 - registers the mirror tables
    from registry_api.auth import issue_token  # the API's own tables are registered on import

    dev_dir = var_dir / "dev"
    dev_dir.mkdir(parents=True, exist_ok=True)
    w3 = connect_web3(rpc_url)
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
        # the approvers' keystore files, for the console's in-browser signing (one file per account)
        "keystore": {"dir": str(dev_dir / "keystore"), "password": DEV_PASSWORD.get_secret_value()},
        "orgs": orgs,
    }
    fd = os.open(dev_dir / "credentials.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # open's mode applies only to a new file: an older, readable one is rewritten private
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle, ensure_ascii=False, indent=2)
    return settings, seeded


def _file_demo_data(api_url: str, devices: int) -> None:
    """Once the API answers, file the demo data through it (in a thread: the server keeps serving)."""
    with httpx.Client(base_url=api_url, timeout=5) as client:
        for _ in range(300):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    credentials = json.loads(CREDENTIALS_PATH.read_text(encoding="utf-8"))
    try:
        console.print(f"[green]{file_demo_data(api_url, credentials, devices)}")
    except (DemoFilingError, httpx.HTTPError) as exc:
        console.print(f"[red]demo data not filed: {exc}")


def _stop_like_ctrl_c(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM stops the dev profile as Ctrl-C does, so the node is stopped on the way out.

    uvicorn re-raises the signal it caught after its own shutdown; without this handler the default one would
    end the process before `finally` runs.
    """
    raise KeyboardInterrupt


class ChainKind(StrEnum):
    """The chain the dev profile starts."""

    ANVIL = "anvil"
    CLIQUE = "clique"


@dataclass
class _DevChain:
    """The dev profile's chain: its RPC URLs, what to change once it is seeded, and how to stop it."""

    urls: list[str]
    describe: str
    stop: Callable[[], None]
    after_seeding: Callable[[SeededConsortium], dict[str, Any]]


def _start_chain(kind: ChainKind, rpc_port: int, block_time: float) -> _DevChain:
    if kind is ChainKind.CLIQUE:
        try:
            clique = CliqueNetwork.launch(VAR_DIR / "network")
        except GatewayConfigError as exc:  # a network still running there, or geth not built
            console.print(f"[red]{exc}")
            raise typer.Exit(1) from exc

        def after_seeding(seeded: SeededConsortium) -> dict[str, Any]:
            register_validators(clique, seeded)  # the chain records which member runs which validator
            return {"rpc_urls": [n.url for n in clique.nodes], "confirmations": safe_confirmations(len(clique.nodes))}

        return _DevChain(
            [n.url for n in clique.nodes], "geth Clique, 4 signers (failover in this order)", clique.stop, after_seeding
        )
    if not _port_free(rpc_port):
        rpc_port = free_port()
    node = AnvilNode(port=rpc_port, block_time=block_time, log_path=DEV_DIR / "anvil.log").start()
    return _DevChain([node.url], f"anvil ({block_time:g} s blocks)", node.stop, lambda _seeded: {})


@app.command("up")
def up(
    api_port: Annotated[int, typer.Option(help="API port on 127.0.0.1")] = 8000,
    rpc_port: Annotated[int, typer.Option(help="anvil port on 127.0.0.1 (a free one if taken)")] = 8545,
    block_time: Annotated[float, typer.Option(help="seconds between blocks (interval mining)")] = 1.0,
    devices: Annotated[int, typer.Option(help="demo devices to file at start (0: no demo data)")] = 60,
    network: Annotated[
        ChainKind,
        typer.Option(
            help="anvil: one local node; clique: 4 geth signers on loopback, each run by a member org (geth is "
            "built once from the Go module proxy, a few minutes), with failover between them"
        ),
    ] = ChainKind.ANVIL,
) -> None:
    """Start the chain, deploy, seed the demo consortium and serve the API with indexer and gateway (Ctrl-C stops)."""
    from registry_api.app import create_app

    if not _port_free(api_port):
        raise typer.BadParameter(f"port {api_port} is taken; stop the other process or pass --api-port")
    DEV_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    chain = _start_chain(network, rpc_port, block_time)
    try:
        api_url = f"http://127.0.0.1:{api_port}"
        with console.status("deploying contracts and seeding the demo consortium"):
            settings, seeded = prepare_devnet(chain.urls[0], api_url)
            settings = settings.model_copy(update={"api_port": api_port, **chain.after_seeding(seeded)})
        orgs = json.loads(CREDENTIALS_PATH.read_text(encoding="utf-8"))["orgs"]
        console.print(f"[bold]{chain.describe}[/] {', '.join(chain.urls)} (chain {seeded.deployment['chain_id']})")
        console.print(f"[bold]contracts[/] {settings.deployments_path}")
        console.print(f"[bold]credentials[/] {CREDENTIALS_PATH} ({len(orgs)} orgs: tokens, accounts, dev keys)")
        console.print(f"[bold]API docs[/] {api_url}/docs    [bold]health[/] {api_url}/healthz")
        console.print(
            f"[bold]console[/] {api_url}/console/ (log in with an org's token; approvers sign with their keystore "
            f"files in {DEV_DIR / 'keystore'}, password in the credentials)"
        )
        console.print(
            f'try: curl -H "Authorization: Bearer $(jq -r \'.orgs["BJ-PSB"].token\' {CREDENTIALS_PATH})" '
            f"{api_url}/v1/devices"
        )
        if devices:
            threading.Thread(target=_file_demo_data, args=(api_url, devices), daemon=True).start()
        configure_logging(settings.log_json)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # the demo filing would flood the console
        uvicorn.run(create_app(settings), host="127.0.0.1", port=api_port, log_config=None)
    finally:
        chain.stop()


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
    w3 = connect_web3(rpc)
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
