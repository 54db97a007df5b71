"""Checks: pure functions of a history (RPCs and events) that return a Verdict.

    History (or a list of Rpc/Event) + parameters --> check --> Verdict(passed, figure, bound, explanation)

Rules every check keeps:
- it never sleeps, never writes, and never changes the history;
- times are ns on the history's clock, bounds are in ms;
- windows select RPCs by *start*, [start_ns, end_ns), None leaving a side open;
- it never raises on empty input: too little evidence (an idle window, no load after a
  fault was cleared, fewer RPCs than the rule needs) is a *not judged* verdict that says
  what was missing — never a pass, never a fail — unless a parameter (min_rpcs=0,
  min_rounds=0) says an empty window is acceptable;
- a failed verdict's headline states what broke the bound: a figure on the wrong side of
  it, or in words (``shown``) when no number can ("never within the 7.0 s observed");
- the explanation says what was measured and why it passed or failed, and ends with
  the timeline around the decisive point (History.timeline).

One module per family: failover (failover_time, recovery_time), drain (drain_time,
no_traffic_to), errors (errors, error_rate), balance (balance_exact, balance_chi2, share),
latency (latency, percentiles), reasons (failure_reason: the code and the cause in each
implementation's words), attempts (ejection_time, from gRPC's per-backend
attempt counters), staging (a situation the client never let a scenario reach).
"""

from chaos.checks.attempts import attempts, ejection_time
from chaos.checks.balance import balance_chi2, balance_exact, share
from chaos.checks.chi2 import chi2_sf
from chaos.checks.drain import drain_time, no_traffic_to
from chaos.checks.errors import error_rate, errors
from chaos.checks.failover import failover_time, recovery_time
from chaos.checks.latency import latency, percentiles
from chaos.checks.reasons import failure_reason
from chaos.checks.shutdown import shutdown_notice
from chaos.checks.staging import staging
from chaos.checks.verdict import Verdict

__all__ = [
    "Verdict",
    "attempts",
    "balance_chi2",
    "balance_exact",
    "chi2_sf",
    "drain_time",
    "ejection_time",
    "error_rate",
    "errors",
    "failover_time",
    "failure_reason",
    "latency",
    "no_traffic_to",
    "percentiles",
    "recovery_time",
    "share",
    "shutdown_notice",
    "staging",
]
