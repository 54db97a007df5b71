"""Wait for a condition with a deadline, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Poll intervals grow from 1 ms to 50 ms: fast conditions are seen quickly, slow ones do
# not burn a core (the machine has two).
_FIRST_POLL_S = 0.001
_MAX_POLL_S = 0.05


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Return the first truthy value of ``condition()`` within ``timeout`` seconds.

    Raises TimeoutError("<what> not reached within <timeout> s"). The condition is checked
    at least once, even with a zero timeout; the number of checks is bounded by the deadline.
    """
    deadline = time.monotonic() + timeout
    pause = _FIRST_POLL_S
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _MAX_POLL_S)
