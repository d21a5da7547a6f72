"""Copy the console's third-party files from node_modules into the package (`static/vendor/`, not in git).

The versions are pinned in package.json / package-lock.json and installed by `npm ci` in scripts/setup, which
then runs `python -m registry_api.console.vendor`. Copies rather than links: an installed distribution carries
its console without node_modules.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["VENDOR_DIR", "VENDOR_FILES", "copy_vendor_files", "missing_vendor_files"]

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"

# destination under static/vendor -> source under node_modules
VENDOR_FILES = {
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet/LICENSE": "leaflet/LICENSE",
    "ethers/ethers.umd.min.js": "ethers/dist/ethers.umd.min.js",
    "ethers/LICENSE.md": "ethers/LICENSE.md",
    "chart.js/chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "chart.js/LICENSE.md": "chart.js/LICENSE.md",
}


def missing_vendor_files() -> list[str]:
    return [name for name in VENDOR_FILES if not (VENDOR_DIR / name).is_file()]


def copy_vendor_files(node_modules: Path = NODE_MODULES) -> int:
    """Copy every vendor file that differs; returns how many were copied. Fails naming the first one missing."""
    copied = 0
    for dest, src in VENDOR_FILES.items():
        source, target = node_modules / src, VENDOR_DIR / dest
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: run npm ci (scripts/setup does)")
        if target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied += 1
    return copied


if __name__ == "__main__":
    try:
        count = copy_vendor_files()
    except FileNotFoundError as exc:
        sys.exit(f"console vendor files: {exc}")
    if count:
        print(f"console: copied {count} vendor files to {VENDOR_DIR}")  # noqa: T201
