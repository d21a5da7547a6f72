"""No secret is committed: every file `git ls-files` lists is scanned for keys, tokens, PEM keys and keystores.

Anvil's test mnemonic and its derived keys are public (the dev profile's keys, documented as such) and allowed;
the dev keystores and credentials live under the ignored var/ directory.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from eth_account import Account
from pydantic import SecretStr

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from registry_api.auth import TOKEN_PREFIX
from tests.secrets.scan import anvil_dev_keys, committed_secrets

SECRET_FILE_NAMES = ("credentials.json", ".env")
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".keystore")
PLANTED_WORDS = "abandon ability able about above absent absorb abstract absurd abuse access accident".split()


def _tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_no_tracked_file_holds_a_key_token_or_keystore() -> None:
    files = _tracked_files()
    assert "chain_gateway/keystore.py" in files  # the scan sees the checkout
    found = []
    for name in files:
        path = PROJECT_ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        base = path.name
        if base in SECRET_FILE_NAMES or base.endswith(SECRET_SUFFIXES) or base.startswith("UTC--"):
            found.append(f"{name}: a secret's file name")
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        found += committed_secrets(name, data.decode("utf-8", errors="replace"))
    assert not found, "\n".join(found)


def test_scan_flags_planted_secrets_and_allows_anvils_public_keys(tmp_path: Path) -> None:
    fresh = Account.create()
    key_hex = bytes(fresh.key).hex()
    token = TOKEN_PREFIX + "A" * 43
    anvil_key = sorted(anvil_dev_keys())[0]
    keystore_dir = tmp_path / "ks"
    address = Keystore(keystore_dir, SecretStr("pw")).add(key_hex, DEV_SCRYPT_N)
    keystore_text = (keystore_dir / f"{address}.json").read_text(encoding="utf-8")
    lines = [
        f'DEPLOYER_PRIVATE_KEY = "0x{key_hex}"',
        f"signer_key: {key_hex.upper()}",
        f"headers = {{'Authorization': 'Bearer {token}'}}",
        "-----BEGIN EC " + "PRIVATE KEY-----",  # split here so that this file passes its own scan
        "mnemonic = " + '"' + " ".join(PLANTED_WORDS) + '"',
        f'ANVIL_DEV_KEY = "0x{anvil_key}"  # public',
        'ANVIL_MNEMONIC = "test test test test test test test test test test test junk"',
        "root = 0x" + "ab" * 32,  # a hash, not a key
    ]
    found = committed_secrets("planted.py", "\n".join(lines))
    assert [f.split(": ", 1)[1].split(" ")[0:2] for f in found] == [
        ["hex", "private"],
        ["hex", "private"],
        ["API", "token"],
        ["PEM", "private"],
        ["mnemonic", "abandon"],
    ]
    assert committed_secrets("ks.json", keystore_text) == ["ks.json: keystore file"]
    assert json.loads(keystore_text)["crypto"]["kdf"] == "scrypt"
