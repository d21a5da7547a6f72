"""A web3.py connection that works on every chain the service supports: anvil, geth Clique, Besu QBFT.

Proof-of-authority blocks carry the signers and seals in `extraData` (97+ bytes on Clique, an RLP list on
QBFT), which web3.py refuses as an `ExtraDataLengthError` unless the POA middleware moves it aside. The
gateway and indexer talk plain JSON-RPC (`chain_gateway.rpc`) and never parse it; web3 is used by deploy,
seeding and tools.
"""

from __future__ import annotations

from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

__all__ = ["connect_web3"]


def connect_web3(url: str, timeout: float | None = None) -> Web3:
    """Web3 over HTTP to `url` with the POA extraData middleware; `timeout` in seconds per request."""
    kwargs = {} if timeout is None else {"request_kwargs": {"timeout": timeout}}
    w3 = Web3(Web3.HTTPProvider(url, **kwargs))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3
