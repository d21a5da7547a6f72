"""Run the dev profile (`registry_api.devnet up`, what `scripts/run` starts) with its files in a test's directory.

Usage: python -m tests.secrets.devnet_up VAR_DIR API_PORT RPC_PORT DEVICES

`up` keeps its files under the checkout's var/; here the module's paths point into VAR_DIR instead (the
service's key, secret and import paths come from DIRCHAIN_* variables). uvicorn's access log stays on (`up`
turns it down to keep the console readable) so that its lines are checked for secrets too.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn

from registry_api import devnet

__all__ = ["main"]


def main() -> None:
    var_dir, api_port, rpc_port, devices = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    devnet.DEV_DIR = var_dir / "dev"
    devnet.CREDENTIALS_PATH = devnet.DEV_DIR / "credentials.json"
    devnet.prepare_devnet = functools.partial(  # type: ignore[assignment]
        devnet.prepare_devnet, var_dir=var_dir, deployments_dir=var_dir / "deployments"
    )
    serve = uvicorn.run

    def serve_with_access_log(*args: Any, **kwargs: Any) -> None:
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        serve(*args, **kwargs)

    uvicorn.run = serve_with_access_log
    devnet.up(api_port=api_port, rpc_port=rpc_port, block_time=0.1, devices=devices)


if __name__ == "__main__":
    main()
