"""A full dev-profile run: its logs hold no key, password or token, and its key files are encrypted and private.

The real `dirchain devnet up` runs in a child process (tests/secrets/devnet_up.py) with stdout, stderr (structlog
and uvicorn's access log) and anvil's log captured, and files its demo data: devices, catalog entries, sharing
requests approved with the approvers' EIP-712 signatures, algorithms and a zone job. The test then adds a CSV
import, resolver decisions that return capability tokens, and requests with tokens where they do not belong
(a forged bearer token, a real one in the query string). Afterwards no private key (hex, with or without 0x,
any case), keystore password, API token, capability token, signing key or masking secret may appear in any log,
and every keystore it wrote is scrypt-encrypted, every secret file 0600 in a 0700 directory.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.devnet import free_port
from chain_gateway.errors import GatewayConfigError
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from registry_api.devnet import DEV_PASSWORD
from tests.registry_api.import_support import sample_rows, write_csv
from tests.registry_api.live import wait_until
from tests.secrets.scan import TOKEN, anvil_dev_keys, file_mode, leaks

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


@dataclass(frozen=True)
class Run:
    """A finished dev-profile run: its directory and logs, credentials and the capability tokens it issued."""

    profile: DevProfile
    orgs: dict[str, Any]
    capability_tokens: list[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One full run of the dev profile, stopped before the tests read what it left."""
    profile = DevProfile(tmp_path_factory.mktemp("dev-profile"))
    # credentials left readable by an older run must come out private (open's mode applies to new files only)
    stale = profile.var_dir / "dev" / "credentials.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}", encoding="utf-8")
    stale.chmod(0o644)
    profile.start()
    try:
        summary = profile.wait_for_demo()
        assert "zone job" in summary, summary
        orgs = json.loads(stale.read_text(encoding="utf-8"))["orgs"]
        tokens = _drive_session(profile.api_url, orgs, profile.root)
        time.sleep(1.0)  # the last access-log lines and the anchoring job's run
        assert profile.stop() == 0, profile.tail()
        yield Run(profile, orgs, tokens)
    finally:
        profile.stop()


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
        job = wait_until(
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


def test_full_dev_profile_run_logs_no_key_password_or_token(run: Run) -> None:
    dev_profile, orgs, capability_tokens = run.profile, run.orgs, run.capability_tokens
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


def test_dev_profile_keeps_keys_scrypt_encrypted_in_private_files(run: Run) -> None:
    var_dir = run.profile.var_dir
    keystore_dir = var_dir / "dev" / "keystore"
    accounts = {org["account"] for org in run.orgs.values()}
    accounts |= {a["account"] for org in run.orgs.values() for a in org["approvers"]}
    assert file_mode(keystore_dir) == 0o700 and file_mode(var_dir / "keys") == 0o700
    assert {p.stem for p in keystore_dir.glob("*.json")} == accounts
    for path in keystore_dir.glob("*.json"):
        crypto = json.loads(path.read_text(encoding="utf-8"))["crypto"]
        assert crypto["kdf"] == "scrypt" and crypto["kdfparams"]["n"] == DEV_SCRYPT_N, path.name
        assert file_mode(path) == 0o600, path.name
    for path in (var_dir / "dev" / "credentials.json", *(var_dir / "keys").iterdir()):
        assert file_mode(path) == 0o600, path.name
    some = next(iter(accounts))
    assert Keystore(keystore_dir, DEV_PASSWORD).signer(some).address == some
    with pytest.raises(GatewayConfigError, match="wrong password"):
        Keystore(keystore_dir, SecretStr("not-the-dev-password")).signer(some)
