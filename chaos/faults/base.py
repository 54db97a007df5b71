"""Faults and the nemesis that injects them.

A fault is a small immutable description (what, on which backend) with two actions:
``apply`` does the damage and ``revert`` repairs it. The :class:`Nemesis` runs them against
one fleet and records each as an Event on the history's clock, so checks can relate every
RPC to every fault::

    nemesis.inject(Kill("b2"))          # event "kill" b2 begins, the process dies
    with nemesis.during(Latency("b1", 200)):
        ...                             # event "toxic:latency" b1 spans the block
    nemesis.timed(Pause("b3"), 2.0)     # SIGSTOP for 2 s, then SIGCONT
    nemesis.undo_all()                  # every fault still active is reverted, newest first

Faults that need local processes (kill, pause, drain, restart) act through the fleet
controller; the rest through the backends' control services, Toxiproxy and the fleet DNS.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, ClassVar

from chaos.history import History


class Fault(ABC):
    """Something that goes wrong on ``backend`` (a backend id, or None for the fleet)."""

    kind: ClassVar[str]
    backend: str | None
    # An instantaneous fault (a restart) is over once applied: its event ends right away
    # and there is nothing to undo.
    instant: ClassVar[bool] = False

    @abstractmethod
    def apply(self, nemesis: Nemesis) -> None:
        """Do the damage."""

    def revert(self, nemesis: Nemesis) -> None:  # noqa: B027  an optional hook, empty on purpose
        """Repair it. Deliberately not abstract: instantaneous faults (a restart) have nothing
        to repair and keep this default, which does nothing; every other fault overrides it."""

    def detail(self) -> dict:
        """The fault's parameters, JSON-able, for the event record."""
        data: dict[str, Any] = asdict(self) if is_dataclass(self) else {}
        data.pop("backend", None)
        return data

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.detail().items())
        return f"{self.kind}({self.backend or 'fleet'}{', ' + params if params else ''})"


@dataclass
class Active:
    """A fault that has been applied (and maybe reverted), with its event in the history."""

    fault: Fault
    handle: int
    history: History
    undone: bool = False

    @property
    def event(self):
        return self.history.event(self.handle)

    @property
    def start_ns(self) -> int:
        """When the fault began (taken just before it was applied): RPCs from here on may
        have met it."""
        return self.event.start_ns

    @property
    def in_force_ns(self) -> int:
        """When the fault was in force (taken just after ``apply`` returned: the API
        answered, the process is gone, the server confirmed): the client's reaction is
        measured from here."""
        return self.event.in_force_ns

    @property
    def end_ns(self) -> int | None:
        """When it was reverted (taken just after), None while it is in force."""
        return self.event.end_ns


class Nemesis:
    """Applies faults to one fleet, records them as events, and undoes them all at the end."""

    def __init__(self, fleet, history: History, proxies=None):
        self.fleet = fleet
        self.history = history
        self.proxies = proxies
        self._active: list[Active] = []

    def inject(self, fault: Fault) -> Active:
        """Apply ``fault`` now; it stays until :meth:`undo` or :meth:`undo_all`."""
        handle = self.history.begin(fault.kind, fault.backend, **fault.detail())
        active = Active(fault, handle, self.history)
        self._active.append(active)
        try:
            fault.apply(self)
        except BaseException:
            # Revert whatever part was applied; the apply error is the one to report.
            with suppress(Exception):
                self.undo(active)
            raise
        self.history.in_force(handle)
        if fault.instant:
            self._active.remove(active)
            active.undone = True
            self.history.end(handle)
        return active

    def undo(self, active: Active | None) -> Active | None:
        """Revert one injected fault (once) and end its event; returns it. None (a fault
        that was never injected, e.g. a hold a server without the Control service cannot
        do) is nothing to undo."""
        if active is None or active.undone:
            return active
        active.undone = True
        self._active.remove(active)
        try:
            active.fault.revert(self)
        finally:
            self.history.end(active.handle)
        return active

    @contextmanager
    def during(self, fault: Fault) -> Iterator[Active]:
        """The fault is in force inside the ``with`` block, and reverted however it ends."""
        active = self.inject(fault)
        try:
            yield active
        finally:
            self.undo(active)

    def timed(self, fault: Fault, seconds: float) -> None:
        """Keep ``fault`` for ``seconds``, then revert it. The sleep *is* the fault window."""
        with self.during(fault):
            time.sleep(seconds)

    def undo_all(self) -> list[BaseException]:
        """Revert every active fault, newest first; returns the errors instead of stopping."""
        errors: list[BaseException] = []
        for active in reversed(list(self._active)):
            try:
                self.undo(active)
            except Exception as exc:  # keep undoing the rest; the caller reports these
                errors.append(exc)
        return errors

    @property
    def active(self) -> list[Fault]:
        return [a.fault for a in self._active]

    def proxy_of(self, backend_id: str) -> str:
        """The Toxiproxy proxy in front of a backend (the fleet must be proxied)."""
        proxy = self.fleet.backend(backend_id).proxy
        if proxy is None or self.proxies is None:
            raise RuntimeError(
                f"backend {backend_id} has no Toxiproxy proxy: network faults need a proxied fleet"
            )
        return proxy
