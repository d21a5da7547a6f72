"""Helpers shared by the test packages."""

from pydantic import SecretStr

TEST_KEYSTORE_PASSWORD = SecretStr("test-only-password")  # encrypts the dev keys of the test keystore only
