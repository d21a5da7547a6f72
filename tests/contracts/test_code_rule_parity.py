"""One code-rule check for the API and the contract: `registry_api.encoding.code_rule_violation` accepts exactly
the codes `DeviceRegistry` accepts, for rules of every character class (property test on both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_api.encoding import code_rule_violation
from tests.contracts.support import Backend, ContractsChain, device_input

# (type id, type name, prefix, length, charset bits: 1 digits, 2 upper, 4 lower, 8 hyphen)
RULES = ((1, "camera.road", "BJ-CAMR-", 20, 1), (40, "test.upper", "T-", 10, 2 | 8), (41, "test.lower", "L9", 8, 4 | 1))
ALPHABET = "0123456789AZaz-_ é"
CODE_ERRORS = {"DeviceRegistryCodeLength", "DeviceRegistryCodePrefix", "DeviceRegistryCodeCharacter"}


@pytest.fixture(scope="module")
def ruled(contracts_backend: Backend) -> Iterator[ContractsChain]:
    """The seeded chain plus two rules of other character classes; undone when the module is done."""
    chain = contracts_backend.chain
    undo = chain.snapshot()
    for rule in RULES[1:]:
        chain.govern([("DeviceRegistry", "setCodeRule", list(rule))], f"rule {rule[1]}")
    yield chain
    undo()


ALLOWED = {1: "0123456789", 2: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4: "abcdefghijklmnopqrstuvwxyz", 8: "-"}


def _codes(prefix: str, length: int, charset: int) -> st.SearchStrategy[str]:
    """Valid codes, codes one edit away from valid, and arbitrary strings near the prefix."""
    allowed = "".join(chars for bit, chars in ALLOWED.items() if charset & bit)
    size = length - len(prefix)
    valid = st.text(alphabet=allowed, min_size=size, max_size=size).map(lambda r: prefix + r)
    one_off = st.builds(
        lambda code, i, ch: code[:i] + ch + code[i + 1 :], valid, st.integers(0, length - 1), st.sampled_from(ALPHABET)
    )
    rest = st.text(alphabet=ALPHABET, min_size=0, max_size=length + 2)
    near_prefix = st.sampled_from([prefix, prefix[:-1], prefix.lower(), ""])
    return st.one_of(valid, one_off, st.builds(lambda p, r: p + r, near_prefix, rest))


@pytest.mark.parametrize("rule", RULES, ids=[r[1] for r in RULES])
def test_api_and_contract_accept_exactly_the_same_codes(
    rule: tuple[int, str, str, int, int], ruled: ContractsChain
) -> None:
    type_id, _, prefix, length, charset = rule
    sender = to_checksum_address(ruled.account("BJ-PSB"))

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_codes(prefix, length, charset))
    def check(code: str) -> None:
        fn = ruled.registry.functions.registerDevice(device_input(code, type_id=type_id))
        calldata = ruled.registry.encode_abi("registerDevice", args=[device_input(code, type_id=type_id)])
        data = ruled.simulate(sender, to_checksum_address(fn.address), bytes.fromhex(calldata[2:]))
        api_says = code_rule_violation(code, prefix, length, charset)
        if data is None:
            assert api_says is None, f"the contract accepts {code!r}; the API says: {api_says}"
        else:
            error = ruled.decoder.decode(data)
            assert error.name in CODE_ERRORS, error
            assert api_says is not None, f"the contract refuses {code!r} with {error}; the API accepts it"

    check()
    valid = prefix + ALLOWED[charset & -charset][0] * (length - len(prefix))  # the lowest class's first character
    fn = ruled.registry.functions.registerDevice(device_input(valid, type_id=type_id))
    calldata = ruled.registry.encode_abi("registerDevice", args=[device_input(valid, type_id=type_id)])
    assert ruled.simulate(sender, to_checksum_address(fn.address), bytes.fromhex(calldata[2:])) is None
    assert code_rule_violation(valid, prefix, length, charset) is None
