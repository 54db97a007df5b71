"""grpc-chaos: chaos and resilience tests for gRPC fleets.

What users import::

    from chaos import checks, faults            # verdicts; the faults (Kill, Latency, ...)
    from chaos import History, Rpc, Event       # the history every RPC and fault goes into
    from chaos import Load, Nemesis, Scenario   # load generator, fault injector, a scenario
    from chaos import Profile, load_profile     # client profiles
    from chaos import ToxiproxyServer, ProxyControl

Everything else is internal and free to move. Names are imported on first use, so that
``python -m chaos.toxiproxy_server`` does not load gRPC.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "checks": ("chaos.checks", None),
    "faults": ("chaos.faults", None),
    "History": ("chaos.history", "History"),
    "Rpc": ("chaos.history", "Rpc"),
    "Event": ("chaos.history", "Event"),
    "Load": ("chaos.load", "Load"),
    "Nemesis": ("chaos.faults", "Nemesis"),
    "Scenario": ("chaos.scenario", "Scenario"),
    "Profile": ("chaos.profiles", "Profile"),
    "load_profile": ("chaos.profiles", "load"),
    "ToxiproxyServer": ("chaos.toxiproxy_server.control", "ToxiproxyServer"),
    "ProxyControl": ("chaos.toxiproxy_server.control", "ProxyControl"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'chaos' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
