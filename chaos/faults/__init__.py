"""Faults (the nemesis): every way a backend, the network, TLS, health or DNS goes wrong.

One module per family (http2: protocol events through a fleet's HTTP/2 points); each fault
is an object with apply/revert, injected through a :class:`Nemesis` that records it in the
history and undoes it at the end.
"""

from chaos.faults.base import Active, Fault, Nemesis
from chaos.faults.control import AppError, Certificate, Health, SlowHandler
from chaos.faults.dns import DnsEmpty, DnsNxdomain, DnsOutage, DnsRemove
from chaos.faults.http2 import (
    ConnectionEvents,
    Goaway,
    GoawayBelowInFlight,
    HeadersThenNothing,
    MaxConcurrentStreams,
    RstStream,
    StarveFlowControl,
    TooManyPings,
    TrailersOnly,
    WithholdPingAcks,
)
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
    "ConnectionEvents",
    "CutConnections",
    "DnsEmpty",
    "DnsNxdomain",
    "DnsOutage",
    "DnsRemove",
    "Drain",
    "Fault",
    "Goaway",
    "GoawayBelowInFlight",
    "HeadersThenNothing",
    "Health",
    "Kill",
    "Latency",
    "LimitData",
    "MaxConcurrentStreams",
    "Nemesis",
    "Pause",
    "ProxyDown",
    "ResetPeer",
    "Restart",
    "RstStream",
    "ScaleIn",
    "ScaleOut",
    "Slicer",
    "SlowClose",
    "SlowHandler",
    "StarveFlowControl",
    "Terminate",
    "TooManyPings",
    "Toxic",
    "TrailersOnly",
    "WithholdPingAcks",
]
