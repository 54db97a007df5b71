"""gRPC's own service-config parser as the authority, reached through a real channel.

A grpcio channel created with an invalid ``grpc.service_config`` fails its first RPC at
once with INVALID_ARGUMENT, and the details carry gRPC's reasons::

    Failed to create channel to 'ipv4:127.0.0.1:P':errors validating service config:
    [field:loadBalancingConfig error:No known policies in list: nope]

A valid config gets as far as connecting, which a port that refuses ends at once
(UNAVAILABLE ... Connection refused). So each config is probed by one RPC, in a
short-lived child process (``sys.executable``; GRPC_VERBOSITY=NONE keeps gRPC's own log
lines off the terminal; one child probes a whole batch):

    parent --configs (JSON, stdin)--> child: bind 127.0.0.1:0 without listening (the port
                                      refuses), one channel + one RPC per config
    parent <--code, details (stdout)-- child

gRPC's reasons become Problems in gRPC's exact words, with the field path gRPC names
(nested load-balancing errors are placed on the policy gRPC chose). A config that parses
but fails its first RPC for another reason than connecting (INTERNAL "hash attribute not
present", UNAVAILABLE "empty address list") is a problem too: every RPC would fail.
Only loopback is ever dialled. Answers are cached per config for the process's life.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.profiles import lb_policies
from chaos.profiles.problems import GRPC, WARNING, Problem, index_path, key_path

# One RPC to a refusing loopback port ends in milliseconds; invalid configs fail before
# any connection. The deadline bounds anything unforeseen that makes a call wait.
PROBE_RPC_TIMEOUT_S = 3.0
# The child starts Python and imports grpc (~0.2 s on an idle machine); the margin is for
# a busy 2-core machine.
PROBE_PROCESS_TIMEOUT_S = 30.0
_PREFIX = re.compile(r"^Failed to create channel to '[^']*':")
_HEADER = "errors validating service config: "
_NESTED = re.compile(r"errors validating (\S+) LB policy config: (\[.*\])\Z", re.S)
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_cache: dict[str, list[Problem]] = {}


def check(service_config: Any, path: str = "service_config") -> list[Problem]:
    """The problems gRPC's own parser finds in one service config (None: none)."""
    return check_many([service_config], path)[0]


def check_many(configs: Sequence[Any], path: str = "service_config") -> list[list[Problem]]:
    """The problems gRPC finds in each config, probing all uncached ones in one child."""
    texts = [json.dumps(c) if isinstance(c, dict) else None for c in configs]
    todo = sorted({t for t in texts if t is not None and t not in _cache})
    if todo:
        for text, answer in zip(todo, _probe(todo), strict=False):
            _cache[text] = _problems(answer, json.loads(text), path)
    return [_cache[t] if t is not None else [] for t in texts]


def _probe(texts: list[str]) -> list[dict]:
    env = dict(
        os.environ,
        GRPC_VERBOSITY="NONE",
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
    )
    code = "from chaos.profiles.grpc_parser import probe_main; probe_main()"
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            env=env,
            timeout=PROBE_PROCESS_TIMEOUT_S,
        )
        answers = json.loads(result.stdout) if result.returncode == 0 else None
    except subprocess.TimeoutExpired:
        answers, result = None, None
    if isinstance(answers, list) and len(answers) == len(texts):
        return answers
    last_line = (result.stderr.strip().splitlines() or [""])[-1] if result else ""
    reason = (
        f"no answer within {PROBE_PROCESS_TIMEOUT_S:g} s"
        if result is None
        else f"exit {result.returncode}: {last_line}"
    )
    return [{"failed": reason}] * len(texts)


def probe_main() -> None:
    """The child: read config texts (JSON list) on stdin, write one answer per config."""
    import grpc

    texts = json.load(sys.stdin)
    refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        target = f"ipv4:127.0.0.1:{refusing.getsockname()[1]}"
        answers = [_probe_one(grpc, target, text) for text in texts]
    finally:
        refusing.close()
    json.dump(answers, sys.stdout)


def _probe_one(grpc, target: str, text: str) -> dict:
    # Retries off: gRPC still parses every retry setting (measured), and a config's
    # retries cannot hold the probe RPC for seconds of backoff.
    options = [
        ("grpc.service_config", text),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_retries", 0),
    ]
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.unary_unary("/grpc_chaos.ProfileCheck/Probe")
        try:
            # wait_for_ready=False overrides a config's waitForReady: fail at the refusal.
            call(b"", timeout=PROBE_RPC_TIMEOUT_S, wait_for_ready=False)
        except grpc.RpcError as error:
            return {"code": error.code().name, "details": error.details() or ""}
    return {"code": "OK", "details": ""}


def _problems(answer: dict, config: dict, path: str) -> list[Problem]:
    if "failed" in answer:
        return [
            Problem(
                path,
                f"gRPC's own parser could not be run ({answer['failed']}): "
                f"only the schema was checked",
                WARNING,
                GRPC,
            )
        ]
    code, details = answer["code"], _PREFIX.sub("", answer["details"])
    if code == "INVALID_ARGUMENT" and details.startswith(_HEADER):
        items = _split(details[len(_HEADER) :])
        if items is not None:
            return _flatten(items, path, config)
    if (
        code == "INVALID_ARGUMENT"
        or code == "INTERNAL"
        or (code == "UNAVAILABLE" and "connect" not in details.lower())
    ):
        return [Problem(path, f"gRPC: every RPC fails {code}: {details}", source=GRPC)]
    return []


def _split(text: str) -> list[tuple[str, str]] | None:
    """``[field:a error:x; field:b error:y]`` -> [(a, x), (b, y)]; brackets nest."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    parts, depth, start = [], 0, 1
    for i, char in enumerate(text[1:-1], start=1):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0 and text.startswith("; field:", i):
            parts.append(text[start:i])
            start = i + 2
    parts.append(text[start:-1])
    items = []
    for part in parts:
        field, separator, error = part.partition(" error:")
        if not field.startswith("field:") or not separator:
            return None
        items.append((field[len("field:") :], error))
    return items


def _flatten(items: list[tuple[str, str]], path: str, node: Any) -> list[Problem]:
    problems = []
    for field, error in items:
        here = path + "".join("." + _camel(part) for part in field.split(".") if part)
        nested = _NESTED.match(error)
        chosen = lb_policies.chosen_index(node.get(field)) if isinstance(node, dict) else None
        inner = _split(nested.group(2)) if nested else None
        if inner is not None and chosen is not None:
            name, config = next(iter(node[field][chosen].items()))
            problems += _flatten(inner, key_path(index_path(here, chosen), name), config)
        else:
            problems.append(Problem(here, f"gRPC: {error}", source=GRPC))
    return problems


def _camel(part: str) -> str:
    """gRPC names some nested fields in snake case (outlier detection's
    ``max_ejection_percent``); the JSON names are camelCase."""
    head, bracket, rest = part.partition("[")
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), head) + bracket + rest
