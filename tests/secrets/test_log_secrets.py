"""The logs of a full dev-profile run hold no key, password or token.

The real `dirchain devnet up` runs in a child process (tests/secrets/devnet_up.py) with stdout, stderr (structlog
and uvicorn's access log) and anvil's log captured, and files its demo data: devices, catalog entries, sharing
requests approved with the approvers' EIP-712 signatures, algorithms and a zone job. The test then adds a CSV
import, resolver decisions that return capability tokens, and requests with tokens where they do not belong
(a forged bearer token, a real one in the query string). Afterwards no private key (hex, with or without 0x,
any case), keystore password, API token, capability token, signing key or masking secret may appear in any log.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.devnet import free_port
from registry_api.devnet import DEV_PASSWORD
from tests.registry_api.import_support import sample_rows, write_csv
from tests.secrets.scan import TOKEN, anvil_dev_keys, leaks

DEMO_DEVICES = 10
START_TIMEOUT_SECONDS = 240.0  # deploy, seed and file the demo data on 0.1 s blocks
STOP_TIMEOUT_SECONDS = 30.0


class DevProfile:
    """The child process running `up`, its directory and captured output."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.var_dir = root / "var"
        self.stdout = root / "stdout.log"
        self.stderr = root / "stderr.log"
        self.api_url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        keys = self.var_dir / "keys"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
            "DIRCHAIN_CAPABILITY_KEY_PATH": str(keys / "capability-es256.pem"),
            "DIRCHAIN_ZONE_MASKING_KEY_PATH": str(keys / "zone-masking.key"),
            "DIRCHAIN_IMPORT_DIR": str(self.var_dir / "imports"),
            "DIRCHAIN_RECEIPT_ANCHOR_INTERVAL_SECONDS": "2",  # the anchoring job logs too
        }
        command = [sys.executable, "-m", "tests.secrets.devnet_up", str(self.var_dir), str(api_port)]
        command += [str(free_port()), str(DEMO_DEVICES)]
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err)

    def wait_for_demo(self) -> str:
        """Wait until the demo data is filed; return its summary line (fails the test if it is not filed)."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            text = self.stdout.read_text(encoding="utf-8", errors="replace")
            for line in text.splitlines():
                if "demo data" in line and "filed" in line:
                    assert "not filed" not in line, self.tail()
                    return line
            assert self.process.poll() is None, f"the dev profile exited {self.process.returncode}:\n{self.tail()}"
            time.sleep(0.5)
        raise AssertionError(f"the demo data was not filed in {START_TIMEOUT_SECONDS:g} s:\n{self.tail()}")

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)  # `up` stops like Ctrl-C: uvicorn, then anvil
        try:
            return self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def tail(self) -> str:
        return "\n".join(p.read_text(encoding="utf-8", errors="replace")[-3000:] for p in (self.stdout, self.stderr))


@pytest.fixture
def dev_profile(tmp_path: Path) -> Iterator[DevProfile]:
    profile = DevProfile(tmp_path)
    profile.start()
    try:
        yield profile
    finally:
        profile.stop()


def _wait(fetch: Any, done: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last: {value}"
        time.sleep(0.25)


def _drive_session(api_url: str, orgs: dict[str, Any], root: Path) -> list[str]:
    """An import, resolver decisions and misplaced tokens; returns the capability tokens the resolver issued."""
    psb, cmc = orgs["BJ-PSB"]["token"], orgs["BJ-CMC"]["token"]
    with httpx.Client(base_url=api_url, timeout=30) as client:
        csv_path = root / "devices.csv"
        write_csv(csv_path, sample_rows(20, bad_every=5, seed=3, serial_base=900_000))
        accepted = client.post(
            "/v1/imports",
            content=csv_path.read_bytes(),
            params={"filename": "devices.csv"},
            headers={"Authorization": f"Bearer {psb}", "Content-Type": "text/csv"},
        )
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["Location"]
        job = _wait(
            lambda: client.get(location, headers={"Authorization": f"Bearer {psb}"}).json(),
            lambda j: j["status"] in ("done", "failed"),
        )
        assert job["status"] == "done" and job["rows"]["rejected"] > 0, job  # bad rows are reported, not logged

        tokens = []
        decisions = [
            (psb, {"entry_id": 1, "action": "read_raw"}),  # the owner
            (orgs["CO-ZHCS"]["token"], {"entry_id": 2, "action": "read_raw"}),  # granted at request
            (cmc, {"entry_id": 1, "action": "read_raw"}),  # its request still awaits the approvers
        ]
        for token, body in decisions:
            decided = client.post("/v1/resolve", json=body, headers={"Authorization": f"Bearer {token}"})
            assert decided.status_code == 200, decided.text
            if decided.json()["decision"] == "permit":
                tokens.append(decided.json()["capability"]["token"])
        assert len(tokens) == 2 and decided.json()["decision"] == "deny", decided.json()

        forged = client.get("/v1/devices", headers={"Authorization": f"Bearer {psb[:-4]}AAAA"})
        assert forged.status_code == 401
        misplaced = client.get("/v1/devices", params={"access_token": psb, "token": tokens[0]})
        assert misplaced.status_code == 401  # tokens are read from the header only
    return tokens


def _key_material(var_dir: Path) -> list[str]:
    """The resolver's signing key (private scalar in hex, PEM body) and the masking secret (hex, base64)."""
    pem = (var_dir / "keys" / "capability-es256.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = f"{key.private_numbers().private_value:064x}"
    body = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    secret = (var_dir / "keys" / "zone-masking.key").read_bytes()
    return [scalar, *body, secret.hex(), base64.b64encode(secret).decode(), base64.urlsafe_b64encode(secret).decode()]


def test_full_dev_profile_run_logs_no_key_password_or_token(dev_profile: DevProfile) -> None:
    summary = dev_profile.wait_for_demo()
    assert "zone job" in summary, summary
    credentials = json.loads((dev_profile.var_dir / "dev" / "credentials.json").read_text(encoding="utf-8"))
    orgs = credentials["orgs"]
    capability_tokens = _drive_session(dev_profile.api_url, orgs, dev_profile.root)
    time.sleep(1.0)  # the last access-log lines and the anchoring job's run
    assert dev_profile.stop() == 0, dev_profile.tail()

    private_keys = [org["private_key"] for org in orgs.values()]
    private_keys += [a["private_key"] for org in orgs.values() for a in org["approvers"]]
    api_tokens = [org["token"] for org in orgs.values()]
    secrets = [*private_keys, *api_tokens, *capability_tokens, DEV_PASSWORD.get_secret_value()]
    secrets += _key_material(dev_profile.var_dir)
    for token in capability_tokens:  # a JWT's signature part alone is secret enough to leak
        secrets.append(token.rsplit(".", 1)[1])

    ours = {"stdout": dev_profile.stdout, "stderr": dev_profile.stderr}
    ours |= {str(p.relative_to(dev_profile.root)): p for p in dev_profile.var_dir.rglob("*.log")}
    anvil_log = ours.pop("var/dev/anvil.log")
    texts = {name: path.read_text(encoding="utf-8", errors="replace") for name, path in ours.items()}
    # the logs saw the whole session: demo filing, the import, the decisions and the misplaced tokens
    for needed in ("POST /v1/imports", "POST /v1/resolve", "POST /v1/sharing-requests/", "POST /v1/zone/jobs"):
        assert needed in texts["stderr"], needed
    assert "GET /v1/devices?" in texts["stderr"]  # the request with tokens in its query string was logged
    assert "access_token=[redacted]" in texts["stderr"]
    found = {name: leaks(text, secrets) + TOKEN.findall(text) for name, text in texts.items()}
    leaked = {name: [hit[:8] + "..." for hit in hits] for name, hits in found.items() if hits}  # never print one
    assert not leaked, leaked

    # anvil prints the keys of its public test mnemonic at start (the dev keys, public by design); nothing else
    anvil_text = anvil_log.read_text(encoding="utf-8", errors="replace")
    assert all(key.lower().removeprefix("0x") in anvil_dev_keys() for key in private_keys)
    not_public = [s for s in secrets if s not in private_keys]
    assert not leaks(anvil_text, not_public) and not TOKEN.findall(anvil_text), "a secret in anvil's log"
