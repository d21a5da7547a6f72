"""`dirchain genesis ...`: genesis files whose alloc carries the consortium's deployed and seeded contracts.

`qbft` writes a Besu QBFT genesis plus the deployments file; `alloc` writes the contracts' alloc alone (for the geth
Clique genesis of chain_gateway.clique, or any other geth-style genesis); `validators` decodes a QBFT extraData.
The group is added to `registry_api.cli.app` when that module imports this one. Guide: docs/besu-qbft.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from registry_api.cli import app, err

__all__ = ["genesis_app"]

genesis_app = typer.Typer(
    help="Genesis files carrying the consortium's contracts (Besu QBFT, or the alloc for a Clique genesis).",
    no_args_is_help=True,
)
app.add_typer(genesis_app, name="genesis")

ChainIdOpt = Annotated[int, typer.Option("--chain-id", help="chain id of the network the genesis starts", min=1)]
FoundersOpt = Annotated[
    Path | None,
    typer.Option(
        "--founders",
        help="JSON file of the founding orgs (addresses and roles, no keys; the first org founds the consortium); "
        "the demo consortium (dev keys, not for production) when omitted",
        exists=True,
        dir_okay=False,
    ),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error[/]: {message}")
    return typer.Exit(1)


def _spec(founders: Path | None) -> Any:
    from chain_gateway.genesis import load_spec

    return None if founders is None else load_spec(founders)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _funded(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        address, _, wei = value.partition("=")
        if not wei.isdigit():
            raise _fail(f"--fund takes ADDRESS=WEI, got {value!r}")
        out[address] = int(wei)
    return out


@genesis_app.command("qbft")
def qbft(
    chain_id: ChainIdOpt,
    validator: Annotated[
        list[str],
        typer.Option("--validator", help="a validator's node address (`besu public-key export-address`); repeat"),
    ],
    out: Annotated[Path, typer.Option("--out", help="directory for genesis.json and deployments/<chainId>.json")],
    founders: FoundersOpt = None,
    block_period: Annotated[int, typer.Option(help="QBFT blockperiodseconds", min=1)] = 2,
    request_timeout: Annotated[int, typer.Option(help="QBFT requesttimeoutseconds (about 2x the block period)")] = 4,
    epoch: Annotated[int, typer.Option(help="QBFT epochlength: blocks between vote resets", min=1)] = 30_000,
    gas_limit: Annotated[int, typer.Option(help="block gas limit")] = 30_000_000,
    fund: Annotated[list[str] | None, typer.Option(help="ADDRESS=WEI to fund (relayers of a paid-gas network)")] = None,
    paid_gas: Annotated[bool, typer.Option("--paid-gas", help="keep EIP-1559 base fees (default: free gas)")] = False,
) -> None:
    """Deploy and seed the consortium on a scratch anvil and write a Besu QBFT genesis carrying its contracts."""
    from chain_gateway.errors import GatewayConfigError
    from chain_gateway.genesis import build_consortium, newest_fork_needed, qbft_genesis

    try:
        built = build_consortium(chain_id, _spec(founders))
        genesis = qbft_genesis(
            built,
            validator,
            block_period_s=block_period,
            request_timeout_s=request_timeout,
            epoch_length=epoch,
            gas_limit=gas_limit,
            free_gas=not paid_gas,
            funded=_funded(fund or []),
        )
    except GatewayConfigError as exc:
        raise _fail(str(exc)) from None
    _write_json(out / "genesis.json", genesis)
    _write_json(out / "deployments" / f"{chain_id}.json", built.deployment)
    typer.echo(f"wrote {out / 'genesis.json'} ({len(built.alloc)} contracts, {len(validator)} validators) and "
               f"{out / 'deployments' / f'{chain_id}.json'} (deploy block 0); the bytecode needs "
               f"{newest_fork_needed(built.alloc)} opcodes at most, the genesis enables London")  # fmt: skip


@genesis_app.command("alloc")
def alloc(
    chain_id: ChainIdOpt,
    out: Annotated[Path, typer.Option("--out", help="file for the alloc JSON (address -> account)")],
    deployment: Annotated[Path, typer.Option("--deployment", help="file for the deployments JSON (deploy block 0)")],
    founders: FoundersOpt = None,
) -> None:
    """Write only the contracts' alloc (for a Clique or other geth-style genesis) and its deployments file."""
    from chain_gateway.errors import GatewayConfigError
    from chain_gateway.genesis import contracts_alloc

    try:
        entries = contracts_alloc(chain_id, _spec(founders), deployment)
    except GatewayConfigError as exc:
        raise _fail(str(exc)) from None
    _write_json(out, entries)
    typer.echo(f"wrote {out} ({len(entries)} contracts) and {deployment}")


@genesis_app.command("validators")
def validators(
    source: Annotated[str, typer.Argument(help="a QBFT extraData hex string, or a genesis.json file")],
) -> None:
    """Print the validator addresses of a QBFT genesis extraData (what `besu rlp decode` shows)."""
    from chain_gateway.errors import GatewayConfigError
    from chain_gateway.genesis import decode_qbft_extra_data

    extra = source
    if not source.startswith("0x"):
        try:
            extra = json.loads(Path(source).read_text(encoding="utf-8"))["extraData"]
        except (OSError, ValueError, KeyError) as exc:
            raise _fail(f"{source}: not an extraData hex string nor a genesis file with one ({exc})") from None
    try:
        addresses = decode_qbft_extra_data(extra)
    except (GatewayConfigError, ValueError) as exc:
        raise _fail(f"cannot decode the extraData: {exc}") from None
    for address in addresses:
        typer.echo(address)
