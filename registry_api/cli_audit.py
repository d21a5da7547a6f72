"""`dirchain audit`: an auditor's checks of the service against the chain (registry_api.audit).

The commands run where the auditor is: they read the chain over JSON-RPC and the mirror's database directly
(settings: DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL, ...), so the API is not trusted. Registered on the `dirchain`
app by `registry_api.cli` (`register(app)`); each module below adds its own commands.
"""

from __future__ import annotations

import typer

from registry_api import cli_audit_approvals, cli_audit_code, cli_audit_records, cli_audit_report, cli_audit_verify

__all__ = ["audit_app", "register"]

audit_app = typer.Typer(
    help="Check the service against the chain: the mirror, records and their trails, approvals, contract code.",
    no_args_is_help=True,
)

for _module in (cli_audit_verify, cli_audit_records, cli_audit_approvals, cli_audit_code, cli_audit_report):
    _module.register(audit_app)


def register(app: typer.Typer) -> None:
    """Add `dirchain audit` to the main app."""
    app.add_typer(audit_app, name="audit")
