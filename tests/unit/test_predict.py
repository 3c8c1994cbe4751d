"""The predictive risk models against brute force: loops, fine grids and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keeper.risk import predict as pr

YEAR = pr.SECONDS_PER_YEAR


def test_normal_cdf_and_inverse() -> None:
    assert pr.norm_ppf(0.975) == pytest.approx(1.959963984540054, abs=1e-12)
    assert pr.norm_ppf(1e-6) == pytest.approx(-4.753424308822899, abs=1e-10)
    p = np.array([1e-12, 1e-6, 0.01, 0.3, 0.5, 0.8, 0.999])
    assert np.allclose(pr.norm_cdf(pr.norm_ppf(p)), p, rtol=1e-10)
    assert float(pr.norm_cdf(-10.0)) == pytest.approx(7.61985302416e-24, rel=1e-9)  # far tail stays accurate


def test_ewma_covariance_matches_the_explicit_weighted_sum() -> None:
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(5, 120, 200))  # irregular rounds
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, (200, 2)), axis=0))
    prior = np.array([[1e-7, 2e-8], [2e-8, 3e-7]])
    half_life = 900.0
    got = pr.ewma_cov(times, prices, half_life, prior)
    # brute force: every observation's weight is (1 - lam_k) times the decay of everything after it
    r = np.diff(np.log(prices), axis=0)
    dt = np.diff(times)
    lam = 0.5 ** (dt / half_life)
    want = prior * np.prod(lam)
    for k in range(len(r)):
        want = want + (1 - lam[k]) * np.prod(lam[k + 1 :]) * np.outer(r[k], r[k]) / dt[k]
    assert np.allclose(got, want, rtol=1e-12)


def test_ewma_estimates_the_volatility_of_a_known_process() -> None:
    rng = np.random.default_rng(2)
    sigma = 0.9 / math.sqrt(YEAR)
    times = np.arange(0, 30 * 86_400, 60.0)
    prices = 2000 * np.exp(np.cumsum(rng.normal(0, sigma * math.sqrt(60), len(times))))[:, None]
    cov = pr.ewma_cov(times, prices, 6 * 3600, np.array([[1e-9]]))
    assert math.sqrt(cov[0, 0]) == pytest.approx(sigma, rel=0.1)


def test_downside_weight_only_inflates_falls() -> None:
    up = pr.ewma_step(np.zeros((1, 1)), np.array([0.01]), 60, 600, downside_weight=1.0)
    down = pr.ewma_step(np.zeros((1, 1)), np.array([-0.01]), 60, 600, downside_weight=1.0)
    assert down[0, 0] == pytest.approx(2 * up[0, 0])


def test_garch_horizon_variance_is_the_sum_of_expected_variances() -> None:
    g = pr.Garch(omega=2e-6, alpha=0.08, beta=0.9)
    h, total = 5e-4, 0.0
    for _ in range(30):  # E[h_{k+1}] = omega + (alpha + beta) E[h_k]
        total += h
        h = g.omega + (g.alpha + g.beta) * h
    assert g.horizon_variance(5e-4, 30) == pytest.approx(total, rel=1e-12)


def test_garch_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(3)
    true = pr.Garch(omega=1e-6 * 0.05, alpha=0.1, beta=0.85)
    n, h = 20_000, true.long_run
    r = np.empty(n)
    for t in range(n):
        r[t] = math.sqrt(h) * rng.standard_normal()
        h = true.omega + true.alpha * r[t] ** 2 + true.beta * h
    fit = pr.garch_fit(r)
    assert fit.alpha == pytest.approx(0.1, abs=0.03)
    assert fit.beta == pytest.approx(0.85, abs=0.04)
    assert fit.alpha + fit.beta == pytest.approx(0.95, abs=0.02)


def test_first_passage_matches_a_brute_force_simulation_of_ln_hf() -> None:
    """The reflection-principle closed form against 200k fine-stepped paths of ln HF with the
    Brownian-bridge correction; tolerance 3 standard errors plus the bridge's residual bias."""
    rng = np.random.default_rng(4)
    sigma, horizon, hf = 0.8 / math.sqrt(YEAR), 2 * 86_400, 1.12
    steps, n = 100, 200_000
    dt = horizon / steps
    x = np.full(n, math.log(hf))
    survive = np.ones(n)
    for _ in range(steps):
        x1 = x + rng.normal(-0.5 * sigma**2 * dt, sigma * math.sqrt(dt), n)
        cross = np.where((x > 0) & (x1 > 0), np.exp(-2 * x * x1 / (sigma**2 * dt)), 1.0)
        survive *= np.where(x1 <= 0, 0.0, 1 - cross)
        x = x1
    mc = 1 - survive.mean()
    closed = float(pr.first_passage(hf, sigma, horizon))
    assert closed == pytest.approx(mc, abs=3 * math.sqrt(mc * (1 - mc) / n) + 0.003)
    assert 0.05 < closed < 0.5  # a case where the answer is not trivially 0 or 1


def test_first_passage_edges() -> None:
    assert float(pr.first_passage(0.99, 1e-4, 60)) == 1.0
    assert float(pr.first_passage(1.5, 0.0, 60)) == 0.0
    # more time, more volatility, less health: more likely
    p = pr.first_passage(np.array([1.2, 1.2, 1.2, 1.1]), np.array([1e-4, 2e-4, 1e-4, 1e-4]), 3600)
    assert p[1] > p[0] and p[3] > p[0]
    assert pr.first_passage(1.2, 1e-4, 7200) > p[0]


def test_health_for_probability_inverts_first_passage() -> None:
    sigma = np.array([0.5, 0.8, 1.5]) / math.sqrt(YEAR)
    hf = pr.health_for_probability(sigma, 3600, 1e-4)
    assert np.allclose(pr.first_passage(hf, sigma, 3600), 1e-4, rtol=1e-6)
    # reference toy (risk-and-rails 3.6): 80 %/yr, 1 h, q = 1e-4 -> about 1.034 before the oracle gap
    assert hf[1] == pytest.approx(math.exp(0.8 / math.sqrt(YEAR) * math.sqrt(3600) * 3.8906), rel=0.01)


def test_monte_carlo_agrees_with_the_closed_form_for_one_asset() -> None:
    sigma = 0.8 / math.sqrt(YEAR)
    coll_lt = np.array([[0.8 * 1000.0, 0.0], [0.8 * 1000.0, 0.0]])
    debt = np.array([[0.0, 700.0], [0.0, 640.0]])
    cov = np.diag([sigma**2, 0.0])
    p, _ = pr.monte_carlo(coll_lt, debt, cov, 86_400, paths=40_000, steps=48, df=None)
    closed = pr.first_passage(np.array([800 / 700, 800 / 640]), sigma, 86_400)
    assert np.allclose(p, closed, atol=0.003)


def test_delta_method_sigma_matches_simulated_spread_of_ln_hf() -> None:
    """Two correlated assets, a mixed position: the delta-method volatility of ln HF against the
    sample standard deviation over a short horizon (small moves, where the approximation holds)."""
    rng = np.random.default_rng(5)
    cov = np.array([[4e-8, 1.5e-8], [1.5e-8, 2e-8]])
    coll_lt = np.array([[800.0, 300.0]])
    debt = np.array([[100.0, 600.0]])
    horizon = 600.0
    f = np.exp(rng.multivariate_normal(np.zeros(2), cov * horizon, 200_000))
    ln_hf = np.log(pr.health_under(coll_lt, debt, f)[:, 0])
    want = ln_hf.std() / math.sqrt(horizon)
    assert float(pr.health_sigma(coll_lt, debt, cov)[0]) == pytest.approx(want, rel=0.02)


def test_student_t_has_fatter_tails_than_gaussian() -> None:
    sigma = 0.8 / math.sqrt(YEAR)
    coll_lt, debt = np.array([[1000.0, 0.0]]), np.array([[0.0, 840.0]])
    cov = np.diag([sigma**2, 0.0])
    gauss, _ = pr.monte_carlo(coll_lt, debt, cov, 86_400, paths=40_000, steps=24, df=None)
    fat, _ = pr.monte_carlo(coll_lt, debt, cov, 86_400, paths=40_000, steps=24, df=3.5)
    assert fat[0] > 1.5 * gauss[0] > 0


def test_stress_grid_matches_a_loop() -> None:
    rng = np.random.default_rng(6)
    coll_lt = rng.uniform(0, 1000, (7, 3))
    debt = rng.uniform(0, 800, (7, 3))
    grid = pr.shock_grid(3, np.array([-0.5, -0.2, 0.1]))
    assert grid.shape == (3 * 3 + 3, 3)
    got = pr.health_under(coll_lt, debt, grid)
    for s, f in enumerate(grid):
        for p in range(7):
            want = sum(coll_lt[p, a] * f[a] for a in range(3)) / sum(debt[p, a] * f[a] for a in range(3))
            assert got[s, p] == pytest.approx(want, rel=1e-12)


def test_liquidating_shock_matches_a_fine_grid() -> None:
    coll_lt = np.array([[800.0, 200.0, 0.0], [900.0, 0.0, 0.0], [0.0, 500.0, 0.0]])
    debt = np.array([[0.0, 0.0, 700.0], [0.0, 300.0, 400.0], [0.0, 0.0, 0.0]])
    got = pr.liquidating_shock(coll_lt, debt)
    moves = np.arange(-0.999, 5.0, 1e-4)
    for p in range(2):
        for a in range(3):
            f = np.ones((len(moves), 3))
            f[:, a] += moves
            hf = pr.health_under(coll_lt[p : p + 1], debt[p : p + 1], f)[:, 0]
            hf0 = float(pr.health_under(coll_lt[p : p + 1], debt[p : p + 1], np.ones((1, 3)))[0, 0])
            side = hf <= 1.0 if hf0 > 1 else hf >= 1.0
            if not side.any():
                assert np.isnan(got[p, a])
                continue
            # the crossing nearest to no move
            k = np.flatnonzero(side)
            nearest = moves[k[np.argmin(np.abs(moves[k]))]]
            assert got[p, a] == pytest.approx(nearest, abs=2e-4)
    assert np.isnan(got[2]).all()  # no debt: nothing liquidates it


def test_next_oracle_answer_follows_deviation_and_heartbeat() -> None:
    oracle = np.array([2000.0, 1.0, 60_000.0, 100.0])
    market = np.array([1980.0, 1.0, 58_000.0, np.nan])
    updated = np.array([1000.0, 0.0, 1000.0, 0.0])
    nxt, imminent = pr.next_oracle_answer(
        oracle, market, updated, 2000.0, np.array([0.005, 0.005, 0.005, 0.005]), np.array([3600, 1800, 3600, 60])
    )
    # ETH moved 1 % > 0.5 %: imminent; USDC heartbeat passed: imminent at the same price;
    # BTC moved 3.3 %; the fourth has no market price: stays
    assert imminent.tolist() == [True, True, True, False]
    assert nxt.tolist() == [1980.0, 1.0, 58_000.0, 100.0]
    _, calm = pr.next_oracle_answer(oracle[:1], np.array([1995.0]), updated[:1], 1500.0, np.array([0.005]), 3600)
    assert not calm[0]


def test_the_one_position_target_search_is_bit_for_bit_the_array_one():
    """The trigger's scalar fast path (no numpy overhead per bisection step) gives the very same
    health factor as the array path, on random volatilities, horizons and probabilities."""
    import random

    from keeper.risk.predict import _first_passage_one, first_passage, health_for_probability

    rng = random.Random(3)
    for _ in range(2_000):
        s = rng.choice([0.0, 10 ** rng.uniform(-6, -1)])
        horizon = rng.choice([60.0, 300.0, 3_600.0, 86_400.0])
        hf = rng.choice([0.9, 1.0, 1.0000001, rng.uniform(1.0, 3.0), rng.uniform(1, 50)])
        assert _first_passage_one(hf, s, horizon) == float(first_passage(hf, s, horizon)), (hf, s, horizon)
    for _ in range(300):
        s, horizon, p = 10 ** rng.uniform(-6, -2), rng.choice([300.0, 3_600.0]), rng.choice([0.01, 0.001, 0.05])
        one = float(health_for_probability(s, horizon, p))
        assert one == float(health_for_probability(np.array([s]), horizon, p)[0]), (s, horizon, p)
