"""What the chain and the receipts pin stays the same in any process: data digests and code hashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from registry_api.zone.algorithms import BUILTIN_ALGORITHMS
from registry_api.zone.datasets import DATASET_SPECS, dataset_for

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import json
from registry_api.zone.algorithms import BUILTIN_ALGORITHMS
from registry_api.zone.datasets import DATASET_SPECS, dataset_for
print(json.dumps({
    "data": {c: dataset_for(c, 3).digest for c in DATASET_SPECS},
    "code": {i.name: h for h, i in BUILTIN_ALGORITHMS.items()},
}))
"""


def test_data_digests_and_code_hashes_are_the_same_in_another_process() -> None:
    env = {"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}  # another string-hash seed than this process's
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    there = json.loads(out.stdout)
    assert there["data"] == {c: dataset_for(c, 3).digest for c in DATASET_SPECS}  # type: ignore[union-attr]
    assert there["code"] == {i.name: h for h, i in BUILTIN_ALGORITHMS.items()}
