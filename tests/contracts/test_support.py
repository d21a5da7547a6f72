"""The revert helper itself: it must fail when a call succeeds or reverts with another error or other args."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from chain_gateway.compiler import load_artifacts
from tests.contracts.support import ContractsChain, DecodedRevert, ErrorDecoder, RevertExpected


class TestRevertHelper:
    def test_call_that_succeeds_is_not_a_revert(self, net: ContractsChain) -> None:
        with pytest.raises(RevertExpected, match="did not revert"):
            net.assert_reverts(net.consortium.functions.threshold(), net.key("BJ-EIB"), "ConsortiumOnlySelf")

    def test_other_error_name_or_args_fail_the_assertion(self, net: ContractsChain) -> None:
        fn = net.consortium.functions.setThreshold(1)
        net.assert_reverts(fn, net.key("BJ-EIB"), "ConsortiumOnlySelf", net.account("BJ-EIB"))
        with pytest.raises(RevertExpected):
            net.assert_reverts(fn, net.key("BJ-EIB"), "ConsortiumOnlySelf", net.account("BJ-PSB"))
        with pytest.raises(RevertExpected):
            net.assert_reverts(fn, net.key("BJ-EIB"), "ConsortiumUnknownAccount", net.account("BJ-EIB"))

    def test_error_raised_by_a_called_contract_keeps_its_name(self, net: ContractsChain) -> None:
        device = ("BJ-CAMR-110105000001", 1, 1, 110105, 0, 0, 0, "{}")
        got = net.revert_of(net.registry.functions.registerDevice(device), net.key("CO-ZHCS"))
        assert got.name == "ConsortiumMissingRole"


def test_decoder_reads_custom_errors_error_string_and_panic() -> None:
    decoder = ErrorDecoder(load_artifacts()["errors_abi"])
    selector = function_signature_to_4byte_selector("DeviceRegistryCodeLength(string,uint8,uint256)")
    assert decoder.decode(selector + encode(["string", "uint8", "uint256"], ["X", 20, 1])) == DecodedRevert(
        "DeviceRegistryCodeLength", ("X", 20, 1)
    )
    reason = function_signature_to_4byte_selector("Error(string)") + encode(["string"], ["nope"])
    assert decoder.decode(reason) == DecodedRevert("Error", ("nope",))
    panic = function_signature_to_4byte_selector("Panic(uint256)") + encode(["uint256"], [0x11])
    assert decoder.decode(panic) == DecodedRevert("Panic", (0x11,))
    assert decoder.decode(b"").name == "<empty>"
    assert decoder.decode(b"\xde\xad\xbe\xef").name == "<unknown>"
