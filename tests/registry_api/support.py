"""Helpers of the API tests: an app on the session anvil, tokens per demo org, and driving the outbox and mirror."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from web3 import Web3

from chain_gateway.devnet import SeededConsortium

__all__ = ["Api", "device"]

TERMINAL = ("confirmed", "failed")


def device(code_serial: int, **changes: Any) -> dict[str, Any]:
    """A valid road camera in Chaoyang as a client sends it; `changes` override members."""
    body: dict[str, Any] = {
        "code": f"BJ-CAMR-110105{code_serial:06d}",
        "type": "camera.road",
        "district": 110105,
        "location": {"lat": 39.9219, "lon": 116.4436},
        "built_at": "2023-06-01",
        "status": "active",
        "attributes": {"vendor": "海康威视", "model": "DS-2CD3T47G2", "poe": True},
    }
    body.update(changes)
    return body


@dataclass
class Api:
    """A TestClient over a running app, the demo orgs' tokens and the chain it writes to."""

    client: TestClient
    app: FastAPI
    tokens: dict[str, str]
    chain: SeededConsortium
    w3: Web3
    calls: list[str] = field(default_factory=list)

    def auth(self, org: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[org]}"}

    def get(self, path: str, org: str = "BJ-PSB", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth(org), **kwargs)

    def post(self, path: str, body: Any, org: str = "BJ-PSB", headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body, headers={**self.auth(org), **(headers or {})})

    def patch(self, path: str, body: Any, org: str = "BJ-PSB") -> Any:
        return self.client.patch(path, json=body, headers=self.auth(org))

    def sync(self) -> None:
        """Bring the mirror up to the chain head."""
        self.app.state.indexer.sync_once()

    def settle(self, operation_id: str, org: str = "BJ-PSB", timeout: float = 30.0) -> dict[str, Any]:
        """Run the gateway (mining a block on top when one is waiting for confirmations) until the operation is
        confirmed or failed, then index; returns GET /v1/operations/{id}."""
        gateway = self.app.state.gateway
        deadline = time.monotonic() + timeout
        while True:
            gateway.process_once()
            op = gateway.get_operation(operation_id)
            assert op is not None, operation_id
            if op.status in TERMINAL:
                break
            if op.status == "mined":
                self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            assert time.monotonic() < deadline, f"operation {operation_id} stuck in {op.status}"
            time.sleep(0.02)
        self.sync()
        answer = self.get(f"/v1/operations/{operation_id}", org)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def register(self, devices: list[dict[str, Any]], org: str = "BJ-PSB") -> dict[str, Any]:
        """POST devices and settle the operation; asserts it is confirmed."""
        body: Any = devices[0] if len(devices) == 1 else {"devices": devices}
        answer = self.post("/v1/devices", body, org)
        assert answer.status_code == 202, answer.text
        op = self.settle(answer.json()["operation_id"], org)
        assert op["status"] == "confirmed", op
        return op
