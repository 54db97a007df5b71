"""Requirements: the time bounds and budgets a client (and its fleet) must meet.

Bounds are requirements, never echoes of the profile under test: a profile is *judged*
against them, so a bad setting fails instead of stretching its own bound (a bound of "the
profile's max reconnect backoff x 1.2" passes a profile with gRPC's 120 s default). Each
has a documented default — what a production fleet on one network should expect, with
the margin a busy 2-core machine needs — and a team sets its own SLOs in a file::

    # my-slo.toml  (pytest scenarios/ --chaos-requirements my-slo.toml)
    [requirements]
    failover_ms = 500
    recovery_ms = 3000

(a ``[requirements]`` table in a TOML file, or the same keys in a JSON object). Unknown
keys and values of the wrong type are errors that name the key.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


class RequirementsError(ValueError):
    """A requirements file that cannot be used; the message names the file and the key."""


class FloatBound(float):
    """A requirement's value that knows which requirement it is: given to a check as its
    bound, the verdict's bound still says where it comes from (Scenario.expect names it in
    a failure, so no scenario writes a bound's name twice). Arithmetic gives a plain
    number: a value derived from a requirement is not the requirement."""

    requirement: str

    def __new__(cls, value: float, requirement: str) -> FloatBound:
        bound = super().__new__(cls, value)
        bound.requirement = requirement
        return bound

    def __reduce__(self):  # copies (dataclasses.asdict) keep the name
        return (type(self), (float(self), self.requirement))


class IntBound(int):
    """As :class:`FloatBound`, for a count (error_budget)."""

    requirement: str

    def __new__(cls, value: int, requirement: str) -> IntBound:
        bound = super().__new__(cls, value)
        bound.requirement = requirement
        return bound

    def __reduce__(self):
        return (type(self), (int(self), self.requirement))


def requirement_of(bound: object) -> str | None:
    """The requirement a check's bound is, when it was given as one (else None)."""
    return getattr(bound, "requirement", None)


@dataclass(frozen=True)
class Requirements:
    """Every bound the scenarios hold a client to. Defaults are documented per field in
    DOCS (what it bounds, why the default); ``source`` says where the values came from.
    Each value reads as a FloatBound or IntBound that carries its requirement's name."""

    failover_ms: float = 1000
    drain_ms: float = 50
    recovery_ms: float = 2000
    long_outage_s: float = 4
    hang_detection_ms: float = 2500
    ejection_ms: float = 1500
    readmission_ms: float = 6000
    fail_fast_ms: float = 1000
    dns_reresolution_ms: float = 1500
    dns_apply_ms: float = 250
    dns_join_ms: float = 2000
    healthy_latency_ms: float = 100
    min_share: float = 0.5
    error_budget: int = 0
    source: str = "defaults"

    def __getattribute__(self, name: str):
        value = object.__getattribute__(self, name)
        if name.startswith("_") or name == "source" or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return IntBound(value, name)
        if isinstance(value, float):
            return FloatBound(value, name)
        return value

    def describe(self, name: str) -> str:
        """E.g. "failover_ms = 1000 ms (grpc-chaos default)"."""
        value = getattr(self, name)
        unit = UNITS.get(name, "")
        origin = (
            "grpc-chaos default" if value == getattr(DEFAULTS, name) else f"set in {self.source}"
        )
        return f"{name} = {value:g}{' ' + unit if unit else ''} ({origin})"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


UNITS = {
    f.name: (
        "rpcs"
        if f.name == "error_budget"
        else "s"
        if f.name.endswith("_s")
        else "of an even share"
        if f.name == "min_share"
        else "ms"
    )
    for f in fields(Requirements)
    if f.name != "source"
}

DOCS = {
    "failover_ms": "From a backend fault in force (killed, connection reset or cut, proxy "
    "down) until every RPC succeeds on the other backends. A broken "
    "connection is seen at once and a retry takes 10-20 ms; the rest is margin.",
    "drain_ms": "From a backend's health going NOT_SERVING (the server confirmed it) until "
    "no new RPC starts on it. Health checking streams the change: a few ms.",
    "recovery_ms": "From a backend (or the whole fleet) being back — restarted, fault removed "
    "— until it serves again, also after an outage of long_outage_s. A "
    "reconnect backoff capped at 1 s gets there in ~1.2 s; gRPC's default "
    "(growing to 120 s) does not.",
    "long_outage_s": "How long the long-outage scenario keeps a backend down before it must "
    "recover within recovery_ms: long enough for gRPC's default reconnect "
    "backoff to grow past recovery_ms (1 s x 1.6^n, +-20 %).",
    "hang_detection_ms": "A backend that hangs (accepts bytes, answers nothing) is out, and "
    "every RPC stuck on it answered elsewhere, within this long — also "
    "when the client was idle when it hung. Keepalive pings at least 1 s "
    "apart + a 500 ms ping timeout = 1.5 s at worst; 1 s of margin.",
    "ejection_ms": "A backend that fails every call (while its health says SERVING) gets no "
    "more calls — no first attempt, no retry — within this long. Outlier "
    "detection ejects at the end of a 0.5 s interval; two intervals + margin.",
    "readmission_ms": "A backend ejected for failing calls (outlier detection) serves again "
    "within this long of recovering. Each ejection lasts baseEjectionTime x "
    "the ejections so far, capped at maxEjectionTime: capped at 5 s, + one "
    "0.5 s interval, + margin. gRPC's defaults (30 s, capped at 300 s) keep "
    "a recovered backend out for 30 s or more.",
    "fail_fast_ms": "When no backend can serve (all down, unhealthy, untrusted), every RPC "
    "fails within this long instead of waiting for its deadline.",
    "dns_reresolution_ms": "After a broken connection the client asks DNS again within this "
    "long (gRPC re-resolves at most once per "
    "grpc.dns_min_time_between_resolutions_ms, 30 s by default).",
    "dns_apply_ms": "From the DNS answer that drops an address until no RPC starts on it.",
    "dns_join_ms": "A backend added to DNS gets traffic within this long when servers set a "
    "max connection age (500 ms in the DNS scenarios).",
    "healthy_latency_ms": "Tail latency (p90) of the healthy backends while another backend "
    "is slowed: ~30x their loopback p90, far below the injected delays.",
    "min_share": "A backend added to a fleet whose servers age connections out gets at "
    "least this fraction of an even share (1/N of the RPCs) once it serves. "
    "round_robin gives every READY backend the same share, but a connection "
    "aged out costs its backend the picks made while it reconnects (measured: "
    "0.78 of an even share at load average 8.7); a client that never spreads "
    "to it gets 0.",
    "error_budget": "Client-visible failed RPCs allowed in a scenario whose fault a correct "
    "client hides completely (retries, health checking, keepalive).",
}

DEFAULTS = Requirements()


def load(path: str | Path) -> Requirements:
    """Requirements from a TOML (``[requirements]`` table, or top-level keys) or JSON file;
    keys not given keep their defaults."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RequirementsError(f"requirements {path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise RequirementsError(f"requirements {path}: not valid {kind}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("requirements"), dict):
        data = data["requirements"]
    return parse(data, source=str(path))


def parse(data: Any, source: str = "<data>") -> Requirements:
    """Validate a mapping of requirement names to values; every problem is named."""
    if not isinstance(data, dict):
        raise RequirementsError(f"requirements {source}: expected a table of names to values")
    problems = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in UNITS:
            near = difflib.get_close_matches(str(key), UNITS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(UNITS)}"
            problems.append(f"unknown requirement {key!r}{hint}")
            continue
        wanted_int = key == "error_budget"
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (wanted_int and not isinstance(value, int))
        ):
            problems.append(
                f"{key} must be {'a whole number' if wanted_int else 'a number'} "
                f"of {UNITS[key]}, got {value!r}"
            )
        elif not math.isfinite(value) or value < 0:
            problems.append(f"{key} must be a finite number >= 0, got {value!r}")
        else:
            values[key] = value
    if problems:
        raise RequirementsError(f"requirements {source}: " + "; ".join(problems))
    return replace(DEFAULTS, **values, source=source)
