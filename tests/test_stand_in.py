"""The stand-in for a dead backend closes every connection and notes when it came."""

import socket
import time

import pytest

from fleet.stand_in import StandIn


def test_each_connection_is_noted_and_closed_at_once():
    with StandIn() as stand_in:
        host, port = stand_in.address.split(":")
        before = time.monotonic_ns()
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=5) as conn:
                conn.settimeout(5)
                assert conn.recv(1) == b""  # closed by the stand-in without a byte
        arrivals = stand_in.arrivals
        assert len(arrivals) == 3 and all(t >= before for t in arrivals)
        assert stand_in.wait_for_arrival(before, timeout=1) == arrivals[0]
        with pytest.raises(TimeoutError, match="no connection attempt"):
            stand_in.wait_for_arrival(time.monotonic_ns(), timeout=0.05)
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1)


def test_only_loopback():
    with pytest.raises(ValueError, match="not loopback"):
        StandIn("10.0.0.1")
