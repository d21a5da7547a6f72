"""Helpers of the secrets tests: secrets in text (keys in every spelling, tokens, PEM, keystores), file modes."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from eth_account import Account

from chain_gateway.devnet import ANVIL_ACCOUNTS, ANVIL_MNEMONIC
from registry_api.auth import TOKEN_BYTES, TOKEN_PREFIX

__all__ = [
    "HEX_KEY",
    "TOKEN",
    "anvil_dev_keys",
    "committed_secrets",
    "file_mode",
    "leaks",
]

HEX_KEY = re.compile(r"(?<![0-9A-Za-z])(?:0x)?([0-9a-fA-F]{64})(?![0-9A-Za-z])")
TOKEN = re.compile(rf"{re.escape(TOKEN_PREFIX)}[A-Za-z0-9_-]{{{(TOKEN_BYTES * 4 + 2) // 3}}}(?![A-Za-z0-9_-])")
# a 64-hex literal is key-shaped when its line speaks of keys (hashes, roots and curve constants do not)
KEY_CONTEXT = re.compile(r"(?i)priv|secret|key|mnemonic|seed|passw|signer|wallet")
PEM_PRIVATE = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
MNEMONIC = re.compile(r"(?i)mnemonic\W{1,10}[\"']((?:[a-z]+ ){11,23}[a-z]+)[\"']")


@cache
def anvil_dev_keys() -> frozenset[str]:
    """The private keys (64 lower-case hex) of anvil's public test mnemonic, as many as the devnet funds."""
    Account.enable_unaudited_hdwallet_features()
    return frozenset(
        bytes(Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()
        for i in range(ANVIL_ACCOUNTS)
    )


def file_mode(path: Path) -> int:
    """The permission bits of `path` (e.g. 0o600)."""
    return stat.S_IMODE(path.stat().st_mode)


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """Which of `secrets` appear in `text`: hex ones with or without 0x in any case, others as they are."""
    lowered = text.lower()
    found = []
    for secret in secrets:
        hex_body = secret.lower().removeprefix("0x")
        if re.fullmatch(r"[0-9a-f]{40,}", hex_body):
            if hex_body in lowered:
                found.append(secret)
        elif secret in text:
            found.append(secret)
    return found


def _is_keystore(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    crypto = (data.get("crypto") or data.get("Crypto")) if isinstance(data, dict) else None
    return isinstance(crypto, dict) and "ciphertext" in crypto


def committed_secrets(path: str, text: str) -> list[str]:
    """What in a committed file looks like a secret: key-shaped hex other than anvil's dev keys, an API token,
    a PEM private key, a keystore, a mnemonic other than anvil's public one."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if KEY_CONTEXT.search(line):
            for match in HEX_KEY.finditer(line):
                if match.group(1).lower() not in anvil_dev_keys():
                    found.append(f"{path}:{number}: hex private key {match.group(0)[:10]}...")
        for match in TOKEN.finditer(line):
            found.append(f"{path}:{number}: API token {match.group(0)[:8]}...")
        if PEM_PRIVATE.search(line):
            found.append(f"{path}:{number}: PEM private key")
        for match in MNEMONIC.finditer(line):
            if match.group(1) != ANVIL_MNEMONIC:
                found.append(f"{path}:{number}: mnemonic {match.group(1).split()[0]} ...")
    if _is_keystore(text):
        found.append(f"{path}: keystore file")
    return found
