"""`dirchain proposals ...` and `dirchain code-rules ...`: consortium votes, and code rules set through them.

The command groups are added to `registry_api.cli.app` when that module imports this one (one of its last imports).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from registry_api.cli import (
    ApiOpt,
    JsonOpt,
    KeyOpt,
    LimitOpt,
    OffsetOpt,
    OrgOpt,
    TimeoutOpt,
    TokenOpt,
    WaitOpt,
    _call,
    _send,
    _show_or_json,
    app,
    console,
)

__all__ = ["code_rules_app", "proposals_app"]

proposals_app = typer.Typer(help="Consortium proposals (k-of-n ADMIN votes): list, show, vote.", no_args_is_help=True)
code_rules_app = typer.Typer(
    help="Code rules per device type: list them, or propose one as the lead department of its domain.",
    no_args_is_help=True,
)


@proposals_app.command("list")
def proposals_list(
    executed: Annotated[bool | None, typer.Option("--executed/--open", help="only executed, or only open ones")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Proposals newest first, with the call each makes (decoded) and its votes, as a table (or --json)."""
    state = None if executed is None else str(executed).lower()
    page = _call(api, token, org, "get", "/v1/proposals", executed=state, limit=limit, offset=offset)

    def show(page: dict[str, Any]) -> None:
        table = Table(title=f"{page['count']} proposals")
        for column in ("id", "call", "description", "proposer", "votes", "executed"):
            table.add_column(column)
        for p in page["data"]:
            call = p["call"] or p["target"]
            table.add_row(str(p["id"]), call, p["description"], p["proposer_org"] or p["proposer"],
                          str(p["votes"]), "yes" if p["executed"] else "no")  # fmt: skip
        console.print(table)

    _show_or_json(page, as_json, show)


@proposals_app.command("show")
def proposals_show(
    proposal_id: Annotated[int, typer.Argument(help="proposal id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """One proposal with its decoded call and arguments (JSON)."""
    console.print_json(data=_call(api, token, org, "get", f"/v1/proposals/{proposal_id}"))


@proposals_app.command("vote")
def proposals_vote(
    proposal_id: Annotated[int, typer.Argument(help="proposal id")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Vote for a proposal as an ADMIN org; the vote that reaches the threshold executes it."""
    _send((api, token, org), f"/v1/proposals/{proposal_id}/votes", {}, idempotency_key, wait, timeout)


@code_rules_app.command("list")
def code_rules_list(
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every device type's code rule with its regular expression and an example code."""
    page = _call(api, token, org, "get", "/v1/code-rules", limit=limit, offset=offset)

    def show(page: dict[str, Any]) -> None:
        table = Table(title=f"{page['count']} code rules")
        for column in ("type", "id", "prefix", "length", "characters", "example"):
            table.add_column(column)
        for r in page["data"]:
            table.add_row(r["type"], str(r["type_id"]), r["prefix"], str(r["length"]), ", ".join(r["charset"]),
                          r["example"])  # fmt: skip
        console.print(table)

    _show_or_json(page, as_json, show)


@code_rules_app.command("propose")
def code_rules_propose(
    type_id: Annotated[int, typer.Option(help="the device type's number on-chain (1..65535)")],
    type_name: Annotated[str, typer.Option("--type", help="device type name, e.g. camera.drone")],
    prefix: Annotated[str, typer.Option(help="code prefix, e.g. BJ-CAMD-")],
    length: Annotated[int, typer.Option(help="characters in a whole code, prefix included")],
    charset: Annotated[list[str], typer.Option(help="allowed after the prefix: digits|upper|lower|hyphen (repeat)")],
    description: Annotated[str, typer.Option(help="why; shown to the voters")] = "",
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Propose a code rule as the lead department of the type's domain (cameras: public security; other front
    ends: city management); it applies once enough ADMIN orgs voted (`dirchain proposals vote`)."""
    body = {"type_id": type_id, "type": type_name, "prefix": prefix, "length": length, "charset": charset,
            "description": description}  # fmt: skip
    _send((api, token, org), "/v1/code-rules", body, idempotency_key, wait, timeout)


app.add_typer(proposals_app, name="proposals")
app.add_typer(code_rules_app, name="code-rules")
