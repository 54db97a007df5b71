"""A pytest plugin the gate loads into each of its pytest runs (``-p chaos.gate.plan``):
it writes the node ids pytest selected to the file named by ``GRPC_CHAOS_GATE_PLAN``, so
the gate knows how many scenarios a run will report (its progress bar and ETA) and which
ones an interrupted run never reached.

Under pytest-xdist the controller collects nothing and each worker collects the same
selection; whoever has items writes the same list (atomically, by rename).
"""

from __future__ import annotations

import json
import os

ENV = "GRPC_CHAOS_GATE_PLAN"


def pytest_collection_finish(session) -> None:
    path = os.environ.get(ENV)
    if not path or not session.items:
        return
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w") as out:
        json.dump([item.nodeid for item in session.items], out)
    os.replace(partial, path)


def read(path) -> list[str] | None:
    """The node ids a run selected, or None while it has not collected yet."""
    try:
        with open(path) as plan:
            return json.load(plan)
    except (OSError, ValueError):
        return None
