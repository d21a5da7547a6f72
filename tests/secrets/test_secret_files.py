"""Secrets on disk: keystores scrypt-encrypted, every secret file 0600 in a 0700 directory, and a key file that
the group or others can read is refused when loaded (it may have been copied already).

The files the dev profile writes are checked after its full run, in test_log_secrets.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr

from chain_gateway.errors import GatewayConfigError
from chain_gateway.keystore import DEV_SCRYPT_N, PRODUCTION_SCRYPT_N, Keystore
from registry_api.capability import SigningKeys, load_secret, rotate_signing_key
from tests.secrets.scan import file_mode

READABLE_MODES = (0o640, 0o604, 0o644, 0o660)


def _assert_scrypt_keystore(path: Path, n: int) -> None:
    crypto = json.loads(path.read_text(encoding="utf-8"))["crypto"]
    assert crypto["kdf"] == "scrypt" and crypto["kdfparams"]["n"] == n, (path.name, crypto["kdfparams"])
    assert crypto["cipher"] == "aes-128-ctr"
    assert file_mode(path) == 0o600, path.name


def test_gateway_keystore_encrypts_with_production_scrypt_in_a_private_directory(tmp_path: Path) -> None:
    directory = tmp_path / "keystore"
    directory.mkdir(mode=0o755)
    key = bytes(Account.create().key).hex()
    address = Keystore(directory, SecretStr("a long passphrase")).add(key)  # the default work factor

    _assert_scrypt_keystore(directory / f"{address}.json", PRODUCTION_SCRYPT_N)
    assert file_mode(directory) == 0o700
    assert bytes(Keystore(directory, SecretStr("a long passphrase")).signer(address).key).hex() == key


@pytest.mark.parametrize("mode", READABLE_MODES, ids=oct)
def test_keystore_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    address = Keystore(tmp_path, SecretStr("pw")).add(bytes(Account.create().key).hex(), DEV_SCRYPT_N)
    path = tmp_path / f"{address}.json"
    path.chmod(mode)
    with pytest.raises(GatewayConfigError, match="readable by others"):
        Keystore(tmp_path, SecretStr("pw")).signer(address)
    path.chmod(0o600)
    assert Keystore(tmp_path, SecretStr("pw")).signer(address).address == address


def test_capability_signing_key_and_masking_secret_are_private_and_refused_when_readable(tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "capability-es256.pem"
    secret_path = tmp_path / "keys" / "zone-masking.key"
    SigningKeys.load_or_create(key_path)
    rotate_signing_key(key_path)  # the previous key stays beside it, private too
    secret = load_secret(secret_path)
    assert file_mode(key_path.parent) == 0o700
    for path in (key_path, key_path.with_name("capability-es256.previous.pem"), secret_path):
        assert file_mode(path) == 0o600, path.name

    for path, load in ((key_path, SigningKeys.load_or_create), (secret_path, load_secret)):
        for mode in READABLE_MODES:
            path.chmod(mode)
            with pytest.raises(GatewayConfigError, match="readable by others"):
                load(path)
        path.chmod(0o600)
    assert load_secret(secret_path) == secret
    os.chmod(key_path.with_name("capability-es256.previous.pem"), 0o644)
    with pytest.raises(GatewayConfigError, match="readable by others"):
        SigningKeys.load_or_create(key_path)
