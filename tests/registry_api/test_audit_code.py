"""Code provenance (`dirchain audit code`, GET /v1/audit/code) on a real anvil: the deployed contracts rebuilt from
source with the pinned solc and compared byte by byte, and code replaced with `anvil_setCode` caught.

Tests that replace code take `chain` (anvil snapshot and revert), so the module's node is left as seeded. The
rebuild of contracts/ is made once per module (a compile takes seconds).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_utils import to_checksum_address
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.compiler import CONTRACTS_DIR
from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import AnvilNode, SeededConsortium, seed_demo_consortium
from chain_gateway.rpc import JsonRpcClient
from registry_api.audit.code import audit_code
from registry_api.audit.code_build import BuiltContract, CodeAuditError, Rebuild, RebuildCache, build_input
from registry_api.audit.code_compare import Comparison, compare_runtime, first_difference, split_metadata
from registry_api.cli import app as cli
from registry_api.schemas.audit_code import CodeAuditPublic, ContractCodePublic
from tests.registry_api.support import Api

pytestmark = pytest.mark.anvil


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the route reads the chain and the sources; the database holds nothing but the tokens here."""
    return f"sqlite:///{tmp_path / 'dirchain.db'}"


@pytest.fixture(scope="module")
def seeded(w3: Web3) -> SeededConsortium:
    """Seeded on this module's node itself, not loaded from the session's seeded chain: the audit replays each
    creation transaction at its block's parent, state that a loaded chain does not hold."""
    return seed_demo_consortium(w3)


@pytest.fixture(scope="module")
def rebuilds() -> RebuildCache:
    return RebuildCache()


@pytest.fixture(scope="module")
def built(rebuilds: RebuildCache, seeded: SeededConsortium) -> Rebuild:
    return rebuilds.get(seeded.deployment["compiler"])


@pytest.fixture
def rpc(anvil: AnvilNode) -> Iterator[JsonRpcClient]:
    with JsonRpcClient([anvil.url]) as client:
        yield client


def _compiled(built: Rebuild, seeded: SeededConsortium, name: str) -> BuiltContract:
    found = built.find(seeded.deployment["contracts"][name]["source"], name)
    assert found is not None
    return found


def _code(w3: Web3, seeded: SeededConsortium, name: str) -> bytes:
    return bytes(w3.eth.get_code(seeded.deployment["contracts"][name]["address"]))


def _set_code(w3: Web3, seeded: SeededConsortium, name: str, code: bytes) -> None:
    address = seeded.deployment["contracts"][name]["address"]
    w3.provider.make_request("anvil_setCode", [address, "0x" + code.hex()])  # type: ignore[arg-type]


def _one(report: CodeAuditPublic, name: str) -> ContractCodePublic:
    return next(c for c in report.contracts if c.name == name)


def _immutable_ranges(built: Rebuild, compiled: BuiltContract, name: str) -> list[tuple[int, int]]:
    ids = [i for i in compiled.immutable_refs if built.immutables[i].name == name]
    assert len(ids) == 1
    return compiled.immutable_refs[ids[0]]


def test_every_deployed_contract_matches_its_rebuild_fully(
    chain: SeededConsortium, rpc: JsonRpcClient, built: Rebuild
) -> None:
    report = audit_code(rpc, chain.deployment, built)

    assert report.verdict == "full"
    assert sorted(c.name for c in report.contracts) == sorted(chain.deployment["contracts"])
    for c in report.contracts:
        assert (c.status, c.problems, c.ok) == ("full", [], True), c.name
        assert c.deployed_metadata == c.compiled_metadata and c.deployed_metadata is not None
        assert c.deployed_metadata.solc == built.compiler_version.split("+")[0]
        assert c.recorded.runtime_on_chain_ok and c.recorded.creation_on_chain_ok and c.recorded.rebuilt_ok
        assert c.creation is not None
        assert (c.creation.status, c.creation.contract_address_ok, c.creation.replay_matches) == ("full", True, True)
    assert {s.status for s in report.sources} == {"same"}
    assert set(report.sources[0].model_dump()) >= {"recorded_sha256", "rebuilt_sha256"}


def test_immutables_are_masked_decoded_and_shown_to_be_the_deployments_contracts(
    chain: SeededConsortium, rpc: JsonRpcClient, built: Rebuild
) -> None:
    contracts = chain.deployment["contracts"]
    catalog = _one(audit_code(rpc, chain.deployment, built), "DataCatalog")

    assert catalog.status == "full"
    shown = {i.name: (i.decoded, i.points_to, i.ok) for i in catalog.immutables}
    assert shown == {
        "_consortium": (contracts["Consortium"]["address"], "Consortium", True),
        "_devices": (contracts["DeviceRegistry"]["address"], "DeviceRegistry", True),
    }
    assert all(i.expected == i.value for i in catalog.immutables)  # what replaying the creation tx writes
    assert catalog.creation is not None
    args = [(a.name, a.value, a.points_to) for a in catalog.creation.constructor_args]
    assert args == [
        ("consortium_", contracts["Consortium"]["address"], "Consortium"),
        ("devices_", contracts["DeviceRegistry"]["address"], "DeviceRegistry"),
    ]


def test_one_flipped_byte_in_the_executable_code_is_a_mismatch_at_its_offset(
    chain: SeededConsortium, w3: Web3, rpc: JsonRpcClient, built: Rebuild
) -> None:
    compiled = _compiled(built, chain, "DeviceRegistry")
    immutable_bytes = {b for refs in compiled.immutable_refs.values() for s, n in refs for b in range(s, s + n)}
    executable, _ = split_metadata(compiled.runtime)
    offset = next(b for b in range(len(executable) // 2, len(executable)) if b not in immutable_bytes)
    code = bytearray(_code(w3, chain, "DeviceRegistry"))
    code[offset] ^= 0xFF
    _set_code(w3, chain, "DeviceRegistry", bytes(code))

    report = audit_code(rpc, chain.deployment, built)

    registry = _one(report, "DeviceRegistry")
    assert (registry.status, registry.first_difference, registry.ok) == ("mismatch", offset, False)
    assert f"the runtime code differs from the rebuild from byte {offset} on" in registry.problems
    assert registry.recorded.runtime_on_chain_ok is False
    assert registry.creation is not None and registry.creation.replay_matches is False
    assert report.verdict == "mismatch"
    assert report.counts == {"full": len(chain.deployment["contracts"]) - 1, "mismatch": 1}


def test_a_metadata_only_difference_is_a_partial_match(
    chain: SeededConsortium, w3: Web3, rpc: JsonRpcClient, built: Rebuild
) -> None:
    code = bytearray(_code(w3, chain, "Consortium"))
    _, trailer = split_metadata(bytes(code))
    code[len(code) - len(trailer) + 10] ^= 0x01  # a byte of the IPFS multihash inside the CBOR
    _set_code(w3, chain, "Consortium", bytes(code))

    consortium = _one(audit_code(rpc, chain.deployment, built), "Consortium")

    assert (consortium.status, consortium.first_difference) == ("partial", None)
    assert consortium.deployed_metadata is not None and consortium.compiled_metadata is not None
    assert consortium.deployed_metadata.ipfs != consortium.compiled_metadata.ipfs
    assert consortium.deployed_metadata.solc == consortium.compiled_metadata.solc
    # the code was swapped after deployment: the creation transaction and the recorded hash say so
    assert consortium.creation is not None and consortium.creation.replay_matches is False
    assert consortium.recorded.runtime_on_chain_ok is False


def test_a_changed_immutable_value_is_reported_while_the_code_still_matches(
    chain: SeededConsortium, w3: Web3, rpc: JsonRpcClient, built: Rebuild
) -> None:
    contracts = chain.deployment["contracts"]
    compiled = _compiled(built, chain, "DataCatalog")
    code = bytearray(_code(w3, chain, "DataCatalog"))
    original = None
    wrong = bytes(12) + bytes.fromhex(contracts["SharingAgreements"]["address"][2:])
    for start, length in _immutable_ranges(built, compiled, "_consortium"):
        original = bytes(code[start : start + length])
        code[start : start + length] = wrong
    _set_code(w3, chain, "DataCatalog", bytes(code))

    catalog = _one(audit_code(rpc, chain.deployment, built), "DataCatalog")

    assert catalog.status == "full"  # immutables are masked in the comparison...
    consortium = next(i for i in catalog.immutables if i.name == "_consortium")
    assert consortium.decoded == contracts["SharingAgreements"]["address"]
    assert consortium.points_to == "SharingAgreements"
    assert consortium.expected == "0x" + (original or b"").hex()
    assert consortium.ok is False and consortium.problem is not None
    assert "which lacks functions of IConsortium" in consortium.problem
    assert "replaying the creation transaction writes" in consortium.problem
    assert next(i for i in catalog.immutables if i.name == "_devices").ok  # ...and checked one by one
    assert catalog.ok is False and any(p.startswith("immutable _consortium:") for p in catalog.problems)


def test_an_immutable_pointing_outside_the_deployment_is_reported(
    chain: SeededConsortium, w3: Web3, rpc: JsonRpcClient, built: Rebuild
) -> None:
    compiled = _compiled(built, chain, "CarrierRegistry")
    code = bytearray(_code(w3, chain, "CarrierRegistry"))
    stranger = "0x" + "ab" * 20
    for start, length in _immutable_ranges(built, compiled, "_consortium"):
        code[start : start + length] = bytes(12) + bytes.fromhex(stranger[2:])
    _set_code(w3, chain, "CarrierRegistry", bytes(code))

    carriers = _one(audit_code(rpc, chain.deployment, built), "CarrierRegistry")

    immutable = carriers.immutables[0]
    assert (immutable.name, immutable.points_to, immutable.ok) == ("_consortium", None, False)
    assert f"{to_checksum_address(stranger)} is not a contract of this deployment" in (immutable.problem or "")


def test_an_address_without_code_is_reported(
    chain: SeededConsortium, w3: Web3, rpc: JsonRpcClient, built: Rebuild
) -> None:
    _set_code(w3, chain, "ReviewBoard", b"")

    report = audit_code(rpc, chain.deployment, built)

    board = _one(report, "ReviewBoard")
    assert (board.status, board.deployed_length, board.immutables) == ("no_code", 0, [])
    assert "no code at the address" in board.problems
    assert report.verdict == "mismatch"


def test_the_audit_refuses_a_deployment_file_of_another_chain(
    chain: SeededConsortium, rpc: JsonRpcClient, built: Rebuild
) -> None:
    other = {**chain.deployment, "chain_id": chain.deployment["chain_id"] + 1}

    with pytest.raises(CodeAuditError) as raised:
        audit_code(rpc, other, built)  # type: ignore[arg-type]

    assert raised.value.code == "CHAIN_MISMATCH"


def test_a_deployment_compiled_with_another_solc_cannot_be_rebuilt_here(seeded: SeededConsortium) -> None:
    with pytest.raises(CodeAuditError) as raised:
        build_input({**seeded.deployment["compiler"], "version": "0.8.20"})

    assert raised.value.code == "COMPILER_VERSION_MISMATCH"


def test_the_rebuild_cache_compiles_each_source_tree_once(rebuilds: RebuildCache, built: Rebuild) -> None:
    compiler = {"version": "0.8.28", "evm_version": built.evm_version, "optimizer_runs": built.optimizer_runs}

    assert rebuilds.get(compiler) is built
    assert rebuilds.get(compiler, CONTRACTS_DIR) is built


def test_first_difference_is_the_shorter_length_when_one_code_is_a_prefix_of_the_other() -> None:
    assert first_difference(b"\x60\x80\x60", b"\x60\x80") == 2
    assert first_difference(b"\x60\x80", b"\x60\x80") is None
    assert split_metadata(b"\x60\x80\x00\x05") == (b"\x60\x80\x00\x05", b"")  # no room for a 5-byte trailer


def test_only_the_immutable_ranges_of_the_deployed_code_are_masked() -> None:
    compiled = b"\x60\x00\x00\x61"  # solc leaves immutables zero in the object

    assert compare_runtime(b"\x60\xaa\xbb\x61", compiled, [(1, 2)]).status == "full"
    assert compare_runtime(b"\x60\xaa\xbb\x61", compiled, [(1, 1)]) == Comparison("mismatch", 2)


def test_route_answers_the_report_to_any_member_and_caches_the_rebuild(api: Api, rebuilds: RebuildCache) -> None:
    api.app.state.code_rebuilds = rebuilds  # the module's rebuild: the first call does not compile again

    answer = api.get("/v1/audit/code", org="BJ-PSB")  # a member without the AUDITOR role
    anonymous = api.client.get("/v1/audit/code")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["verdict"] == "full"
    assert {c["name"]: c["status"] for c in body["contracts"]} == dict.fromkeys(
        api.chain.deployment["contracts"], "full"
    )
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "UNAUTHENTICATED"


def _cli(anvil: AnvilNode, deployment_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["audit", "code", "--rpc", anvil.url, "--deployments", str(deployment_path), *args]
    )
    return result.exit_code, result.stdout


def test_cli_exits_1_with_the_report_as_json_when_code_was_replaced(
    anvil: AnvilNode, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    write_deployment(chain.deployment, tmp_path / "deployment.json")
    code = bytearray(_code(w3, chain, "Consortium"))
    code[40] ^= 0xFF
    _set_code(w3, chain, "Consortium", bytes(code))

    status, out = _cli(anvil, tmp_path / "deployment.json", "--json")

    assert status == 1
    report = CodeAuditPublic.model_validate(json.loads(out))
    assert report.verdict == "mismatch"
    assert (_one(report, "Consortium").status, _one(report, "Consortium").first_difference) == ("mismatch", 40)


def test_cli_rebuilds_a_given_source_tree_and_a_comment_change_is_a_partial_match(
    anvil: AnvilNode, chain: SeededConsortium, tmp_path: Path
) -> None:
    write_deployment(chain.deployment, tmp_path / "deployment.json")
    sources = tmp_path / "sources"
    shutil.copytree(CONTRACTS_DIR, sources)
    consortium = sources / "Consortium.sol"
    consortium.write_text(consortium.read_text(encoding="utf-8") + "\n// audited copy\n", encoding="utf-8")

    status, out = _cli(anvil, tmp_path / "deployment.json", "--sources", str(sources), "--details")

    assert status == 0, out
    assert "PARTIAL" in out
    assert "contracts/Consortium.sol" in out and "changed" in out  # the source whose hash differs
    assert "immutable _consortium" in out  # --details


def test_cli_cannot_audit_without_sources(anvil: AnvilNode, chain: SeededConsortium, tmp_path: Path) -> None:
    write_deployment(chain.deployment, tmp_path / "deployment.json")
    (tmp_path / "empty").mkdir()

    result = CliRunner().invoke(
        cli,
        ["audit", "code", "--rpc", anvil.url, "--deployments", str(tmp_path / "deployment.json"),
         "--sources", str(tmp_path / "empty")],
    )  # fmt: skip

    assert result.exit_code == 2
    assert "NO_SOURCES" in result.stderr
