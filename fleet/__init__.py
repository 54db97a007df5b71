"""The fleet under test: N TLS backends, each behind a Toxiproxy proxy, one DNS name.

What users import::

    from fleet import Fleet                     # start, fault and stop a fleet
    fleet["b2"]                                 # a BackendHandle: kill(), pause(), stats(), ...
    from fleet import FleetError, Unsupported   # what its calls raise
    from fleet import ServiceSpec, ProxyControl # what it needs of a service and of Toxiproxy

The fleet never imports grpc-chaos (``chaos``): it is the system under test, and the
Toxiproxy server and the service description are handed to it. Subpackages: ``procs``
(process helpers: children die with their parent, bounded waits), ``protos`` (the built-in
Greeter's and Control service's generated modules). Names load on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Fleet": ("fleet.controller", "Fleet"),
    "Backend": ("fleet.controller", "Backend"),
    "FleetError": ("fleet.controller", "FleetError"),
    "Unsupported": ("fleet.controller", "Unsupported"),
    "ProxyControl": ("fleet.controller", "ProxyControl"),
    "BackendHandle": ("fleet.handle", "BackendHandle"),
    "ServiceSpec": ("fleet.spec", "ServiceSpec"),
    "ServerCommand": ("fleet.spec", "ServerCommand"),
    "CertFiles": ("fleet.pki", "CertFiles"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'fleet' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
