"""BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way") and the Gamma-Gamma
model of spend (Fader & Hardie 2013), fitted by maximum likelihood with scipy.

Inputs per customer, in one time unit (weeks here, as in the paper): `x` repeat purchases,
`t_x` time of the last purchase since the first, `T` time since the first purchase; `zbar` the
mean value of the repeat purchases. The likelihoods are the papers' closed forms, in logs and
vectorised; parameters are optimised on a log scale so they stay positive. The `lifetimes`
package (unmaintained) is not used; its CDNOW copy serves as the test reference.

Data that cannot identify a model — no repeat buyers, too few customers, no time observed, no
positive spend — is refused with `ModelDataError`, whose message says why (never a scipy
exception, NaN or parameters of 10¹⁸). Parameters are searched within [1e-6, 1e6]; a fit that
ends on that edge is the data saying it shows no variation of that kind (every customer buying at
the same rate, say): it is kept, its predictions are those of the limit, and `at_bound` names
the parameters concerned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

Array = NDArray[np.float64]

# Below these, four (BG/NBD) or three (Gamma-Gamma) parameters are not identified by the data.
MIN_CUSTOMERS = 20
MIN_REPEAT_BUYERS = 5
LOWER, UPPER = 1e-6, 1e6
_LOG_BOUNDS = (float(np.log(LOWER)), float(np.log(UPPER)))


class ModelDataError(ValueError):
    """The data cannot identify the model's parameters; the message says why, in words that
    point at the data (`clv.compute` records it with the run and falls back, see its docs)."""


def _at_bound(names: tuple[str, ...], log_params: Array) -> tuple[str, ...]:
    low, high = _LOG_BOUNDS
    return tuple(n for n, v in zip(names, log_params, strict=True) if v <= low + 1e-3 or v >= high - 1e-3)


def _minimise(
    objective: Callable[[Array], float], starts: list[Array], names: tuple[str, ...], what: str
) -> tuple[Array, float]:
    """Nelder-Mead then L-BFGS-B from each start, within the bounds; the best finite result."""
    bounds = [_LOG_BOUNDS] * len(names)
    best: tuple[Array, float] | None = None
    with np.errstate(all="ignore"):
        for start in starts:
            result = minimize(
                objective,
                start,
                method="Nelder-Mead",
                bounds=bounds,
                options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 20000},
            )
            result = minimize(objective, result.x, method="L-BFGS-B", bounds=bounds)
            value = float(result.fun)
            if np.isfinite(value) and np.all(np.isfinite(result.x)) and (best is None or value < best[1]):
                best = (np.asarray(result.x, dtype=np.float64), value)
    if best is None:
        raise ModelDataError(f"{what}: the likelihood is not finite anywhere the search went")
    return best


@dataclass(frozen=True, slots=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    at_bound: tuple[str, ...] = ()  # parameters that ended on the edge of the search

    def p_alive(self, x: Array, t_x: Array, T: Array) -> Array:
        """P(still active at T | x, t_x, T) — eq. (13) of the paper."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(over="ignore"):  # an infinite ratio is P(alive) = 0, its limit
            ratio = np.where(
                x > 0,
                np.exp(
                    np.log(a)
                    - np.log(np.maximum(b + x - 1, 1e-12))
                    + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
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


def _columns(what: str, **columns: Array) -> list[Array]:
    out = [np.asarray(v, dtype=np.float64).ravel() for v in columns.values()]
    if len({len(c) for c in out}) != 1:
        raise ModelDataError(f"{what}: {', '.join(columns)} must have one value per customer")
    for name, column in zip(columns, out, strict=True):
        if not np.all(np.isfinite(column)):
            raise ModelDataError(f"{what}: {name} holds a value that is not a finite number")
    return out


def check_bgnbd_data(x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array]:
    """The summary as arrays, or ModelDataError naming what keeps BG/NBD from being fitted."""
    x, t_x, T = _columns("BG/NBD", x=x, t_x=t_x, T=T)
    n = len(x)
    if n == 0:
        raise ModelDataError("BG/NBD: no customers with a purchase")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(T < 0) or np.any(x != np.floor(x)):
        raise ModelDataError("BG/NBD: x must be whole numbers of repeat purchases and t_x, T times ≥ 0")
    if np.any(t_x > T + 1e-9):
        raise ModelDataError("BG/NBD: a last purchase after the end of observation (t_x > T)")
    if np.any((x > 0) & (t_x <= 0)):
        raise ModelDataError("BG/NBD: a repeat purchase at the time of the first one (x > 0 with t_x = 0)")
    repeat = int(np.count_nonzero(x))
    if repeat == 0:
        if np.all(T == 0):
            raise ModelDataError(
                f"BG/NBD: every one of the {n} buyers made their first purchase today (T = 0): "
                "no time has passed to see anyone buy again"
            )
        who = "the one buyer" if n == 1 else f"each of the {n} buyers"
        raise ModelDataError(
            f"BG/NBD: no repeat purchases — {who} bought on one day only, so how often customers buy "
            "again, and when they stop, cannot be estimated"
        )
    if n < MIN_CUSTOMERS or repeat < MIN_REPEAT_BUYERS:
        raise ModelDataError(
            f"BG/NBD: {n} buyer{'s' if n != 1 else ''} of whom {repeat} bought again; at least "
            f"{MIN_CUSTOMERS} buyers and {MIN_REPEAT_BUYERS} repeat buyers are needed to fit four parameters"
        )
    return x, t_x, T


def fit_bgnbd(x: Array, t_x: Array, T: Array) -> BgNbd:
    """Maximum likelihood on the customers' (x, t_x, T); ModelDataError if the data cannot
    identify the model (see `check_bgnbd_data`) or the fit predicts nothing finite for them."""
    x, t_x, T = check_bgnbd_data(x, t_x, T)
    (ux, ut, uT), w = _aggregate(x, t_x, T)

    def objective(log_params: Array) -> float:
        value = -bgnbd_log_likelihood(np.exp(log_params), ux, ut, uT, w)
        return value if np.isfinite(value) else 1e300

    names = ("r", "alpha", "a", "b")
    best, value = _minimise(objective, [np.log([0.5, 5.0, 1.0, 2.5]), np.zeros(4)], names, "BG/NBD")
    r, alpha, a, b = (float(v) for v in np.exp(best))
    model = BgNbd(r, alpha, a, b, -value, _at_bound(names, best))
    with np.errstate(all="ignore"):
        finite = np.isfinite(model.p_alive(ux, ut, uT)) & np.isfinite(model.expected_purchases(52.0, ux, ut, uT))
    if not finite.all():
        raise ModelDataError(
            f"BG/NBD: the fitted model (r={r:.3g}, alpha={alpha:.3g}, a={a:.3g}, b={b:.3g}) gives no finite "
            f"prediction for {int(w[~finite].sum())} of the buyers"
        )
    return model


@dataclass(frozen=True, slots=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    log_likelihood: float
    at_bound: tuple[str, ...] = ()  # parameters that ended on the edge of the search

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
    """Fitted on customers with at least one repeat purchase and a positive mean value;
    ModelDataError when there are none, or too few, or their spend is all zero."""
    x, zbar = _columns("Gamma-Gamma", x=x, zbar=zbar)
    if np.any(x < 0):
        raise ModelDataError("Gamma-Gamma: x must be numbers of repeat purchases ≥ 0")
    repeat = x > 0
    if not repeat.any():
        raise ModelDataError("Gamma-Gamma: no repeat purchases, and it models the spend of repeat purchases")
    keep = repeat & (zbar > 0)
    kept = int(np.count_nonzero(keep))
    if kept == 0:
        raise ModelDataError(
            f"Gamma-Gamma: the {int(np.count_nonzero(repeat))} repeat buyers spent nothing (every amount is zero "
            "or missing): there is no spend to model"
        )
    if kept < MIN_REPEAT_BUYERS:
        raise ModelDataError(
            f"Gamma-Gamma: {kept} repeat buyer{'s' if kept != 1 else ''} with a positive spend; at least "
            f"{MIN_REPEAT_BUYERS} are needed to fit three parameters"
        )
    (ux, uz), w = _aggregate(x[keep], zbar[keep])

    def objective(log_params: Array) -> float:
        value = -gamma_gamma_log_likelihood(np.exp(log_params), ux, uz, w)
        return value if np.isfinite(value) else 1e300

    names = ("p", "q", "gamma")
    best, value = _minimise(objective, [np.log([1.0, 1.0, 1.0]), np.log([5.0, 3.0, 15.0])], names, "Gamma-Gamma")
    p, q, g = (float(v) for v in np.exp(best))
    return GammaGamma(p, q, g, -value, _at_bound(names, best))
