"""The target's RPC against real grpcio servers in this process: types from protos and from
the server's reflection service (v1 and v1alpha), the request template per RPC id, and
answers checked — a wrong one detected."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

from chaos import targets as target
from chaos.targets import TargetError
from fleet.protos import greeter_pb2, greeter_pb2_grpc
from tests.helpers import Greeter, greeter_server, serving

PROJECT_PROTO = Path(__file__).resolve().parent.parent / "proto" / "greeter.proto"
# Generous for a loopback call on a busy machine; the calls answer in milliseconds.
CALL_TIMEOUT_S = 10.0


def serve(register: Callable[[grpc.Server], None]):
    """A grpcio server on a free loopback port with what ``register`` adds; yields the
    port, stops it without grace and joins its threads on exit."""
    return serving(register)


@contextlib.contextmanager
def channel_to(port: int) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel


def greeter_with_reflection(version: str = "v1alpha") -> Callable[[grpc.Server], None]:
    """Greeter plus reflection as grpcio-reflection serves it (v1alpha), or the same
    servicer under the v1 name only (as a server that dropped v1alpha)."""
    names = [greeter_pb2.DESCRIPTOR.services_by_name["Greeter"].full_name, reflection.SERVICE_NAME]

    def register(server: grpc.Server) -> None:
        greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
        if version == "v1alpha":
            reflection.enable_server_reflection(names, server)
            return
        servicer = reflection.ReflectionServicer(names)
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "grpc.reflection.v1.ServerReflection",
                    {
                        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                            servicer.ServerReflectionInfo,
                            request_deserializer=ServerReflectionRequest.FromString,
                            response_serializer=ServerReflectionResponse.SerializeToString,
                        )
                    },
                )
            ]
        )

    return register


def answering(
    service: str, method: str, behaviour: Callable[[bytes], bytes]
) -> Callable[[grpc.Server], None]:
    """A server of one method that takes and returns bytes (no (de)serializers)."""

    def register(server: grpc.Server) -> None:
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    service,
                    {
                        method: grpc.unary_unary_rpc_method_handler(
                            lambda request, context: behaviour(request)
                        )
                    },
                )
            ]
        )

    return register


def write_target(directory: Path, rpc: str, protos: dict[str, str] | None = None) -> Path:
    for name, text in (protos or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    path = directory / "grpc-chaos.toml"
    path.write_text(
        f'[server]\ncommand = ["python3", "server.py", "--port", "{{port}}"]\n[rpc]\n{rpc}'
    )
    return path


GREETER_RPC = """method = "greeter.Greeter/SayHello"
request = { name = "chaos {rpc}" }
[rpc.expect]
message = "Hello chaos {rpc}"
"""


def call(spec: target.RpcSpec, channel: grpc.Channel, rpc_id: int) -> bytes:
    return spec.multicallable(channel)(spec.request_bytes(rpc_id), timeout=CALL_TIMEOUT_S)


# --------------------------------------------------------------------------- protos


def test_a_target_from_protos_calls_a_real_server_and_checks_its_answers(tmp_path):
    path = write_target(
        tmp_path,
        'protos = ["protos/greeter.proto"]\n' + GREETER_RPC,
        {"protos/greeter.proto": PROJECT_PROTO.read_text()},
    )
    spec = target.load(path).rpc
    with greeter_server() as port, channel_to(port) as channel:
        for rpc_id in (0, 1, 41):
            answer = call(spec, channel, rpc_id)
            assert greeter_pb2.HelloReply.FromString(answer).message == f"Hello chaos {rpc_id}"
            assert spec.check_response(answer, rpc_id) is None
        # The answer to RPC 1 is not a correct answer to RPC 2.
        assert spec.check_response(call(spec, channel, 1), 2) == (
            "field message is 'Hello chaos 1', expected 'Hello chaos 2'"
        )


def test_the_builtin_greeter_rpc_works_on_the_greeter():
    spec = target.builtin().rpc
    with greeter_server() as port, channel_to(port) as channel:
        assert spec.check_response(call(spec, channel, 7), 7) is None
        assert greeter_pb2.HelloRequest.FromString(spec.request_bytes(7)).name == "r7"


def test_the_request_is_filled_per_rpc_id_and_fixed_when_it_has_no_placeholder(tmp_path):
    spec = target.load(write_target(tmp_path, f'protos = ["{PROJECT_PROTO}"]\n' + GREETER_RPC)).rpc
    names = [greeter_pb2.HelloRequest.FromString(spec.request_bytes(i)).name for i in (3, 4, "x")]
    assert names == ["chaos 3", "chaos 4", "chaos x"]
    fixed = target.load(
        write_target(
            tmp_path,
            f'protos = ["{PROJECT_PROTO}"]\n'
            'method = "greeter.Greeter/SayHello"\n'
            'request = \'{"name": "same"}\'\n',
        )
    ).rpc
    assert (
        fixed.request_bytes(1)
        == fixed.request_bytes(2)
        == greeter_pb2.HelloRequest(name="same").SerializeToString()
    )
    assert fixed.check_response(b"", 1) is None  # no [rpc.expect]: any HelloReply is right


def test_a_wrong_answer_is_detected(tmp_path):
    spec = target.load(write_target(tmp_path, f'protos = ["{PROJECT_PROTO}"]\n' + GREETER_RPC)).rpc
    wrong = greeter_pb2.HelloReply(message="Hello someone").SerializeToString()
    with (
        serve(answering("greeter.Greeter", "SayHello", lambda _: wrong)) as port,
        channel_to(port) as channel,
    ):
        assert spec.check_response(call(spec, channel, 7), 7) == (
            "field message is 'Hello someone', expected 'Hello chaos 7'"
        )
    assert spec.check_response(b"", 7) == "field message is '', expected 'Hello chaos 7'"
    assert spec.check_response(b"\xff\xff", 7).startswith(
        "the answer is not a greeter.HelloReply: "
    )


SHOP_PROTOS = {
    "protos/shop/item.proto": """syntax = "proto3";
package shop;
enum Kind { KIND_UNSPECIFIED = 0; BOOK = 1; GAME = 2; }
message Item { string name = 1; Kind kind = 2; string item_id = 3; }
""",
    "protos/shop/order.proto": """syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "shop/item.proto";
message Order {
  int64 id = 1;
  Item item = 2;
  repeated string tags = 3;
  google.protobuf.Timestamp at = 4;
  float price = 5;
  map<string, int32> counts = 6;
}
service Shop { rpc Echo (Order) returns (Order); }
""",
}

SHOP_RPC = """method = "shop.Shop/Echo"
protos = ["protos/shop/order.proto"]
import_paths = ["protos"]
[rpc.request]
id = "{rpc}"
item = { name = "book {rpc}", kind = "BOOK", itemId = "i{rpc}" }
tags = ["a", "{rpc}"]
at = "2026-01-02T03:04:05Z"
price = 0.1
counts = { a = 1 }
[rpc.expect]
id = "{rpc}"
item = { kind = 1, item_id = "i{rpc}" }
tags = ["a", "{rpc}"]
at = "2026-01-02T03:04:05Z"
price = 0.1
counts = { a = 1 }
"""


def echo(request: bytes) -> bytes:
    return request


def test_nested_messages_int64_enums_maps_and_well_known_types(tmp_path):
    """An echo server answers each request with itself: the expectation (enum by number,
    JSON name, float32, int64 from a string) holds for every id and fails for another."""
    spec = target.load(write_target(tmp_path, SHOP_RPC, SHOP_PROTOS)).rpc
    with serve(answering("shop.Shop", "Echo", echo)) as port, channel_to(port) as channel:
        answers = {rpc_id: call(spec, channel, rpc_id) for rpc_id in (5, 12)}
    assert [spec.check_response(answer, i) for i, answer in answers.items()] == [None, None]
    assert spec.check_response(answers[12], 5) == "field id is '12', expected '5'"


def test_nested_fields_not_listed_are_not_checked_and_differences_name_the_path(tmp_path):
    text = SHOP_RPC.replace('item = { kind = 1, item_id = "i{rpc}" }\n', "")
    text = text.replace("[rpc.expect]\n", '[rpc.expect]\nitem = { kind = "GAME" }\n')
    spec = target.load(write_target(tmp_path, text, SHOP_PROTOS)).rpc
    assert spec.check_response(spec.request_bytes(3), 3) == (
        "field item.kind is 'BOOK', expected 'GAME'"
    )


# --------------------------------------------------------------------------- reflection


REFLECTED = GREETER_RPC.replace("[rpc.expect]", "reflection = true\n[rpc.expect]")


@pytest.mark.parametrize("version", ["v1alpha", "v1"])
def test_reflection_learns_the_types_from_the_running_server(tmp_path, version):
    spec = target.load(write_target(tmp_path, REFLECTED)).rpc
    assert spec.needs_resolve
    with serve(greeter_with_reflection(version)) as port, channel_to(port) as channel:
        spec.resolve(channel)
        assert not spec.needs_resolve
        spec.resolve(channel)  # known: a no-op
        answer = call(spec, channel, 9)
    assert spec.check_response(answer, 9) is None
    assert spec.check_response(answer, 10) == (
        "field message is 'Hello chaos 9', expected 'Hello chaos 10'"
    )


def test_a_server_without_reflection_is_named(tmp_path):
    spec = target.load(write_target(tmp_path, REFLECTED)).rpc
    with (
        greeter_server() as port,
        channel_to(port) as channel,
        pytest.raises(TargetError) as caught,
    ):
        spec.resolve(channel)
    assert str(caught.value) == (
        f"{tmp_path}/grpc-chaos.toml: rpc.reflection: the server does not serve the "
        "reflection service (grpc.reflection.v1 or v1alpha): enable it (e.g. "
        "grpcio-reflection, grpc-go's reflection.Register) or give rpc.protos instead"
    )
    assert spec.needs_resolve


@pytest.mark.parametrize(
    "method, message",
    [
        (
            "greeter.Greeting/SayHello",
            "rpc.method: service 'greeter.Greeting' is not served by the backend (did you mean "
            "'greeter.Greeter'?); it serves: greeter.Greeter, grpc.reflection.v1alpha.ServerReflection",
        ),
        (
            "greeter.Greeter/SayHi",
            "rpc.method: 'greeter.Greeter/SayHi' is not served by the backend (did you mean "
            "'greeter.Greeter/SayHello'?); methods there: greeter.Greeter/SayHello",
        ),
    ],
)
def test_a_method_the_server_does_not_serve_is_named(tmp_path, method, message):
    spec = target.load(
        write_target(tmp_path, REFLECTED.replace("greeter.Greeter/SayHello", method))
    ).rpc
    with (
        serve(greeter_with_reflection()) as port,
        channel_to(port) as channel,
        pytest.raises(TargetError) as caught,
    ):
        spec.resolve(channel)
    assert str(caught.value) == f"{tmp_path}/grpc-chaos.toml: {message}"


def test_request_and_expect_that_do_not_fit_are_found_at_resolve(tmp_path):
    text = REFLECTED.replace('name = "chaos {rpc}"', 'nme = "x"').replace(
        'message = "Hello', 'mesage = "Hello'
    )
    spec = target.load(write_target(tmp_path, text)).rpc
    with (
        serve(greeter_with_reflection()) as port,
        channel_to(port) as channel,
        pytest.raises(TargetError) as caught,
    ):
        spec.resolve(channel)
    assert [line.split(": ", 2)[1] for line in caught.value.problems] == [
        "rpc.request",
        "rpc.expect.mesage",
    ]
    assert 'has no field named "nme"' in caught.value.problems[0]
    assert spec.needs_resolve


def test_a_backend_that_does_not_answer_yet_is_a_grpc_error_to_retry(tmp_path):
    spec = target.load(write_target(tmp_path, REFLECTED)).rpc
    with serve(lambda server: None) as port:
        pass  # the port is free again: nothing listens there
    with channel_to(port) as channel, pytest.raises(grpc.RpcError) as caught:
        spec.resolve(channel, timeout_s=CALL_TIMEOUT_S)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_the_request_json_string_form_and_the_table_form_are_the_same(tmp_path):
    as_table = target.load(
        write_target(tmp_path, f'protos = ["{PROJECT_PROTO}"]\n' + GREETER_RPC)
    ).rpc
    request = json.dumps({"name": "chaos {rpc}"})
    as_json = target.load(
        write_target(
            tmp_path,
            f'protos = ["{PROJECT_PROTO}"]\n'
            f"request = '{request}'\n"
            + GREETER_RPC.replace('request = { name = "chaos {rpc}" }\n', ""),
        )
    ).rpc
    assert as_json.request_bytes(8) == as_table.request_bytes(8)


SHOP_FAST_AND_SLOW = [  # the same check: strings only (fast path), or with an enum (json_format)
    '[rpc.request]\nid = 5\nitem = { name = "book {rpc}" }\n'
    '[rpc.expect]\nitem = { name = "book {rpc}" }\n',
    '[rpc.request]\nid = "{rpc}"\nitem = { name = "book {rpc}" }\n'
    '[rpc.expect]\nitem = { name = "book {rpc}", kind = "KIND_UNSPECIFIED" }\n',
]


def test_string_only_templates_take_the_fast_path_with_the_same_results(tmp_path):
    header = (
        'method = "shop.Shop/Echo"\nprotos = ["protos/shop/order.proto"]\n'
        'import_paths = ["protos"]\n'
    )
    fast, slow = (
        target.load(write_target(tmp_path, header + text, SHOP_PROTOS)).rpc
        for text in SHOP_FAST_AND_SLOW
    )
    # Which path each takes (the fast one keeps the load generator's cost per RPC low).
    assert fast._request_slots is not None and fast._expectation.slots is not None
    assert slow._request_slots is None and slow._expectation.slots is None
    assert fast.request_bytes(5) == slow.request_bytes(5)
    for spec in (fast, slow):
        assert spec.check_response(spec.request_bytes(5), 5) is None
        assert spec.check_response(spec.request_bytes(5), 6) == (
            "field item.name is 'book 5', expected 'book 6'"
        )
        assert spec.check_response(b"", 6) == "field item.name is missing, expected 'book 6'"
