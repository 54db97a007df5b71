"""Faults (the nemesis): every way a backend, the network, TLS, health or DNS goes wrong.

One module per family; each fault is an object with apply/revert, injected through a
:class:`Nemesis` that records it in the history and undoes it at the end.
"""

from chaos.faults.base import Active, Fault, Nemesis
from chaos.faults.control import AppError, Certificate, Health, SlowHandler
from chaos.faults.dns import DnsEmpty, DnsNxdomain, DnsOutage, DnsRemove
from chaos.faults.network import (
    Bandwidth,
    Blackhole,
    CutConnections,
    Latency,
    LimitData,
    ProxyDown,
    ResetPeer,
    Slicer,
    SlowClose,
    Toxic,
)
from chaos.faults.process import Drain, Kill, Pause, Restart, Terminate
from chaos.faults.rollout import ScaleIn, ScaleOut

__all__ = [
    "Active",
    "AppError",
    "Bandwidth",
    "Blackhole",
    "Certificate",
    "CutConnections",
    "DnsEmpty",
    "DnsNxdomain",
    "DnsOutage",
    "DnsRemove",
    "Drain",
    "Fault",
    "Health",
    "Kill",
    "LimitData",
    "Latency",
    "Nemesis",
    "Pause",
    "ProxyDown",
    "ResetPeer",
    "Restart",
    "ScaleIn",
    "ScaleOut",
    "SlowClose",
    "SlowHandler",
    "Slicer",
    "Terminate",
    "Toxic",
]
