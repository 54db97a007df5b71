"""The target's types from the server's reflection service, like grpcurl and ghz do.

    list_services                      -> is the method's service served?
    file_containing_symbol=<service>   -> its file (servers send its imports along)
    file_by_filename=<import>          -> any import still missing, one by one
      -> chaos.targets.messages.method_types(files, method)

``grpc.reflection.v1`` is asked first, then ``v1alpha`` (grpcio-reflection serves only
v1alpha; newer grpc-go and grpc-java serve both): the two have the same messages, so
grpcio-reflection's v1alpha classes speak both. Every call has a deadline.
"""

from __future__ import annotations

import time

import grpc
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

from chaos.targets.errors import did_you_mean, error, listing

VERSIONS = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
# A reflection answer on loopback takes milliseconds; this is margin for a busy machine.
DEFAULT_TIMEOUT_S = 5.0
# Bounds the import walk: real services import tens of files; this is far past any.
MAX_FILES = 1000
# Codes that say the backend is not answering yet (still starting, or gone): the caller
# may retry these, so they propagate as grpc.RpcError.
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class _Reflection:
    """Single-request reflection streams on one channel, under one deadline."""

    def __init__(self, channel: grpc.Channel, service_path: str, deadline: float, source: str):
        self._call = channel.stream_stream(
            f"/{service_path}/ServerReflectionInfo",
            request_serializer=ServerReflectionRequest.SerializeToString,
            response_deserializer=ServerReflectionResponse.FromString,
        )
        self._deadline = deadline
        self._source = source

    def ask(self, **request) -> ServerReflectionResponse:
        """The answer to one request. UNIMPLEMENTED and TRANSIENT codes propagate as
        grpc.RpcError; any other failure is the server's: a TargetError."""
        timeout = max(0.0, self._deadline - time.monotonic())
        answers = self._call(iter([ServerReflectionRequest(**request)]), timeout=timeout)
        try:
            return next(answers)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.UNIMPLEMENTED or exc.code() in TRANSIENT:
                raise
            raise error(
                self._source,
                "rpc.reflection",
                f"the server's reflection service failed: {exc.code().name}: {exc.details()}",
            ) from None
        finally:
            answers.cancel()


def served_files(
    channel: grpc.Channel, method: str, source: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[FileDescriptorProto]:
    """The descriptor files that define the service of ``method`` (and their imports),
    from the backend behind ``channel``. TargetError when the backend serves no reflection
    service or not that service; grpc.RpcError (UNAVAILABLE, DEADLINE_EXCEEDED) when it
    does not answer."""
    service = method.split("/")[0]
    reflection, services = _connect(channel, source, time.monotonic() + timeout_s)
    if service not in services:
        raise error(
            source,
            "rpc.method",
            f"service {service!r} is not served by the backend"
            f"{did_you_mean(service, services)}; it serves: "
            f"{listing(services)}",
        )
    files = _files(reflection.ask(file_containing_symbol=service), service, source)
    known = {file.name for file in files}
    while missing := [d for file in files for d in file.dependency if d not in known]:
        if len(known) >= MAX_FILES:
            raise error(
                source,
                "rpc.reflection",
                f"the server's descriptors import more than {MAX_FILES} files",
            )
        for file in _files(reflection.ask(file_by_filename=missing[0]), missing[0], source):
            if file.name not in known:
                known.add(file.name)
                files.append(file)
        known.add(missing[0])  # sent or not, it is not asked for twice
    return files


def _connect(channel: grpc.Channel, source: str, deadline: float) -> tuple[_Reflection, list[str]]:
    """The first reflection version the backend serves, and its list of services."""
    for service_path in VERSIONS:
        reflection = _Reflection(channel, service_path, deadline, source)
        try:
            answer = reflection.ask(list_services="")
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                continue
            raise
        _refused(answer, "the list of services", source)
        return reflection, [s.name for s in answer.list_services_response.service]
    raise error(
        source,
        "rpc.reflection",
        "the server does not serve the reflection service "
        "(grpc.reflection.v1 or v1alpha): enable it (e.g. "
        "grpcio-reflection, grpc-go's reflection.Register) "
        "or give rpc.protos instead",
    )


def _files(answer: ServerReflectionResponse, asked: str, source: str) -> list[FileDescriptorProto]:
    _refused(answer, asked, source)
    return [
        FileDescriptorProto.FromString(data)
        for data in answer.file_descriptor_response.file_descriptor_proto
    ]


def _refused(answer: ServerReflectionResponse, asked: str, source: str) -> None:
    if answer.WhichOneof("message_response") == "error_response":
        code = answer.error_response.error_code
        name = next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))
        raise error(
            source,
            "rpc.reflection",
            f"the server's reflection service has no answer for {asked}: "
            f"{name} {answer.error_response.error_message}".rstrip(),
        )
