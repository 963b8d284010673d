"""The generative model of the virtual cohort: a patient's course, and its exact probabilities.

Scores live on the log-odds of their range: for MADRS (0-60), ``l(M) = logit((M + 0.5) / 61)``,
and a score is recovered as ``round(61 * expit(l) - 0.5)``, always a whole number in 0-60.
At a visit ``t`` days after the first session, a patient's MADRS is ``l(baseline) + delta(t)``
with (negative is better)::

    delta(t) = - nu(t) * (1 + sum_p gamma_p x_p + tau_ns z_trial1)          nonspecific
               - G(t)  * (drug_max + sum_p beta_p w_p(t) x_p + tau_drug z_trial2
                          + drug_sd z_drug)                                  specific drug
               - unblinding(t) z_dissociation                               unblinding
               + nonspecific_sd * sqrt(r(t)) z_patient + drift(t)            patient spread
               + visit_noise * e(t)                                           fluctuation

- ``nu(t)``: expectancy from the sessions given (renewed by each, larger for a treatment the
  patient perceives), growth with weeks in the trial, and a newly started oral
  antidepressant's increment; a patient who dissociates more perceives the drug more, and
  their expectancy moves with their dissociation susceptibility (``unblinding``);
- ``G(t) = Emax(true exposure) * kernel(t) * buildup``: the drug's course, rising within
  hours, peaking near 24 h and decaying over about a week, the strongest session so far
  setting the level, later sessions lasting longer and repeated sessions building it up;
- ``x_p``: the predictors (standardised baseline covariates), ``w_p(t)`` their time profile
  (early-acting, late-acting or throughout); trial random effects ``z_trial``; patient
  latent terms ``z_patient`` and ``z_drug`` (correlated: the drug helps least those who
  improve most without it, so effects do not simply add), ``z_dissociation`` and a
  Brownian ``drift``, all shared by a patient's crossover periods but the drift; ``e(t)``
  independent at each visit.

Effects thus combine multiplicatively on the odds of the remaining symptoms. A patient's true
exposure is the published pharmacology (:func:`ketapredict.exposure`) times a log-normal
factor, discretised at 7 Gauss-Hermite nodes: the simulator draws the node, and the true
probabilities sum over them. Given the node, the recorded covariates and the binary fields
that are missing, ``delta`` is Gaussian (missing continuous covariates act linearly and are
Gaussian given the recorded ones: :mod:`.population`), so every true probability is an exact
finite mixture of normal CDFs, rounding of scores included (but for the clip of covariates to
the contract's ranges, about 2 patients in 10,000).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtr

from ..regimen import exposure
from ..schema import (
    COGNITIVE_DECLINE_AT,
    DISSOCIATION_ABOVE,
    KETAMINES,
    OUTCOMES,
    REMISSION_MAX,
    RESPONSE_FRACTION,
    column,
)
from .parameters import Parameters
from .population import BINARY_FIELDS, COGNITION, logistic, severity

__all__ = [
    "Component",
    "Course",
    "Profile",
    "at_most",
    "cadss_mean",
    "cognitive_harm",
    "components",
    "course",
    "dissociation_exposure",
    "latent_draws",
    "predictors",
    "profile",
    "response_at_most",
    "scale_logit",
    "score",
    "simulate_visits",
    "true_probabilities",
]

# A patient's true exposure factor: log-normal, mean 1, discretised at 7 nodes.
NODES, _W = hermegauss(7)
NODE_WEIGHTS = _W / _W.sum()

# Each scale's highest score, as the contract declares it (MADRS 60, HAMD-17 52, SSI 38).
SCALE_MAX = {scale: int(column(f"{scale}_baseline").high) for scale in ("madrs", "hamd17", "ssi")}

_ROUTE_SD = {
    "iv": "exposure_sd_iv",
    "im": "exposure_sd_injected",
    "sc": "exposure_sd_injected",
    "intranasal": "exposure_sd_intranasal",
    "oral": "exposure_sd_oral",
    "sublingual": "exposure_sd_oral",
}


# Predictors: how each standardised covariate acts. ``ns`` and ``drug`` name the parameters
# of its effect on the nonspecific term (relative) and on the drug term (log-odds); ``shape``
# is the drug effect's time profile. A past suicide attempt takes away a fraction of the
# drug's mean effect (it cannot turn the drug harmful), the others add to it.
@dataclass(frozen=True)
class _Predictor:
    ns: str | None
    drug: str
    shape: str  # "full", "early" or "late"
    fraction: bool = False


_PREDICTORS = {
    "failed": _Predictor("ns_failed_treatments", "drug_failed_treatments", "full"),
    "episode": _Predictor("ns_episode", "drug_episode", "full"),
    "age": _Predictor("ns_age", "drug_age", "full"),
    "severity": _Predictor("ns_severity", "drug_severity", "full"),
    "bmi": _Predictor(None, "drug_bmi", "early"),
    "family_history_aud": _Predictor(None, "drug_family_history_aud", "full"),
    "prior_suicide_attempt": _Predictor(None, "drug_suicide_attempt", "late", fraction=True),
    "anxious_distress": _Predictor(None, "drug_anxious", "full"),
    "processing_speed": _Predictor(None, "drug_processing_speed", "full"),
    "working_memory": _Predictor(None, "drug_working_memory", "full"),
}
_COGNITIVE = ("processing_speed", "working_memory")
# Reference patient of drug_max: log BMI 28 (scaled by 0.2), episode 24 months, cognition -0.5.
_LOG_BMI_REF, _LOG_BMI_SCALE = math.log(28.0), 0.2
_LOG_EPISODE_REF = math.log(24.0)
_COGNITION_REF = -0.5


def scale_logit(score_: np.ndarray, scale: str = "madrs") -> np.ndarray:
    """A score on the model's log-odds scale: ``logit((score + 0.5) / (max + 1))``."""
    top = SCALE_MAX[scale] + 1
    fraction = (np.asarray(score_, dtype=float) + 0.5) / top
    return np.log(fraction / (1 - fraction))


def score(latent: np.ndarray, scale: str = "madrs") -> np.ndarray:
    """A whole-number score from the log-odds scale (the inverse of :func:`scale_logit`)."""
    top = SCALE_MAX[scale] + 1
    return np.round(top / (1 + np.exp(-latent)) - 0.5)


def at_most(threshold: np.ndarray | float, scale: str = "madrs") -> np.ndarray:
    """The log-odds below which a score is at most ``threshold``: ``P(M <= c) = P(l < this)``."""
    top = SCALE_MAX[scale] + 1
    fraction = (np.asarray(threshold, dtype=float) + 1) / top
    with np.errstate(divide="ignore"):
        return np.log(fraction / (1 - fraction))


def _hill(x, half, hill):
    x = np.maximum(x, 0.0)
    return x**hill / (x**hill + half**hill)


# --------------------------------------------------------------------------------------------
# The regimen side
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Course:
    """The treatment side of each patient's course: schedule and nominal exposure."""

    sessions_per_week: np.ndarray
    n_sessions: np.ndarray
    equivalent: np.ndarray  # nominal racemic-IV-equivalent dose per session, mg/kg
    peak: np.ndarray  # nominal peak-exposure proxy, mg/kg/h
    exposure_sd: np.ndarray  # SD of the log true exposure factor
    active: np.ndarray
    perceived: np.ndarray  # a comparator the patient perceives (midazolam)
    new_antidepressant: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return 7.0 / self.sessions_per_week

    def take(self, rows: np.ndarray) -> Course:
        """The courses of some patients."""
        return Course(**{k: v[rows] for k, v in vars(self).items()})

    def factor(self, node: np.ndarray | float) -> np.ndarray:
        """The true exposure factor at a node (mean 1 over nodes, by route)."""
        sd = self.exposure_sd
        return np.exp(sd * node - sd**2 / 2)


def course(
    regimens: Mapping[str, np.ndarray], weight_kg: np.ndarray, params: Parameters
) -> Course:
    """The :class:`Course` of patients on ``regimens`` (contract regimen columns)."""
    x = exposure({**regimens, "weight_kg": weight_kg})
    route = np.asarray(regimens["route"], dtype=object)
    sd = np.zeros(len(route))
    for name, parameter in _ROUTE_SD.items():
        sd[route == name] = getattr(params, parameter)
    drug = np.asarray(regimens["drug"], dtype=object)
    new_ad = np.asarray(regimens["new_oral_antidepressant"], dtype=object) == True  # noqa: E712
    return Course(
        sessions_per_week=np.asarray(regimens["sessions_per_week"], dtype=float),
        n_sessions=np.asarray(regimens["n_sessions"], dtype=float),
        equivalent=x["racemic_iv_equivalent_mg_per_kg"],
        peak=np.nan_to_num(x["peak_exposure_mg_per_kg_per_h"]),
        exposure_sd=sd,
        active=np.isin(drug, KETAMINES),
        perceived=drug == "midazolam",
        new_antidepressant=new_ad.astype(bool),
    )


@dataclass(frozen=True)
class Profile:
    """Deterministic time profiles of a course at one visit (one value per patient)."""

    kernel: np.ndarray  # drug course, without Emax: strongest session so far x buildup
    expectancy: np.ndarray  # the sessions' expectancy, 0-1
    felt: np.ndarray  # the same, each session weighted by how much of the drug is felt
    growth: float  # nonspecific growth with time in the trial
    antidepressant: np.ndarray
    given: np.ndarray  # sessions given before t
    early: np.ndarray  # weight of early-acting predictors
    spread: float  # ramp of the patient's nonspecific spread, 0-1
    drift: float  # variance ramp of the Brownian drift, 0-1

    def take(self, rows: np.ndarray) -> Profile:
        """The profiles of some patients."""
        return Profile(
            **{k: v[rows] if isinstance(v, np.ndarray) else v for k, v in vars(self).items()}
        )


def profile(c: Course, t: float, p: Parameters) -> Profile:
    """The time profiles at ``t`` days after the first session.

    A visit sees the sessions given strictly before it. Each session's drug kernel rises with
    time constant ``onset_days``, holds until ``peak_days`` and then decays (Weibull, scale
    ``decay_days`` lengthened by ``consolidation`` per earlier session); the strongest kernel
    sets the level, times the buildup of repeated sessions.
    """
    n = len(c.n_sessions)
    spacing = c.spacing
    kernel = np.zeros(n)
    expectancy = np.zeros(n)
    felt = np.zeros(n)
    given = np.zeros(n)
    last = np.zeros(n)
    most = int(min(c.n_sessions.max(), math.ceil(t / spacing.min()) + 1))
    for k in range(most):
        start = k * spacing
        on = (k < c.n_sessions) & (start < t)
        if not on.any():
            break
        tau = np.where(on, t - start, 0.0)
        after = np.maximum(tau - p.peak_days, 0.0)
        scale = p.decay_days * (1 + p.consolidation * k)
        session = (1 - np.exp(-tau / p.onset_days)) * np.exp(-((after / scale) ** p.decay_shape))
        kernel = np.where(on, np.maximum(kernel, session), kernel)
        lift = (1 - np.exp(-tau / p.expectancy_onset_days)) * np.exp(
            -after / p.expectancy_fade_days
        )
        expectancy = np.where(on, np.maximum(expectancy, lift), expectancy)
        # a session's dissociation, and so how much of the drug is felt, weakens with each
        # earlier session as dissociation does (cadss_tolerance)
        felt = np.where(on, np.maximum(felt, lift / (1 + p.cadss_tolerance * k)), felt)
        given += on
        last = np.where(on, start, last)
    kernel = kernel * (
        1 + p.buildup * (1 - np.exp(-np.maximum(given - 1, 0) / p.buildup_sessions))
    )
    start_ad = logistic(-p.antidepressant_midpoint_days / p.antidepressant_scale_days)
    ad = (
        logistic((t - p.antidepressant_midpoint_days) / p.antidepressant_scale_days) - start_ad
    ) / (1 - start_ad)
    return Profile(
        kernel=kernel,
        expectancy=expectancy,
        felt=felt,
        growth=p.growth * (1 - math.exp(-t / p.growth_days)),
        antidepressant=np.where(c.new_antidepressant, p.antidepressant * ad, 0.0),
        given=given,
        early=np.exp(-(((t - last) / p.early_days) ** 2)),
        spread=1 - math.exp(-t / p.expectancy_onset_days),
        drift=1 - math.exp(-t / p.growth_days),
    )


def _levels(c: Course, prof: Profile, factor: np.ndarray, p: Parameters):
    """At a true exposure: the nonspecific level nu, the drug level G, and the unblinding
    coefficient (how much a patient's expectancy moves per SD of their dissociation)."""
    true_peak = c.peak * factor
    extra = p.expectancy_perceived - p.expectancy_inert
    # a perceived comparator (midazolam) is felt fully; the drug as much as its true peak
    # exposure makes it perceptible, less over repeated sessions (prof.felt)
    perceived = np.where(
        c.perceived,
        prof.expectancy,
        np.where(c.active, _hill(true_peak, p.perceptible_ed50, 2.0), 0.0) * prof.felt,
    )
    nu = p.expectancy_inert * prof.expectancy + extra * perceived + prof.growth
    nu = nu + prof.antidepressant
    emax = np.where(c.active, _hill(c.equivalent * factor, p.ed50, p.hill), 0.0)
    unblinding = p.unblinding * extra * np.where(c.active, perceived, 0.0)
    return nu, emax * prof.kernel, unblinding


# --------------------------------------------------------------------------------------------
# Predictors
# --------------------------------------------------------------------------------------------
def predictors(baseline: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Standardised predictors from baseline columns; NaN where a value is missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "failed": (np.minimum(baseline["n_failed_treatments"], 10) - 3) / 2,
            "episode": np.log(baseline["episode_months"]) - _LOG_EPISODE_REF,
            "age": (baseline["age"] - 45) / 12,
            "severity": severity(baseline["madrs_baseline"]),
            "bmi": (np.log(baseline["bmi"]) - _LOG_BMI_REF) / _LOG_BMI_SCALE,
            "family_history_aud": np.asarray(baseline["family_history_aud"], dtype=float),
            "prior_suicide_attempt": np.asarray(baseline["prior_suicide_attempt"], dtype=float),
            "anxious_distress": np.asarray(baseline["anxious_distress"], dtype=float),
            "processing_speed": baseline["processing_speed_z"] - _COGNITION_REF,
            "working_memory": baseline["working_memory_z"] - _COGNITION_REF,
            "cognition": np.mean([baseline[c] for c in COGNITION], axis=0) - _COGNITION_REF,
        }


@dataclass(frozen=True)
class _Hidden:
    """Missing continuous predictors: conditional means filled in, and their variances."""

    x: dict[str, np.ndarray]  # predictors with conditional means where missing
    var: dict[str, np.ndarray]  # conditional variance (0 where recorded)
    cognition: np.ndarray  # rows whose cognition is missing
    cognition_cov: np.ndarray  # covariance of (processing speed, working memory)


def _fill(x: Mapping[str, np.ndarray], priors: Mapping | None) -> _Hidden:
    x = dict(x)
    n = len(x["age"])
    var = {}
    cognition = np.isnan(x["processing_speed"])
    if priors is None:  # every value recorded
        return _Hidden(x, {}, np.zeros(n, bool), np.zeros((2, 2)))
    for name, prior, shift, scale in (
        ("episode", "log_episode", _LOG_EPISODE_REF, 1.0),
        ("bmi", "log_bmi", _LOG_BMI_REF, _LOG_BMI_SCALE),
    ):
        mean, v = priors[prior]
        missing = np.isnan(x[name])
        x[name] = np.where(missing, (mean - shift) / scale, x[name])
        var[name] = np.where(missing, v / scale**2, 0.0)
    mean, cov = priors["cognition"]
    for k, name in enumerate(_COGNITIVE):
        x[name] = np.where(cognition, mean[:, k] - _COGNITION_REF, x[name])
    return _Hidden(x, var, cognition, cov[:2, :2])


@dataclass(frozen=True)
class Component:
    """One term of a patient's Gaussian mixture for ``delta`` at a visit."""

    weight: np.ndarray
    mean: np.ndarray  # in a typical trial (trial effects at zero)
    var: np.ndarray  # given the trial
    trial_shift: np.ndarray  # mean shift per unit trial effect: (nonspecific, drug)
    trial_var: np.ndarray  # extra variance when the trial effects are unknown
    noise_var: float  # the visit fluctuation's share of ``var``
    factor: np.ndarray  # the true exposure factor
    drug: np.ndarray  # the drug level G
    unblinding: np.ndarray  # coefficient of -z_dissociation in delta


def _profile_weight(prof: Profile, shape: str) -> np.ndarray | float:
    return {"full": 1.0, "early": prof.early, "late": 1 - prof.early}[shape]


def components(
    c: Course,
    x: Mapping[str, np.ndarray],
    prof: Profile,
    p: Parameters,
    priors: Mapping | None = None,
    nodes: np.ndarray | None = None,
) -> Iterator[Component]:
    """The mixture components of ``delta`` at the profile's visit, given recorded ``x``.

    One component per exposure node and per combination of the values of the binary fields
    that are missing (each weighted by its probability given what was recorded).

    Parameters
    ----------
    c : Course
        The patients' courses.
    x : dict of arrays
        :func:`predictors`, NaN where missing.
    prof : Profile
        The courses' time profiles at the visit.
    p : Parameters
        The model's parameters.
    priors : dict, optional
        :func:`population.hidden_priors`; required when some value is missing.
    nodes : array of int, optional
        Each patient's own exposure node (a simulated patient's). Default: every node,
        weighted.
    """
    hidden = _fill(x, priors)
    binary = [f for f in BINARY_FIELDS if np.isnan(hidden.x[f]).any()]
    if binary and priors is None:
        raise ValueError(f"missing {binary} without priors")
    node_list = (
        [(NODES[nodes], 1.0)] if nodes is not None else zip(NODES, NODE_WEIGHTS, strict=True)
    )
    base_var = p.nonspecific_sd**2 * prof.spread + p.drift_sd**2 * prof.drift + p.visit_noise**2
    n = len(c.n_sessions)
    for node, node_weight in node_list:
        factor = c.factor(node)
        nu, drug, unblinding = _levels(c, prof, factor, p)
        # the drug term -G sd z_drug with z_drug = rho z_patient + ...: its covariance with
        # the patient's nonspecific term sd_ns sqrt(r) z_patient is -G sd rho sd_ns sqrt(r)
        var = (
            base_var
            + unblinding**2
            + drug**2 * p.drug_sd**2
            - 2 * drug * p.drug_sd * p.drug_nonspecific_correlation
            * p.nonspecific_sd * math.sqrt(prof.spread)
        )  # fmt: skip
        trial_shift = np.stack([-nu * p.tau_nonspecific, -drug * p.tau_drug])
        trial_var = (nu * p.tau_nonspecific) ** 2 + (drug * p.tau_drug) ** 2
        for values in itertools.product((0.0, 1.0), repeat=len(binary)):
            weight = np.full(n, node_weight)
            value = dict(hidden.x)
            for name, v in zip(binary, values, strict=True):
                recorded = hidden.x[name]
                prob = priors[name]
                weight = weight * np.where(
                    np.isnan(recorded), prob if v else 1 - prob, recorded == v
                )
                value[name] = np.where(np.isnan(recorded), v, recorded)
            ns_scale = np.ones(n)
            additive = np.full(n, p.drug_max)
            multiplier = np.ones(n)
            slopes = {}  # d(drug mean)/d(predictor), for the hidden continuous ones
            for name, spec in _PREDICTORS.items():
                beta = getattr(p, spec.drug) * _profile_weight(prof, spec.shape)
                v = np.nan_to_num(value[name])  # cognition of untested rows: prior mean
                if spec.fraction:
                    multiplier = multiplier + beta * v
                    continue
                if spec.ns:
                    ns_scale = ns_scale + getattr(p, spec.ns) * v
                additive = additive + beta * v
                slopes[name] = beta
            comp_var = var
            for name, v_hidden in hidden.var.items():
                gamma = getattr(p, _PREDICTORS[name].ns) if _PREDICTORS[name].ns else 0.0
                coefficient = nu * gamma + drug * slopes[name] * multiplier
                comp_var = comp_var + coefficient**2 * v_hidden
            if hidden.cognition.any():
                w = np.array([slopes[k] for k in _COGNITIVE])
                cognitive = (drug * multiplier) ** 2 * (w @ hidden.cognition_cov @ w)
                comp_var = comp_var + np.where(hidden.cognition, cognitive, 0.0)
            yield Component(
                weight=weight,
                mean=-nu * ns_scale - drug * additive * multiplier,
                var=comp_var,
                trial_shift=trial_shift,
                trial_var=trial_var,
                noise_var=p.visit_noise**2,
                factor=factor,
                drug=drug,
                unblinding=unblinding,
            )


# --------------------------------------------------------------------------------------------
# True probabilities
# --------------------------------------------------------------------------------------------
def cognitive_harm(c: Course, prof: Profile, factor, composite, p: Parameters) -> np.ndarray:
    """Harm to cognition in a susceptible patient (SD units; CALIBRATION.md G)."""
    per_week = c.sessions_per_week
    frequency = np.where(c.active & (prof.given >= 2), per_week**2 / (per_week**2 + 4.0**2), 0.0)
    cumulative = c.equivalent * factor * prof.given
    harm = p.frequency_harm * frequency + p.cumulative_harm * cumulative / (
        cumulative + p.cumulative_half
    )
    return harm * np.maximum(1 + p.baseline_harm * composite, 0.0)


def dissociation_exposure(c: Course, factor, p: Parameters) -> np.ndarray:
    return np.where(c.active, _hill(c.peak * factor, p.cadss_ed50, 2.0), 0.0)


def cadss_mean(p: Parameters, family: np.ndarray | float, h: np.ndarray) -> np.ndarray:
    """The mean first-session CADSS of a patient at dissociation exposure ``h`` (of
    :func:`dissociation_exposure`), by family history of alcohol use disorder (0 or 1)."""
    return p.cadss_baseline + p.cadss_max * (1 - p.cadss_family_history * family) * h


def response_at_most(madrs0: np.ndarray) -> np.ndarray:
    """The highest whole MADRS that is a response from baseline ``madrs0``."""
    return np.floor(madrs0 * RESPONSE_FRACTION)


def true_probabilities(
    c: Course,
    x: Mapping[str, np.ndarray],
    madrs0: np.ndarray,
    prof: Profile,
    p: Parameters,
    priors: Mapping | None,
    trial: tuple[float, float] = (0.0, 0.0),
) -> dict[str, np.ndarray]:
    """Each patient's true probability of every outcome at the profile's visit.

    ``p_*`` are given the trial's random effects ``trial``; ``p_*_marginal`` for a new trial
    (random effects integrated out). Cognitive decline is NaN for a patient without a
    baseline battery (no cognitive outcome).
    """
    n = len(madrs0)
    out = {f"p_{name}{suffix}": np.zeros(n) for name in OUTCOMES for suffix in ("", "_marginal")}
    # Rows that need fewer components are computed apart: comparators do not depend on the
    # exposure node, and only rows with a missing binary field sum over its values.
    hidden_binary = np.zeros(n, dtype=bool)
    for name in BINARY_FIELDS:
        hidden_binary |= np.isnan(np.asarray(x[name], dtype=float))
    for active in (False, True):
        for hidden in (False, True):
            rows = np.flatnonzero((c.active == active) & (hidden_binary == hidden))
            if not len(rows):
                continue
            part = _probabilities(
                c.take(rows),
                {k: np.asarray(v)[rows] for k, v in x.items()},
                np.asarray(madrs0, dtype=float)[rows],
                prof.take(rows),
                p,
                None if priors is None else _take_priors(priors, rows),
                trial,
                all_nodes=active,
            )
            for name, values in part.items():
                out[name][rows] = values
    for name, values in out.items():
        out[name] = np.clip(values, 0.0, 1.0)
    tested = ~np.isnan(np.asarray(x["cognition"], dtype=float))
    for suffix in ("", "_marginal"):
        name = f"p_cognitive_decline{suffix}"
        out[name] = np.where(tested, out[name], np.nan)
    return out


def _take_priors(priors: Mapping, rows: np.ndarray) -> dict:
    """The priors of some patients (the binary fields' probabilities are shared)."""
    taken = dict(priors)
    for name in ("log_bmi", "log_episode"):
        mean, var = priors[name]
        taken[name] = (mean[rows], var[rows])
    mean, cov = priors["cognition"]
    taken["cognition"] = (mean[rows], cov)
    return taken


def _probabilities(c, x, madrs0, prof, p, priors, trial, *, all_nodes: bool) -> dict:
    base = scale_logit(madrs0)
    response_at = at_most(response_at_most(madrs0)) - base
    remission_at = at_most(REMISSION_MAX) - base
    composite = np.nan_to_num(x["cognition"])
    cognition_base = p.practice + p.regression * composite
    n = len(base)
    out = {}
    nodes = None if all_nodes else np.full(n, len(NODES) // 2)
    for comp in components(c, x, prof, p, priors, nodes=nodes):
        shift = comp.trial_shift[0] * trial[0] + comp.trial_shift[1] * trial[1]
        # cognition: practice, regression, mood (the latent change without the visit's
        # fluctuation), harm in the susceptible
        harm = cognitive_harm(c, prof, comp.factor, composite, p)
        for suffix, mean, var in (
            ("", comp.mean + shift, comp.var),
            ("_marginal", comp.mean, comp.var + comp.trial_var),
        ):
            sd = np.sqrt(var)
            mu = cognition_base - p.mood * mean
            sd_c = np.sqrt(p.mood**2 * (var - comp.noise_var) + p.cognition_noise**2)
            terms = {
                "response": ndtr((response_at - mean) / sd),
                "remission": ndtr((remission_at - mean) / sd),
                "cognitive_decline": (1 - p.susceptible) * ndtr((COGNITIVE_DECLINE_AT - mu) / sd_c)
                + p.susceptible * ndtr((COGNITIVE_DECLINE_AT - mu + harm) / sd_c),
            }
            for name, value in terms.items():
                key = f"p_{name}{suffix}"
                out[key] = out.get(key, 0.0) + comp.weight * value
    # dissociation depends on the exposure node and family history (no trial effect); a
    # missing family history is summed over its two values
    family = np.asarray(x["family_history_aud"], dtype=float)
    if priors is not None:
        family = np.where(np.isnan(family), priors["family_history_aud"], family)
    dissociation = np.zeros(n)
    for node, weight in zip(NODES, NODE_WEIGHTS, strict=True) if all_nodes else [(0.0, 1.0)]:
        h = dissociation_exposure(c, c.factor(node), p)
        sd = np.sqrt(p.cadss_noise**2 + (p.cadss_sd * h) ** 2)
        for value, share in ((0.0, 1 - family), (1.0, family)):
            mean = cadss_mean(p, value, h)
            dissociation += weight * share * ndtr((mean - (DISSOCIATION_ABOVE + 0.5)) / sd)
    out["p_dissociation"] = dissociation
    out["p_dissociation_marginal"] = dissociation
    return out


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Latent:
    """A patient's own latent terms, shared by the periods of a crossover."""

    node: np.ndarray  # exposure node index
    patient: np.ndarray  # nonspecific propensity
    drug: np.ndarray  # drug sensitivity
    dissociation: np.ndarray  # dissociation susceptibility (its own part)
    susceptible: np.ndarray  # cognitive harm


def latent_draws(n: int, p: Parameters, rng: np.random.Generator) -> Latent:
    """Draw ``n`` patients' latent terms."""
    node = rng.choice(len(NODES), size=n, p=NODE_WEIGHTS)
    patient, own, dissociation = rng.standard_normal((3, n))
    rho = p.drug_nonspecific_correlation
    drug = rho * patient + math.sqrt(1 - rho**2) * own
    return Latent(node, patient, drug, dissociation, rng.random(n) < p.susceptible)


def simulate_visits(
    c: Course,
    full: Mapping[str, np.ndarray],
    visits: tuple[float, ...],
    p: Parameters,
    rng: np.random.Generator,
    latent: Latent,
    trial: tuple[float, float] = (0.0, 0.0),
) -> dict[str, np.ndarray]:
    """Scores at each visit and the endpoint outcomes (the last visit), from full covariates.

    Returns the visit columns (``madrs_<visit>``, ``hamd17_*``, ``ssi_*``), ``response``,
    ``remission``, ``cognition_change`` and ``cognitive_decline`` (before masking: the
    caller blanks them for patients without a battery), ``cadss_peak``, ``cadss_last`` and
    ``dissociation``.
    """
    from ..schema import visit_label

    n = len(full["age"])
    x = predictors(full)
    base = {scale: scale_logit(full[f"{scale}_baseline"], scale) for scale in SCALE_MAX}
    drift = np.zeros(n)
    drift_ramp = 0.0
    out: dict[str, np.ndarray] = {}
    for t in visits:
        prof = profile(c, t, p)
        (comp,) = components(c, x, prof, p, nodes=latent.node)
        shift = comp.trial_shift[0] * trial[0] + comp.trial_shift[1] * trial[1]
        drift = drift + p.drift_sd * math.sqrt(max(prof.drift - drift_ramp, 0.0)) * (
            rng.standard_normal(n)
        )
        drift_ramp = prof.drift
        mood = (
            comp.mean
            + shift
            + p.nonspecific_sd * math.sqrt(prof.spread) * latent.patient
            - comp.drug * p.drug_sd * latent.drug
            - comp.unblinding * latent.dissociation
            + drift
        )
        noise = p.visit_noise * rng.standard_normal((3, n))
        label = visit_label(t)
        out[f"madrs_{label}"] = score(base["madrs"] + mood + noise[0], "madrs")
        out[f"hamd17_{label}"] = score(base["hamd17"] + p.hamd_factor * mood + noise[1], "hamd17")
        out[f"ssi_{label}"] = score(base["ssi"] + p.ssi_factor * mood + noise[2], "ssi")

    last = out[f"madrs_{visit_label(visits[-1])}"]
    madrs0 = full["madrs_baseline"]
    out["response"] = last <= response_at_most(madrs0)
    out["remission"] = last <= REMISSION_MAX

    composite = x["cognition"]
    harm = cognitive_harm(c, prof, comp.factor, composite, p)
    change = (
        p.practice
        + p.regression * composite
        - p.mood * mood
        - latent.susceptible * harm
        + p.cognition_noise * rng.standard_normal(n)
    )
    out["cognition_change"] = change
    out["cognitive_decline"] = change <= COGNITIVE_DECLINE_AT

    h = dissociation_exposure(c, comp.factor, p)
    family = np.nan_to_num(np.asarray(x["family_history_aud"], dtype=float))
    susceptibility = (
        p.cadss_max * (1 - p.cadss_family_history * family) + p.cadss_sd * latent.dissociation
    )
    tolerance = 1 / (1 + p.cadss_tolerance * (np.maximum(prof.given, 1) - 1))
    noise = p.cadss_noise * rng.standard_normal((2, n))
    first = p.cadss_baseline + susceptibility * h + noise[0]
    out["cadss_peak"] = np.clip(np.round(first), 0, 92)
    out["cadss_last"] = np.clip(
        np.round(p.cadss_baseline + susceptibility * h * tolerance + noise[1]), 0, 92
    )
    out["dissociation"] = out["cadss_peak"] > DISSOCIATION_ABOVE
    return out
