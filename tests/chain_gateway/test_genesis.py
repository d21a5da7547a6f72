"""Genesis files carrying the consortium: a fresh anvil started from them (`--init`) holds working contracts.

Besu cannot run here; what stands in: the generated genesis loaded into anvil, and the QBFT extraData checked
against the examples of Besu's documentation.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.deployments import load_deployment, send_transaction
from chain_gateway.devnet import ANVIL_ACCOUNTS, DEMO_CODE_RULES, DEMO_ORGS, AnvilNode, dev_key
from chain_gateway.errors import GatewayConfigError
from chain_gateway.genesis import (
    LONDON_FORKS,
    GenesisAccount,
    contracts_alloc,
    decode_qbft_extra_data,
    newest_fork_needed,
    opcodes_used,
    qbft_extra_data,
)
from chain_gateway.governance import contract, role_id
from registry_api.cli import app

CHAIN_ID = 2024

# Besu docs, "Configure QBFT consensus" (besu.hyperledger.org/private-networks/how-to/configure/consensus/qbft):
# the toEncode.json validators of `besu rlp encode --type=QBFT_EXTRA_DATA` and the RLP it prints, and the
# extraData of the page's block-header-validator genesis with its four validators.
BESU_RLP_ENCODE_EXAMPLE = (
    ["0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb", "0x06e23768a0f59cf365e18c2e0c89e151bcdedc70",
     "0xc5327f96ee02d7bcbc1bf1236b8c15148971e1de", "0xab5e7f4061c605820d3744227eed91ff8e2c8908"],
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854944592c8e45706cc08b8f44b11e43cba"
    "0cfc5892cb9406e23768a0f59cf365e18c2e0c89e151bcdedc7094c5327f96ee02d7bcbc1bf1236b8c15148971e1de94ab5e7f4061c6"
    "05820d3744227eed91ff8e2c8908c080c0",
)  # fmt: skip
BESU_GENESIS_EXAMPLE = (
    ["0x64a702e6263b7297a96638cac6ae65e6541f4169", "0x3923390ad55e90c237593b3b0e401f3b08a03185",
     "0xaefdb9a738c9f433e5b6b212a6d62f6370c2f692", "0xc7eeb9a4e00ce683cf93039b212648e01c6c6b78"],
    "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f8549464a702e6263b7297a96638cac6ae65"
    "e6541f4169943923390ad55e90c237593b3b0e401f3b08a0318594aefdb9a738c9f433e5b6b212a6d62f6370c2f69294c7eeb9a4e00c"
    "e683cf93039b212648e01c6c6b78c080c0",
)  # fmt: skip
# The contract-validator example of the same page: no validators at all.
BESU_CONTRACT_VALIDATORS_EXAMPLE = "0xe5a00000000000000000000000000000000000000000000000000000000000000000c0c080c0"

# A founders file as a production consortium writes it: addresses and roles only. The addresses are dev accounts
# so that the test can sign a write as the registrar.
FOUNDERS_DEV_INDEXES = {"admin": 20, "registrar": 21, "approver": 22, "auditor": 23, "second_admin": 24}


def _address(role: str) -> str:
    return Account.from_key(dev_key(FOUNDERS_DEV_INDEXES[role])).address


def _founders() -> dict[str, Any]:
    return {
        "orgs": [
            {"code": "GX-EIB", "name": "经济和信息化局", "kind": "department",
             "accounts": {_address("admin"): ["ADMIN", "REGISTRAR", "RELAYER"]}},
            {"code": "GX-DST", "name": "District", "kind": "district",
             "accounts": {_address("registrar"): ["REGISTRAR"], _address("approver"): ["APPROVER"]}},
            {"code": "GX-PSB", "name": "Public security", "kind": "department",
             "accounts": {_address("second_admin"): ["ADMIN", "REVIEWER"]}},
            {"code": "GX-AUD", "name": "Auditor", "kind": "auditor", "accounts": {_address("auditor"): ["AUDITOR"]}},
        ],
        "threshold": 2,
        "code_rules": [[4, "sensor.air", "GX-AIRQ-", 20, 1]],
        "review_leads": {"3": "GX-EIB"},
    }  # fmt: skip


VALIDATORS = [Account.from_key(dev_key(i)).address for i in (36, 37, 38, 39)]


@pytest.fixture(scope="module")
def qbft_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dirchain genesis qbft` run on the founders file, with four validators and a funded relayer."""
    out = tmp_path_factory.mktemp("qbft")
    founders = out / "founders.json"
    founders.write_text(json.dumps(_founders(), ensure_ascii=False))
    args = ["genesis", "qbft", "--chain-id", str(CHAIN_ID), "--out", str(out), "--founders", str(founders)]
    args += [a for v in VALIDATORS for a in ("--validator", v)]
    args += ["--fund", f"{_address('admin')}=1000"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def genesis_node(qbft_files: Path) -> Iterator[Web3]:
    """A fresh anvil whose block 0 is the generated QBFT genesis."""
    with AnvilNode(chain_id=CHAIN_ID, genesis_path=qbft_files / "genesis.json") as node:
        yield Web3(Web3.HTTPProvider(node.url))


def test_qbft_extra_data_matches_the_besu_docs_examples() -> None:
    for validators, encoded in (BESU_RLP_ENCODE_EXAMPLE, BESU_GENESIS_EXAMPLE):
        assert qbft_extra_data(validators) == encoded
        assert [v.lower() for v in decode_qbft_extra_data(encoded)] == validators
    assert qbft_extra_data([]) == BESU_CONTRACT_VALIDATORS_EXAMPLE


def test_generated_extra_data_decodes_to_the_sorted_validators(qbft_files: Path) -> None:
    genesis = json.loads((qbft_files / "genesis.json").read_text())
    assert decode_qbft_extra_data(genesis["extraData"]) == sorted(VALIDATORS, key=lambda a: int(a, 16))
    result = CliRunner().invoke(app, ["genesis", "validators", str(qbft_files / "genesis.json")])
    assert result.exit_code == 0, result.output
    assert result.output.split() == sorted(VALIDATORS, key=lambda a: int(a, 16))
    assert genesis["config"]["qbft"] == {"blockperiodseconds": 2, "epochlength": 30_000, "requesttimeoutseconds": 4}
    assert all(genesis["config"][f"{fork}Block"] == 0 for fork in LONDON_FORKS)
    assert genesis["config"]["zeroBaseFee"] is True and genesis["baseFeePerGas"] == "0x0"


def test_bad_extra_data_is_one_clear_cli_error() -> None:
    with pytest.raises(GatewayConfigError):
        decode_qbft_extra_data("0x1234")
    result = CliRunner().invoke(app, ["genesis", "validators", "0xzz"])
    assert result.exit_code == 1
    assert "cannot decode the extraData" in result.output and "Traceback" not in result.output


def test_genesis_consortium_reads_back_as_seeded(qbft_files: Path, genesis_node: Web3) -> None:
    w3 = genesis_node
    deployment = load_deployment(qbft_files / "deployments" / f"{CHAIN_ID}.json")
    assert w3.eth.block_number == 0 and deployment["deploy_block"] == 0 and deployment["chain_id"] == CHAIN_ID
    members = contract(w3, deployment, "Consortium")
    spec = _founders()
    for org in spec["orgs"]:
        org_id = members.functions.orgIdByCode(org["code"]).call()
        assert members.functions.getOrg(org_id).call()[2:] == (True, org["code"], org["name"])
        for account, roles in org["accounts"].items():
            assert members.functions.orgOf(account).call() == org_id
            for role in ("ADMIN", "REGISTRAR", "REVIEWER", "APPROVER", "AUDITOR", "RELAYER"):
                assert members.functions.hasRole(role_id(role), account).call() == (role in roles), (account, role)
    assert members.functions.threshold().call() == 2
    assert members.functions.adminOrgCount().call() == 2
    registry = contract(w3, deployment, "DeviceRegistry")
    assert registry.functions.getCodeRule(4).call() == ("sensor.air", "GX-AIRQ-", 20, 1)
    board = contract(w3, deployment, "ReviewBoard")
    assert board.functions.leadOrg(3).call() == members.functions.orgIdByCode("GX-EIB").call()
    assert w3.eth.get_balance(_address("admin")) >= 1000  # funded (anvil adds its own dev balance on top)


def test_a_registrar_write_on_the_genesis_chain_emits_its_event(qbft_files: Path, genesis_node: Web3) -> None:
    w3 = genesis_node
    deployment = load_deployment(qbft_files / "deployments" / f"{CHAIN_ID}.json")
    registry = contract(w3, deployment, "DeviceRegistry")
    registrar = _address("registrar")
    device = ("GX-AIRQ-110105000001", 4, 2, 110105, 39_920_000, 116_460_000, int(time.time()) - 60, '{"height":3}')
    tx = registry.functions.registerDevice(device).build_transaction({"from": registrar})
    receipt = send_transaction(w3, dev_key(FOUNDERS_DEV_INDEXES["registrar"]), tx)
    (event,) = registry.events.DeviceRegistered().process_receipt(receipt)
    district_org = contract(w3, deployment, "Consortium").functions.orgIdByCode("GX-DST").call()
    assert event.args.code == "GX-AIRQ-110105000001" and event.args.ownerOrg == district_org
    assert event.args.attributes == '{"height":3}' and event.args.status == 2


def test_no_private_key_in_the_generated_files(qbft_files: Path, tmp_path: Path) -> None:
    texts = [p.read_text() for p in qbft_files.rglob("*.json") if p.name != "founders.json"]
    assert texts and not any(re.search(r"private.?key", t, re.IGNORECASE) for t in texts)
    keys = [dev_key(i)[2:] for i in range(ANVIL_ACCOUNTS)]
    assert not [k for k in keys for t in texts if k in t.lower()]


def test_contracts_alloc_serves_a_clique_genesis(tmp_path: Path) -> None:
    """The demo consortium's alloc in a London-rules Clique genesis: the chain starts with the demo orgs in place."""
    deployment_path = tmp_path / "deployments" / f"{CHAIN_ID}.json"
    alloc: dict[str, GenesisAccount] = contracts_alloc(CHAIN_ID, deployment_path=deployment_path)
    assert newest_fork_needed(alloc) in ("istanbul", "london")  # paris bytecode: no PUSH0/MCOPY, London is enough
    assert all(0x5F not in opcodes_used(bytes.fromhex(a["code"][2:])) for a in alloc.values())
    signer = Account.from_key(dev_key(39)).address
    clique = {"period": 1, "epoch": 30_000}
    genesis = {
        "config": {"chainId": CHAIN_ID, **{f"{f}Block": 0 for f in LONDON_FORKS}, "clique": clique},
        "difficulty": "0x1",
        "gasLimit": hex(30_000_000),
        "extraData": "0x" + "00" * 32 + signer[2:].lower() + "00" * 65,
        "alloc": alloc,
    }  # fmt: skip
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(genesis))
    texts = [path.read_text(), deployment_path.read_text()]
    assert not [i for i in range(ANVIL_ACCOUNTS) for t in texts if dev_key(i)[2:] in t.lower()]
    deployment = load_deployment(deployment_path)
    assert deployment["deploy_block"] == 0
    with AnvilNode(chain_id=CHAIN_ID, genesis_path=path) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        members = contract(w3, deployment, "Consortium")
        assert [members.functions.getOrg(i + 1).call()[3] for i in range(len(DEMO_ORGS))] == [o.code for o in DEMO_ORGS]
        registry = contract(w3, deployment, "DeviceRegistry")
        for type_id, name, prefix, length, charset in DEMO_CODE_RULES:
            assert registry.functions.getCodeRule(type_id).call() == (name, prefix, length, charset)
