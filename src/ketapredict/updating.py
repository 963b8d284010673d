"""Logistic recalibration of a model's predictions, for small samples.

The statistics behind :meth:`ketapredict.RiskModel.recalibrate` and external validation:
the calibration intercept ("calibration in the large", slope fixed at 1) and the
calibration slope of observed outcomes on the model's log-odds (Cox 1958; Van Calster et
al. 2019, BMC Medicine 17:230), each with its standard error and log-likelihood, and the
closed testing procedure that chooses between keeping a model, updating its intercept, and
updating its intercept and slope (Vergouwe et al. 2017, Statistics in Medicine
36:4529-4539). Plain numpy and Newton's method: a 25-patient study needs nothing more, and
the clinician path stays free of scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .trees import MAX_LOG_ODDS

__all__ = [
    "LogisticFit",
    "apply_update",
    "choose_update",
    "fit_intercept",
    "fit_line",
    "log_likelihood",
    "update_variance",
]

METHODS = ("closed_test", "intercept", "intercept_slope")


@dataclass(frozen=True)
class LogisticFit:
    """An intercept and slope on the log-odds, with their covariance and fit.

    ``converged`` is False when the outcome separates perfectly on the log-odds (common in a
    small study): then the estimates are not usable and the caller must not apply them.
    """

    intercept: float
    slope: float
    covariance: tuple[tuple[float, float], tuple[float, float]]
    log_likelihood: float
    converged: bool


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


def log_likelihood(y: np.ndarray, log_odds: np.ndarray) -> float:
    """Bernoulli log-likelihood of 0/1 outcomes ``y`` under ``log_odds``."""
    # log(1 + e^x) stably; y*x - log(1 + e^x)
    return float(np.sum(y * log_odds - np.logaddexp(0.0, log_odds)))


# The longest Newton step taken at once, in log-odds.
_MAX_STEP = 5.0


def _newton(y: np.ndarray, design: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, bool]:
    """Maximum likelihood of ``logit P(y) = offset + design @ beta`` by Newton's method.

    Each step is first scaled down as a whole (direction kept) to at most 5 log-odds, so a
    far start cannot leap to where every probability is exactly 0 or 1 and the information
    vanishes; then halved until the log-likelihood rises enough (it is concave). Clipping each
    component instead changed the step's direction and made the fit cycle for
    miscalibration of 3 log-odds or more. Returns beta and whether it converged: not when
    the outcome separates on the design (the maximum lies at infinity; the caller checks
    that, as float rounding can make a drifting fit's steps look converged)."""
    beta = np.zeros(design.shape[1])
    current = log_likelihood(y, offset + design @ beta)
    for _ in range(200):
        q = _expit(offset + design @ beta)
        gradient = design.T @ (y - q)
        information = design.T @ (design * (q * (1 - q))[:, None])
        try:
            step = np.linalg.solve(information, gradient)
        except np.linalg.LinAlgError:
            return beta, False
        if not np.all(np.isfinite(step)):
            return beta, False
        step = step * min(1.0, _MAX_STEP / max(float(np.max(np.abs(step))), 1e-300))
        for _halving in range(60):
            trial = beta + step
            found = log_likelihood(y, offset + design @ trial)
            # a sufficient rise (Armijo): a step that only keeps the likelihood level can
            # swing back and forth across the maximum for ever
            if found >= current + 1e-4 * float(gradient @ step) - 1e-12 * abs(current):
                break
            step = step / 2
        else:
            return beta, False  # no step uphill, even a tiny one: the fit cannot go on
        beta, current = trial, found
        if np.max(np.abs(step)) < 1e-9:
            return beta, True
        if np.any(np.abs(beta) > 1e3):
            return beta, False
    return beta, False


def fit_intercept(y: np.ndarray, log_odds: np.ndarray) -> LogisticFit:
    """Calibration in the large: ``a`` in ``logit P(y) = a + log_odds`` (slope fixed at 1).

    Examples
    --------
    >>> import numpy as np
    >>> from ketapredict.updating import fit_intercept
    >>> y = np.array([1, 0, 0, 0])
    >>> fit = fit_intercept(y, np.zeros(4))  # predicted 50%, observed 25%
    >>> round(fit.intercept, 4) == round(float(np.log(1 / 3)), 4)
    True
    >>> y = np.r_[np.ones(10), np.zeros(10)]  # predicted 92%, observed 50%
    >>> round(fit_intercept(y, np.full(20, 2.5)).intercept, 6)
    -2.5
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(log_odds, dtype=float)
    a, converged = 0.0, False
    if 0 < y.sum() < len(y):
        beta, converged = _newton(y, np.ones((len(x), 1)), x)
        a = float(beta[0]) if converged else 0.0
    q = _expit(a + x)
    variance = 1.0 / max(float((q * (1 - q)).sum()), 1e-12)
    return LogisticFit(a, 1.0, ((variance, 0.0), (0.0, 0.0)), log_likelihood(y, a + x), converged)


def fit_line(y: np.ndarray, log_odds: np.ndarray) -> LogisticFit:
    """Logistic recalibration: ``a`` and ``b`` in ``logit P(y) = a + b * log_odds``.

    Examples
    --------
    >>> import numpy as np
    >>> from ketapredict.updating import fit_line
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=20_000)
    >>> y = rng.random(20_000) < 1 / (1 + np.exp(-(0.5 + 2 * x)))  # too flat by half
    >>> fit = fit_line(y, x)
    >>> round(fit.intercept, 1), round(fit.slope, 1)
    (0.5, 2.0)
    >>> fit = fit_line(y, x - 5)  # and 5 log-odds too low
    >>> round(fit.intercept, 1), round(fit.slope, 1)
    (10.5, 2.0)
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(log_odds, dtype=float)
    design = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    converged = False
    events, others = x[y == 1], x[y == 0]
    # (quasi-)separation on one predictor: a cut-off with every event on one side of it
    separated = (
        len(events)
        and len(others)
        and (events.min() >= others.max() or events.max() <= others.min())
    )
    if 0 < y.sum() < len(y) and np.ptp(x) > 0 and not separated:
        found, converged = _newton(y, design, np.zeros_like(x))
        if converged:
            beta = found
    q = _expit(design @ beta)
    information = design.T @ (design * (q * (1 - q))[:, None])
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        covariance, converged = np.full((2, 2), np.inf), False
    if not np.all(np.isfinite(covariance)):
        converged = False
    return LogisticFit(
        float(beta[0]),
        float(beta[1]),
        tuple(map(tuple, covariance.tolist())),
        log_likelihood(y, design @ beta),
        converged,
    )


def _p_chi2(statistic: float, df: int) -> float:
    """Upper tail of the chi-square distribution with 1 or 2 degrees of freedom."""
    statistic = max(statistic, 0.0)
    if df == 1:
        return math.erfc(math.sqrt(statistic / 2))
    if df == 2:
        return math.exp(-statistic / 2)
    raise ValueError(f"Got df={df!r}, but expected 1 or 2.")


def choose_update(
    y: np.ndarray, log_odds: np.ndarray, method: str = "closed_test", alpha: float = 0.05
) -> dict:
    """Fit the updates and choose one; returns the update as a JSON-ready dict.

    ``method="closed_test"`` (Vergouwe 2017): first the global null (the original model)
    against intercept-and-slope recalibration, a likelihood-ratio test on 2 degrees of
    freedom; kept if not rejected at ``alpha``. Else the slope: intercept-and-slope against
    intercept only, 1 degree of freedom; the intercept-only update unless rejected. An update
    whose fit does not converge (the outcome separates) is never chosen. ``"intercept"`` and
    ``"intercept_slope"`` apply that update whatever the tests say.

    The dict holds ``method`` (the update applied: ``"none"``, ``"intercept"`` or
    ``"intercept_slope"``), ``intercept``, ``slope``, ``covariance`` (of the two, for the
    intervals), ``n``, ``events``, the tests' ``p_values`` and a ``note`` (None, or why the
    slope was not used). A slope at or below 0 is never applied: it would turn every
    prediction round, and a model that ranks patients the wrong way must be refitted.

    Examples
    --------
    >>> import numpy as np
    >>> from ketapredict.updating import choose_update
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(-0.5, 1.2, size=400)
    >>> y = rng.random(400) < 1 / (1 + np.exp(-(x + 0.9)))  # risk underestimated
    >>> choose_update(y, x)["method"]
    'intercept'
    """
    if method not in METHODS:
        raise ValueError(f"Got method={method!r}, but expected one of {', '.join(METHODS)}.")
    y = np.asarray(y, dtype=float)
    x = np.asarray(log_odds, dtype=float)
    ll0 = log_likelihood(y, x)
    intercept, line = fit_intercept(y, x), fit_line(y, x)
    p_global = _p_chi2(2 * (line.log_likelihood - ll0), 2) if line.converged else float("nan")
    p_slope = (
        _p_chi2(2 * (line.log_likelihood - intercept.log_likelihood), 1)
        if line.converged
        else float("nan")
    )
    p_intercept = (
        _p_chi2(2 * (intercept.log_likelihood - ll0), 1) if intercept.converged else float("nan")
    )
    # a slope at or below 0 would turn every prediction round (the drug's benefit into
    # harm): the model ranks these patients no better than chance or the wrong way, which
    # recalibration cannot repair
    note = None
    if not line.converged:
        note = (
            "the calibration slope could not be estimated (the outcome separates on the "
            "predictions); the slope is left at 1"
        )
    elif line.slope <= 0:
        note = (
            f"the fitted calibration slope is {line.slope:.2f}: the model ranks these patients "
            "no better than chance or the wrong way round, which recalibration cannot repair "
            "(refit on these data); the slope is left at 1"
        )
    usable = line.converged and line.slope > 0
    if method == "intercept":
        chosen = "intercept" if intercept.converged else "none"
        note = None
    elif method == "intercept_slope":
        chosen = "intercept_slope" if usable else ("intercept" if intercept.converged else "none")
    elif usable:
        chosen = (
            "none"
            if p_global > alpha
            else ("intercept_slope" if p_slope <= alpha else "intercept")
        )
    else:  # the line cannot be fitted or used: test the intercept alone
        chosen = "intercept" if intercept.converged and p_intercept <= alpha else "none"
    fit = {"intercept": intercept, "intercept_slope": line}.get(chosen)
    return {
        "method": chosen,
        "requested": method,
        "intercept": 0.0 if fit is None else fit.intercept,
        "slope": 1.0 if fit is None else fit.slope,
        "covariance": [[0.0, 0.0], [0.0, 0.0]]
        if fit is None
        else [list(r) for r in fit.covariance],
        "n": len(y),
        "events": int(y.sum()),
        "note": note,
        "p_values": {
            "original_vs_intercept_slope": _finite(p_global),
            "intercept_vs_intercept_slope": _finite(p_slope),
            "original_vs_intercept": _finite(p_intercept),
        },
    }


def _finite(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def apply_update(
    log_odds: np.ndarray, update: dict | None, limit: float = MAX_LOG_ODDS
) -> np.ndarray:
    """``intercept + slope * log_odds``, within +-``limit`` (no update: unchanged)."""
    if update is None or update["method"] == "none":
        return log_odds
    return np.clip(update["intercept"] + update["slope"] * log_odds, -limit, limit)


def update_variance(updated: np.ndarray, update: dict | None) -> np.ndarray:
    """Variance of the updated log-odds from the update's own estimation error.

    With ``u = a + b * l`` the variance is ``var(a) + 2 l cov(a, b) + l^2 var(b)`` at the
    original log-odds ``l = (u - a) / b``: the uncertainty a small recalibration sample adds.
    """
    if update is None or update["method"] == "none":
        return np.zeros_like(updated)
    (vaa, vab), (_, vbb) = update["covariance"]
    original = (updated - update["intercept"]) / (update["slope"] or 1.0)
    return np.maximum(vaa + 2 * original * vab + original**2 * vbb, 0.0)
