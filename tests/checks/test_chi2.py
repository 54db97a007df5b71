"""The chi-square survival function against printed tables and closed forms."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.checks.chi2 import chi2_sf, regularized_gamma_q

# (df, critical value, upper-tail p) from the standard table (NIST/SEMATECH e-Handbook 1.3.6.7.4).
TABLE = [
    (1, 3.841, 0.05), (1, 6.635, 0.01), (1, 10.828, 0.001),
    (2, 5.991, 0.05), (2, 9.210, 0.01), (2, 13.816, 0.001),
    (3, 7.815, 0.05), (3, 11.345, 0.01), (3, 16.266, 0.001),
    (5, 11.070, 0.05), (5, 15.086, 0.01), (5, 20.515, 0.001),
    (10, 18.307, 0.05), (10, 23.209, 0.01), (10, 29.588, 0.001),
    (30, 43.773, 0.05), (30, 50.892, 0.01), (30, 59.703, 0.001),
    (100, 124.342, 0.05), (100, 135.807, 0.01), (100, 149.449, 0.001),
    # lower-tail quantiles (p close to 1): the series branch
    (1, 0.004, 0.95), (2, 0.103, 0.95), (10, 3.940, 0.95), (100, 77.929, 0.95),
]  # fmt: skip


@pytest.mark.parametrize(("df", "x", "p"), TABLE)
def test_matches_the_printed_table(df, x, p):
    # the table's critical values have 3 decimals, so p agrees to about 3 significant digits
    assert chi2_sf(x, df) == pytest.approx(p, rel=2e-3)


def test_the_briefs_example():
    assert chi2_sf(13.816, 2) == pytest.approx(0.001, abs=1e-6)


def _even_df_closed_form(x: float, df: int) -> float:
    # For df = 2m: Q(m, x/2) = e^(-x/2) * sum_{i<m} (x/2)^i / i!  (a Poisson tail)
    half = x / 2
    return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(df // 2))


@given(x=st.floats(0.0, 300.0), m=st.integers(1, 40))
def test_even_df_equals_the_poisson_sum(x, m):
    assert math.isclose(
        chi2_sf(x, 2 * m), _even_df_closed_form(x, 2 * m), rel_tol=1e-9, abs_tol=1e-300
    )


@given(x=st.floats(0.0, 600.0))
def test_df1_and_df3_equal_their_erfc_forms(x):
    erfc = math.erfc(math.sqrt(x / 2))
    assert math.isclose(chi2_sf(x, 1), erfc, rel_tol=1e-9, abs_tol=1e-300)
    df3 = erfc + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    assert math.isclose(chi2_sf(x, 3), df3, rel_tol=1e-9, abs_tol=1e-300)


@given(df=st.integers(1, 500), x=st.floats(0.0, 2000.0), dx=st.floats(0.01, 50.0))
def test_is_a_probability_and_decreases_with_x(df, x, dx):
    p, q = chi2_sf(x, df), chi2_sf(x + dx, df)
    assert 0.0 <= q <= p <= 1.0


def test_both_branches_agree_where_they_meet():
    # x < a + 1 takes the series, x >= a + 1 the continued fraction: no jump between them
    for a in (0.5, 1.0, 2.5, 10.0, 150.0):
        below, at = regularized_gamma_q(a, math.nextafter(a + 1, 0)), regularized_gamma_q(a, a + 1)
        assert below == pytest.approx(at, rel=1e-12)


def test_edges():
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(-1.0, 3) == 1.0
    assert chi2_sf(math.inf, 3) == 0.0
    assert chi2_sf(1e4, 3) == 0.0  # underflows to zero, does not raise


@pytest.mark.parametrize(("a", "x"), [(0, 1), (-1, 1), (1, -0.5), (1, math.nan)])
def test_gamma_rejects_what_is_outside_its_domain(a, x):
    with pytest.raises(ValueError, match="Q\\(a, x\\) needs"):
        regularized_gamma_q(a, x)


def test_df_must_be_positive():
    with pytest.raises(ValueError, match="df >= 1"):
        chi2_sf(1.0, 0)
