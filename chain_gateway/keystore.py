"""Per-account encrypted keystores (Web3 Secret Storage v3, scrypt) in one directory.

One file per account, `<checksum address>.json`, mode 0600. Keys are decrypted on first use and kept in
memory only; the password is a `SecretStr` and neither it nor a key is ever logged or put in a repr.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from pydantic import SecretStr

from chain_gateway.errors import GatewayConfigError
from chain_gateway.secret_files import require_owner_only

__all__ = ["DEV_SCRYPT_N", "PRODUCTION_SCRYPT_N", "Keystore"]

PRODUCTION_SCRYPT_N = 2**18  # eth-account's default work factor (~1 s per decryption here)
DEV_SCRYPT_N = 2**14  # dev keys only: fast start-up of scripts/run and the tests


class Keystore:
    """Encrypted keys of the accounts this gateway signs for."""

    def __init__(self, directory: Path, password: SecretStr) -> None:
        self._dir = directory
        self._password = password
        self._unlocked: dict[ChecksumAddress, LocalAccount] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Keystore({str(self._dir)!r}, accounts={len(self.addresses())})"

    def path(self, address: str) -> Path:
        return self._dir / f"{to_checksum_address(address)}.json"

    def add(self, private_key: str, scrypt_n: int = PRODUCTION_SCRYPT_N) -> ChecksumAddress:
        """Encrypt `private_key` into the directory (idempotent) and return its address."""
        account: LocalAccount = Account.from_key(private_key)
        path = self.path(account.address)
        if not path.exists():
            self._dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self._dir, 0o700)
            password = self._password.get_secret_value()
            encrypted = Account.encrypt(private_key, password, kdf="scrypt", iterations=scrypt_n)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(encrypted, handle)
        with self._lock:
            self._unlocked[account.address] = account
        return account.address

    def addresses(self) -> list[ChecksumAddress]:
        if not self._dir.is_dir():
            return []
        return sorted(to_checksum_address(p.stem) for p in self._dir.glob("0x*.json"))

    def has(self, address: str) -> bool:
        return self.path(address).exists()

    def signer(self, address: str) -> LocalAccount:
        """The unlocked account for `address`, decrypting its keystore file on first use."""
        checksum = to_checksum_address(address)
        with self._lock:
            account = self._unlocked.get(checksum)
            if account is not None:
                return account
            path = self.path(checksum)
            if not path.exists():
                raise GatewayConfigError(f"no keystore for {checksum} in {self._dir}")
            require_owner_only(path)
            try:
                key = Account.decrypt(json.loads(path.read_text(encoding="utf-8")), self._password.get_secret_value())
            except ValueError as exc:
                raise GatewayConfigError(f"cannot decrypt keystore {path.name}: wrong password?") from exc
            account = Account.from_key(key)
            self._unlocked[checksum] = account
            return account
