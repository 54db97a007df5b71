"""The ``node`` client driver's command: @grpc/grpc-js behind proto/driver.proto
(chaos/clients/drivers/node/driver.js).

Its npm packages are pinned by node/package-lock.json and installed into node/node_modules
by :func:`install` (``npm ci``, the project's install step: ``make drivers``). Starting the
driver downloads nothing: :func:`command` checks that node is there and that node_modules
holds exactly what the lockfile pins, and otherwise raises a DriverError naming the fix.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from chaos.clients.builtin import DriverCommand
from chaos.clients.driver import DriverError

NODE_DIR = Path(__file__).resolve().parent / "node"
DRIVER = NODE_DIR / "driver.js"
LOCKFILE = NODE_DIR / "package-lock.json"
# grpc-js asks the DNS server a dns://SERVER/name target names only with this set (its
# resolver-dns.ts; otherwise getaddrinfo, which knows nothing of the fleet's DNS server).
ENV = {"GRPC_NODE_USE_ALTERNATIVE_RESOLVER": "true"}
# No install scripts: none of the pinned packages needs one (protobufjs's postinstall only
# warns about version ranges), and an install step that runs none is one less surprise.
NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]


def _fix() -> str:
    return f"run `make drivers` (or `npm ci --prefix {NODE_DIR}`)"


def command() -> DriverCommand:
    """``node driver.js``, once node and the pinned packages are found installed."""
    node = shutil.which("node")
    if node is None:
        raise DriverError(
            f"the node client driver needs Node.js (node) on PATH: install it, then {_fix()}"
        )
    mismatch = _mismatch()
    if mismatch:
        raise DriverError(
            f"the node client driver's packages do not match its lockfile: {mismatch}; {_fix()}"
        )
    return DriverCommand("node", [node, str(DRIVER)], dict(ENV))


def _mismatch() -> str:
    """What of the lockfile's packages node_modules lacks or holds in another version
    ("" when it matches)."""
    try:
        packages = json.loads(LOCKFILE.read_text())["packages"]
    except (OSError, ValueError, KeyError) as err:
        return f"cannot read {LOCKFILE}: {err}"
    for where, entry in packages.items():
        if not where:  # "": the driver's own package.json
            continue
        try:
            installed = json.loads((NODE_DIR / where / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            return f"{where} is missing"
        if installed != entry.get("version"):
            return f"{where} is {installed}, the lockfile pins {entry.get('version')}"
    return ""


def install() -> None:
    """Install the lockfile's packages into node/node_modules (``npm ci``: exact versions,
    the lockfile untouched); the only step that downloads."""
    if shutil.which("npm") is None:
        raise DriverError("installing the node client driver needs npm on PATH: install Node.js")
    done = subprocess.run(NPM_CI, cwd=NODE_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DriverError(
            f"`{' '.join(NPM_CI)}` in {NODE_DIR} failed ({done.returncode}):\n"
            + (done.stderr or done.stdout)[-2000:]
        )
