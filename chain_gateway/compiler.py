"""Compile the Solidity sources with the pinned npm `solc`, driven by py-solc-x.

py-solc-x cannot download compilers on this network, so it is pointed at `scripts/solc`, a launcher for the
npm package. Output is reproducible byte for byte: sources are read in sorted order, metadata hashes are
IPFS-based and the JSON is written with sorted keys.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from chain_gateway.errors import GatewayConfigError

__all__ = [
    "ARTIFACTS_PATH",
    "CONTRACTS_DIR",
    "EVM_VERSION",
    "PROJECT_ROOT",
    "SOLC_VERSION",
    "compile_contracts",
    "load_artifacts",
    "run_solc",
    "standard_input",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
ARTIFACTS_PATH = PROJECT_ROOT / "build" / "contracts.json"
SOLC_LAUNCHER = PROJECT_ROOT / "scripts" / "solc"
SOLC_VERSION = "0.8.28"
# paris: no PUSH0/MCOPY, so the bytecode also runs on proof-of-authority consortium chains (Clique, QBFT)
# that have not enabled Shanghai or Cancun.
EVM_VERSION = "paris"
OPTIMIZER_RUNS = 200


def standard_input(
    contracts_dir: Path = CONTRACTS_DIR, evm_version: str = EVM_VERSION, optimizer_runs: int = OPTIMIZER_RUNS
) -> dict[str, Any]:
    """The solc standard-JSON input: every .sol under `contracts_dir` (keyed `contracts/<path>`), pinned settings."""
    sources = {
        f"contracts/{path.relative_to(contracts_dir).as_posix()}": {"content": path.read_text(encoding="utf-8")}
        for path in sorted(contracts_dir.rglob("*.sol"))
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "evmVersion": evm_version,
            "optimizer": {"enabled": True, "runs": optimizer_runs},
            "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
            "metadata": {"bytecodeHash": "ipfs"},
            "outputSelection": {
                "*": {
                    "*": [
                        "abi",
                        "metadata",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                        "evm.deployedBytecode.immutableReferences",
                        "evm.methodIdentifiers",
                        "storageLayout",  # for storage proofs (registry_api.audit); bytecode unchanged
                    ]
                }
            },
        },
    }


def _sha256(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def run_solc(input_json: dict[str, Any]) -> dict[str, Any]:
    """Compile a standard-JSON input with the pinned npm solc, in memory; raise with the compiler's errors."""
    if not (PROJECT_ROOT / "node_modules" / "solc").is_dir():
        raise GatewayConfigError("node_modules/solc is missing: run scripts/setup first")
    try:
        output: dict[str, Any] = solcx.compile_standard(
            input_json, base_path=str(PROJECT_ROOT), solc_binary=str(SOLC_LAUNCHER)
        )
    except SolcError as exc:  # its message carries the whole output JSON; keep only the compiler's errors
        output = json.loads(exc.stdout_data or "{}") or {
            "errors": [{"severity": "error", "formattedMessage": str(exc)}]
        }
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise GatewayConfigError("solc failed:\n" + "\n".join(e["formattedMessage"] for e in errors))
    return output


def compile_contracts(write: bool = True) -> dict[str, Any]:
    """Compile every contract under contracts/ and (by default) write build/contracts.json."""
    input_json = standard_input()
    output = run_solc(input_json)
    contracts: dict[str, Any] = {}
    for source, by_name in output["contracts"].items():
        for name, out in by_name.items():
            if not source.startswith("contracts/") or not out["evm"]["bytecode"]["object"]:
                continue  # interfaces, abstract contracts and OpenZeppelin's internal libraries
            contracts[name] = {
                "source": source,
                "abi": out["abi"],
                "bytecode": "0x" + out["evm"]["bytecode"]["object"],
                "deployed_bytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
                "immutable_references": out["evm"]["deployedBytecode"].get("immutableReferences", {}),
                "metadata": out["metadata"],
                "storage_layout": out.get("storageLayout", {}),
            }
    artifacts = {
        "compiler": {"version": SOLC_VERSION, "evm_version": EVM_VERSION, "optimizer_runs": OPTIMIZER_RUNS},
        "source_hashes": {path: _sha256(src["content"]) for path, src in input_json["sources"].items()},
        "contracts": {name: contracts[name] for name in sorted(contracts)},
        "errors_abi": _all_errors(output),
    }
    if write:
        ARTIFACTS_PATH.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACTS_PATH.write_text(json.dumps(artifacts, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return artifacts


def _all_errors(output: dict[str, Any]) -> list[dict[str, Any]]:
    """Every custom error ABI of every compiled unit (interfaces and libraries included), deduplicated."""
    seen: dict[str, dict[str, Any]] = {}
    for by_name in output["contracts"].values():
        for out in by_name.values():
            for item in out["abi"]:
                if item["type"] == "error":
                    signature = item["name"] + "(" + ",".join(i["type"] for i in item["inputs"]) + ")"
                    seen.setdefault(signature, item)
    return [seen[k] for k in sorted(seen)]


def load_artifacts(compile_if_missing: bool = True) -> dict[str, Any]:
    """Load build/contracts.json, compiling first if it is missing or older than a source."""
    if compile_if_missing and _stale():
        return compile_contracts()
    if not ARTIFACTS_PATH.exists():
        raise GatewayConfigError(f"{ARTIFACTS_PATH} is missing: run scripts/compile")
    data: dict[str, Any] = json.loads(ARTIFACTS_PATH.read_text(encoding="utf-8"))
    return data


def _stale() -> bool:
    if not ARTIFACTS_PATH.exists():
        return True
    built = ARTIFACTS_PATH.stat().st_mtime
    return any(path.stat().st_mtime > built for path in CONTRACTS_DIR.rglob("*.sol"))
