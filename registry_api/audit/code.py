"""Code provenance: every contract of the deployment file compared with its rebuild from source, as Sourcify does.

For each contract the chain is read over plain JSON-RPC at one block: its runtime code (`eth_getCode`), its
creation transaction and receipt, and a replay of that transaction (`eth_call` of its input at the block before)
that shows what the constructor writes. Then:

- runtime code vs the rebuilt `deployedBytecode` with immutables masked: full, partial or mismatch
  (`code_compare`); each immutable's deployed value decoded, checked against the replay, and for contract-typed
  ones checked to be the deployment's contract of that type;
- the creation input vs the rebuilt creation bytecode, the rest decoded as the constructor's arguments;
- the deployment file's recorded keccak hashes vs what is on chain, and its recorded source hashes vs the tree.

The chain is not trusted beyond its answers, the API not at all: the CLI runs this where the auditor is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from chain_gateway.deployments import ContractDeployment, Deployment
from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer
from registry_api.audit.code_build import BuiltContract, CodeAuditError, ImmutableDecl, Rebuild
from registry_api.audit.code_compare import (
    compare_creation,
    compare_runtime,
    describe_trailer,
    mask,
    split_metadata,
)
from registry_api.audit.code_values import decode_constructor_args, decode_word
from registry_api.schemas.audit_code import (
    CodeAuditPublic,
    CodeMatch,
    CompilerPublic,
    ContractCodePublic,
    CreationPublic,
    ImmutablePublic,
    RecordedHashes,
    SourceFilePublic,
    Verdict,
)

__all__ = ["CodeAuditError", "audit_code", "compare_sources"]

_CALLS_PER_CONTRACT = 3  # eth_getCode, eth_getTransactionByHash, eth_getTransactionReceipt


def _bytes(hex_value: Any) -> bytes:
    return bytes.fromhex(str(hex_value or "0x").removeprefix("0x"))


def _keccak(data: bytes) -> str:
    return "0x" + keccak(data).hex()


def _word(code: bytes, start: int, length: int) -> bytes | None:
    return code[start : start + length] if start + length <= len(code) else None


def compare_sources(recorded: Mapping[str, str], rebuilt: Mapping[str, str]) -> list[SourceFilePublic]:
    """Each source file's recorded and rebuilt sha256: same, changed, missing (from the tree) or extra."""
    files = []
    for path in sorted(set(recorded) | set(rebuilt)):
        old, new = recorded.get(path), rebuilt.get(path)
        status = "missing" if new is None else "extra" if old is None else "same" if old == new else "changed"
        files.append(SourceFilePublic(path=path, status=status, recorded_sha256=old, rebuilt_sha256=new))
    return files


class _Checker:
    """Checks of one deployment against one rebuild; `names` maps lowercase addresses to contract names."""

    def __init__(self, deployment: Deployment, built: Rebuild) -> None:
        self.deployment = deployment
        self.built = built
        self.names = {c["address"].lower(): name for name, c in deployment["contracts"].items()}

    def missing_functions(self, name: str, type_id: int) -> set[str]:
        """Selectors the contract type `type_id` declares that the deployment's contract `name` lacks."""
        record = self.deployment["contracts"][name]
        found = self.built.find(record["source"], name)
        wanted = self.built.type_selectors.get(type_id, frozenset())
        return set(wanted - found.selectors) if found else set(wanted)

    def immutable(
        self, decl: ImmutableDecl, ranges: Sequence[tuple[int, int]], deployed: bytes, replayed: bytes | None
    ) -> ImmutablePublic:
        """The value at an immutable's ranges, decoded, and whether it is what it should be."""
        words = [_word(deployed, start, length) for start, length in ranges]
        value = words[0] if words and None not in words else None
        problems = []
        if value is None:
            problems.append("the deployed code is too short to hold it")
        elif len(set(words)) > 1:
            problems.append(f"its {len(words)} copies in the code differ")
        decoded = decode_word(decl.type_string, value) if value is not None else None
        points_to = self.names.get(decoded.lower()) if isinstance(decoded, str) else None
        expected_words = [_word(replayed, s, n) for s, n in ranges] if replayed else []
        expected = expected_words[0] if expected_words and None not in expected_words else None
        if value is not None and expected is not None and expected != value:
            problems.append(f"replaying the creation transaction writes 0x{expected.hex()} here")
        if value is not None and decl.contract_type_id is not None:
            kind = decl.type_string.removeprefix("contract ")
            if decoded is None:
                problems.append(f"0x{value.hex()} is not an address")
            elif points_to is None:
                problems.append(f"{decoded} is not a contract of this deployment")
            elif missing := self.missing_functions(points_to, decl.contract_type_id):
                shown = ", ".join("0x" + selector for selector in sorted(missing))
                problems.append(f"{decoded} is {points_to}, which lacks functions of {kind}: {shown}")
        return ImmutablePublic(
            name=decl.name,
            type=decl.type_string,
            offsets=[start for start, _ in ranges],
            value=None if value is None else "0x" + value.hex(),
            decoded=decoded,
            points_to=points_to,
            expected=None if expected is None else "0x" + expected.hex(),
            ok=not problems,
            problem="; ".join(problems) or None,
        )

    def creation(
        self,
        record: ContractDeployment,
        compiled: BuiltContract | None,
        tx: Mapping[str, Any] | None,
        receipt: Mapping[str, Any] | None,
        replayed: bytes | None,
        deployed: bytes,
    ) -> tuple[CreationPublic, bool | None]:
        """The creation transaction checked; also whether its bytecode part hashes to the recorded keccak."""
        if tx is None:
            return CreationPublic(tx_hash=record["tx_hash"], status="not_found"), None
        tx_input = _bytes(tx.get("input") or tx.get("data"))
        created = (receipt or {}).get("contractAddress")
        answer = CreationPublic(
            tx_hash=record["tx_hash"],
            block_number=int(tx["blockNumber"], 16) if tx.get("blockNumber") else None,
            sender=tx.get("from"),
            status="not_built",
            contract_address_ok=None if created is None else str(created).lower() == record["address"].lower(),
            replay_matches=None if replayed is None else replayed == deployed,
        )
        if compiled is None:
            return answer, None
        runtime_trailer = split_metadata(compiled.runtime)[1]
        comparison = compare_creation(tx_input, compiled.creation, runtime_trailer)
        answer.status = comparison.status
        answer.first_difference = comparison.first_difference
        if comparison.status != "mismatch":
            try:
                answer.constructor_args = decode_constructor_args(
                    compiled.abi, tx_input[len(compiled.creation) :], self.names
                )
            except DecodingError:
                answer.status = "mismatch"
                answer.first_difference = len(compiled.creation)
        recorded_ok = _keccak(tx_input[: len(compiled.creation)]) == record["bytecode_keccak"]
        return answer, recorded_ok

    def contract(
        self,
        name: str,
        code_hex: str,
        tx: Mapping[str, Any] | None,
        receipt: Mapping[str, Any] | None,
        replayed: bytes | None,
    ) -> ContractCodePublic:
        record = self.deployment["contracts"][name]
        compiled = self.built.find(record["source"], name)
        deployed = _bytes(code_hex)
        problems: list[str] = []
        ranges = sorted(r for refs in compiled.immutable_refs.values() for r in refs) if compiled else []
        status: CodeMatch
        first = None
        if not deployed:
            status = "no_code"
            problems.append("no code at the address")
        elif compiled is None:
            status = "not_built"
            problems.append(f"the sources have no contract {name} in {record['source']}")
        else:
            comparison = compare_runtime(deployed, compiled.runtime, ranges)
            status, first = comparison.status, comparison.first_difference
            if status == "mismatch":
                problems.append(f"the runtime code differs from the rebuild from byte {first} on")
        immutables = []
        if compiled is not None and deployed:
            for decl_id, refs in sorted(compiled.immutable_refs.items(), key=lambda item: min(item[1])):
                decl = self.built.immutables.get(decl_id, ImmutableDecl(f"#{decl_id}", "", None))
                immutables.append(self.immutable(decl, refs, deployed, replayed))
        problems += [f"immutable {i.name}: {i.problem}" for i in immutables if i.problem]
        creation, creation_hash_ok = self.creation(record, compiled, tx, receipt, replayed, deployed)
        problems += _creation_problems(creation)
        recorded = RecordedHashes(
            bytecode_keccak=record["bytecode_keccak"],
            deployed_bytecode_keccak=record["deployed_bytecode_keccak"],
            creation_on_chain_ok=creation_hash_ok,
            runtime_on_chain_ok=bool(deployed)
            and _keccak(mask(deployed, ranges)) == record["deployed_bytecode_keccak"],
            rebuilt_ok=compiled is not None
            and _keccak(compiled.creation) == record["bytecode_keccak"]
            and _keccak(compiled.runtime) == record["deployed_bytecode_keccak"],
        )
        if deployed and not recorded.runtime_on_chain_ok:
            problems.append(
                "the deployed code (immutables zeroed) does not hash to the recorded deployed_bytecode_keccak"
            )
        if creation_hash_ok is False:
            problems.append("the creation transaction's bytecode does not hash to the recorded bytecode_keccak")
        return ContractCodePublic(
            name=name,
            address=record["address"],
            source=record["source"],
            status=status,
            first_difference=first,
            deployed_length=len(deployed),
            compiled_length=len(compiled.runtime) if compiled else None,
            deployed_metadata=describe_trailer(split_metadata(deployed)[1]),
            compiled_metadata=describe_trailer(split_metadata(compiled.runtime)[1]) if compiled else None,
            immutables=immutables,
            recorded=recorded,
            creation=creation,
            problems=problems,
            ok=not problems,
        )


def _creation_problems(creation: CreationPublic) -> list[str]:
    problems = []
    if creation.status == "not_found":
        problems.append(f"the creation transaction {creation.tx_hash} is not on the chain")
    elif creation.status == "mismatch":
        problems.append(
            f"the creation transaction's input differs from the rebuild from byte {creation.first_difference} on"
        )
    if creation.contract_address_ok is False:
        problems.append("the creation transaction created another address")
    if creation.replay_matches is False:
        problems.append("replaying the creation transaction yields other code than is deployed")
    return problems


def _replays(rpc: JsonRpcClient, txs: Sequence[Mapping[str, Any] | None]) -> list[bytes | None]:
    """Each creation transaction's input run by `eth_call` at the block before it: the code it would deploy.

    None where there is no transaction or the node cannot (a node without that block's state answers an error).
    """
    calls: list[tuple[str, Sequence[Any]]] = []
    for tx in txs:
        if tx is not None and tx.get("blockNumber"):
            call = {"from": tx["from"], "data": tx.get("input") or tx.get("data"), "value": tx.get("value", "0x0")}
            calls.append(("eth_call", [call, hex(max(int(tx["blockNumber"], 16) - 1, 0))]))
    answers = iter(rpc.batch(calls))
    replays: list[bytes | None] = []
    for tx in txs:
        answer = next(answers) if tx is not None and tx.get("blockNumber") else None
        replays.append(None if answer is None or isinstance(answer, RpcErrorAnswer) else _bytes(answer))
    return replays


def audit_code(rpc: JsonRpcClient, deployment: Deployment, built: Rebuild, block: int | None = None) -> CodeAuditPublic:
    """Compare every contract of `deployment` on the chain behind `rpc` (at `block`, default the head) with `built`."""
    chain_id = rpc.chain_id()
    if chain_id != deployment["chain_id"]:
        raise CodeAuditError(
            "CHAIN_MISMATCH", f"the node is chain {chain_id}; the deployment file is for chain {deployment['chain_id']}"
        )
    at = rpc.block_number() if block is None else block
    names = sorted(deployment["contracts"])
    calls: list[tuple[str, Sequence[Any]]] = []
    for name in names:
        record = deployment["contracts"][name]
        calls += [
            ("eth_getCode", [record["address"], hex(at)]),
            ("eth_getTransactionByHash", [record["tx_hash"]]),
            ("eth_getTransactionReceipt", [record["tx_hash"]]),
        ]
    answers = rpc.batch(calls)
    for answer in answers[::_CALLS_PER_CONTRACT]:
        if isinstance(answer, RpcErrorAnswer):
            raise answer  # no code read, no audit: the node's error is the answer
    txs = [None if isinstance(a, RpcErrorAnswer) else a for a in answers[1::_CALLS_PER_CONTRACT]]
    receipts = [None if isinstance(a, RpcErrorAnswer) else a for a in answers[2::_CALLS_PER_CONTRACT]]
    replays = _replays(rpc, txs)
    checker = _Checker(deployment, built)
    contracts = [
        checker.contract(name, answers[i * _CALLS_PER_CONTRACT], txs[i], receipts[i], replays[i])
        for i, name in enumerate(names)
    ]
    sources = compare_sources(deployment.get("source_hashes", {}), built.source_hashes)
    verdict: Verdict
    if any(not c.ok for c in contracts):
        verdict = "mismatch"
    elif any(c.status == "partial" for c in contracts) or any(s.status != "same" for s in sources):
        verdict = "partial"
    else:
        verdict = "full"
    return CodeAuditPublic(
        verdict=verdict,
        chain_id=chain_id,
        block_number=at,
        source_digest=built.digest,
        compiler=CompilerPublic(
            version=built.compiler_version,
            evm_version=built.evm_version,
            optimizer_runs=built.optimizer_runs,
            recorded=dict(deployment.get("compiler", {})),
        ),
        sources=sources,
        contracts=contracts,
        counts=dict(Counter(c.status for c in contracts)),
    )
