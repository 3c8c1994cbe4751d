"""Predictive risk (pure numpy, no I/O): volatility of the assets, probability that a position is
liquidated within a horizon, stress scenarios, and the next answer of a Chainlink-style feed.

Positions enter as value exposures at the current prices, shape (P, A): `coll_lt[p, a]` is the
collateral value times its liquidation threshold, `debt[p, a]` the debt value, both in one
currency. Shocking asset a's price by factor f scales column a of both, so the health factor under
any scenario is `(coll_lt @ f) / (debt @ f)`. Volatilities are rates per second (variance per
second, sigma per sqrt(second)) because oracle rounds arrive at irregular times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
SECONDS_PER_YEAR = 365 * 86_400
_SQRT2 = math.sqrt(2.0)
_erfc = np.frompyfunc(math.erfc, 1, 1)


# ---------------------------------------------------------------------------- normal distribution


def norm_cdf(x: F64 | float) -> F64:
    """Standard normal CDF (erfc form: accurate in the far left tail, where small probabilities live)."""
    return np.asarray(0.5 * _erfc(-np.asarray(x, dtype=float) / _SQRT2), dtype=float)


def norm_ppf(p: F64 | float) -> F64:
    """Inverse of norm_cdf: Acklam's rational approximation refined by one Halley step (< 1e-12)."""
    p = np.asarray(p, dtype=float)
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    q = np.minimum(p, 1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.sqrt(-2 * np.log(q))
        tail = (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / (
            (((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1
        )
        r = (p - 0.5) ** 2
        mid = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * (p - 0.5)
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
        x = np.where(q < 0.02425, np.where(p < 0.5, tail, -tail), mid)
        e = norm_cdf(x) - p
        u = e * math.sqrt(2 * math.pi) * np.exp(x * x / 2)
        x = x - u / (1 + x * u / 2)
    return np.where(p <= 0, -np.inf, np.where(p >= 1, np.inf, x))


# ---------------------------------------------------------------------------- volatility


def ewma_step(cov: F64, log_returns: F64, dt_s: float, half_life_s: float, downside_weight: float = 0.0) -> F64:
    """One EWMA update of the covariance rate (per second) from returns observed over dt_s seconds:
    cov' = lam*cov + (1-lam) r r^T / dt, lam = 0.5**(dt/half_life), so the weight of an
    observation halves every half_life seconds whatever the spacing of the rounds. With
    downside_weight theta > 0 a falling price counts (1+theta) times in the variance (asymmetric EWMA)."""
    if dt_s <= 0:
        return cov
    r = np.where(log_returns < 0, log_returns * math.sqrt(1 + downside_weight), log_returns)
    lam = 0.5 ** (dt_s / half_life_s)
    return np.asarray(lam * cov + (1 - lam) * np.outer(r, r) / dt_s)


def ewma_cov(times_s: F64, prices: F64, half_life_s: float, prior: F64, downside_weight: float = 0.0) -> F64:
    """Covariance rate (A, A) per second after a series of observations (T,) x (T, A), from `prior`."""
    cov = prior
    logp = np.log(prices)
    for k in range(1, len(times_s)):
        cov = ewma_step(cov, logp[k] - logp[k - 1], float(times_s[k] - times_s[k - 1]), half_life_s, downside_weight)
    return cov


@dataclass(frozen=True)
class Garch:
    """GARCH(1,1) of per-step returns: h_t = omega + alpha r_{t-1}^2 + beta h_{t-1}."""

    omega: float
    alpha: float
    beta: float

    @property
    def long_run(self) -> float:
        return self.omega / (1 - self.alpha - self.beta)

    def variances(self, returns: F64, h0: float | None = None) -> F64:
        """h_1..h_{n+1}: the conditional variance before each return, and the next one after the last."""
        h = np.empty(len(returns) + 1)
        h[0] = self.long_run if h0 is None else h0
        for t, r in enumerate(returns):
            h[t + 1] = self.omega + self.alpha * r * r + self.beta * h[t]
        return h

    def horizon_variance(self, h_next: float, steps: int) -> float:
        """Expected variance of the sum of the next `steps` returns, the first with variance h_next:
        n*v + (h_next - v)(1 - phi^n)/(1 - phi), phi = alpha + beta."""
        phi, v = self.alpha + self.beta, self.long_run
        return steps * v + (h_next - v) * (1 - phi**steps) / (1 - phi)


def garch_fit(returns: F64, grid: int = 40) -> Garch:
    """Gaussian maximum likelihood over a grid of (alpha, beta) with variance targeting (omega set
    so the long-run variance is the sample variance). Coarse but robust; enough to scale a horizon."""
    r = np.asarray(returns, dtype=float)
    var = float(r.var())
    best: tuple[float, Garch] = (-math.inf, Garch(var * 0.05, 0.05, 0.9))
    r2 = r * r
    for alpha in np.linspace(0.01, 0.4, grid):
        for beta in np.linspace(0.5, 0.995, grid):
            if alpha + beta >= 0.999:
                continue
            g = Garch(var * (1 - alpha - beta), float(alpha), float(beta))
            h = g.variances(r, var)[:-1]
            ll = -0.5 * float(np.sum(np.log(h) + r2 / h))
            if ll > best[0]:
                best = (ll, g)
    return best[1]


# ---------------------------------------------------------------------------- health sensitivities


def health_under(coll_lt: F64, debt: F64, factors: F64) -> F64:
    """Health factor (S, P) of every position under S price scenarios `factors` (S, A) (new price /
    current price); +inf without debt."""
    c = np.atleast_2d(factors) @ coll_lt.T
    d = np.atleast_2d(factors) @ debt.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(d > 0, c / d, np.inf))


def log_sensitivity(coll_lt: F64, debt: F64) -> F64:
    """d ln HF / d ln price (P, A): each asset's share of the weighted collateral minus its share of the debt."""
    c = coll_lt.sum(axis=1, keepdims=True)
    d = debt.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(c > 0, coll_lt / c, 0.0) - np.where(d > 0, debt / d, 0.0))


def health_sigma(coll_lt: F64, debt: F64, cov: F64) -> F64:
    """Volatility of ln HF (P,), per sqrt(second), from the covariance rate (delta method)."""
    g = log_sensitivity(coll_lt, debt)
    return np.sqrt(np.maximum(np.einsum("pa,ab,pb->p", g, cov, g), 0.0))


# ---------------------------------------------------------------------------- probability of liquidation


def first_passage(hf: F64 | float, sigma: F64 | float, horizon_s: float, drift: F64 | float | None = None) -> F64:
    """P(the health factor touches 1 within horizon_s) when ln HF is a Brownian motion with
    volatility sigma (per sqrt s) and drift (per s; default -sigma^2/2, i.e. prices with no drift):
    P = Phi((b - nu T)/(s sqrt T)) + exp(2 nu b / s^2) Phi((b + nu T)/(s sqrt T)), b = -ln HF."""
    hf = np.asarray(hf, dtype=float)
    s = np.asarray(sigma, dtype=float)
    nu = -0.5 * s * s if drift is None else np.asarray(drift, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = -np.log(hf)
        st = s * math.sqrt(horizon_s)
        p = norm_cdf((b - nu * horizon_s) / st) + np.exp(2 * nu * b / (s * s)) * norm_cdf((b + nu * horizon_s) / st)
    p = np.where(s > 0, np.nan_to_num(p, nan=0.0), 0.0)
    return np.asarray(np.clip(np.where(hf <= 1.0, 1.0, p), 0.0, 1.0))


def _first_passage_one(hf: float, s: float, horizon_s: float) -> float:
    """first_passage for one position (no drift), with the same operations in the same order on
    float64 scalars: the same bits, without numpy's per-call overhead on 0-d arrays."""
    if hf <= 1.0:
        return 1.0
    if not s > 0:
        return 0.0
    nu = -0.5 * s * s
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = -np.log(np.float64(hf))
        st = s * math.sqrt(horizon_s)
        low = 0.5 * math.erfc(-((b - nu * horizon_s) / st) / _SQRT2)
        high = 0.5 * math.erfc(-((b + nu * horizon_s) / st) / _SQRT2)
        p = float(low + np.exp(2 * nu * b / (s * s)) * high)
    if math.isnan(p):
        return 0.0
    return min(max(p, 0.0), 1.0)


def health_for_probability(sigma: F64 | float, horizon_s: float, probability: float) -> F64:
    """The health factor at which first_passage(., sigma, horizon) equals `probability` (bisection
    in ln HF): below it the chance of liquidation within the horizon is higher."""
    if np.ndim(sigma) == 0:  # one position (the trigger): scalar arithmetic, same result
        one = float(sigma)
        lo_, hi_ = 0.0, max(one * math.sqrt(horizon_s) * 12.0, 1e-9)
        for _ in range(80):
            mid_ = (lo_ + hi_) / 2
            if _first_passage_one(float(np.exp(np.float64(mid_))), one, horizon_s) > probability:
                lo_ = mid_
            else:
                hi_ = mid_
        return np.asarray(np.exp(np.float64(hi_)))
    s = np.asarray(sigma, dtype=float)
    lo = np.zeros_like(s)
    hi = np.maximum(s * math.sqrt(horizon_s) * 12.0, 1e-9)
    for _ in range(80):
        mid = (lo + hi) / 2
        above = first_passage(np.exp(mid), s, horizon_s) > probability
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.asarray(np.exp(hi))


def monte_carlo(
    coll_lt: F64,
    debt: F64,
    cov: F64,
    horizon_s: float,
    *,
    paths: int = 20_000,
    steps: int = 48,
    df: float | None = 4.0,
    rng: np.random.Generator | None = None,
) -> tuple[F64, F64]:
    """Correlated price paths over horizon_s (Cholesky of the covariance rate; Student-t(df)
    innovations scaled to unit variance, or Gaussian with df=None). Returns, per position, the
    probability that the health factor touches 1 on the path (with the Brownian-bridge correction
    between steps, in ln HF) and the 1 % quantile of the health factor at the horizon."""
    rng = rng or np.random.default_rng(0)
    n_assets = cov.shape[0]
    dt = horizon_s / steps
    chol = np.linalg.cholesky(cov * dt + np.eye(n_assets) * 1e-30)
    z = rng.standard_normal((paths, steps, n_assets))
    if df is not None:
        z *= np.sqrt((df - 2) / rng.chisquare(df, (paths, steps, 1)))
    logf = np.cumsum(z @ chol.T - 0.5 * np.diag(cov) * dt, axis=1)
    factors = np.concatenate([np.ones((paths, 1, n_assets)), np.exp(logf)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_hf = np.log(np.einsum("nsa,pa->nsp", factors, coll_lt) / np.einsum("nsa,pa->nsp", factors, debt))
    hit = (ln_hf <= 0).any(axis=1)
    # bridge: between two samples above the barrier, P(cross) = exp(-2 x0 x1 / (s^2 dt))
    s2 = np.maximum(health_sigma(coll_lt, debt, cov) ** 2, 1e-30)
    x0, x1 = ln_hf[:, :-1], ln_hf[:, 1:]
    with np.errstate(over="ignore", invalid="ignore"):
        cross = np.where((x0 > 0) & (x1 > 0), np.exp(-2 * x0 * x1 / (s2 * dt)), 0.0)
    survive = np.prod(1 - np.nan_to_num(cross), axis=1)
    p = np.where(hit, 1.0, 1 - survive).mean(axis=0)
    q01 = np.quantile(np.exp(ln_hf[:, -1]), 0.01, axis=0)
    return np.asarray(p), np.asarray(q01)


# ---------------------------------------------------------------------------- stress


def shock_grid(n_assets: int, shocks: F64) -> F64:
    """Scenario factors (S, A): each shock applied to each asset alone, then to all assets together."""
    s = np.asarray(shocks, dtype=float)
    rows = [np.ones(n_assets) + np.eye(n_assets)[a] * x for a in range(n_assets) for x in s]
    rows += [np.ones(n_assets) * (1 + x) for x in s] if n_assets > 1 else []
    return np.array(rows)


def liquidating_shock(coll_lt: F64, debt: F64) -> F64:
    """(P, A): the move of asset a alone (others fixed, -0.3 = -30 %) that brings the health factor
    to 1; NaN where no move of that asset can (it is neither enough collateral nor enough debt)."""
    c, d = coll_lt.sum(axis=1, keepdims=True), debt.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = ((d - debt) - (c - coll_lt)) / (coll_lt - debt)  # C_others + f c_a = D_others + f d_a
    return np.asarray(np.where(np.isfinite(f) & (f > 0), f - 1, np.nan))


# ---------------------------------------------------------------------------- look-ahead oracle


def next_oracle_answer(
    oracle: F64, market: F64, updated_at: F64, now: float, deviation: F64, heartbeat_s: F64
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """What a Chainlink push feed will report next: the market price once it has moved the
    deviation threshold away from the answer or the heartbeat has passed (the update is then
    imminent), else the current answer. Returns (next answers, imminent mask)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = np.abs(market - oracle) / oracle >= deviation
    imminent = moved | (now - updated_at >= heartbeat_s)
    imminent &= np.isfinite(market) & (market > 0)
    return np.where(imminent, market, oracle), imminent
