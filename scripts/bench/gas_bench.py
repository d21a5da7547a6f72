#!/usr/bin/env python
"""Gas per device registered, one at a time and in batches, and where the gas goes.

Starts its own anvil (automine), seeds the demo consortium, and registers synthetic-city devices (realistic
codes, locations and ~70-byte attributes) from the public security bureau's registrar: `registerDevice` once and
`registerDevices` at each of `--sizes`. From each receipt it splits the gas into: the 21,000 base, calldata
(16 gas per non-zero byte, 4 per zero byte), the event logs (375 + 375 per topic + 8 per data byte), the two new
storage slots per device (22,100 each: a cold SSTORE from zero, EIP-2929/2200) and the rest (execution: code-rule
checks, keccak of code and attributes, the loop). Gas is deterministic, so one run suffices.

The storage layout that minimises it (`DeviceRegistry._devices`, solc's storage layout): a device is keyed by the
keccak of its code and takes two slots. Slot 0 packs owner org (uint32), type (uint16), status (uint8), district
(uint32), lat and lon (int32 micro-degrees), built-at and last-inspection (uint40 seconds): 28 bytes, one SSTORE.
Slot 1 is the attributes hash; the attributes and the code themselves live only in the event, which costs 8 gas
per byte instead of 20,000 per 32 bytes.

    .venv/bin/python scripts/bench/gas_bench.py [--sizes 10,100,250,500]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import date
from itertools import islice
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, PeakMemory, add_json_option, write_figures  # noqa: E402

from chain_gateway.device_calldata import encode_register_devices  # noqa: E402
from chain_gateway.devnet import DEMO_CODE_RULES, AnvilNode, seed_demo_consortium  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from registry_api.synthetic_city import CityDevice, generate_devices  # noqa: E402

ORG = "BJ-PSB"
TX_BASE_GAS = 21_000
NEW_SLOT_GAS = 22_100  # SSTORE zero -> non-zero (20,000) on a cold slot (2,100)
SLOTS_PER_DEVICE = 2
LOG_GAS, TOPIC_GAS, LOG_BYTE_GAS = 375, 375, 8
TYPE_IDS = {name: type_id for type_id, name, *_ in DEMO_CODE_RULES}
STATUS_IDS = {"planned": 1, "active": 2}
COMMAND = ".venv/bin/python scripts/bench/gas_bench.py"


def device_input(device: CityDevice) -> tuple[object, ...]:
    built = date.fromisoformat(device.built_at)
    built_at = int((built - date(1970, 1, 1)).total_seconds())
    return (device.code, TYPE_IDS[device.type], STATUS_IDS[device.status], device.district,
            round(device.lat * 1e6), round(device.lon * 1e6), built_at, device.attributes)  # fmt: skip


@dataclass
class Breakdown:
    devices: int
    gas: int
    calldata: int
    logs: int
    storage: int

    @property
    def execution(self) -> int:
        return self.gas - TX_BASE_GAS - self.calldata - self.logs - self.storage

    def per_device(self, part: int) -> float:
        return part / self.devices


def calldata_gas(data: bytes) -> int:
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


def log_gas(receipt: dict[str, object]) -> int:
    total = 0
    for log in receipt["logs"]:  # type: ignore[attr-defined]
        data = bytes.fromhex(log["data"][2:])
        total += LOG_GAS + TOPIC_GAS * len(log["topics"]) + LOG_BYTE_GAS * len(data)
    return total


def register(rpc: JsonRpcClient, key: str, to: str, data: bytes, devices: int) -> Breakdown:
    sender = Account.from_key(key).address
    nonce = int(rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
    tx = {"to": to, "data": data, "gas": 150_000 * devices + 200_000, "gasPrice": 10**10, "nonce": nonce,
          "chainId": rpc.chain_id(), "value": 0}  # fmt: skip
    tx_hash = rpc.call("eth_sendRawTransaction", ["0x" + Account.sign_transaction(tx, key).raw_transaction.hex()])
    receipt = None
    while receipt is None:  # automine answers within a few ms; interval mining within a block time
        receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
        time.sleep(0.005)
    if receipt["status"] != "0x1":
        raise RuntimeError(f"registration of {devices} reverted")
    return Breakdown(devices, int(receipt["gasUsed"], 16), calldata_gas(data), log_gas(receipt),
                     NEW_SLOT_GAS * SLOTS_PER_DEVICE * devices)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,250,500", help="batch sizes of registerDevices")
    parser.add_argument("--runs", type=int, default=1, help="gas is deterministic: runs repeat with new devices")
    add_json_option(parser)
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    memory = PeakMemory()
    devices = (d for d in generate_devices(4 * (sum(sizes) + 1) * options.runs, seed=7) if d.owner_org == ORG)
    with AnvilNode(gas_limit=1_200_000_000) as node, JsonRpcClient([node.url], timeout=120) as rpc:
        from web3 import Web3

        seeded = seed_demo_consortium(Web3(Web3.HTTPProvider(node.url)))
        key = seeded.orgs[ORG].private_key
        to = seeded.deployment["contracts"]["DeviceRegistry"]["address"]
        contract = Web3().eth.contract(abi=seeded.deployment["contracts"]["DeviceRegistry"]["abi"])
        results: dict[str, list[Breakdown]] = {}
        for _ in range(options.runs):
            single = device_input(next(devices))
            data = bytes.fromhex(contract.encode_abi("registerDevice", [single])[2:])
            results.setdefault("single", []).append(register(rpc, key, to, data, 1))
            for size in sizes:
                batch = [device_input(d) for d in islice(devices, size)]
                results.setdefault(str(size), []).append(register(rpc, key, to, encode_register_devices(batch), size))
        memory.sample("bench")
        memory.sample("anvil", node.process.pid if node.process else None)

    print(f"{'call':>24} {'gas':>12} {'per device':>11} {'calldata':>9} {'logs':>7} {'storage':>8} {'execution':>9}")
    figures = []
    for label, runs in results.items():
        b = runs[-1]
        call = "registerDevice" if label == "single" else f"registerDevices({label})"
        parts = (b.calldata, b.logs, b.storage, b.execution)
        widths = (9, 7, 8, 9)
        shares = " ".join(f"{b.per_device(part):>{width},.0f}" for part, width in zip(parts, widths, strict=True))
        print(f"{call:>24} {b.gas:>12,} {b.gas / b.devices:>11,.0f} {shares}")
        per_device = [r.gas / r.devices for r in runs]
        figures.append(
            Figure(
                key=f"gas.per_device_{label}",
                what=f"gas per device, {call}",
                value=round(sorted(per_device)[len(per_device) // 2]),
                unit="gas",
                runs=[round(g) for g in per_device],
                command=COMMAND,
                better="lower",
                peak_memory=memory.mib,
                note=f"calldata {b.per_device(b.calldata):,.0f}, event {b.per_device(b.logs):,.0f}, "
                f"2 new slots {b.per_device(b.storage):,.0f}, execution {b.per_device(b.execution):,.0f}",
            )
        )
    write_figures(options.json, figures)


if __name__ == "__main__":
    main()
