"""The proxy's lag log read as stalls: incremental, merged while the loop stays behind,
and weighed by the judge like the runner's own stalls (chaos/observe/proxy_lag.py)."""

from __future__ import annotations

from chaos.checks.verdict import Verdict
from chaos.observe.proxy_lag import LagLog
from chaos.observe.stall import StallMonitor
from chaos.observe.starvation import Stalls, StarvationMonitor
from chaos.verdicts.judge import judge

MS = 1_000_000


def test_lines_are_read_as_they_are_appended_and_a_partial_line_waits(tmp_path):
    path = tmp_path / "lag.log"
    log = LagLog(path, "toxiproxy (pid 7) event loop")
    assert log.stalls() == []  # no file yet: no late tick so far
    path.write_bytes(b"100000000 110000000\n200000000 2")
    assert [(s.start_ns, s.end_ns) for s in log.stalls()] == [(100 * MS, 110 * MS)]
    with open(path, "ab") as out:
        out.write(b"05000000\nnot a line\n")
    assert [(s.start_ns, s.end_ns) for s in log.stalls()] == [
        (100 * MS, 110 * MS),
        (200 * MS, 205 * MS),
    ]
    assert [s.who for s in log.stalls(150 * MS, None)] == ["toxiproxy (pid 7) event loop"]


def test_late_ticks_one_tick_apart_are_one_stall_and_a_gap_ends_it(tmp_path):
    path = tmp_path / "lag.log"
    # Ticks asked 5 ms apart that each came back late: the loop never caught up.
    lines = [(0, 60), (65, 130), (135, 200), (400, 420)]
    path.write_text("".join(f"{a * MS} {b * MS}\n" for a, b in lines))
    stalls = LagLog(path, "proxy").stalls()
    assert [(s.start_ns // MS, s.end_ns // MS) for s in stalls] == [(0, 200), (400, 420)]


def test_a_healthy_backends_rpc_that_missed_its_deadline_inside_a_proxy_stall_is_inconclusive(
    tmp_path,
):
    path = tmp_path / "lag.log"
    stalls = Stalls(StallMonitor(), StarvationMonitor())
    verdict = Verdict(
        "failed_attempts",
        False,
        figure=1,
        unit="attempts",
        bound=0,
        explanation="an attempt to b1 missed its 250 ms deadline",
        culprits=((0, 250 * MS),),
    )
    assert judge(verdict, stalls).outcome == "fail"  # nothing stalled: a red
    lag = LagLog(path, "toxiproxy (pid 7) event loop")
    stalls.add(lag)
    path.write_text("".join(f"{a * MS} {a * MS + 30 * MS}\n" for a in range(0, 240, 35)))
    judged = judge(verdict, stalls)
    assert judged.outcome == "inconclusive"
    assert "toxiproxy (pid 7) event loop stalled" in judged.data["stall_cause"]
    stalls.remove(lag)
    assert judge(verdict, stalls).outcome == "fail"
    path.unlink()  # the proxy's scratch folder is gone at the end of the session
    assert len(stalls.reported()) == 1  # one merged stall, still in the run's summary
