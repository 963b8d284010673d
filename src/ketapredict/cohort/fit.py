"""Fit the cohort's parameters to the *fit* targets: simulated method of moments.

The procedure (``python scripts/fit_cohort.py``):

1. Draw the baseline covariates of every arm the fit targets need once, with a fixed seed
   (common random numbers: the same virtual patients for every parameter value).
2. For given parameters, compute each fit target's statistic *exactly* on those patients:
   each patient's score at the visit is a finite Gaussian mixture on the log-odds scale
   (:mod:`.model`), so rates, means, SDs of change, regression coefficients and between-trial
   SDs are expectations over the mixture, with no Monte Carlo noise and smooth in the
   parameters.
3. Minimise the precision-weighted squared residuals ``((simulated - published) /
   (tolerance / 2))^2`` over the parameters marked ``fit = [low, high]`` in
   ``parameters.toml``, within those bounds (``scipy.optimize.least_squares``).

Only targets with ``role = "fit"`` are read (:func:`fit_targets`); validation targets are
never seen here, and the calibration report judges them on fresh Monte Carlo simulations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtr

from ..schema import REMISSION_MAX
from .model import (
    NODES,
    SCALE_MAX,
    at_most,
    cadss_mean,
    cognitive_harm,
    components,
    course,
    dissociation_exposure,
    predictors,
    profile,
    response_at_most,
    scale_logit,
)
from .parameters import Parameters, load_parameters
from .population import draw_baseline
from .simulate import published_trials, regimen_arrays, rerated_baseline
from .targets import Target, load_targets, predictor_design, setting

__all__ = ["FitResult", "fit", "fit_targets", "residuals"]


def fit_targets() -> list[Target]:
    """The targets the fit uses: ``role = "fit"`` only."""
    return [t for t in load_targets() if t.role == "fit"]


class _Arm:
    """Fixed virtual patients of one arm (or pooled arms) of a setting."""

    def __init__(self, setting_name: str, arms: tuple[str, ...], n: int, seed: int):
        s = setting(setting_name)
        rng = np.random.default_rng([seed, *map(ord, setting_name + "/" + "+".join(arms))])
        self.first = draw_baseline(s.population, n, rng)
        which = np.arange(n) % len(arms)
        self.regimens = regimen_arrays([s.arms[a] for a in arms], which)
        # In a crossover, half an arm's rows are second periods, from re-rated baselines
        # (simulate.rerated_baseline); their standard-normal shifts are drawn once, here.
        self.second_period = (np.arange(n) % 2 == 1) if s.crossover else np.zeros(n, bool)
        self.shift = rng.standard_normal(n)
        self.gap = max(_setting_days(setting_name), default=0.0) + s.washout_days
        self._courses: dict[tuple, object] = {}
        self._baselines: dict[tuple, dict] = {}
        self.use(load_parameters())

    def use(self, p: Parameters) -> _Arm:
        """Set the baselines under ``p`` (re-rated second periods depend on it)."""
        full = self.first
        if self.second_period.any():
            key = (p.visit_noise, p.drift_sd, p.growth_days, p.hamd_factor, p.ssi_factor)
            if key not in self._baselines:
                rerated = rerated_baseline(self.first, self.gap, p, shift=self.shift)
                self._baselines[key] = {
                    k: np.where(self.second_period, rerated[k], v) for k, v in self.first.items()
                }
            full = self._baselines[key]
        self.full = full
        self.x = predictors(full)
        self.madrs0 = full["madrs_baseline"]
        self.base = scale_logit(self.madrs0)
        return self

    def course(self, p: Parameters):
        """The arm's courses (they depend on the fixed exposure SDs only)."""
        key = tuple(v for k, v in sorted(p.values.items()) if k.startswith("exposure_sd"))
        if key not in self._courses:
            self._courses[key] = course(self.regimens, self.full["weight_kg"], p)
        return self._courses[key]

    def mixture(self, day: float, p: Parameters, trial=(0.0, 0.0), scale: str = "madrs"):
        """Node weights (k,), means and SDs (k, n) of a scale's log-odds change at ``day``.

        HAMD-17 and SSI move by their factor times the MADRS change without its visit
        fluctuation, plus their own (model.simulate_visits).
        """
        c = self.course(p)
        prof = profile(c, day, p)
        factor = {"madrs": 1.0, "hamd17": p.hamd_factor, "ssi": p.ssi_factor}[scale]
        means, sds, weights, extra = [], [], [], []
        # an arm without an active drug does not depend on the exposure node
        nodes = None if c.active.any() else np.full(len(c.active), len(NODES) // 2)
        for comp in components(c, self.x, prof, p, nodes=nodes):
            shift = comp.trial_shift[0] * trial[0] + comp.trial_shift[1] * trial[1]
            means.append(factor * (comp.mean + shift))
            sds.append(np.sqrt(factor**2 * (comp.var - comp.noise_var) + comp.noise_var))
            weights.append(comp.weight[0] if nodes is None else 1.0)
            extra.append((comp, c, prof))
        return np.array(weights), np.array(means), np.array(sds), extra

    def at_most(self, day, p, threshold, trial=(0.0, 0.0)) -> np.ndarray:
        """Each patient's probability that MADRS at ``day`` is at most ``threshold``."""
        w, mean, sd, _ = self.mixture(day, p, trial)
        z = (at_most(threshold) - self.base - mean) / sd
        return w @ ndtr(z)

    def moments(
        self, day, p, trial=(0.0, 0.0), scale: str = "madrs"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each patient's E[M] and E[M^2] of a scale at ``day`` (rounding included)."""
        w, first, second, *_ = self.node_moments(day, p, trial, scale)
        return w @ first, w @ second

    def node_moments(self, day, p, trial=(0.0, 0.0), scale: str = "madrs"):
        """Per exposure node: weights (k,), E[M], E[M^2], and E[dM/d delta] (k, n), and the
        mixture's components."""
        w, mean, sd, extra = self.mixture(day, p, trial, scale)
        thresholds = np.arange(SCALE_MAX[scale])  # P(M > c), c = 0..max-1
        base = scale_logit(self.full[f"{scale}_baseline"], scale)
        edges = at_most(thresholds, scale)[:, None, None] - base[None, None, :]
        z = (edges - mean[None]) / sd[None]  # (c, k, n)
        above = 1 - ndtr(z)
        first = above.sum(axis=0)
        second = ((2 * thresholds + 1)[:, None, None] * above).sum(axis=0)
        # E[M] = sum_c P(M > c), so its derivative in the mean of delta is sum_c phi(z_c) / sd
        slope = (np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)).sum(axis=0) / sd
        return w, first, second, slope, extra


@dataclass
class _Lab:
    n: int
    seed: int

    def __post_init__(self):
        self._arms: dict[tuple, _Arm] = {}

    def arm(self, target: Target, p: Parameters) -> _Arm:
        spec = target.spec
        arms = spec["arm"] if isinstance(spec["arm"], list) else [spec["arm"]]
        key = (spec["setting"], tuple(arms))
        if key not in self._arms:
            self._arms[key] = _Arm(spec["setting"], tuple(arms), self.n, self.seed)
        return self._arms[key].use(p)


def _setting_days(name: str) -> list[float]:
    """The visit days of a published design (a crossover's period length)."""
    design = published_trials().get(name)
    return list(design.visit_days) if design else []


# --------------------------------------------------------------------------------------------
# Exact statistics (only those fit targets use)
# --------------------------------------------------------------------------------------------
_EXACT: dict[str, Callable[[_Lab, Target, Parameters], float]] = {}


def _exact(name: str):
    def register(function):
        _EXACT[name] = function
        return function

    return register


@_exact("response")
def _(lab, target, p):
    arm = lab.arm(target, p)
    return float(arm.at_most(target.spec["day"], p, response_at_most(arm.madrs0)).mean())


@_exact("remission")
def _(lab, target, p):
    arm = lab.arm(target, p)
    return float(
        arm.at_most(target.spec["day"], p, target.spec.get("at_most", REMISSION_MAX)).mean()
    )


@_exact("change")
def _(lab, target, p):
    arm = lab.arm(target, p)
    first, _ = arm.moments(target.spec["day"], p)
    return float((first - arm.madrs0).mean())


@_exact("change_sd")
def _(lab, target, p):
    arm = lab.arm(target, p)
    first, second = arm.moments(target.spec["day"], p)
    change = first - arm.madrs0
    # E[(M - M0)^2 | patient] = Var(M) + (E[M] - M0)^2
    squared = second - first**2 + change**2
    return float(math.sqrt(squared.mean() - change.mean() ** 2))


@_exact("reduction")
def _(lab, target, p):
    """Relative reduction of a scale's mean: 1 - mean at the visit / mean at baseline."""
    arm = lab.arm(target, p)
    scale = target.spec["scale"]
    first, _ = arm.moments(target.spec["day"], p, scale=scale)
    return float(1 - first.mean() / arm.full[f"{scale}_baseline"].mean())


@_exact("dissociation_correlation")
def _(lab, target, p):
    """Correlation of first-session dissociation with MADRS at the visit over baseline.

    Given a patient and an exposure node, CADSS and delta are jointly Gaussian (they share
    the dissociation susceptibility through unblinding), so by Stein's lemma
    Cov(CADSS, M) = Cov(CADSS, delta) E[dM/d delta]; the rest is the mixture over patients
    and nodes. CADSS is taken unrounded (rounding to whole points moves r by under 0.01).
    """
    arm = lab.arm(target, p)
    w, first, second, slope, extra = arm.node_moments(target.spec["day"], p)
    m0 = arm.madrs0
    family = np.asarray(arm.full["family_history_aud"], dtype=float)
    means, cadss_var, within = [], [], []
    for comp, c, _ in extra:
        h = dissociation_exposure(c, comp.factor, p)
        means.append(cadss_mean(p, family, h))
        cadss_var.append(p.cadss_noise**2 + (p.cadss_sd * h) ** 2)
        within.append(-p.cadss_sd * h * comp.unblinding)  # Cov(CADSS, delta)
    means, cadss_var, within = map(np.array, (means, cadss_var, within))
    ratio_mean = first / m0
    ratio_var = (second - first**2) / m0**2
    weights = w[:, None] * np.full(first.shape, 1 / first.shape[1])
    mean_c, mean_r = (weights * means).sum(), (weights * ratio_mean).sum()
    var_c = (weights * (cadss_var + (means - mean_c) ** 2)).sum()
    var_r = (weights * (ratio_var + (ratio_mean - mean_r) ** 2)).sum()
    covariance = (weights * (within * slope / m0 + (means - mean_c) * (ratio_mean - mean_r))).sum()
    return float(covariance / math.sqrt(var_c * var_r))


@_exact("variance_explained")
def _(lab, target, p):
    """R^2 of the linear regression of the MADRS change on the baseline predictors."""
    arm = lab.arm(target, p)
    first, second = arm.moments(target.spec["day"], p)
    expected = first - arm.madrs0
    design = predictor_design(arm.full)
    coefficients, *_ = np.linalg.lstsq(design, expected, rcond=None)
    explained = np.var(design @ coefficients)
    total = expected.var() + (second - first**2).mean()
    return float(explained / total)


@_exact("beta")
def _(lab, target, p):
    """Standardised coefficient of the predictor in a regression of MADRS on (M0, predictor).

    On every patient's full covariates; the report regresses on the complete cases of the
    recorded ones, which a history missing not at random moves by about 3% of the beta.
    """
    arm = lab.arm(target, p)
    first, second = arm.moments(target.spec["day"], p)
    predictor = np.asarray(arm.full[target.spec["predictor"]], dtype=float)
    design = np.column_stack([arm.madrs0, predictor])
    centred = design - design.mean(axis=0)
    cov_xx = centred.T @ centred / len(first)
    cov_xy = centred.T @ (first - first.mean()) / len(first)
    var_y = first.var() + (second - first**2).mean()
    coefficients = np.linalg.solve(cov_xx, cov_xy)
    return float(coefficients[1] * math.sqrt(cov_xx[1, 1]) / math.sqrt(var_y))


# trial effects integrated over a 3 x 3 Gauss-Hermite grid (exact for the quadratic-ish
# arm statistics to far below their tolerance)
_GH_NODES, _GH_WEIGHTS = hermegauss(3)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


@_exact("between_trial_sd")
def _(lab, target, p):
    arm = lab.arm(target, p)
    day = target.spec["day"]
    values, weights = [], []
    for z1, w1 in zip(_GH_NODES, _GH_WEIGHTS, strict=True):
        for z2, w2 in zip(_GH_NODES, _GH_WEIGHTS, strict=True):
            trial = (z1, z2)
            if target.spec["of"] == "response":
                value = arm.at_most(day, p, response_at_most(arm.madrs0), trial).mean()
            else:
                first, _ = arm.moments(day, p, trial)
                value = (first - arm.madrs0).mean()
            values.append(value)
            weights.append(w1 * w2)
    values, weights = np.array(values), np.array(weights)
    mean = weights @ values
    return float(math.sqrt(weights @ (values - mean) ** 2))


@_exact("cognition_change")
def _(lab, target, p):
    arm = lab.arm(target, p)
    w, mean, _, extra = arm.mixture(target.spec["day"], p)
    composite = arm.x["cognition"]
    total = np.zeros(len(composite))
    for weight, m, (comp, c, prof) in zip(w, mean, extra, strict=True):
        harm = cognitive_harm(c, prof, comp.factor, composite, p)
        total += weight * (
            p.practice + p.regression * composite - p.mood * m - p.susceptible * harm
        )
    return float(total.mean())


def _statistic(lab: _Lab, target: Target, p: Parameters) -> float:
    return _EXACT[target.spec["statistic"]](lab, target, p)


# --------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------
def residuals(
    params: Parameters | None = None, *, n: int = 2000, seed: int = 0, lab: _Lab | None = None
) -> dict[str, float]:
    """Each fit target's precision-weighted residual ``(simulated - published) / (tol / 2)``,
    and each prior's ``log(value / median) / sd``."""
    params = params or load_parameters()
    lab = lab or _Lab(n, seed)
    out = {}
    for target in fit_targets():
        simulated = _statistic(lab, target, params)
        out[target.id] = (simulated - target.published) / (target.tolerance / 2)
    for name, (median, log_sd) in priors(params).items():
        out[f"prior.{name}"] = math.log(params.values[name] / median) / log_sd
    return out


def priors(params: Parameters) -> dict[str, tuple[float, float]]:
    """Log-normal priors (median, SD of the log) of fitted parameters, from their sources."""
    return {
        name: tuple(spec["prior"])
        for name, spec in params.specs.items()
        if "fit" in spec and "prior" in spec
    }


def simulated_values(
    params: Parameters | None = None, *, n: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Each fit target's exact simulated value."""
    params = params or load_parameters()
    lab = _Lab(n, seed)
    return {t.id: _statistic(lab, t, params) for t in fit_targets()}


@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit`."""

    values: dict[str, float]
    start: dict[str, float]
    residuals: dict[str, float]
    objective: float
    evaluations: int
    message: str
    at_bounds: list[str]


def fit(
    params: Parameters | None = None,
    *,
    n: int = 2000,
    seed: int = 0,
    max_evaluations: int = 1500,
    margin: float | None = None,
    restarts: int = 8,
    fixed: Mapping[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Fit the parameters marked ``fit`` to the fit targets (see the module docstring).

    Parameters
    ----------
    params : Parameters, optional
        Starting values (default: the parameter file).
    n : int, default=2000
        Virtual patients per arm (drawn once).
    seed : int, default=0
        Seed of those patients.
    max_evaluations : int, default=1500
        Every evaluation counts, those of the finite-difference Jacobian too.
    margin : float, optional
        Residuals (in SE, tolerance / 2) beyond this are penalised steeply (30 per SE
        beyond), to keep every fit target inside its tolerance where the model can. Default:
        plain least squares. With ``margin=1.75`` every fit target passes, but four
        validation targets fail (the SMD against saline, the drug's advantage at day 28,
        the SD of change at 24-48 h, the share of patients worse than baseline): forcing
        the fit targets in over-fits them, so the default is off.
    restarts : int, default=8
        The cohort's drug-effect parameters lie on a weakly identified ridge (the drug
        effect's mean, spread, correlation with the nonspecific term and ED50 trade off), on
        which one trust-region run stops early with a small step. The fit restarts from its
        own end point, with a fresh trust region, until a restart lowers the objective by
        less than 0.05 (a converged fit) or this many restarts are spent.
    fixed : mapping of str to float, optional
        Fitted parameters held at these values (a profile along the ridge).
    progress : callable, optional
        Called with a line of text after each evaluation that improves the objective.

    Returns
    -------
    FitResult
    """
    from scipy.optimize import least_squares

    params = params or load_parameters()
    if fixed:
        params = params.replace(**fixed)
    free = {k: v for k, v in params.fitted().items() if k not in (fixed or {})}
    names = list(free)
    low = np.array([free[k][0] for k in names])
    high = np.array([free[k][1] for k in names])
    start = np.clip(np.array([params.values[k] for k in names]), low, high)
    lab = _Lab(n, seed)
    targets = fit_targets()
    ids = [t.id for t in targets] + [f"prior.{k}" for k in priors(params)]
    best = {"objective": math.inf, "theta": start}
    calls = {"n": 0}

    class _Budget(Exception):
        pass

    def function(theta: np.ndarray) -> np.ndarray:
        if calls["n"] >= max_evaluations:
            raise _Budget
        calls["n"] += 1
        trial = params.replace(**dict(zip(names, theta.tolist(), strict=True)))
        r = residuals(trial, lab=lab)
        vector = np.array([r[i] for i in ids])
        objective = float(vector @ vector)
        if margin is not None:
            beyond = 30 * np.maximum(np.abs(vector[: len(targets)]) - margin, 0.0)
            vector = np.concatenate([vector, beyond])
        penalised = float(vector @ vector)
        if penalised < best["objective"]:
            best.update(objective=penalised, theta=theta.copy())
            if progress:
                line = f"evaluation {calls['n']}: objective {objective:.2f}"
                if margin is not None:
                    line += f", with the margin penalty {penalised:.2f}"
                progress(line)
        return vector

    message = f"not converged after {restarts} restarts"
    for restart in range(restarts + 1):
        before = best["objective"]
        try:
            least_squares(
                function,
                best["theta"],
                bounds=(low, high),
                x_scale=np.maximum(high - low, 1e-3) / 10,
                diff_step=1e-4,
                ftol=1e-4,
                xtol=1e-6,
            )
        except _Budget:
            message = f"stopped after the budget of {max_evaluations} evaluations"
            break
        if progress and restart:
            progress(f"restart {restart}: objective {before:.2f} -> {best['objective']:.2f}")
        if before - best["objective"] < 0.05:
            message = f"converged (a restart gained {before - best['objective']:.3f})"
            break
    theta = best["theta"]
    values = dict(zip(names, theta.tolist(), strict=True))
    fitted = params.replace(**values)
    r = residuals(fitted, lab=lab)
    span = high - low
    at_bounds = [
        k
        for k, v, lo, hi, s in zip(names, theta, low, high, span, strict=True)
        if min(v - lo, hi - v) < 1e-3 * s
    ]
    return FitResult(
        values=values,
        start=dict(zip(names, start.tolist(), strict=True)),
        residuals=r,
        objective=float(sum(v**2 for v in r.values())),
        evaluations=calls["n"],
        message=message,
        at_bounds=at_bounds,
    )


def summary(result: FitResult, *, n: int, seed: int, margin: float | None) -> Mapping[str, object]:
    """The ``[fit]`` table written into ``parameters.toml``."""
    return {
        "method": "simulated method of moments with exact expectations; scipy least_squares",
        "margin": margin if margin is not None else "none",
        "seed": seed,
        "patients_per_arm": n,
        "targets": sum(not k.startswith("prior.") for k in result.residuals),
        "priors": sum(k.startswith("prior.") for k in result.residuals),
        "parameters": len(result.values),
        "objective": round(result.objective, 3),
        "largest_residual": round(max(abs(v) for v in result.residuals.values()), 3),
        "at_bounds": list(result.at_bounds),
    }
