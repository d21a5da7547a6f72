"""The pinned compiler builds reproducibly, and the deployment file lets outside tools check the chain."""

from __future__ import annotations

import json

from eth_utils import keccak
from web3 import Web3

from chain_gateway.compiler import ARTIFACTS_PATH, EVM_VERSION, SOLC_VERSION, compile_contracts, load_artifacts
from chain_gateway.devnet import SeededConsortium


def test_compiling_again_gives_the_same_bytes_as_the_build() -> None:
    # The build on disk is another solc run (scripts/setup's, or load_artifacts' here when a source is newer), so
    # one more compile makes two to compare; each costs ~20 s of solc.js.
    first = compile_contracts(write=False)
    assert json.dumps(first, sort_keys=True) == json.dumps(load_artifacts(), sort_keys=True)
    assert json.loads(ARTIFACTS_PATH.read_text(encoding="utf-8")) == first
    assert first["compiler"] == {"version": SOLC_VERSION, "evm_version": EVM_VERSION, "optimizer_runs": 200}
    assert {"Consortium", "DeviceRegistry"} <= first["contracts"].keys()
    assert all(path.startswith("contracts/") for path in first["source_hashes"])


def _without_immutables(code: bytes, references: dict[str, list[dict[str, int]]]) -> bytes:
    patched = bytearray(code)
    for spans in references.values():
        for span in spans:
            patched[span["start"] : span["start"] + span["length"]] = bytes(span["length"])
    return bytes(patched)


def test_deployed_runtime_code_matches_the_build_and_the_deployment_file(chain: SeededConsortium, w3: Web3) -> None:
    artifacts = load_artifacts()
    deployment = chain.deployment
    assert deployment["compiler"]["version"] == SOLC_VERSION
    assert deployment["source_hashes"] == artifacts["source_hashes"]
    for name, info in deployment["contracts"].items():
        artifact = artifacts["contracts"][name]
        assert info["deployed_bytecode_keccak"] == "0x" + keccak(hexstr=artifact["deployed_bytecode"]).hex()
        on_chain = bytes(w3.eth.get_code(info["address"]))
        references = artifact["immutable_references"]
        expected = bytes.fromhex(artifact["deployed_bytecode"].removeprefix("0x"))
        assert _without_immutables(on_chain, references) == _without_immutables(expected, references), name
        assert info["block_number"] >= deployment["deploy_block"]
