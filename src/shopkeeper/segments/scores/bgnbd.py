"""BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way") and the Gamma-Gamma
model of spend (Fader & Hardie 2013), fitted by maximum likelihood with scipy.

Inputs per customer, in one time unit (weeks here, as in the paper): `x` repeat purchases,
`t_x` time of the last purchase since the first, `T` time since the first purchase; `zbar` the
mean value of the repeat purchases. The likelihoods are the papers' closed forms, in logs and
vectorised; parameters are optimised on a log scale so they stay positive. The `lifetimes`
package (unmaintained) is not used; its CDNOW copy serves as the test reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float

    def p_alive(self, x: Array, t_x: Array, T: Array) -> Array:
        """P(still active at T | x, t_x, T) — eq. (13) of the paper."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        ratio = np.where(
            x > 0,
            np.exp(
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            ),
            0.0,
        )
        return np.asarray(1.0 / (1.0 + ratio), dtype=np.float64)

    def expected_purchases(self, t: float, x: Array, t_x: Array, T: Array) -> Array:
        """E[purchases in (T, T + t] | x, t_x, T] — eq. (10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
        return np.asarray(head * body * self.p_alive(x, t_x, T), dtype=np.float64)


def bgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array, weights: Array) -> float:
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return float(np.sum(weights * (a1 + a2 + np.logaddexp(a3, a4))))


def _aggregate(*columns: Array) -> tuple[list[Array], Array]:
    """Identical rows once, with their count (most customers share a handful of summaries)."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(np.float64)


def fit_bgnbd(x: Array, t_x: Array, T: Array) -> BgNbd:
    if len(x) == 0:
        raise ValueError("no customers to fit")
    (ux, ut, uT), w = _aggregate(np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float))

    def objective(log_params: Array) -> float:
        return -bgnbd_log_likelihood(np.exp(log_params), ux, ut, uT, w)

    best = None
    for start in (np.log([0.5, 5.0, 1.0, 2.5]), np.zeros(4)):
        result = minimize(
            objective, start, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 20000}
        )
        result = minimize(objective, result.x, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    return BgNbd(r, alpha, a, b, float(-best.fun))


@dataclass(frozen=True, slots=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    log_likelihood: float

    def expected_value(self, x: Array, zbar: Array, fallback: float) -> Array:
        """E[M | x, zbar]: the customer's own mean pulled towards the population's; customers
        with no repeat purchase get the population mean `fallback`."""
        p, q, g = self.p, self.q, self.gamma
        with np.errstate(divide="ignore", invalid="ignore"):
            own = (g + x * zbar) * p / (p * x + q - 1)
        return np.asarray(np.where(x > 0, own, fallback), dtype=np.float64)

    @property
    def population_mean(self) -> float:
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")


def gamma_gamma_log_likelihood(params: Array, x: Array, zbar: Array, weights: Array) -> float:
    p, q, g = params
    px = p * x
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(zbar)
        + px * np.log(x)
        - (px + q) * np.log(g + x * zbar)
    )
    return float(np.sum(weights * ll))


def fit_gamma_gamma(x: Array, zbar: Array) -> GammaGamma:
    """Fitted on customers with at least one repeat purchase and a positive mean value."""
    keep = (np.asarray(x) > 0) & (np.asarray(zbar) > 0)
    if not keep.any():
        raise ValueError("no repeat purchases to fit spend on")
    (ux, uz), w = _aggregate(np.asarray(x, float)[keep], np.asarray(zbar, float)[keep])

    def objective(log_params: Array) -> float:
        return -gamma_gamma_log_likelihood(np.exp(log_params), ux, uz, w)

    best = None
    for start in (np.log([1.0, 1.0, 1.0]), np.log([5.0, 3.0, 15.0])):
        result = minimize(
            objective, start, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 20000}
        )
        result = minimize(objective, result.x, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    p, q, g = (float(v) for v in np.exp(best.x))
    return GammaGamma(p, q, g, float(-best.fun))
