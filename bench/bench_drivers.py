"""What each client driver records, against the in-process client: RPC/s and start time.

    .venv/bin/python bench/bench_drivers.py [--drivers inprocess,python,go,node]
                                            [--concurrency 16] [--seconds 5]

A 3-backend Greeter fleet (direct, no proxy: the figure is the client's and the driver
protocol's, not Toxiproxy's), round_robin, a closed loop of ``--concurrency`` RPCs in
flight. For each driver: how long it takes from its command to answering Describe (the
protocol promises 2 s), then RPCs recorded in the history per second over ``--seconds``
after a warm-up (every record crossed the protocol, had its answer checked and was placed
in the history, as in a scenario). ``inprocess`` is grpc-chaos's own grpcio client, the
baseline.

Everything runs on this machine: client, driver and backends share its two cores, so the
figures are what a scenario's load can reach here, not what the implementation can.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.clients import builtin  # noqa: E402
from chaos.clients.driver import Driver, DriverError  # noqa: E402
from chaos.clients.remote import RemoteLoad  # noqa: E402
from chaos.history import History  # noqa: E402
from chaos.load import Load  # noqa: E402
from fleet import client  # noqa: E402
from fleet.controller import Fleet  # noqa: E402
from fleet.protos import driver_pb2  # noqa: E402

WARM_RPCS = 500
NET = "127.0.230.0/24"


def measure(load: Load, history: History, seconds: float) -> float:
    """RPCs recorded per second over ``seconds``, after WARM_RPCS."""
    with load:
        load.wait_for(WARM_RPCS, timeout=60)
        before, started = load.completed, time.monotonic()
        load.wait_until(
            lambda: time.monotonic() - started >= seconds, seconds + 30, f"{seconds} s of load"
        )
        done, elapsed = load.completed - before, time.monotonic() - started
    return done / elapsed


def run(name: str, fleet: Fleet, concurrency: int, seconds: float) -> str:
    history = History()
    info = fleet.info()
    if name == "inprocess":
        load = Load(
            lambda: client.channel(info, service_config=client.ROUND_ROBIN, aio=True),
            history,
            concurrency=concurrency,
        )
        return f"{name:10} {'-':>10} {measure(load, history, seconds):10.0f}"
    command = builtin.resolve(name)
    assert command is not None
    started = time.monotonic()
    with Driver(command.argv, command.name, env=command.env) as driver:
        start_s = time.monotonic() - started
        config = driver_pb2.ChannelConfig(
            target=info["target"],
            ca_file=info["ca"],
            service_config_json='{"loadBalancingConfig": [{"round_robin": {}}]}',
        )
        remote = RemoteLoad(lambda: driver.open_channel(config), history, concurrency=concurrency)
        rate = measure(remote, history, seconds)
        return f"{name:10} {start_s:9.2f}s {rate:10.0f}   {driver.describe}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drivers", default="inprocess," + ",".join(builtin.NAMES))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(f"{'client':10} {'start':>10} {'RPC/s':>10}   ({args.concurrency} in flight)")
    with Fleet(3, net=NET) as fleet:
        for name in args.drivers.split(","):
            try:
                print(run(name, fleet, args.concurrency, args.seconds), flush=True)
            except DriverError as err:
                print(f"{name:10} not measured: {err}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
