"""One settings object for every process (API, gateway, indexer, CLI), read from env or a .env file.

Defaults are the dev profile of DESIGN.md: local anvil, SQLite under var/, dev keystore under var/dev.
Secrets are `SecretStr` so they never appear in logs or reprs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain_gateway.compiler import PROJECT_ROOT

__all__ = ["Settings", "get_settings"]

VAR_DIR = PROJECT_ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIRCHAIN_", env_file=".env", extra="ignore")

    rpc_urls: list[str] = Field(
        default=["http://127.0.0.1:8545"],
        description="JSON-RPC endpoints of the chain, in order of preference: a call that fails in transport moves "
        "to the next at once, and every rpc_check_seconds the gateway and the indexer move to the first endpoint "
        "within rpc_max_lag_blocks of the highest head (failover); a JSON list in the environment",
    )
    rpc_max_lag_blocks: int = Field(
        default=4,
        ge=1,
        description="an endpoint whose head is more blocks than this behind the highest is not used (a node cut "
        "off from its peers still answers, but its chain has stopped)",
    )
    rpc_check_seconds: float = Field(
        default=5.0, gt=0, description="how often the gateway and the indexer compare the endpoints' heads"
    )
    chain_id: int | None = Field(default=None, description="expected chain id; read from the node if unset")
    deployments_path: Path | None = Field(default=None, description="deployments/<chainId>.json by default")
    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'dirchain.db'}",
        description="SQLAlchemy URL of the one database (outbox, mirror, tokens, receipts, zone, imports); "
        "production: postgresql+psycopg://user:password@host/db",
    )
    keystore_dir: Path = Field(
        default=VAR_DIR / "dev" / "keystore",
        description="encrypted keystore files (web3 v3 JSON) of the accounts the gateway signs for",
    )
    keystore_password: SecretStr = Field(
        default=SecretStr("dev-only-password"), description="password of the keystore files (secret: never logged)"
    )
    schema_check: bool = Field(
        default=False,
        description="refuse to start unless the database is at the migrations' head (`dirchain db upgrade`); "
        "off: processes create what is missing (dev profile)",
    )
    confirmations: int = Field(default=1, ge=0, description="blocks on top before an operation is confirmed")
    indexer_finality_depth: int = Field(default=64, ge=1, description="reorgs deeper than this are not expected")
    indexer_poll_seconds: float = Field(default=0.5, description="how often the indexer asks the node for new blocks")
    gateway_poll_seconds: float = Field(default=0.2, description="how long an idle gateway sleeps between outbox looks")
    gas_limit_cap: int = Field(default=30_000_000, description="highest gas limit the gateway signs a transaction with")
    gas_estimator: Literal["estimate", "access_list"] = Field(
        default="estimate",
        description="how the gateway sizes gas: eth_estimateGas, or the gasUsed of one eth_createAccessList "
        "(one execution instead of a binary search: ~7x faster for a 250-device registerDevices on anvil)",
    )
    gas_cache: bool = Field(
        default=False,
        description="reuse gas limits per call shape once the node's estimates agree (fewer node round trips; a "
        "write that would revert is then mined and fails with its decoded reason instead of being refused unsigned)",
    )
    api_host: str = Field(default="127.0.0.1", description="address `dirchain serve` binds")
    api_port: int = Field(default=8000, description="port `dirchain serve` listens on")
    run_gateway_in_api: bool = Field(
        default=True, description="run the gateway's outbox loop in the API process (off: run `dirchain gateway run`)"
    )
    run_indexer_in_api: bool = Field(
        default=True, description="run the indexer in the API process (off: run `dirchain indexer run`)"
    )
    log_json: bool = Field(default=False, description="log one JSON object a line (for log collectors)")
    # resolver and data zone
    capability_key_path: Path = Field(
        default=VAR_DIR / "keys" / "capability-es256.pem",
        description="the resolver's ES256 signing key (PEM, 0600, made on first start); a `<stem>.previous.pem` "
        "beside it stays published in the JWKS during a rotation",
    )
    capability_issuer: str = Field(default="dirchain-resolver", description="`iss` claim of capability tokens")
    capability_ttl_seconds: int = Field(default=300, ge=1, description="longest life of a capability token")
    zone_masking_key_path: Path = Field(
        default=VAR_DIR / "keys" / "zone-masking.key", description="HMAC secret of the desensitized form's hashes"
    )
    zone_operator_org: str = Field(default="BJ-EIB", description="org whose RELAYER account anchors usage receipts")
    inspection_overdue_days: int = Field(default=90, ge=1, description="assessment: days without inspection = overdue")
    receipt_anchor_interval_seconds: float = Field(
        default=60.0, ge=0, description="how often the API anchors new usage receipts; 0: not in the API"
    )
    receipt_anchor_batch_max: int = Field(default=10_000, ge=1, description="receipts per anchored Merkle root")
    # bulk imports (registry_api.imports)
    run_imports_in_api: bool = Field(default=True, description="process uploaded imports in the API process")
    audit_scratch_dir: Path | None = Field(
        default=None, description="where `audit verify` rebuilds the mirror (a temporary directory when unset)"
    )
    import_dir: Path = Field(default=VAR_DIR / "imports", description="uploaded import files (shared by API workers)")
    import_max_bytes: int = Field(default=2 * 1024**3, ge=1, description="largest import file, bytes")
    import_batch_size: int = Field(default=250, ge=1, le=2_000, description="devices per registerDevices call")
    import_batch_max_bytes: int = Field(
        default=120_000,
        ge=1_024,
        description="calldata bytes per registerDevices call (geth and Besu pools refuse transactions over 128 KiB)",
    )
    import_max_inflight_batches: int = Field(
        default=8, ge=1, description="batches of one import in the outbox at once (other writes are not starved)"
    )
    import_poll_seconds: float = Field(default=0.2, gt=0, description="how often an idle import runner looks")

    @property
    def rpc_url(self) -> str:
        return self.rpc_urls[0]

    def deployments_file(self, chain_id: int) -> Path:
        return self.deployments_path or PROJECT_ROOT / "deployments" / f"{chain_id}.json"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the environment."""
    return Settings()
