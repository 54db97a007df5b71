"""failure_reason: every RPC failed with the expected code, and its message says why.

A failure an operator can act on names its cause ("certificate has expired", "could not
contact DNS servers"). Each gRPC implementation words a cause its own way — grpcio says
what BoringSSL says, grpc-go what Go's crypto/x509 and net packages say, grpc-js what
Node's OpenSSL says — so a reason is given as its known wordings, one per implementation,
and a message holding any of them names it. A message holding none fails: the cause is
lost (or the wording of an implementation not listed yet, which the explanation shows in
full so it can be added).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chaos.checks.selection import describe_rpc
from chaos.checks.verdict import Verdict, explain, not_judged
from chaos.history import History, Rpc


def failure_reason(
    history: History,
    rpcs: Sequence[Rpc],
    code: str,
    wordings: Mapping[str, str],
    *,
    origin_ns: int | None = None,
    origin_name: str = "the window start",
    min_rpcs: int = 1,
) -> Verdict:
    """Every one of ``rpcs`` failed with ``code`` and a message holding one of
    ``wordings`` (implementation -> how it words the cause; {} when only the code is held).
    figure = the RPCs that did not (bound 0); fewer than ``min_rpcs``: not judged."""
    named = " or ".join(f'"{w}" ({impl})' for impl, w in wordings.items())

    def holds(rpc: Rpc) -> bool:
        return rpc.code == code and (
            not wordings or any(w in rpc.details for w in wordings.values())
        )

    wrong = [r for r in rpcs if not holds(r)]
    origin = origin_ns if origin_ns is not None else (rpcs[0].start_ns if rpcs else history.now())
    what = f"{code} naming {named}" if wordings else code
    if len(rpcs) < min_rpcs:
        return not_judged(
            "failure_reason",
            f"{len(rpcs)} RPCs, {min_rpcs} needed",
            f"Too few RPCs to judge whether failures say {what}.",
            unit="rpcs",
            bound=0,
        )
    paragraph = f"{len(rpcs) - len(wrong)} of the {len(rpcs)} RPCs failed with {what}"
    if wrong:
        paragraph += "; not so: " + "; ".join(
            describe_rpc(r, origin, origin_name) for r in wrong[:3]
        )
    return Verdict(
        "failure_reason",
        not wrong,
        len(wrong),
        "rpcs",
        0,
        explain(paragraph + ".", history, wrong[0].start_ns if wrong else origin,
                [r.id for r in wrong[:3]]),
        culprits=tuple((r.start_ns, r.end_ns) for r in wrong),
    )  # fmt: skip
