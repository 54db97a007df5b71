"""``[rpc]``: the one unary RPC the load sends, built from JSON, and how its answer is
checked — for any method of any service, without generated code.

    request template --{rpc} filled--> JSON --json_format--> request message --> bytes
      --> channel.unary_unary(spec.path) (no serializers: bytes in, bytes out) -->
    response bytes --> response message --> [rpc.expect] fields compared --> None | problem

The types come from ``protos`` (compiled when the target is loaded: chaos/targets/protoc.py)
or from the server's reflection service (``reflection = true``: known only once a backend
runs, so ``resolve(channel)`` must be called first; chaos/targets/reflection.py).
Templates with ``{rpc}`` only in string fields skip json_format per call
(chaos/targets/slots.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.message import DecodeError, Message

from chaos.targets import protoc
from chaos.targets.errors import Problems, TargetError, error, line, one_line
from chaos.targets.expect import Expectation, expectation
from chaos.targets.messages import MethodTypes, method_types
from chaos.targets.reflection import DEFAULT_TIMEOUT_S, served_files
from chaos.targets.slots import Slot, filled, string_slots
from chaos.targets.table import INVALID, Table
from chaos.targets.template import fill, json_object, uses_rpc

KEYS = ("method", "request", "deadline_s", "protos", "import_paths", "reflection", "expect")
# The deadline of one call: a loopback RPC takes ~1 ms; 2 s is what a client facing a
# hang must survive (hang detection <= 1.5 s, docs/grpc-facts.md) while still failing a stuck call.
DEFAULT_DEADLINE_S = 2.0
METHOD_SHAPE = re.compile(r"(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*/[A-Za-z_]\w*\Z")
METHOD_HINT = "package.Service/Method, e.g. 'helloworld.Greeter/SayHello'"
# The id the templates are tried with when the target is checked (ids are numbers >= 0).
SAMPLE_RPC_ID = "0"


@dataclass(eq=False)
class RpcSpec:
    """The target's RPC. ``request`` and ``expect`` are templates (chaos/targets/template.py);
    ``protos`` and ``import_paths`` are absolute (empty with ``reflection``)."""

    method: str
    request: dict
    expect: dict | None
    deadline_s: float
    source: str
    protos: tuple[Path, ...] = ()
    import_paths: tuple[Path, ...] = ()
    reflection: bool = False
    _types: MethodTypes | None = field(default=None, repr=False)
    _fixed_request: bytes | None = field(default=None, repr=False)
    _base_request: Message | None = field(default=None, repr=False)
    _request_slots: list[Slot] | None = field(default=None, repr=False)
    _expectation: Expectation | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        """The HTTP/2 path of the method: ``/package.Service/Method``."""
        return f"/{self.method}"

    @property
    def service(self) -> str:
        return self.method.split("/")[0]

    @property
    def method_name(self) -> str:
        return self.method.split("/")[1]

    @property
    def needs_resolve(self) -> bool:
        """Whether the types are still unknown: reflection before ``resolve``."""
        return self._types is None

    def request_bytes(self, rpc_id: int | str) -> bytes:
        """The serialized request of RPC ``rpc_id`` (its template filled)."""
        types = self._known_types()
        if self._fixed_request is not None:
            return self._fixed_request
        if self._request_slots is not None:
            return filled(self._base_request, self._request_slots, str(rpc_id)).SerializeToString()
        message = json_format.ParseDict(fill(self.request, str(rpc_id)), types.request())
        return message.SerializeToString()

    def check_response(self, data: bytes, rpc_id: int | str) -> str | None:
        """None when ``data`` is a correct answer to RPC ``rpc_id``, else what is wrong in
        a few words (the load records such an answer as DATA_LOSS)."""
        types = self._known_types()
        try:
            answer = types.response.FromString(data)
        except DecodeError as exc:
            return f"the answer is not a {types.response.DESCRIPTOR.full_name}: {exc}"
        return (
            None if self._expectation is None else self._expectation.difference(answer, str(rpc_id))
        )

    def multicallable(self, channel: grpc.Channel | grpc.aio.Channel):
        """The method on ``channel`` (sync or grpc.aio), taking and returning bytes."""
        return channel.unary_unary(self.path)

    def resolve(self, channel: grpc.Channel, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Learn the types from the reflection service of the backend behind ``channel``
        (a no-op once known, and for protos). TargetError when the backend serves no
        reflection, not this method, or types the request or expect do not fit;
        grpc.RpcError (UNAVAILABLE, DEADLINE_EXCEEDED) when it does not answer yet."""
        if self._types is not None:
            return
        files = served_files(channel, self.method, self.source, timeout_s)
        self._bind(method_types(files, self.method, self.source, "served by the backend"))

    def _known_types(self) -> MethodTypes:
        if self._types is None:
            raise RuntimeError(
                f"{self.method}: its types come from the server's reflection "
                f"service: call resolve(channel) first"
            )
        return self._types

    def _bind(self, types: MethodTypes) -> None:
        """Check the templates against the types and keep them; TargetError listing every
        problem of the request and the expected answer."""
        problems = []
        try:
            sample = json_format.ParseDict(fill(self.request, SAMPLE_RPC_ID), types.request())
        except json_format.ParseError as exc:
            problems.append(
                line(
                    self.source,
                    "rpc.request",
                    f"does not fit {types.request.DESCRIPTOR.full_name}: {one_line(str(exc))}",
                )
            )
        checked = None
        if self.expect is not None:
            checked, found = expectation(self.expect, types.response, self.source)
            problems += found
        if problems:
            raise TargetError(problems)
        self._fixed_request = None if uses_rpc(self.request) else sample.SerializeToString()
        self._base_request = sample
        self._request_slots = string_slots(self.request, types.request.DESCRIPTOR, only_rpc=True)
        self._expectation = checked
        self._types = types


def from_protos(
    method: str,
    request: dict,
    expect: dict | None,
    deadline_s: float,
    source: str,
    protos: list[str],
    import_paths: list[str] | None,
    base: Path,
) -> RpcSpec:
    """An RpcSpec whose types are compiled from ``protos`` now (paths as written, relative
    to ``base``; ``import_paths`` default to the files' directories)."""
    if import_paths is None:
        import_paths = list(dict.fromkeys(os.path.dirname(p) or "." for p in protos))
    spec = RpcSpec(
        method,
        request,
        expect,
        deadline_s,
        source,
        protos=tuple((base / p).resolve() for p in protos),
        import_paths=tuple((base / p).resolve() for p in import_paths),
    )
    try:
        files = protoc.compile_protos(protos, import_paths, base)
    except protoc.CompileError as exc:
        raise error(source, "rpc.protos", f"does not compile: {exc}") from None
    spec._bind(method_types(files, method, source, f"in {', '.join(protos)}"))
    return spec


def from_descriptors(
    method: str,
    request: dict,
    expect: dict | None,
    deadline_s: float,
    source: str,
    files: list[FileDescriptorProto],
) -> RpcSpec:
    """An RpcSpec whose types come from ``files``, descriptors already compiled (those of
    a generated module: the built-in Greeter, whose .proto sources are not installed)."""
    spec = RpcSpec(method, request, expect, deadline_s, source)
    spec._bind(method_types(files, method, source, "in the built-in descriptors"))
    return spec


def read(data: dict, base: Path, problems: Problems) -> Callable[[], RpcSpec] | None:
    """How to build the RpcSpec of an ``[rpc]`` table, or None after reporting its
    problems. Building compiles the protos, so the caller builds only once every key of
    the whole file is right (a proto problem is only worth reading then)."""
    table = Table("rpc", data, KEYS, problems)
    method = table.string("method", hint=METHOD_HINT)
    if method is not INVALID and not METHOD_SHAPE.match(method):
        problems.add("rpc.method", f"{method!r} must be {METHOD_HINT}")
        method = INVALID
    request = json_object(data["request"], "rpc.request", problems) if "request" in data else {}
    expect = json_object(data["expect"], "rpc.expect", problems) if "expect" in data else None
    deadline_s = table.seconds("deadline_s", DEFAULT_DEADLINE_S)
    protos, import_paths, use_reflection = _sources(table, base)
    if INVALID in (method, request, expect, deadline_s, protos, import_paths, use_reflection):
        return None
    if use_reflection:
        return lambda: RpcSpec(
            method, request, expect, deadline_s, problems.source, reflection=True
        )
    return lambda: from_protos(
        method, request, expect, deadline_s, problems.source, protos, import_paths, base
    )


def _sources(table: Table, base: Path) -> tuple[Any, Any, Any]:
    """``protos`` + ``import_paths``, or ``reflection = true``: exactly one."""
    problems = table.problems
    use_reflection = table.boolean("reflection", False)
    protos = table.strings("protos", None, hint="['protos/helloworld.proto']")
    import_paths = table.strings("import_paths", None, hint="['protos']")
    if protos is None and use_reflection is False:
        problems.add(
            "rpc",
            "missing (required): protos = [the .proto files] or "
            "reflection = true (ask the server's reflection service)",
        )
        return INVALID, import_paths, use_reflection
    if protos is not None and use_reflection is True:
        problems.add("rpc.reflection", "give either protos or reflection = true, not both")
        return INVALID, import_paths, use_reflection
    if import_paths is not None and protos is None:
        problems.add("rpc.import_paths", "only goes with protos (reflection needs none)")
        return protos, INVALID, use_reflection
    if protos not in (None, INVALID):
        protos = _existing(table, "protos", protos, base, Path.is_file, "no such file")
    if import_paths not in (None, INVALID):
        import_paths = _existing(
            table, "import_paths", import_paths, base, Path.is_dir, "no such directory"
        )
    return protos, import_paths, use_reflection


def _existing(table: Table, key: str, paths: list[str], base: Path, test, absent: str) -> Any:
    missing = [(index, p) for index, p in enumerate(paths) if not test(base / p)]
    for index, p in missing:
        table.problems.add(
            f"rpc.{key}[{index}]",
            f"{p!r}: {absent} (relative to the target file: {(base / p).resolve()})",
        )
    return INVALID if missing else paths
