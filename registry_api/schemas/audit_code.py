"""The code-provenance report (`GET /v1/audit/code`, `dirchain audit code --json`): rebuilt vs deployed bytecode."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "CodeAuditPublic",
    "CodeMatch",
    "CompilerPublic",
    "ConstructorArg",
    "ContractCodePublic",
    "CreationPublic",
    "ImmutablePublic",
    "MetadataTrailer",
    "RecordedHashes",
    "SourceFilePublic",
    "Verdict",
]

CodeMatch = Literal["full", "partial", "mismatch", "no_code", "not_built"]
Verdict = Literal["full", "partial", "mismatch"]


class CompilerPublic(BaseModel):
    """The compiler and settings of the rebuild (taken from the deployment file's record)."""

    version: str = Field(
        description="solc's own long version, from the rebuilt metadata", examples=["0.8.28+commit.7893614a"]
    )
    evm_version: str
    optimizer_runs: int
    recorded: dict[str, Any] = Field(description="the deployment file's `compiler` record")


class SourceFilePublic(BaseModel):
    """One source file: its sha256 as the deployment file recorded it and as rebuilt from the given tree."""

    path: str = Field(examples=["contracts/Consortium.sol"])
    status: Literal["same", "changed", "missing", "extra"] = Field(
        description="missing: recorded but not in the tree; extra: in the tree but not recorded"
    )
    recorded_sha256: str | None
    rebuilt_sha256: str | None


class MetadataTrailer(BaseModel):
    """The CBOR metadata solc appends to runtime code (its length in the last two bytes)."""

    length: int = Field(description="bytes, the two length bytes included")
    ipfs: str | None = Field(default=None, description="CIDv0 of the metadata JSON (its hash commits to every source)")
    solc: str | None = Field(default=None, description="compiler version recorded in the trailer", examples=["0.8.28"])
    raw: str = Field(description="the trailer's bytes, 0x-hex")


class ImmutablePublic(BaseModel):
    """An immutable variable: the value the deployed code holds at its byte ranges (masked in the comparison)."""

    name: str = Field(examples=["_consortium"])
    type: str = Field(examples=["contract IConsortium"])
    offsets: list[int] = Field(description="byte offsets of its 32-byte slots in the runtime code")
    value: str | None = Field(description="the 32-byte word, 0x-hex (None if the code is too short to hold it)")
    decoded: Any = Field(default=None, description="the word decoded as its type (an address for contract types)")
    points_to: str | None = Field(default=None, description="the deployment's contract at that address, if any")
    expected: str | None = Field(
        default=None, description="the word that replaying the creation transaction writes there (eth_call)"
    )
    ok: bool
    problem: str | None = None


class ConstructorArg(BaseModel):
    name: str
    type: str
    value: Any = Field(description="decoded: addresses checksummed, bytes as 0x-hex")
    points_to: str | None = Field(default=None, description="the deployment's contract at that address, if any")


class CreationPublic(BaseModel):
    """The creation transaction: its input = creation bytecode + ABI-encoded constructor arguments."""

    tx_hash: str
    block_number: int | None = None
    sender: str | None = None
    status: Literal["full", "partial", "mismatch", "not_found", "not_built"] = Field(
        description="not_found: no such transaction; not_built: the sources have no such contract to compare"
    )
    first_difference: int | None = Field(default=None, description="byte offset in the transaction input")
    contract_address_ok: bool | None = Field(default=None, description="the receipt's contractAddress is this one")
    constructor_args: list[ConstructorArg] = []
    replay_matches: bool | None = Field(
        default=None,
        description="eth_call of the input at the block before yields exactly the deployed code (None: not replayable)",
    )


class RecordedHashes(BaseModel):
    """The deployment file's keccak256 hashes checked against the chain (and the rebuild)."""

    bytecode_keccak: str
    deployed_bytecode_keccak: str
    creation_on_chain_ok: bool | None = Field(
        default=None, description="keccak of the creation input's bytecode part equals `bytecode_keccak`"
    )
    runtime_on_chain_ok: bool = Field(
        description="keccak of the deployed code, immutables zeroed, equals `deployed_bytecode_keccak`"
    )
    rebuilt_ok: bool = Field(description="the rebuild's hashes equal the recorded ones (only with the exact sources)")


class ContractCodePublic(BaseModel):
    """One deployed contract compared with its rebuild."""

    name: str
    address: str
    source: str
    status: CodeMatch = Field(
        description="full: every byte equal (immutables masked), metadata too; partial: executable code equal, "
        "metadata differs; mismatch: executable code differs (see first_difference); no_code: nothing deployed "
        "at the address; not_built: the sources have no such contract"
    )
    first_difference: int | None = Field(default=None, description="byte offset of the first differing byte")
    deployed_length: int
    compiled_length: int | None = None
    deployed_metadata: MetadataTrailer | None = None
    compiled_metadata: MetadataTrailer | None = None
    immutables: list[ImmutablePublic] = []
    recorded: RecordedHashes
    creation: CreationPublic | None = None
    problems: list[str] = Field(default=[], description="every reason this contract fails the audit")
    ok: bool


class CodeAuditPublic(BaseModel):
    """The audit of every contract in the deployment file: full, partial or mismatch overall."""

    verdict: Verdict = Field(
        description="mismatch if any contract has a problem; partial if all pass but some only partially (or "
        "source files differ from the recorded ones); full otherwise"
    )
    chain_id: int
    block_number: int = Field(description="the block whose state was read")
    source_digest: str = Field(description="sha256 of the rebuilt standard-JSON input (sources and settings)")
    compiler: CompilerPublic
    sources: list[SourceFilePublic]
    contracts: list[ContractCodePublic]
    counts: dict[str, int] = Field(description="contracts per status")
