"""Worker process entry: `python -m chain_gateway worker` signs, sends and follows the outbox until stopped.

Settings come from the environment (`DIRCHAIN_*`, see `chain_gateway.settings`). SIGTERM and SIGINT stop
the worker after its current step. `DIRCHAIN_GATEWAY_CRASH_AT=after_sign` makes it exit with 137 right
after committing signed transactions, before sending them (crash tests only).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from chain_gateway.gateway import Gateway
from chain_gateway.logs import configure_logging
from chain_gateway.settings import get_settings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chain_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["worker"], help="worker: run the outbox worker until stopped")
    parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_json)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with Gateway.from_settings(settings) as gateway:
        gateway.create_tables()
        gateway.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
