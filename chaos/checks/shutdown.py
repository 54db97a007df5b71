"""Shutdown: a server that stops gracefully says NOT_SERVING before it stops accepting.

    SIGTERM     health NOT_SERVING          listener closed          process exits
    ---|-------------|-------------------------------|------------------------|--->
                     |<---------- notice ----------->|   in-flight RPCs end   |

The notice is what lets clients that health-check move away before connections are
refused; without it (no flip, or a flip at the moment the listener closes) the clients learn
of the shutdown from failures.
"""

from __future__ import annotations

from chaos.checks.verdict import Verdict, ms


def shutdown_notice(
    stop_ns: int, not_serving_ns: int | None, closed_ns: int | None, bound_ms: float
) -> Verdict:
    """Time from the health service's NOT_SERVING to the listener closing, against a floor
    of ``bound_ms`` (the time clients need to move away). Fails when NOT_SERVING never came
    before the listener closed (figure None)."""
    if closed_ns is None:
        text = (
            "The listener never stopped accepting connections after the stop signal, "
            "within the watch: the server did not shut down."
        )
        return Verdict(
            "shutdown_notice",
            False,
            None,
            "ms",
            bound_ms,
            text,
            ">=",
            shown="the listener never closed within the watch",
        )
    closed_after = ms(closed_ns - stop_ns)
    if not_serving_ns is None or not_serving_ns > closed_ns:
        text = (
            f"The server closed its listener {closed_after:.0f} ms after the stop signal "
            f"without its health service saying NOT_SERVING first"
            + (
                ""
                if not_serving_ns is None
                else f" (NOT_SERVING came {ms(not_serving_ns - closed_ns):.0f} ms after the close)"
            )
            + ": health-checking clients learned of the shutdown from refused connections "
            "and failed RPCs, not from the health service."
        )
        return Verdict(
            "shutdown_notice",
            False,
            None,
            "ms",
            bound_ms,
            text,
            ">=",
            shown="no NOT_SERVING before the listener closed",
        )
    figure = ms(closed_ns - not_serving_ns)
    passed = figure >= bound_ms
    text = (
        f"NOT_SERVING {ms(not_serving_ns - stop_ns):.0f} ms after the stop signal, the "
        f"listener closed {figure:.0f} ms later, {'at least' if passed else 'under'} the "
        f"{bound_ms:g} ms clients need to move away."
    )
    return Verdict("shutdown_notice", passed, figure, "ms", bound_ms, text, ">=")
