"""A planted flawed client (tests/test_detection.py): the ``python`` driver, except that its
RPCs carry no deadline — the deadline the scenario asks for is dropped, the commonest
mistake in gRPC client code. Most faults still end such RPCs some other way (a reset, a
closed connection, keepalive); a response that stalls mid-way does not, and only a
scenario that stages one can tell.

    --chaos-client "python tests/drivers/no_deadline.py"
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chaos.clients.drivers import python_grpcio  # noqa: E402

_with_deadline = python_grpcio.Driver._one


async def _without_deadline(call, request, deadline_ms, key, index, start=None):
    return await _with_deadline(call, request, 0, key, index, start)


python_grpcio.Driver._one = staticmethod(_without_deadline)  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(python_grpcio.main())
