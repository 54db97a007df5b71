"""The target file (grpc-chaos.toml): every key, its default, and every problem's exact
line; placeholders; the built-in Greeter as a Target."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from chaos import targets as target
from chaos.targets import PLACEHOLDERS, TargetError
from chaos.verdicts.requirements import DEFAULTS

HELLO_PROTO = """syntax = "proto3";
package helloworld;
service Greeter {
  rpc SayHello (HelloRequest) returns (HelloReply);
  rpc Chat (stream HelloRequest) returns (stream HelloReply);
  rpc Lines (HelloRequest) returns (stream HelloReply);
}
message HelloRequest { string name = 1; int32 times = 2; }
message HelloReply { string message = 1; }
"""

MINIMAL = """
[server]
command = ["python3", "server.py", "--port", "{port}"]
[rpc]
method = "helloworld.Greeter/SayHello"
protos = ["protos/helloworld.proto"]
"""

FULL = """
[server]
command = ["python3", "server.py", "--port", "{port}", "--cert", "{cert}", "--key", "{key}",
           "--id", "{id}", "--control", "{control}", "--client-ca", "{client_ca}"]
env = { LOG_LEVEL = "info" }
cwd = "app"
ready = "health"
start_timeout_s = 7.5
stop_signal = "SIGINT"
stop_grace_s = 0
control = true
mtls = true

[rpc]
method = "helloworld.Greeter/SayHello"
request = '{"name": "chaos {rpc}", "times": 2}'
deadline_s = 0.5
protos = ["protos/helloworld.proto"]
import_paths = ["protos"]
[rpc.expect]
message = "Hello chaos {rpc}"

[health]
service = "helloworld.Greeter"

[identity]
header = "x-served-by"

[requirements]
failover_ms = 700
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory holding protos/helloworld.proto and app/, the current directory: files
    are loaded as "grpc-chaos.toml", so problem lines read exactly as a user sees them."""
    (tmp_path / "protos").mkdir()
    (tmp_path / "protos" / "helloworld.proto").write_text(HELLO_PROTO)
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(text: str) -> str:
    Path("grpc-chaos.toml").write_text(text)
    return "grpc-chaos.toml"


def problems(text: str) -> list[str]:
    with pytest.raises(TargetError) as caught:
        target.load(write(text))
    assert str(caught.value) == "\n".join(caught.value.problems)
    return list(caught.value.problems)


def edited(old: str, new: str, base: str = MINIMAL) -> str:
    assert old in base
    return base.replace(old, new)


# --------------------------------------------------------------------------- good files


def test_every_key_is_read(workdir):
    loaded = target.load(write(FULL))
    server, rpc = loaded.server, loaded.rpc
    assert (loaded.name, loaded.source, loaded.builtin) == (workdir.name, "grpc-chaos.toml", False)
    assert server.command[:4] == ("python3", "server.py", "--port", "{port}")
    assert dict(server.env) == {"LOG_LEVEL": "info"} and server.cwd == workdir / "app"
    assert (server.ready, server.start_timeout_s, server.stop_grace_s) == ("health", 7.5, 0)
    assert server.stop_signal is signal.SIGINT and server.control and server.mtls
    assert (rpc.method, rpc.path, rpc.service, rpc.method_name) == (
        "helloworld.Greeter/SayHello",
        "/helloworld.Greeter/SayHello",
        "helloworld.Greeter",
        "SayHello",
    )
    assert rpc.deadline_s == 0.5 and not rpc.reflection and not rpc.needs_resolve
    assert rpc.protos == (workdir / "protos" / "helloworld.proto",)
    assert rpc.import_paths == (workdir / "protos",)
    assert (loaded.health_service, loaded.identity_header) == ("helloworld.Greeter", "x-served-by")
    assert loaded.requirements.failover_ms == 700
    assert loaded.requirements.drain_ms == DEFAULTS.drain_ms
    assert loaded.requirements.source == "grpc-chaos.toml"
    assert loaded.capabilities == {"process", "control", "mtls"}
    assert loaded.missing("control") == "" and loaded.missing("mtls") == ""


def test_defaults(workdir):
    loaded = target.load(write(MINIMAL))
    server, rpc = loaded.server, loaded.rpc
    assert dict(server.env) == {} and server.cwd == workdir
    assert (server.ready, server.start_timeout_s, server.stop_grace_s) == ("rpc", 20, 10)
    assert server.stop_signal is signal.SIGTERM and not server.control and not server.mtls
    assert rpc.deadline_s == 2 and rpc.request == {} and rpc.expect is None
    assert rpc.import_paths == (workdir / "protos",)  # the files' directories
    assert (loaded.health_service, loaded.identity_header) == ("", "x-backend-id")
    assert loaded.requirements is None and loaded.capabilities == {"process"}


def test_an_empty_identity_header_means_the_server_says_nothing(workdir):
    assert target.load(write(MINIMAL + '[identity]\nheader = ""\n')).identity_header is None


def test_reflection_instead_of_protos_leaves_the_types_to_resolve(workdir):
    rpc = target.load(
        write(edited('protos = ["protos/helloworld.proto"]', "reflection = true"))
    ).rpc
    assert rpc.reflection and rpc.needs_resolve and rpc.protos == ()
    with pytest.raises(RuntimeError, match=r"call resolve\(channel\) first"):
        rpc.request_bytes(1)


def test_find_looks_for_grpc_chaos_toml(workdir):
    assert target.find(workdir) is None
    write(MINIMAL)
    assert target.find(workdir) == workdir / "grpc-chaos.toml"
    assert target.find() == Path("grpc-chaos.toml")


def test_the_missing_texts_say_what_and_how(workdir):
    loaded = target.load(write(MINIMAL))
    assert loaded.missing("process") == ""
    assert loaded.missing("control") == (
        "needs grpc-chaos's Control service (health flips, application faults, live "
        "certificate swap): serve proto/control.proto on {control} and set "
        "server.control = true"
    )
    assert loaded.missing("mtls") == (
        "needs a server that requires client certificates (mTLS): verify them against "
        "{client_ca} and set server.mtls = true"
    )
    with pytest.raises(ValueError, match="unknown capability 'identity'; known: process"):
        loaded.missing("identity")


def test_proto_compile_is_quick_and_leaves_no_file(workdir, monkeypatch):
    # A temporary directory of this test's own: other processes compile protos too.
    (workdir / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(workdir / "tmp"))
    started = time.perf_counter()
    target.load(write(MINIMAL))
    elapsed = time.perf_counter() - started
    print(f"\nload with one proto compiled: {elapsed * 1000:.0f} ms")
    # ~0.2 s here (a protoc child process); 10 s only catches a broken compile.
    assert elapsed < 10
    Path("protos/helloworld.proto").write_text(HELLO_PROTO.replace("string name", "strin name"))
    assert "does not compile" in problems(MINIMAL)[0]
    assert os.listdir(workdir / "tmp") == []


# --------------------------------------------------------------------------- placeholders


VALUES = {
    "host": "127.0.0.1",
    "port": 50051,
    "cert": "/p/b1.pem",
    "key": "/p/b1.key",
    "ca": "/p/ca.pem",
    "client_ca": "/p/client-ca.pem",
    "id": "b1",
    "workdir": "/w/b1",
    "control": "127.0.0.1:40000",
}


def test_argv_fills_every_placeholder_and_keeps_literal_braces(workdir):
    command = ", ".join(f'"{{{name}}}"' for name in PLACEHOLDERS)
    text = edited(
        'command = ["python3", "server.py", "--port", "{port}"]',
        f'command = ["python3", {command}, "--json={{{{\\"id\\": \\"{{id}}\\"}}}}"]'
        f"\ncontrol = true",
    )
    server = target.load(write(text)).server
    assert server.placeholders == set(PLACEHOLDERS)
    assert server.argv(VALUES) == [
        "python3",
        *(str(VALUES[n]) for n in PLACEHOLDERS),
        '--json={"id": "b1"}',
    ]


def test_argv_refuses_unknown_names_and_missing_values(workdir):
    server = target.load(write(MINIMAL)).server
    assert server.argv({**VALUES, "control": None}) == ["python3", "server.py", "--port", "50051"]
    with pytest.raises(ValueError, match=r"unknown placeholder values \['prot'\]"):
        server.argv({**VALUES, "prot": 1})
    with pytest.raises(ValueError, match=r"no value for placeholders \['port'\]"):
        server.argv({"host": "127.0.0.1"})


# --------------------------------------------------------------------------- the built-in Greeter


def test_builtin_is_the_fleets_greeter():
    greeter = target.builtin()
    assert greeter.builtin and greeter.source == "built-in Greeter"
    assert greeter.server.command == (
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
    )
    assert (greeter.server.ready, greeter.server.control, greeter.server.mtls) == (
        "line",
        True,
        False,
    )
    assert greeter.capabilities == {"process", "control"}
    assert (greeter.health_service, greeter.identity_header) == ("greeter.Greeter", "x-backend-id")
    assert greeter.rpc.method == "greeter.Greeter/SayHello"
    assert greeter.rpc.request == {"name": "r{rpc}"}
    assert greeter.rpc.expect == {"message": "Hello r{rpc}"}
    assert greeter.requirements is None


def test_builtin_with_mtls_passes_the_client_ca():
    greeter = target.builtin(mtls=True)
    assert greeter.server.command[-2:] == ("--client-ca", "{client_ca}")
    assert greeter.capabilities == {"process", "control", "mtls"}
    assert greeter.server.argv(VALUES)[-2:] == ["--client-ca", "/p/client-ca.pem"]


# --------------------------------------------------------------------------- problems


def test_a_missing_file_a_directory_and_bad_toml_are_named(workdir):
    with pytest.raises(TargetError) as caught:
        target.load("nope.toml")
    assert str(caught.value) == (
        "nope.toml: no such file (a target file is grpc-chaos.toml: "
        "[server] command + [rpc] method)"
    )
    with pytest.raises(TargetError) as caught:
        target.load("app")
    assert str(caught.value) == "app: is a directory; give the file in it (grpc-chaos.toml)"
    assert problems("[server\n") == [
        "grpc-chaos.toml: not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 8)"
    ]


def test_every_problem_is_listed_at_once(workdir):
    text = edited("[server]\ncommand", "[server]\ncomand")
    text = edited('method = "helloworld.Greeter/SayHello"', 'methd = "x"', text)
    assert problems(text + "[helth]\n") == [
        "grpc-chaos.toml: helth: unknown table (did you mean 'health'?); a target file has "
        "[server], [rpc], [health], [identity], [requirements], [client]",
        "grpc-chaos.toml: server.comand: unknown key (did you mean 'command'?)",
        'grpc-chaos.toml: server.command: missing (required): ["./server", "--port", '
        '"{port}"]: the argv of one backend',
        "grpc-chaos.toml: rpc.methd: unknown key (did you mean 'method'?)",
        "grpc-chaos.toml: rpc.method: missing (required): package.Service/Method, e.g. "
        "'helloworld.Greeter/SayHello'",
    ]


@pytest.mark.parametrize(
    "old, new, line",
    [
        (
            "[server]",
            "[servers]",
            "servers: unknown table (did you mean 'server'?); a target file has [server], [rpc], "
            "[health], [identity], [requirements], [client]",
        ),
        ("[rpc]", "[rpcs]", "rpc: missing (required table [rpc]: the method to call)"),
        (
            '"{port}"]',
            '"{port}"]\nstart_timeout_s = "soon"',
            "server.start_timeout_s: must be a number of seconds > 0, got 'soon'",
        ),
        (
            '"{port}"]',
            '"{port}"]\nstart_timeout_s = 0',
            "server.start_timeout_s: must be a number of seconds > 0, got 0",
        ),
        (
            '"{port}"]',
            '"{port}"]\nstop_grace_s = -1',
            "server.stop_grace_s: must be a number of seconds >= 0, got -1",
        ),
        (
            '"{port}"]',
            '"{port}"]\ncontrol = "yes"',
            "server.control: must be true or false, got 'yes'",
        ),
        ('"{port}"]', '"{port}"]\nmtls = 1', "server.mtls: must be true or false, got 1"),
        (
            '"{port}"]',
            '"{port}"]\nready = "helth"',
            "server.ready: must be 'health' or 'rpc' (did you mean 'health'?), got 'helth'",
        ),
        (
            '"{port}"]',
            '"{port}"]\nready = "line"',
            "server.ready: must be 'health' or 'rpc', got 'line'",
        ),
        (
            '"{port}"]',
            '"{port}"]\nstop_signal = "SIGTREM"',
            "server.stop_signal: 'SIGTREM' is not a signal name (did you mean 'SIGTERM'?), "
            "e.g. 'SIGTERM'",
        ),
        (
            '"{port}"]',
            '"{port}"]\nenv = { LEVEL = 3 }',
            "server.env.LEVEL: must be a string (quote it), got 3",
        ),
        ('"{port}"]', '"{port}"]\nenv = "A=1"', "server.env: must be a table, got 'A=1'"),
        (
            '"{port}"]',
            '"{port}"]\ncwd = "nowhere"',
            "server.cwd: 'nowhere' is not a directory (it is relative to the target file: "
            "{dir}/nowhere)",
        ),
        (
            'command = ["python3", "server.py", "--port", "{port}"]',
            "command = []",
            'server.command: must be a non-empty list of strings, e.g. ["./server", "--port", '
            '"{port}"]: the argv of one backend, got a list',
        ),
        (
            'command = ["python3", "server.py", "--port", "{port}"]',
            'command = "python3 server.py"',
            'server.command: must be a non-empty list of strings, e.g. ["./server", "--port", '
            "\"{port}\"]: the argv of one backend, got 'python3 server.py'",
        ),
        (
            '"{port}"]',
            '"{prot}"]',
            "server.command[3]: unknown placeholder {prot} (did you mean 'port'?); known: {host} "
            "{port} {cert} {key} {ca} {client_ca} {id} {workdir} {control}",
        ),
        (
            '"{port}"]',
            '"{port:d}"]',
            "server.command[3]: placeholder {port} takes no format or conversion: write {port}",
        ),
        (
            '"{port}"]',
            '"{port}", "{control}"]',
            "server.command[4]: {control} is given only to servers that serve grpc-chaos's Control "
            "service: set server.control = true, or remove it",
        ),
        (
            '"{port}"]',
            '"{port}", "a}b"]',
            "server.command[4]: 'a}b': Single '}' encountered in format string; write {{ or }} for "
            "a literal brace",
        ),
        (
            '"python3", "server.py"',
            '"no-such-server-xyz"',
            "server.command[0]: 'no-such-server-xyz' is not found on PATH; give its path (relative "
            "to server.cwd) or install it",
        ),
        (
            '"python3", "server.py"',
            '"./bin/server"',
            "server.command[0]: './bin/server' does not exist (looked for {dir}/bin/server)",
        ),
        (
            '"python3", "server.py"',
            '"protos/helloworld.proto"',
            "server.command[0]: 'protos/helloworld.proto' is not executable: chmod +x "
            "{dir}/protos/helloworld.proto",
        ),
        ('"python3", "server.py"', '""', "server.command[0]: the program is empty"),
        ("[rpc]", "[rpc]\ntimeout = 1", "rpc.timeout: unknown key"),
        (
            'method = "helloworld.Greeter/SayHello"',
            'method = "helloworld.Greeter.SayHello"',
            "rpc.method: 'helloworld.Greeter.SayHello' must be package.Service/Method, e.g. "
            "'helloworld.Greeter/SayHello'",
        ),
        (
            'method = "helloworld.Greeter/SayHello"',
            'method = "/helloworld.Greeter/SayHello"',
            "rpc.method: '/helloworld.Greeter/SayHello' must be package.Service/Method, e.g. "
            "'helloworld.Greeter/SayHello'",
        ),
        (
            "[rpc]",
            "[rpc]\ndeadline_s = true",
            "rpc.deadline_s: must be a number of seconds > 0, got true",
        ),
        (
            'protos = ["protos/helloworld.proto"]',
            "",
            "rpc: missing (required): protos = [the .proto files] or reflection = true (ask the "
            "server's reflection service)",
        ),
        (
            'protos = ["protos/helloworld.proto"]',
            "reflection = false",
            "rpc: missing (required): protos = [the .proto files] or reflection = true (ask the "
            "server's reflection service)",
        ),
        (
            'protos = ["protos/helloworld.proto"]',
            'protos = ["protos/helloworld.proto"]\nreflection = true',
            "rpc.reflection: give either protos or reflection = true, not both",
        ),
        (
            'protos = ["protos/helloworld.proto"]',
            'reflection = true\nimport_paths = ["protos"]',
            "rpc.import_paths: only goes with protos (reflection needs none)",
        ),
        (
            'protos = ["protos/helloworld.proto"]',
            'protos = ["protos/hello.proto"]',
            "rpc.protos[0]: 'protos/hello.proto': no such file (relative to the target file: "
            "{dir}/protos/hello.proto)",
        ),
        (
            'protos = ["protos/helloworld.proto"]',
            'protos = "protos/helloworld.proto"',
            "rpc.protos: must be a non-empty list of strings, e.g. ['protos/helloworld.proto'], "
            "got 'protos/helloworld.proto'",
        ),
        (
            "[rpc]",
            '[rpc]\nimport_paths = ["include"]',
            "rpc.import_paths[0]: 'include': no such directory (relative to the target file: "
            "{dir}/include)",
        ),
        (
            "[rpc]",
            "[rpc]\nrequest = '{\"name\": '",
            "rpc.request: is not valid JSON: Expecting value: line 1 column 10 (char 9)",
        ),
        (
            "[rpc]",
            "[rpc]\nrequest = '[1]'",
            "rpc.request: must be a JSON object (a message), got a list",
        ),
        (
            "[rpc]",
            "[rpc]\nrequest = 3",
            "rpc.request: must be a table or a JSON string of an object, got 3",
        ),
        (
            "[rpc]",
            "[rpc]\nrequest = { name = 1979-05-27 }",
            "rpc.request.name: TOML dates and times have no JSON form: write it as a string (e.g. "
            "'2026-01-02T03:04:05Z' for a google.protobuf.Timestamp)",
        ),
        ("[rpc]", "[health]\nservice = 1\n[rpc]", "health.service: must be a string, got 1"),
        ("[rpc]", "[health]\nname = 'x'\n[rpc]", "health.name: unknown key"),
        (
            "[rpc]",
            "[identity]\nheader = 'X-Backend-Id'\n[rpc]",
            "identity.header: 'X-Backend-Id' is not a gRPC metadata key: lowercase letters, digits, "
            "'-', '_', '.' (e.g. 'x-backend-id')",
        ),
        (
            "[rpc]",
            "[identity]\nheader = 'x-id-bin'\n[rpc]",
            "identity.header: 'x-id-bin' cannot name a backend: '-bin' keys carry bytes and 'grpc-' "
            "keys are gRPC's own",
        ),
        (
            "[rpc]",
            "[identity]\nheadr = 'x'\n[rpc]",
            "identity.headr: unknown key (did you mean 'header'?)",
        ),
        (
            "[rpc]",
            "[requirements]\nfailovr_ms = 5\n[rpc]",
            "requirements: unknown requirement 'failovr_ms'; did you mean 'failover_ms'?",
        ),
        (
            "[rpc]",
            "[requirements]\ndrain_ms = 'fast'\n[rpc]",
            "requirements: drain_ms must be a number of ms, got 'fast'",
        ),
        ("[server]", "server = 3\n[serverx]", "server: must be a table ([server]), not a value"),
    ],
)
def test_each_problem_is_one_line_naming_the_key(workdir, old, new, line):
    expected = f"grpc-chaos.toml: {line}".replace("{dir}", str(workdir))
    found = problems(edited(old, new))
    assert expected in found, "\n".join(found)


# Problems found once every key is right: against the compiled types.
@pytest.mark.parametrize(
    "old, new, line",
    [
        (
            'method = "helloworld.Greeter/SayHello"',
            'method = "helloworld.Greeter/SayHelo"',
            "rpc.method: 'helloworld.Greeter/SayHelo' is not in protos/helloworld.proto (did you "
            "mean 'helloworld.Greeter/SayHello'?); methods there: helloworld.Greeter/SayHello, "
            "helloworld.Greeter/Chat, helloworld.Greeter/Lines",
        ),
        (
            'method = "helloworld.Greeter/SayHello"',
            'method = "hello.Greeter/SayHello"',
            "rpc.method: 'hello.Greeter/SayHello' is not in protos/helloworld.proto (did you mean "
            "'helloworld.Greeter/SayHello'?); methods there: helloworld.Greeter/SayHello, "
            "helloworld.Greeter/Chat, helloworld.Greeter/Lines",
        ),
        (
            'method = "helloworld.Greeter/SayHello"',
            'method = "helloworld.Greeter/Chat"',
            "rpc.method: 'helloworld.Greeter/Chat' is bidirectional streaming; grpc-chaos calls "
            "unary methods only (one request, one response)",
        ),
        (
            'method = "helloworld.Greeter/SayHello"',
            'method = "helloworld.Greeter/Lines"',
            "rpc.method: 'helloworld.Greeter/Lines' is server streaming; grpc-chaos calls unary "
            "methods only (one request, one response)",
        ),
        (
            "[rpc]",
            "[rpc]\nrequest = { nam = 'x' }",
            "rpc.request: does not fit helloworld.HelloRequest: Message type "
            '"helloworld.HelloRequest" has no field named "nam" at "HelloRequest". Available '
            "Fields(except extensions): \"['name', 'times']\"",
        ),
        (
            "[rpc]",
            "[rpc]\nrequest = { times = 'many {rpc}' }",
            "rpc.request: does not fit helloworld.HelloRequest: Failed to parse times field: "
            'Couldn\'t parse integer: "many 0" at HelloRequest.times.',
        ),
        (
            "[rpc]",
            "[rpc]\nexpect = { mesage = 'x' }",
            "rpc.expect.mesage: is not a field of helloworld.HelloReply (did you mean 'message'?); "
            "its fields: message",
        ),
        (
            "[rpc]",
            "[rpc]\nexpect = { message = 3 }",
            "rpc.expect: does not fit helloworld.HelloReply: Failed to parse message field: "
            "expected string or bytes-like object, got 'int'.",
        ),
        (
            "[rpc]",
            '[rpc]\nexpect = \'{"message": {"text": "x"}}\'',
            "rpc.expect: does not fit helloworld.HelloReply: Failed to parse message field: "
            "expected string or bytes-like object, got 'dict'.",
        ),
    ],
)
def test_method_request_and_expect_are_checked_against_the_protos(workdir, old, new, line):
    assert problems(edited(old, new)) == [f"grpc-chaos.toml: {line}"]


def test_request_and_expect_problems_are_listed_together(workdir):
    text = edited("[rpc]", "[rpc]\nrequest = { nam = 'x' }\nexpect = { mesage = 'x' }")
    assert [p.split(": ", 2)[1] for p in problems(text)] == ["rpc.request", "rpc.expect.mesage"]


def test_a_proto_that_does_not_compile_gives_protocs_first_error(workdir):
    Path("protos/helloworld.proto").write_text(
        HELLO_PROTO.replace("string name = 1;", "strin name = 1;")
    )
    assert problems(MINIMAL) == [
        "grpc-chaos.toml: rpc.protos: does not compile: protos/helloworld.proto:8:24: "
        '"strin" is not defined.'
    ]


def test_a_missing_import_is_protocs_error_too(workdir):
    Path("protos/helloworld.proto").write_text(
        HELLO_PROTO.replace("package helloworld;", 'package helloworld;\nimport "common.proto";')
    )
    assert problems(MINIMAL)[0].startswith(
        "grpc-chaos.toml: rpc.protos: does not compile: common.proto: File not found."
    )


def test_well_known_types_and_import_paths_compile(workdir):
    (workdir / "protos" / "shared").mkdir()
    (workdir / "protos" / "shared" / "stamp.proto").write_text(
        'syntax = "proto3";\npackage shared;\nimport "google/protobuf/timestamp.proto";\n'
        "message Stamp { google.protobuf.Timestamp at = 1; }\n"
    )
    Path("protos/helloworld.proto").write_text(
        HELLO_PROTO.replace(
            "package helloworld;", 'package helloworld;\nimport "shared/stamp.proto";'
        ).replace("int32 times = 2;", "int32 times = 2; shared.Stamp stamp = 3;")
    )
    text = edited(
        "[rpc]",
        "[rpc]\nimport_paths = ['protos']\nrequest = { stamp = { at = '2026-01-02T03:04:05Z' } }",
    )
    rpc = target.load(write(text)).rpc
    assert b"\x08" in rpc.request_bytes(0)  # Timestamp.seconds is field 1, a varint


def test_a_client_table_names_the_teams_driver(workdir):
    driver = workdir / "app" / "driver"
    driver.write_text("#!/bin/sh\n")
    driver.chmod(0o755)
    text = edited(
        "[server]", '[client]\ncommand = ["./app/driver", "--tls"]\nenv = { A = "1" }\n\n[server]'
    )
    loaded = target.load(write(text))
    assert loaded.client is not None
    assert loaded.client.command == ("./app/driver", "--tls")
    assert loaded.client.cwd == workdir and loaded.client.env == {"A": "1"}
    from chaos.clients import builtin

    command = builtin.resolve(None, loaded)
    assert command is not None and command.argv == ["./app/driver", "--tls"]
    assert command.cwd == str(workdir) and command.name == "driver"
    assert builtin.resolve("inprocess", loaded) is None  # the command line wins


def test_client_table_problems_name_their_key(workdir):
    text = edited("[server]", '[client]\ncommand = ["./app/nodriver"]\nenv = { A = 1 }\n\n[server]')
    assert problems(text) == [
        "grpc-chaos.toml: client.env.A: must be a string (quote it), got 1",
    ]
    text = edited("[server]", '[client]\ncommand = ["./app/nodriver"]\n\n[server]')
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(
        "grpc-chaos.toml: client.command[0]: './app/nodriver' does not exist"
    )
