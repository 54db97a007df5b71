"""The request and response types of the target's method, from file descriptors.

The descriptors come from protoc (chaos/targets/protoc.py) or from the server's reflection
service (chaos/targets/reflection.py); either way they go into a DescriptorPool of their own
(never the process's default pool, where the project's own greeter.proto already lives)
and message classes are made from it with message_factory — no generated module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import descriptor_database, descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.message import Message

from chaos.targets.errors import did_you_mean, error, listing


@dataclass(frozen=True)
class MethodTypes:
    """The message classes of one unary-unary method."""

    request: type[Message]
    response: type[Message]


def methods_in(files: Iterable[FileDescriptorProto]) -> list[str]:
    """Every method the files declare, as ``package.Service/Method``."""
    found = []
    for file in files:
        prefix = f"{file.package}." if file.package else ""
        found += [
            f"{prefix}{service.name}/{method.name}"
            for service in file.service
            for method in service.method
        ]
    return found


def method_types(
    files: list[FileDescriptorProto], method: str, source: str, origin: str
) -> MethodTypes:
    """The types of ``method`` (``package.Service/Method``) among ``files``, or a
    TargetError naming what is there instead; ``origin`` says where the files came from
    ("in protos/x.proto", "served by the backend")."""
    database = descriptor_database.DescriptorDatabase()
    for file in files:
        database.Add(file)
    pool = descriptor_pool.DescriptorPool(database)
    service_name, method_name = method.split("/")
    try:
        found = pool.FindServiceByName(service_name).methods_by_name.get(method_name)
    except KeyError:
        found = None
    if found is None:
        there = methods_in(files)
        raise error(
            source,
            "rpc.method",
            f"{method!r} is not {origin}"
            f"{did_you_mean(method, there)}; methods there: "
            f"{listing(there)}",
        )
    if found.client_streaming or found.server_streaming:
        kind = (
            "bidirectional streaming"
            if found.client_streaming and found.server_streaming
            else "client streaming"
            if found.client_streaming
            else "server streaming"
        )
        raise error(
            source,
            "rpc.method",
            f"{method!r} is {kind}; grpc-chaos calls unary "
            f"methods only (one request, one response)",
        )
    return MethodTypes(
        message_factory.GetMessageClass(found.input_type),
        message_factory.GetMessageClass(found.output_type),
    )
