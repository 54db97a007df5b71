"""The client's spread is observed from its RPCs, never read from its config."""

from chaos.history import Rpc
from chaos.observe.client_shape import SINGLE_MIN_RPCS, SINGLE_MIN_S, observe

S = 1_000_000_000


def _rpcs(backends, every_ns=1_000_000, start=0):
    return [
        Rpc(i, start + i * every_ns, start + i * every_ns + 1000, b, "OK")
        for i, b in enumerate(backends)
    ]


def test_every_backend_answering_is_a_spread():
    shape = observe(_rpcs(["b1", "b2", "b3"]), 0, {"b1", "b2", "b3"}, now_ns=S)
    assert shape.spreads and shape.counts == (("b1", 1), ("b2", 1), ("b3", 1))


def test_one_backend_for_long_enough_is_a_client_that_does_not_spread():
    rpcs = _rpcs(["b1"] * SINGLE_MIN_RPCS, every_ns=int(SINGLE_MIN_S * S / SINGLE_MIN_RPCS) + 1)
    shape = observe(rpcs, 0, {"b1", "b2", "b3"}, now_ns=int(SINGLE_MIN_S * S) + 2 * S)
    assert shape is not None and not shape.spreads
    assert "sends every RPC to one backend" in shape.describe() and "b1" in shape.describe()


def test_undecided_while_too_few_rpcs_or_too_little_time():
    assert observe(_rpcs(["b1"] * 5), 0, {"b1", "b2"}, now_ns=10 * S) is None
    many = _rpcs(["b1"] * (SINGLE_MIN_RPCS * 2))  # all within 0.2 s
    assert observe(many, 0, {"b1", "b2"}, now_ns=int(0.2 * S)) is None
    assert observe(_rpcs(["b1", "b2"] * 20), 0, {"b1", "b2", "b3"}, now_ns=10 * S) is None


def test_two_backends_of_three_for_long_enough_is_a_spread_with_one_backend_broken():
    shape = observe(_rpcs(["b1", "b2"] * 100), 0, {"b1", "b2", "b3"}, now_ns=10 * S)
    assert shape.spreads and shape.counts == (("b1", 100), ("b2", 100))


def test_failed_rpcs_and_rpcs_before_the_start_do_not_count():
    rpcs = [Rpc(1, 0, 1, "b2", "OK"), Rpc(2, 10, 11, "b3", "UNAVAILABLE")] + _rpcs(
        ["b1"], start=100
    )
    assert observe(rpcs, 50, {"b1", "b2", "b3"}, now_ns=S) is None
