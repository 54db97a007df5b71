"""Run directories — one per gate, fuzz or campaign run, never overwritten, and a
``latest`` link — and the host facts each run records.

The gate's layout (the fuzzer's: docs/fuzzing.md)::

    chaos-runs/
      latest -> 20261130T185504Z-3f9a1c          (the newest run with a results.json)
      20261130T185504Z-3f9a1c/                   (UTC start time, a random id)
        results.json  junit.xml  summary.md  report.html
        pytest/<profile>.<repeat>.{log,jsonl,xml}   each pytest run's own output
        artifacts/repeat-<k>/<profile>/<scenario>/  history.jsonl (monotonic and wall-clock
                                                    times), verdicts.json, summary.json, ...

A directory is created with mkdir (never reused: a name taken by another run gets a new
id) and ``latest`` moves with a rename, so two gates sharing one output directory never
write into each other's run.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import time
from pathlib import Path

from chaos.outcomes import UsageError

LATEST = "latest"
_ID_BYTES = 3  # six hex digits: two runs started in the same second still differ
_NAME_TRIES = 8


def create(output: Path) -> Path:
    """A new, empty run directory under ``output`` (created if missing)."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for _ in range(_NAME_TRIES):
            path = output / f"{stamp}-{secrets.token_hex(_ID_BYTES)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            for sub in ("pytest", "artifacts"):
                (path / sub).mkdir()
            return path
    except OSError as exc:
        raise UsageError(
            f"cannot write run directories under {output}: "
            f"{exc.strerror or exc}; pass --output DIR with a directory you can "
            f"write"
        ) from None
    raise UsageError(f"no free run directory name under {output} after {_NAME_TRIES} tries")


def point_latest(run: Path) -> None:
    """Make ``<output>/latest`` point at ``run`` (a relative link, replaced atomically)."""
    link = run.parent / LATEST
    temporary = run.parent / f".{LATEST}-{run.name}"
    try:
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(run.name, target_is_directory=True)
        os.replace(temporary, link)
    except OSError as exc:
        raise UsageError(f"cannot point {link} at {run.name}: {exc.strerror or exc}") from None


def resolve(spec: str, output: Path) -> Path:
    """A run given as ``latest`` (under ``output``), a run directory or a results.json."""
    if spec == LATEST:
        link = output / LATEST
        if not link.exists():
            raise UsageError(
                f"no run to compare with: {link} does not exist (run the gate "
                f"once, or give --baseline a run directory)"
            )
        return link.resolve()
    path = Path(spec)
    if not path.exists():
        raise UsageError(f"no run directory or results.json at {spec}")
    return path


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded; [] where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def host() -> dict:
    """Where a run ran: a figure means little without the machine it was measured on."""
    return {
        "name": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": load_average(),
    }
