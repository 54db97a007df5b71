"""The service under test: what runs in each backend, and the RPC the load sends it.

A target is the built-in Greeter (``builtin()``) or a target file, ``grpc-chaos.toml``
(``load(path)``; ``find(directory)`` looks for one)::

    [server]
    command = ["python3", "server.py", "--port", "{port}", "--cert", "{cert}",
               "--key", "{key}", "--id", "{id}"]   # required: argv of ONE backend, no shell
    env = { LOG_LEVEL = "info" }      # optional: added to the framework's environment
    cwd = "."                         # optional: relative to the target file (default: its
                                      # directory); a relative program is found from here
    ready = "health"                  # optional: "health" (the health service says SERVING
                                      # for health.service) or "rpc" (the RPC below answers
                                      # correctly; the default: any server can)
    start_timeout_s = 20              # optional (default 20): ready within this, or an error
    stop_signal = "SIGTERM"           # optional (default SIGTERM, as a scheduler sends it)
    stop_grace_s = 10                 # optional (default 10): then SIGKILL, and it is said
    control = false                   # optional: it also serves grpc-chaos's Control service
                                      # (proto/control.proto) on {control}
    mtls = false                      # optional: it requires client certificates issued by
                                      # {client_ca}; clients present the fleet's

    [rpc]
    method = "helloworld.Greeter/SayHello"   # required: package.Service/Method, unary
    request = { name = "chaos {rpc}" }       # optional (default {}): a table or a JSON
                                             # string; {rpc} in a string = the RPC's id
    deadline_s = 2                           # optional (default 2)
    protos = ["protos/helloworld.proto"]     # .proto files, relative to the target file,
    import_paths = ["protos"]                # and where imports are found (default: the
                                             # files' directories); compiled at load
    # reflection = true                      # OR ask the server's reflection service
    [rpc.expect]                             # optional: fields a correct answer holds
    message = "Hello chaos {rpc}"            # (nested tables for nested messages)

    [health]
    service = ""                             # optional: the name clients health-check

    [identity]
    header = "x-backend-id"                  # optional: the response metadata key (header
                                             # or trailer) in which a backend names itself;
                                             # "" = it says nothing (the framework then
                                             # attributes RPCs itself)

    [requirements]                           # optional: bounds, as chaos/verdicts/requirements.py
    failover_ms = 1000

Placeholders, filled per backend in ``command`` only: {host} {port} (where it must
listen: 127.0.0.1 and a port grpc-chaos picked), {cert} {key} (its certificate chain and
key, PEM), {ca} (the fleet's CA), {client_ca} (the CA of client certificates), {id} (b1,
b2, ...), {workdir} (a directory of its own), {control} (only with control = true).
``{{`` and ``}}`` are literal braces.

Exactly one of ``protos`` / ``reflection = true``. An unknown table or key, a missing
required key, a value of the wrong kind, an unknown placeholder, a program not found, a
proto that does not compile, a method not in the protos or not unary, a request or
expect that does not fit the message: each is one line of the TargetError, naming the file
and the key, e.g. ``grpc-chaos.toml: server.comand: unknown key (did you mean
'command'?)``. With reflection, the method, request and expect are checked by
``RpcSpec.resolve(channel)`` against the first backend that runs.
"""

from __future__ import annotations

from chaos.targets.builtin import builtin
from chaos.targets.errors import TargetError
from chaos.targets.loader import FILE_NAME, find, load
from chaos.targets.model import Target
from chaos.targets.rpc import RpcSpec
from chaos.targets.server import PLACEHOLDERS, ServerSpec

__all__ = [
    "FILE_NAME",
    "PLACEHOLDERS",
    "RpcSpec",
    "ServerSpec",
    "Target",
    "TargetError",
    "builtin",
    "find",
    "load",
]
