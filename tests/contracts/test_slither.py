"""Slither over contracts/, compiled by the pinned npm solc (`scripts/slither`): no High or Medium finding.

Slither runs in its own venv (it pins web3<8); `scripts/slither` feeds crytic-compile the project's own
standard-JSON input through `scripts/solc`. A finding judged harmless is marked in the source with
`// slither-disable-next-line <detector>` under a comment that says why.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from chain_gateway.compiler import CONTRACTS_DIR, PROJECT_ROOT, SOLC_VERSION

BLOCKING_IMPACTS = ("High", "Medium")
SLITHER_TIMEOUT_SECONDS = 840  # the first run also installs Slither (~90 s idle, minutes beside a busy suite)

# the module fixture runs inside the first test, so that test gets the install's time too
pytestmark = pytest.mark.timeout(SLITHER_TIMEOUT_SECONDS + 60)


@pytest.fixture(scope="module")
def slither_report() -> dict[str, Any]:
    """Slither's JSON report: its detectors' findings, the detectors it ran and what it compiled."""
    run = subprocess.run(
        [
            str(PROJECT_ROOT / "scripts" / "slither"),
            "--json",
            "-",
            "--json-types",
            "detectors,compilations,list-detectors",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=SLITHER_TIMEOUT_SECONDS,
    )
    assert run.stdout.startswith("{"), f"slither produced no report (exit {run.returncode}):\n{run.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(run.stdout)
    assert report["success"], report["error"]
    return report


def test_slither_compiles_every_contract_with_the_pinned_solc(slither_report: dict[str, Any]) -> None:
    (compilation,) = slither_report["results"]["compilations"]
    (unit,) = compilation["compilation_units"].values()
    assert unit["compiler"]["version"] == SOLC_VERSION and unit["compiler"]["optimized"]
    ours = {f"contracts/{p.relative_to(CONTRACTS_DIR).as_posix()}" for p in CONTRACTS_DIR.rglob("*.sol")}
    assert ours <= set(unit["source_units"])
    impacts = {d["impact"] for d in slither_report["results"]["list-detectors"]}
    assert set(BLOCKING_IMPACTS) <= impacts  # the High and Medium detectors did run


def test_slither_finds_no_high_or_medium_issue_in_our_contracts(slither_report: dict[str, Any]) -> None:
    findings = slither_report["results"].get("detectors", [])
    blocking = [
        f"{f['impact']} {f['check']}: {f['description'].strip()}" for f in findings if f["impact"] in BLOCKING_IMPACTS
    ]
    assert not blocking, "\n".join(blocking)
    # OpenZeppelin's own findings are filtered out: every one left points into contracts/
    for finding in findings:
        files = {e["source_mapping"]["filename_relative"] for e in finding["elements"] if e.get("source_mapping")}
        assert all(f.startswith("contracts/") for f in files), (finding["check"], files)


def test_every_slither_suppression_names_its_detector_and_says_why() -> None:
    marker = re.compile(r"//\s*slither-disable-(next-line|line|start|end)\s+(\S+)")
    suppressions = 0
    for path in sorted(CONTRACTS_DIR.rglob("*.sol")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if "slither-disable" not in line:
                continue
            suppressions += 1
            assert marker.search(line), f"{path.name}:{number + 1}: names no detector"
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("//") and "slither" not in reason, f"{path.name}:{number + 1}: no reason above"
    assert suppressions >= 1  # the two unused-return ones of Consortium and SharingAgreements at least
