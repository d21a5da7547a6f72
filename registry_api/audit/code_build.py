"""Rebuild the contracts from a source tree with the pinned solc, in memory, with the deployment's settings.

Nothing in build/ is read: the sources are compiled afresh (OpenZeppelin from node_modules, as the deployment
was built). Besides the bytecode, the rebuild keeps from the AST what the comparison needs to explain immutables:
each immutable's name and type, and the function selectors each contract type declares (with its bases), to
tell whether an address held in a `contract IConsortium` immutable is a contract that has those functions (a
contract may satisfy an interface declared beside its user without inheriting it). A compile takes seconds, so
`RebuildCache` keeps rebuilds by the digest of their standard-JSON input.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_gateway.compiler import CONTRACTS_DIR, EVM_VERSION, OPTIMIZER_RUNS, SOLC_VERSION, run_solc, standard_input
from chain_gateway.errors import GatewayConfigError

__all__ = [
    "BuiltContract",
    "CodeAuditError",
    "ImmutableDecl",
    "Rebuild",
    "RebuildCache",
    "build_input",
    "input_digest",
    "rebuild",
]

_CONTRACT_TYPE_ID = re.compile(r"^t_contract\$_\w+_\$(\d+)$")


class CodeAuditError(Exception):
    """The code audit cannot run: another compiler version recorded, no sources, solc refused them, wrong chain."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImmutableDecl:
    """An immutable state variable as the AST declares it."""

    name: str
    type_string: str  # "contract IConsortium", "address", "uint256"
    contract_type_id: int | None  # AST id of the contract or interface of a contract-typed immutable


@dataclass(frozen=True)
class BuiltContract:
    name: str
    source: str  # contracts/Consortium.sol
    abi: list[dict[str, Any]]
    creation: bytes  # evm.bytecode.object
    runtime: bytes  # evm.deployedBytecode.object, immutables zeroed
    immutable_refs: dict[int, list[tuple[int, int]]]  # AST id -> [(start, length)] in the runtime code
    selectors: frozenset[str]  # its external functions' selectors (evm.methodIdentifiers), 8 hex digits


@dataclass(frozen=True)
class Rebuild:
    digest: str  # sha256 of the standard-JSON input
    compiler_version: str  # from the metadata: 0.8.28+commit.7893614a
    evm_version: str
    optimizer_runs: int
    source_hashes: dict[str, str]  # path -> 0x sha256, as chain_gateway.compiler records them
    contracts: dict[tuple[str, str], BuiltContract]  # (source, name)
    immutables: dict[int, ImmutableDecl]
    type_selectors: dict[int, frozenset[str]]  # contract/interface AST id -> selectors it and its bases declare

    def find(self, source: str, name: str) -> BuiltContract | None:
        return self.contracts.get((source, name))


def build_input(compiler: Mapping[str, Any], sources_dir: Path | None = None) -> dict[str, Any]:
    """The standard-JSON input of `sources_dir` (contracts/ by default) with the recorded compiler settings.

    The pinned solc must be the recorded version: another version cannot reproduce the bytecode.
    """
    version = str(compiler.get("version", SOLC_VERSION))
    if version != SOLC_VERSION:
        raise CodeAuditError(
            "COMPILER_VERSION_MISMATCH",
            f"the deployment was compiled with solc {version}; this checkout pins {SOLC_VERSION}",
        )
    directory = sources_dir or CONTRACTS_DIR
    if not directory.is_dir() or not any(directory.rglob("*.sol")):
        raise CodeAuditError("NO_SOURCES", f"{directory} holds no .sol files")
    input_json = standard_input(
        directory,
        evm_version=str(compiler.get("evm_version", EVM_VERSION)),
        optimizer_runs=int(compiler.get("optimizer_runs", OPTIMIZER_RUNS)),
    )
    input_json["settings"]["outputSelection"]["*"][""] = ["ast"]  # output only: the bytecode is unchanged
    return input_json


def input_digest(input_json: Mapping[str, Any]) -> str:
    return "0x" + hashlib.sha256(json.dumps(input_json, sort_keys=True).encode()).hexdigest()


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _declarations(output: Mapping[str, Any]) -> tuple[dict[int, ImmutableDecl], dict[int, frozenset[str]]]:
    """Immutables by AST id, and the selectors every contract type declares with its bases, from the ASTs."""
    immutables: dict[int, ImmutableDecl] = {}
    own: dict[int, set[str]] = {}
    bases: dict[int, list[int]] = {}
    for unit in output.get("sources", {}).values():
        for node in _walk(unit.get("ast", {})):
            kind = node.get("nodeType")
            if kind == "ContractDefinition":
                bases[int(node["id"])] = [int(b) for b in node.get("linearizedBaseContracts", [])]
                own[int(node["id"])] = {
                    str(member["functionSelector"]) for member in node.get("nodes", []) if "functionSelector" in member
                }
            if kind == "VariableDeclaration" and node.get("mutability") == "immutable":
                types = node.get("typeDescriptions", {})
                match = _CONTRACT_TYPE_ID.match(str(types.get("typeIdentifier", "")))
                immutables[int(node["id"])] = ImmutableDecl(
                    name=node["name"],
                    type_string=str(types.get("typeString", "")),
                    contract_type_id=int(match.group(1)) if match else None,
                )
    type_selectors = {
        type_id: frozenset(selector for base in chain for selector in own.get(base, ()))
        for type_id, chain in bases.items()
    }
    return immutables, type_selectors


def rebuild(compiler: Mapping[str, Any], sources_dir: Path | None = None) -> Rebuild:
    """Compile `sources_dir` (contracts/ by default) as the deployment's `compiler` record says."""
    input_json = build_input(compiler, sources_dir)
    return _compile(input_json, input_digest(input_json))


def _compile(input_json: dict[str, Any], digest: str) -> Rebuild:
    try:
        output = run_solc(input_json)
    except GatewayConfigError as exc:
        raise CodeAuditError("REBUILD_FAILED", str(exc)) from exc
    immutables, type_selectors = _declarations(output)
    contracts: dict[tuple[str, str], BuiltContract] = {}
    version = ""
    for source, by_name in output.get("contracts", {}).items():
        for name, out in by_name.items():
            evm = out["evm"]
            if not source.startswith("contracts/") or not evm["bytecode"]["object"]:
                continue  # interfaces, abstract contracts, OpenZeppelin's internal libraries
            version = version or json.loads(out["metadata"])["compiler"]["version"]
            refs = evm["deployedBytecode"].get("immutableReferences", {})
            contracts[(source, name)] = BuiltContract(
                name=name,
                source=source,
                abi=out["abi"],
                creation=bytes.fromhex(evm["bytecode"]["object"]),
                runtime=bytes.fromhex(evm["deployedBytecode"]["object"]),
                immutable_refs={int(k): [(int(r["start"]), int(r["length"])) for r in v] for k, v in refs.items()},
                selectors=frozenset(evm.get("methodIdentifiers", {}).values()),
            )
    settings = input_json["settings"]
    return Rebuild(
        digest=digest,
        compiler_version=version,
        evm_version=str(settings["evmVersion"]),
        optimizer_runs=int(settings["optimizer"]["runs"]),
        source_hashes={
            path: "0x" + hashlib.sha256(src["content"].encode()).hexdigest()
            for path, src in input_json["sources"].items()
        },
        contracts=contracts,
        immutables=immutables,
        type_selectors=type_selectors,
    )


class RebuildCache:
    """Rebuilds by input digest (the newest `size` kept); one compile at a time, so concurrent asks wait for it."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._items: dict[str, Rebuild] = {}
        self._lock = threading.Lock()

    def get(self, compiler: Mapping[str, Any], sources_dir: Path | None = None) -> Rebuild:
        input_json = build_input(compiler, sources_dir)  # reading the sources is cheap; compiling is not
        digest = input_digest(input_json)
        with self._lock:
            found = self._items.get(digest)
            if found is None:
                found = _compile(input_json, digest)
                self._items[digest] = found
                while len(self._items) > self._size:
                    self._items.pop(next(iter(self._items)))
            return found
