"""The JSON-RPC client's failover between real anvil nodes (a dead endpoint is skipped, a stale one left), and the
confirmations advice off Clique."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chain_gateway.devnet import AnvilNode, free_port
from chain_gateway.errors import GatewayRPCError
from chain_gateway.finality import clique_confirmations_advice
from chain_gateway.rpc import EndpointWatch, JsonRpcClient


@pytest.fixture
def nodes() -> Iterator[tuple[AnvilNode, AnvilNode]]:
    with AnvilNode() as first, AnvilNode() as second:
        yield first, second


def mine(client: JsonRpcClient, blocks: int) -> None:
    client.call("anvil_mine", [hex(blocks)])


def test_a_call_moves_to_the_next_endpoint_when_the_first_is_down(nodes: tuple[AnvilNode, AnvilNode]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with JsonRpcClient([dead, nodes[0].url]) as client:
        assert client.block_number() == 0
        assert client.url == nodes[0].url


class _EmptyAnswer(BaseHTTPRequestHandler):
    """What geth answered while shutting down, seen in CI: 200 with no body."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def empty_answerer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmptyAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endpoint_answering_200_without_json_is_left_like_a_dead_one(
    nodes: tuple[AnvilNode, AnvilNode], empty_answerer: str
) -> None:
    with JsonRpcClient([empty_answerer, nodes[0].url]) as client:
        assert client.block_number() == 0
        assert client.batch([("eth_chainId", [])]) == [hex(31337)]
        assert client.url == nodes[0].url
    with JsonRpcClient([empty_answerer]) as alone, pytest.raises(GatewayRPCError, match="without JSON") as refused:
        alone.block_number()
    assert refused.value.retryable  # the gateway backs off and tries again, it does not stop


def test_prefer_fresh_leaves_an_endpoint_that_fell_behind_and_comes_back_when_it_catches_up(
    nodes: tuple[AnvilNode, AnvilNode],
) -> None:
    first, second = nodes
    with JsonRpcClient([first.url, second.url]) as client, JsonRpcClient([second.url]) as other:
        assert client.prefer_fresh(max_lag=2) is None  # both at 0: the first in order stays

        mine(other, 2)  # within the allowed lag: no move
        assert client.prefer_fresh(max_lag=2) is None and client.url == first.url

        mine(other, 1)  # 3 behind: move to the one that keeps up
        assert client.prefer_fresh(max_lag=2) == second.url
        assert client.block_number() == 3

        with JsonRpcClient([first.url]) as lagging:
            mine(lagging, 3)  # the first catches up: preferred again, in configured order
        assert client.prefer_fresh(max_lag=2) == first.url


def test_prefer_fresh_skips_endpoints_that_do_not_answer(nodes: tuple[AnvilNode, AnvilNode]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with JsonRpcClient([dead, nodes[1].url]) as client:
        assert client.prefer_fresh(max_lag=1) == nodes[1].url
        assert client.prefer_fresh(max_lag=1) is None


def test_endpoint_watch_checks_at_most_once_per_period(nodes: tuple[AnvilNode, AnvilNode]) -> None:
    first, second = nodes
    with JsonRpcClient([first.url, second.url]) as client, JsonRpcClient([second.url]) as other:
        mine(other, 5)
        watch = EndpointWatch(client, max_lag=1, every_seconds=3_600)
        assert watch.check() is None and client.url == first.url  # not due yet
        watch.every_seconds = 0
        assert watch.check() == second.url


def test_no_confirmations_advice_off_clique(nodes: tuple[AnvilNode, AnvilNode]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with JsonRpcClient([nodes[0].url]) as anvil, JsonRpcClient([dead]) as nobody:
        assert clique_confirmations_advice(anvil, 0) is None  # anvil has no clique API
        assert clique_confirmations_advice(nobody, 0) is None
