"""The fleet's own Greeter (fleet/server.py) as a Target: the default service under test.

It has every capability: grpc-chaos's Control service, and client certificates on demand
(``mtls``). It is ready when it prints its JSON ready line ("line": a readiness only the
built-in server offers), which also names its Control port.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from google.protobuf.descriptor_pb2 import FileDescriptorProto

from chaos.targets import rpc
from chaos.targets.model import Target
from chaos.targets.server import ServerSpec

SOURCE = "built-in Greeter"
# Where the built-in server is started from: the folder that holds chaos/ and fleet/.
PROJECT = Path(__file__).resolve().parents[2]


def _greeter_descriptors() -> list[FileDescriptorProto]:
    from fleet.protos import greeter_pb2

    file = FileDescriptorProto()
    greeter_pb2.DESCRIPTOR.CopyToProto(file)
    return [file]


@functools.cache
def builtin(mtls: bool = False) -> Target:
    """The built-in Greeter (``mtls``: its backends require client certificates). Cached:
    a Target is immutable, and its RPC's types are read from the generated module once."""
    command = [
        sys.executable,
        "-m",
        "fleet.server",
        "--id",
        "{id}",
        "--listen",
        "{host}:{port}",
        "--cert",
        "{cert}",
        "--key",
        "{key}",
        "--control",
        "{control}",
    ]
    if mtls:
        command += ["--client-ca", "{client_ca}"]
    server = ServerSpec(command=tuple(command), cwd=PROJECT, ready="line", control=True, mtls=mtls)
    greeter = rpc.from_descriptors(
        "greeter.Greeter/SayHello",
        {"name": "r{rpc}"},
        {"message": "Hello r{rpc}"},
        rpc.DEFAULT_DEADLINE_S,
        SOURCE,
        _greeter_descriptors(),
    )
    return Target(
        name="greeter",
        source=SOURCE,
        server=server,
        rpc=greeter,
        health_service="greeter.Greeter",
        identity_header="x-backend-id",
        builtin=True,
    )
