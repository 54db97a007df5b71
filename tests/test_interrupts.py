"""Ctrl-C and SIGTERM stop the gate, the fuzzer and the campaign even where Python drops
the KeyboardInterrupt their handler raises (fleet.procs.lifeline)."""

from __future__ import annotations

import signal

import pytest

from fleet.procs import lifeline


# The drop is the point: pytest reports the dropped exception as unraisable.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_dropped_where_it_cannot_propagate_is_raised_again():
    class Finalised:
        def __del__(self):
            # Where a handler can land: Python prints "Exception ignored in ..." and drops it.
            lifeline.raise_interrupt(signal.SIGTERM, None)

    with lifeline.interrupts():
        lifeline.check_interrupt()  # nothing pending: a no-op
        Finalised()
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            lifeline.check_interrupt()
    lifeline.check_interrupt()  # the block's end clears it: the next command starts clean


def test_the_block_installs_both_handlers_over_an_ignored_sigint_and_restores_them():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        term = signal.getsignal(signal.SIGTERM)
        with lifeline.interrupts():
            assert signal.getsignal(signal.SIGINT) is lifeline.raise_interrupt
            assert signal.getsignal(signal.SIGTERM) is lifeline.raise_interrupt
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is term
    finally:
        signal.signal(signal.SIGINT, before)
