"""A virtual cohort: patients on ketamine, with their courses and true outcome probabilities.

Real ketamine trial data is private, so ketapredict learns and is tested on virtual patients
whose behaviour reproduces the published trials (``ketapredict calibrate`` shows how well)
and whose true outcome probabilities are known, so that every model can be measured against
the best possible score (the *oracle*).

The generative model, per patient ``i`` and time ``t`` in days after the first session:

- baseline covariates drawn from a :class:`Population` with realistic joint structure;
- improvement as a fraction of baseline MADRS,
  ``I_i(t) = pi_i * a(t) + ad_i * b(t) + s_i * G_i(t)``, where ``a(t)`` is the nonspecific
  (placebo) time course, ``b(t)`` a newly started oral antidepressant's, ``G_i(t)`` the drug
  course (Emax dose-response per session, onset within hours, plateau near 24 h, decay over
  about a week; the strongest session so far sets the effect, and later sessions last
  longer), and ``pi_i``, ``ad_i``, ``s_i``
  individual sensitivities; ``s_i``'s mean depends on the published predictors;
- MADRS at a visit ``M0_i * (1 - I_i(t)) + noise``, rounded and clipped to 0-60;
- first-session dissociation (CADSS) from the peak-exposure proxy, with an individual
  sensitivity correlated with ``s_i`` (Luckenbaugh 2014), fading over repeated sessions;
- cognitive change from practice, mood, regression to the mean and, in a susceptible subset,
  harm growing with dosing frequency and cumulative exposure, larger with higher baseline
  cognition (seed review 002, CALIBRATION.md B7).

All latent terms are Gaussian given the baseline, so each patient's true outcome probability
given the observed columns (``p_response``, ...) is computed exactly, not estimated.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .exceptions import Problem, ValidationError
from .regimen import REGIMEN_FIELDS, Regimen, exposure
from .schema import column, visit_days, visit_label

__all__ = [
    "Population",
    "published_trials",
    "simulate_arm",
    "simulate_cohort",
    "simulate_trial",
]


# --------------------------------------------------------------------------------------------
# Populations
# --------------------------------------------------------------------------------------------
# Defaults by diagnosis for covariates whose distribution differs most between trial
# populations. They are typical of ketamine trial samples, not calibration targets.
_BY_DIAGNOSIS = {
    # failed adequate antidepressant trials in the episode (TRD: at least 2 by definition)
    "failed_treatments_mean": {"TRD": 3.5, "MDD": 0.4, "bipolar": 2.5},
    "episode_months_median": {"TRD": 24.0, "MDD": 6.0, "bipolar": 12.0},
    "suicide_attempt_rate": {"TRD": 0.25, "MDD": 0.20, "bipolar": 0.40},
}


@dataclass(frozen=True, kw_only=True)
class Population:
    """The patients a trial recruits: distributions of every baseline covariate.

    Parameters
    ----------
    diagnosis : {"MDD", "TRD", "bipolar"}, default="TRD"
    madrs_mean, madrs_sd : float, default=33, 5
        Baseline MADRS, truncated to ``madrs_min``-60 (the inclusion threshold).
    madrs_min : float, default=20
    age_mean, age_sd : float, default=45, 12
        Truncated to 18-80.
    female_fraction : float, default=0.6
    bmi_mean, bmi_sd : float, default=28, 6
        Log-normal, truncated to 16-60 kg/m^2; weight follows from BMI and a sex-specific
        height.
    failed_treatments_mean : float, optional
        Mean failed antidepressant trials (TRD: 2 plus a Poisson excess; MDD: 0 or 1).
        Defaults by diagnosis (TRD 3.5, MDD 0.4, bipolar 2.5).
    episode_months_median : float, optional
        Median episode length (log-normal, longer with more failed treatments). Defaults
        by diagnosis (TRD 24, MDD 6, bipolar 12).
    anxious_distress_rate : float, default=0.45
        About half of TRD samples have anxious depression (Ionescu 2014).
    suicide_attempt_rate : float, optional
        Lifetime suicide attempts. Defaults by diagnosis (TRD 0.25, MDD 0.20, bipolar 0.40).
    family_history_aud_rate : float, default=0.3
    ssi_mean : float, default=6
        Mean of the latent Scale for Suicidal Ideation score before clipping to 0-38.
    ssi_min : float, default=0
        Inclusion threshold on SSI (Grunebaum 2018 required SSI >= 4).
    cognition_mean : float, default=-0.5
        Mean cognitive z-score against healthy norms; depressed samples score about half
        an SD below.
    cognition_tested, hamd17_rated, ssi_rated : float, default=1, 1, 1
        Fraction of patients with a baseline cognitive battery, HAMD-17 and SSI. The rest
        have them missing (and no cognitive outcome when untested).

    Raises
    ------
    ValidationError
        For an impossible population, naming each bad argument.

    Examples
    --------
    >>> from ketapredict import Population
    >>> Population(diagnosis="MDD", madrs_mean=30).failed_treatments_mean
    0.4
    """

    diagnosis: str = "TRD"
    madrs_mean: float = 33.0
    madrs_sd: float = 5.0
    madrs_min: float = 20.0
    age_mean: float = 45.0
    age_sd: float = 12.0
    female_fraction: float = 0.6
    bmi_mean: float = 28.0
    bmi_sd: float = 6.0
    failed_treatments_mean: float | None = None
    episode_months_median: float | None = None
    anxious_distress_rate: float = 0.45
    suicide_attempt_rate: float | None = None
    family_history_aud_rate: float = 0.3
    ssi_mean: float = 6.0
    ssi_min: float = 0.0
    cognition_mean: float = -0.5
    cognition_tested: float = 1.0
    hamd17_rated: float = 1.0
    ssi_rated: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        diagnoses = column("diagnosis").categories
        normalised = {d.casefold(): d for d in diagnoses}.get(str(self.diagnosis).casefold())
        if normalised is None:
            problems.append(
                Problem(
                    "diagnosis",
                    self.diagnosis,
                    f"diagnosis={self.diagnosis!r} is not {column('diagnosis').allowed()}",
                )
            )
        else:
            object.__setattr__(self, "diagnosis", normalised)
            for name, defaults in _BY_DIAGNOSIS.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, defaults[normalised])
        limits = {
            "madrs_mean": (0, 60),
            "madrs_sd": (0.1, 20),
            "madrs_min": (0, 59),
            "age_mean": (18, 80),
            "age_sd": (0.1, 30),
            "female_fraction": (0, 1),
            "bmi_mean": (16, 60),
            "bmi_sd": (0.1, 20),
            "failed_treatments_mean": (0, 20),
            "episode_months_median": (0.5, 240),
            "anxious_distress_rate": (0, 1),
            "suicide_attempt_rate": (0, 1),
            "family_history_aud_rate": (0, 1),
            "ssi_mean": (-20, 38),
            "ssi_min": (0, 30),
            "cognition_mean": (-4, 4),
            "cognition_tested": (0, 1),
            "hamd17_rated": (0, 1),
            "ssi_rated": (0, 1),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if value is None:  # a by-diagnosis default the bad diagnosis left unset
                continue
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not (math.isfinite(value) and low <= value <= high)
            ):
                problems.append(
                    Problem(name, value, f"{name}={value!r} is not a number in {low:g}-{high:g}")
                )
        if (
            normalised == "TRD"
            and isinstance(self.failed_treatments_mean, int | float)
            and (self.failed_treatments_mean < 2)
        ):
            problems.append(
                Problem(
                    "failed_treatments_mean",
                    self.failed_treatments_mean,
                    "failed_treatments_mean must be at least 2 for TRD",
                )
            )
        if (
            normalised == "MDD"
            and isinstance(self.failed_treatments_mean, int | float)
            and (self.failed_treatments_mean > 1)
        ):
            problems.append(
                Problem(
                    "failed_treatments_mean",
                    self.failed_treatments_mean,
                    "failed_treatments_mean must be at most 1 for MDD (two or "
                    "more failed trials is TRD)",
                )
            )
        if (
            isinstance(self.madrs_min, int | float)
            and isinstance(self.madrs_mean, int | float)
            and self.madrs_min > self.madrs_mean + 2 * self.madrs_sd
        ):
            problems.append(
                Problem(
                    "madrs_min",
                    self.madrs_min,
                    f"madrs_min={self.madrs_min!r} "
                    "leaves almost no one eligible; keep it below madrs_mean + "
                    "2 madrs_sd",
                )
            )
        if problems:
            raise ValidationError(problems, "population")


# --------------------------------------------------------------------------------------------
# Effect parameters
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Effects:
    """Every parameter of the outcome model, with where it comes from.

    "Calibrated" means chosen so that ``calibration_report()`` reproduces the named rows of
    CALIBRATION.md (found by searching these values against the report, which then passed
    for every seed tried); "assumed" marks a modelling choice no source pins down, and the
    rows named after it check that it behaves as the sources describe.
    """

    # -- drug effect per session: Emax on the racemic-IV-equivalent dose (mg/kg) ------------
    # Clear benefit at 0.5 and 1.0 mg/kg, weak at 0.1-0.2 (Fava 2020, A7); esketamine 0.2 and
    # 0.4 mg/kg (0.4 and 0.8 racemic-equivalent) equally effective (Singh 2016b, A4).
    # Calibrated: A4, A7.
    ed50: float = 0.22
    hill: float = 5.0
    # individual maximal drug improvement (fraction of baseline MADRS) at reference
    # covariates, and its SD between patients with the same covariates. Calibrated: A1-A6, D.
    drug_mean: float = 0.28
    drug_sd: float = 0.1
    # -- time course of one session (days): onset within hours, a plateau from about 24 h,
    # then a Weibull decay: the effect lasts about a week and most patients are back to
    # baseline within three weeks (seed review 002, B1). Calibrated: A1 (day 7), B1.
    onset_days: float = 0.15
    plateau_days: float = 1.3
    decay_days: float = 12.0
    decay_shape: float = 2.5
    # Sessions do not add up: the effect at any time is that of the strongest session so far,
    # so a course sustains the single-dose effect rather than multiplying it (Singh 2016a's
    # repeated arms at day 15, A2-A3, are no larger than single infusions at 24 h, A1, A4).
    # Each further session lasts longer, so repeated infusions give longer response than one
    # (seed review 002, B4). Assumed size, checked against A2-A3 and B3-B4.
    consolidation: float = 0.1
    # shorter effect in bipolar depression, gone after day 3 (Diazgranados 2010, A6)
    bipolar_duration: float = 0.3
    # past suicide attempt: less response at day 7 (Niciu 2014), modelled as a shorter effect
    suicide_attempt_duration: float = 0.7
    # -- predictors of the individual drug effect (CALIBRATION.md C), per unit. Directions
    # from the sources; sizes assumed, together giving a realistic oracle AUC (D). ----------
    mdd_effect: float = 0.02  # non-resistant MDD remits more than TRD (seed review 002, B2)
    failed_effect: float = -0.005  # per failed treatment above 3 (Cheng 2021)
    episode_effect: float = -0.01  # per log-month of episode above 24 months (Cheng 2021)
    # per MADRS point above 38: very high severity responds less (Zarate/Murrough TRD trials)
    severe_effect: float = -0.012
    bmi_effect: float = 0.009  # per kg/m^2 above 27 (Niciu 2014)
    fh_aud_effect: float = 0.1  # family history of alcohol use disorder (Niciu 2014; Phelps 2009)
    anxious_effect: float = 0.02  # anxious depression responds no less (Ionescu 2014)
    # slower processing speed and lower attention (working memory here) predict more
    # response (Murrough 2015; Shiroma 2014), per SD above the depressed mean (-0.5)
    processing_speed_effect: float = -0.06
    working_memory_effect: float = -0.02
    # -- nonspecific improvement (fraction of baseline MADRS) --------------------------------
    # Expectancy after a visit: a single saline infusion improves MADRS a few points (Singh
    # 2016b saline -3.8 at day 2, A4; B9). A perceptibly psychoactive treatment (midazolam,
    # or ketamine at a dose patients notice) keeps blinding and expectancy, which is why
    # ketamine beats midazolam by less than saline (Wilkinson 2019, B8; Grunebaum 2018, A5).
    # Calibrated: A4, A5, A7.
    early_inert: float = 0.10
    early_perceived: float = 0.28
    early_days: float = 0.25
    # a session's lift fades over about two weeks unless another session renews it, so a
    # single infusion's nonspecific gain is gone within weeks (assumed; checked by B1, B9)
    expectancy_days: float = 14.0
    # peak exposure (mg/kg/h) at which ketamine is half as perceptible as midazolam; below
    # dissociation's: patients notice ketamine short of clinically relevant dissociation
    # (assumed; checked by A7)
    perceptible_ed50: float = 0.25
    # slow nonspecific response growing over multi-week trials (B9): its mean, and its SD
    # between patients, which makes placebo arms spread out as weeks pass (some patients
    # respond, some worsen; Singh 2016a's saline arms had SDs of 5.7-10.2 MADRS points at
    # day 15). Calibrated: A2-A3 saline, B9.
    late: float = 0.09
    late_sd: float = 0.45
    late_days: float = 35.0
    # SD of the individual multiplier of the nonspecific course. Calibrated: A1, A6.
    placebo_sd: float = 0.35
    # newly started oral antidepressant: begins after 2-3 weeks, clinically meaningful by 4-8
    # (seed review 002, B9); size assumed
    antidepressant: float = 0.12
    antidepressant_midpoint_days: float = 28.0
    antidepressant_scale_days: float = 7.0
    antidepressant_sd: float = 0.8
    # -- measurement ------------------------------------------------------------------------
    # MADRS rater and day-to-day noise, points (MADRS inter-rater reliability is high).
    # Calibrated: A1, A6, B3.
    madrs_noise: float = 1.8
    # HAMD-17 falls about half as much as MADRS in relative terms in the first days (its
    # sleep, appetite and somatic items cover the past week); SSI about as much as MADRS.
    # Calibrated: Grunebaum 2018, A5.
    hamd_factor: float = 0.5
    hamd_noise: float = 2.0
    ssi_factor: float = 0.9
    ssi_noise: float = 1.5
    # -- dissociation (CADSS) ---------------------------------------------------------------
    # Emax on the peak-exposure proxy (mg/kg/h racemic-IV-equivalent): dissociation rises
    # with dose (Fava 2020, A7), is common with IV 0.5 mg/kg over 40 min (Singh 2016, A8),
    # mild after oral and sublingual doses (B6). Sizes assumed; checked by A4, A7, A8, B6.
    cadss_ed50: float = 0.6
    cadss_hill: float = 2.0
    cadss_max_mean: float = 12.0
    cadss_max_sd: float = 8.0
    cadss_baseline: float = 1.0
    cadss_noise: float = 1.5
    # correlation of dissociation sensitivity with drug sensitivity: more dissociation, more
    # response (Luckenbaugh 2014, r ~ -0.35 with later depression score; C)
    cadss_drug_correlation: float = 0.6
    # weakening with repeated sessions (Singh 2016, A8): factor 1 / (1 + k (m - 1))
    cadss_tolerance: float = 0.12
    # -- cognition (composite z, SD units) --------------------------------------------------
    practice: float = 0.12  # retest practice effect (assumed)
    regression: float = -0.15  # regression to the mean per SD of baseline (assumed)
    mood: float = 0.35  # cognition improves with mood (assumed)
    cognition_noise: float = 0.30  # retest noise of a composite (assumed)
    # Harm only in a subset (seed review 002, B7), from frequency (lasting deficits with more
    # than 4 uses a week) and cumulative exposure, larger with higher baseline cognition.
    # Sizes assumed; checked by B7.
    susceptible: float = 0.35
    frequency_harm: float = 1.1
    frequency_midpoint: float = 4.0
    frequency_scale: float = 0.5
    cumulative_harm: float = 0.9
    cumulative_half: float = 5.0
    baseline_harm: float = 0.35


EFFECTS = _Effects()

# Baseline cognition: three domain z-scores, correlated (assumed 0.5), SD 0.9, declining with
# age (per year above 45; assumed): processing speed fastest.
_COGNITION = ("processing_speed_z", "working_memory_z", "verbal_memory_z")
_COGNITION_AGE = np.array([-0.02, -0.01, -0.015])
_COGNITION_COV = 0.9**2 * (0.5 * np.ones((3, 3)) + 0.5 * np.eye(3))
_COGNITION_REF = -0.5


# --------------------------------------------------------------------------------------------
# Drawing baseline covariates
# --------------------------------------------------------------------------------------------
def _truncated_normal(rng, mean, sd, low, high, n):
    values = rng.normal(mean, sd, n)
    for _ in range(100):
        bad = (values < low) | (values > high)
        if not bad.any():
            break
        values[bad] = rng.normal(mean, sd, bad.sum())
    return np.clip(values, low, high)


def _draw_baseline(pop: Population, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    age = _truncated_normal(rng, pop.age_mean, pop.age_sd, 18, 80, n)
    female = rng.random(n) < pop.female_fraction
    height = rng.normal(np.where(female, 1.63, 1.77), 0.07)
    sigma = math.sqrt(math.log(1 + (pop.bmi_sd / pop.bmi_mean) ** 2))
    bmi = np.clip(rng.lognormal(math.log(pop.bmi_mean) - sigma**2 / 2, sigma, n), 16, 60)
    weight = np.clip(np.round(bmi * height**2, 1), 25, 300)
    bmi = np.round(bmi, 1)

    mean_failed = pop.failed_treatments_mean
    if pop.diagnosis == "TRD":
        failed = 2 + rng.poisson(mean_failed - 2, n)
    elif pop.diagnosis == "MDD":
        failed = (rng.random(n) < mean_failed).astype(int)
    else:
        failed = rng.poisson(mean_failed, n)
    failed = np.minimum(failed, 30)
    episode = pop.episode_months_median * np.exp(
        0.12 * (failed - mean_failed) + rng.normal(0, 0.8, n)
    )
    episode = np.round(np.clip(episode, 0.5, 600), 1)
    anxious = rng.random(n) < pop.anxious_distress_rate
    attempt = rng.random(n) < pop.suicide_attempt_rate
    fh_aud = rng.random(n) < pop.family_history_aud_rate

    madrs = np.round(_truncated_normal(rng, pop.madrs_mean, pop.madrs_sd, pop.madrs_min, 60, n))
    # HAMD-17 linked to MADRS (MADRS 33 ~ HAMD-17 24; assumed linear link)
    hamd = np.clip(np.round(0.68 * madrs + 1.5 + rng.normal(0, 2.5, n)), 0, 52)
    ssi_latent = (
        pop.ssi_mean + 0.25 * (madrs - pop.madrs_mean) + 4.0 * (attempt - pop.suicide_attempt_rate)
    )
    ssi = _truncated_normal(rng, 0.0, 5.0, -np.inf, np.inf, n) + ssi_latent
    for _ in range(100):
        low = ssi < pop.ssi_min
        if not low.any():
            break
        ssi[low] = ssi_latent[low] + rng.normal(0, 5.0, low.sum())
    ssi = np.clip(np.round(np.maximum(ssi, pop.ssi_min)), 0, 38)

    cognition = (
        pop.cognition_mean
        + np.outer(age - 45, _COGNITION_AGE)
        + rng.multivariate_normal(np.zeros(3), _COGNITION_COV, n)
    )
    cognition = np.clip(cognition, -6, 6)
    tested = rng.random(n) < pop.cognition_tested
    hamd = np.where(rng.random(n) < pop.hamd17_rated, hamd, np.nan)
    ssi = np.where(rng.random(n) < pop.ssi_rated, ssi, np.nan)

    baseline = {
        "age": np.round(age, 1),
        "sex": np.where(female, "female", "male").astype(object),
        "bmi": bmi,
        "weight_kg": weight,
        "diagnosis": np.full(n, pop.diagnosis, dtype=object),
        "n_failed_treatments": failed.astype(float),
        "episode_months": episode,
        "anxious_distress": anxious,
        "prior_suicide_attempt": attempt,
        "family_history_aud": fh_aud,
        "madrs_baseline": madrs,
        "hamd17_baseline": hamd,
        "ssi_baseline": ssi,
    }
    for k, name in enumerate(_COGNITION):
        baseline[name] = np.where(tested, cognition[:, k], np.nan)
    # kept for the exact true probabilities of untested patients, never returned
    baseline["_cognition_prior_mean"] = pop.cognition_mean + np.outer(age - 45, _COGNITION_AGE)
    return baseline


# --------------------------------------------------------------------------------------------
# The course
# --------------------------------------------------------------------------------------------
def _hill(x, half, hill):
    x = np.maximum(x, 0.0)
    return x**hill / (x**hill + half**hill)


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def _drug_mean(b: Mapping[str, np.ndarray], fx: _Effects) -> tuple[np.ndarray, np.ndarray]:
    """Mean individual drug effect without cognition, and the weights on the cognition z's."""
    diagnosis = b["diagnosis"]
    failed = np.nan_to_num(b["n_failed_treatments"], nan=3.0)
    episode = np.nan_to_num(b["episode_months"], nan=24.0)
    bmi = np.nan_to_num(b["bmi"], nan=27.0)
    mean = (
        fx.drug_mean
        + fx.mdd_effect * (diagnosis == "MDD")
        + fx.failed_effect * (np.minimum(failed, 12) - 3)
        + fx.episode_effect * (np.log(np.maximum(episode, 0.5)) - math.log(24))
        + fx.severe_effect * np.maximum(b["madrs_baseline"] - 38, 0)
        + fx.bmi_effect * (np.clip(bmi, 16, 50) - 27)
        + fx.fh_aud_effect * _flag(b["family_history_aud"])
        + fx.anxious_effect * _flag(b["anxious_distress"])
    )
    weights = np.array([fx.processing_speed_effect, fx.working_memory_effect, 0.0])
    return mean - weights.sum() * _COGNITION_REF, weights


def _flag(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(x, dtype=float), nan=0.0)


def _cognition_terms(b: Mapping[str, np.ndarray], weights: np.ndarray):
    """Mean and variance of ``weights . z`` given what is observed of cognition z."""
    z = np.column_stack([b[name] for name in _COGNITION])
    tested = ~np.isnan(z).any(axis=1)
    observed = np.nan_to_num(z) @ weights
    prior = b["_cognition_prior_mean"] @ weights
    mean = np.where(tested, observed, prior)
    var = np.where(tested, 0.0, weights @ _COGNITION_COV @ weights)
    return mean, var, tested


def _simulate_courses(
    b: Mapping[str, np.ndarray],
    regimens: Mapping[str, np.ndarray],
    visits: Sequence[float],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Outcomes and true probabilities for patients ``b`` on ``regimens`` (one per patient)."""
    fx = EFFECTS
    n = len(b["age"])
    x = exposure({**regimens, "weight_kg": b["weight_kg"]})
    per_week = regimens["sessions_per_week"].astype(float)
    n_sessions = regimens["n_sessions"].astype(float)
    drug = regimens["drug"]
    midazolam = drug == "midazolam"
    new_ad = _flag(regimens["new_oral_antidepressant"]).astype(bool)

    # individual latent terms, all standard normal
    z_drug, z_cadss, z_placebo, z_late, z_ad = rng.standard_normal((5, n))
    carrier = rng.random(n) < fx.susceptible

    base_mean, cog_weights = _drug_mean(b, fx)
    cog_mean, cog_var, tested = _cognition_terms(b, cog_weights)
    drug_mean = base_mean + cog_mean
    drug_sd = fx.drug_sd
    # untested patients' cognition is drawn from the population so the outcome is generated
    # from a full patient; the truth integrates over it (variance cog_var)
    hidden_cog = np.where(tested, 0.0, np.sqrt(cog_var) * rng.standard_normal(n))
    sensitivity = drug_mean + hidden_cog + drug_sd * z_drug

    per_session = _hill(x["racemic_iv_equivalent_mg_per_kg"], fx.ed50, fx.hill)
    perceptible = np.where(
        midazolam, 1.0, _hill(x["peak_exposure_mg_per_kg_per_h"], fx.perceptible_ed50, 2.0)
    )
    early = fx.early_inert + (fx.early_perceived - fx.early_inert) * perceptible
    duration = np.where(b["diagnosis"] == "bipolar", fx.bipolar_duration, 1.0) * np.where(
        _flag(b["prior_suicide_attempt"]) > 0, fx.suicide_attempt_duration, 1.0
    )
    spacing = 7.0 / per_week

    def courses(t: float):
        """Nonspecific a(t), antidepressant b(t), drug G(t), sessions given before t."""
        expectancy = np.zeros(n)
        strongest = np.zeros(n)
        given = np.zeros(n)
        for k in range(int(n_sessions.max())):
            start = k * spacing
            on = (k < n_sessions) & (start < t)
            if not on.any():
                break
            tau = np.where(on, t - start, 0.0)
            after_plateau = np.maximum(tau - fx.plateau_days, 0)
            scale = fx.decay_days * duration * (1 + fx.consolidation * k)
            kernel = (1 - np.exp(-tau / fx.onset_days)) * np.exp(
                -((after_plateau / scale) ** fx.decay_shape)
            )
            strongest = np.maximum(strongest, np.where(on, per_session * kernel, 0.0))
            lift = (1 - np.exp(-tau / fx.early_days)) * np.exp(-after_plateau / fx.expectancy_days)
            expectancy = np.maximum(expectancy, np.where(on, lift, 0.0))
            given += on
        a = early * expectancy
        ad = np.where(
            new_ad,
            fx.antidepressant
            * _logistic((t - fx.antidepressant_midpoint_days) / fx.antidepressant_scale_days),
            0.0,
        )
        return a, ad, strongest, given

    def improvement(t: float):
        """Improvement at ``t`` (fraction of baseline MADRS): each patient's, its mean and
        variance given the observed columns, and the sessions given before ``t``.

        It is a sum of independent Gaussian terms, coefficient x (mean + SD x draw):
        expectancy, late nonspecific response, new antidepressant, drug.
        """
        a, ad, g, given = courses(t)
        late = 1 - math.exp(-t / fx.late_days)
        terms = [
            (a, 1.0, fx.placebo_sd, z_placebo),
            (late, fx.late, fx.late_sd, z_late),
            (ad, 1.0, fx.antidepressant_sd, z_ad),
        ]
        value = sum(c * (m + sd * z) for c, m, sd, z in terms) + g * sensitivity
        mean = sum(c * m for c, m, _, _ in terms) + g * drug_mean
        var = sum((c * sd) ** 2 for c, _, sd, _ in terms) + g**2 * (drug_sd**2 + cog_var)
        return value, mean, var, given

    madrs0 = b["madrs_baseline"]
    out: dict[str, np.ndarray] = {}
    for t in visits:
        value, _, _, _ = improvement(t)
        suffix = visit_label(t)
        out[f"madrs_{suffix}"] = _score(madrs0 * (1 - value), fx.madrs_noise, 60, rng)
        out[f"hamd17_{suffix}"] = _score(
            b["hamd17_baseline"] * (1 - fx.hamd_factor * value), fx.hamd_noise, 52, rng
        )
        out[f"ssi_{suffix}"] = _score(
            b["ssi_baseline"] * (1 - fx.ssi_factor * value), fx.ssi_noise, 38, rng
        )

    # endpoint: the last visit
    t_end = visits[-1]
    value, mean_imp, var_imp, given = improvement(t_end)
    last = out[f"madrs_{visit_label(t_end)}"]
    out["response"] = last <= madrs0 / 2
    out["remission"] = last <= 10
    mu = madrs0 * (1 - mean_imp)
    sd = np.sqrt(madrs0**2 * var_imp + fx.madrs_noise**2)
    # scores are whole numbers: MADRS <= c  <=>  unrounded score < floor(c) + 0.5
    out["p_response"] = ndtr((np.floor(madrs0 / 2) + 0.5 - mu) / sd)
    out["p_remission"] = ndtr((10.5 - mu) / sd)

    # dissociation in the first and the last session given
    peak = _hill(x["peak_exposure_mg_per_kg_per_h"], fx.cadss_ed50, fx.cadss_hill)
    rho = fx.cadss_drug_correlation
    kappa = fx.cadss_max_mean + fx.cadss_max_sd * (rho * z_drug + math.sqrt(1 - rho**2) * z_cadss)
    first = fx.cadss_baseline + kappa * peak
    out["cadss_peak"] = _score(first, fx.cadss_noise, 92, rng)
    tolerance = 1 / (1 + fx.cadss_tolerance * (np.maximum(given, 1) - 1))
    out["cadss_last"] = _score(
        fx.cadss_baseline + kappa * peak * tolerance, fx.cadss_noise, 92, rng
    )
    out["dissociation"] = out["cadss_peak"] > 4
    mu_c = fx.cadss_baseline + fx.cadss_max_mean * peak
    sd_c = np.sqrt(fx.cadss_noise**2 + (fx.cadss_max_sd * peak) ** 2)
    out["p_dissociation"] = 1 - ndtr((4.5 - mu_c) / sd_c)

    # cognition at the endpoint
    composite = np.column_stack([b[c] for c in _COGNITION]).mean(axis=1)
    cum = x["racemic_iv_equivalent_mg_per_kg"] * given
    frequent = np.where(
        given >= 2, _logistic((per_week - fx.frequency_midpoint) / fx.frequency_scale), 0.0
    )
    harm = fx.frequency_harm * frequent * (
        x["racemic_iv_equivalent_mg_per_kg"] > 0
    ) + fx.cumulative_harm * cum / (cum + fx.cumulative_half)
    harm = harm * np.maximum(1 + fx.baseline_harm * (composite - _COGNITION_REF), 0)
    baseline_terms = fx.practice + fx.regression * (composite - _COGNITION_REF)
    change = (
        baseline_terms
        + fx.mood * value
        - carrier * harm
        + fx.cognition_noise * rng.standard_normal(n)
    )
    out["cognition_change"] = np.where(tested, change, np.nan)
    decline = change <= -0.5
    out["cognitive_decline"] = np.where(tested, decline, None)
    # untested patients have no cognitive outcome, so var_imp here has no hidden cognition
    mu_0 = baseline_terms + fx.mood * mean_imp
    sd_0 = np.sqrt(fx.mood**2 * var_imp + fx.cognition_noise**2)
    p = fx.susceptible * ndtr((-0.5 - mu_0 + harm) / sd_0) + (1 - fx.susceptible) * ndtr(
        (-0.5 - mu_0) / sd_0
    )
    out["p_cognitive_decline"] = np.where(tested, p, np.nan)
    out["endpoint_day"] = np.full(n, float(t_end))
    return out


def _score(value: np.ndarray, noise: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """A rating: the latent score plus rater noise, rounded and clipped to the scale."""
    return np.clip(np.round(value + noise * rng.standard_normal(len(value))), 0, high)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _check_visits(visit_days_: Sequence[float]) -> tuple[float, ...]:
    try:
        visits = tuple(float(v) for v in visit_days_)
        labels = [visit_label(v) for v in visits]
    except (TypeError, ValueError) as error:
        raise ValidationError(
            [
                Problem(
                    "visit_days",
                    visit_days_,
                    f"visit_days={visit_days_!r} is not a sequence of positive days: {error}",
                )
            ],
            "simulation",
        ) from None
    if not visits or list(visits) != sorted(set(visits)) or len(set(labels)) != len(labels):
        raise ValidationError(
            [
                Problem(
                    "visit_days",
                    visit_days_,
                    f"visit_days={visit_days_!r} must be distinct and increasing, at least one",
                )
            ],
            "simulation",
        )
    return visits


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValidationError(
            [Problem(name, value, f"{name}={value!r} is not a positive whole number")],
            "simulation",
        )
    return int(value)


def _frame(
    b: Mapping[str, np.ndarray],
    regimens: Mapping[str, np.ndarray],
    outcomes: Mapping[str, np.ndarray],
    groups: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """Assemble a contract-typed frame: groups, baseline, regimen, visits, outcomes, truth."""
    data = {
        **groups,
        **{k: v for k, v in b.items() if not k.startswith("_")},
        **regimens,
        **outcomes,
    }
    order = [*groups, *[k for k in b if not k.startswith("_")], *regimens, "endpoint_day"]
    order += _visit_order(k for k in outcomes if _is_visit(k))
    order += [
        "response",
        "remission",
        "cognition_change",
        "cognitive_decline",
        "cadss_peak",
        "cadss_last",
        "dissociation",
        "p_response",
        "p_remission",
        "p_cognitive_decline",
        "p_dissociation",
    ]
    frame = {}
    for name in order:
        col = column(name)
        values = data[name]
        if col.kind == "category":
            frame[name] = pd.Categorical(values, categories=col.categories)
        elif col.kind == "bool":
            frame[name] = pd.array(values, dtype="boolean")
        elif col.kind == "int":
            frame[name] = pd.array(np.asarray(values, dtype=float), dtype="Int64")
        elif col.kind == "string":
            frame[name] = pd.array(values, dtype="str")
        else:
            frame[name] = np.asarray(values, dtype=float)
    return pd.DataFrame(frame)


def _regimen_arrays(regimens: Sequence[Regimen], which: np.ndarray) -> dict[str, np.ndarray]:
    """Per-patient regimen columns from a list of regimens and each patient's index into it."""
    out = {}
    for name in REGIMEN_FIELDS:
        values = np.array([getattr(r, name) for r in regimens], dtype=object)[which]
        if name in ("dose", "infusion_minutes", "sessions_per_week", "n_sessions"):
            values = np.array([np.nan if v is None else v for v in values], dtype=float)
        out[name] = values
    return out


def simulate_trial(
    population: Population,
    arms: Mapping[str, Regimen] | Sequence[Regimen],
    n_per_arm: int,
    seed: int | np.random.SeedSequence = 0,
    *,
    visit_days: Sequence[float] = (1, 7, 14, 28),
    trial_id: str = "trial",
) -> pd.DataFrame:
    """Simulate a randomised trial: one population, patients randomised to several arms.

    Parameters
    ----------
    population : Population
        Who is recruited.
    arms : mapping of label to Regimen, or sequence of Regimen
        The treatment arms; a sequence is labelled by each regimen's description.
    n_per_arm : int
        Patients per arm.
    seed : int or numpy.random.SeedSequence, default=0
        The same seed gives an identical frame.
    visit_days : sequence of float, default=(1, 7, 14, 28)
        Visit times in days after the first session (fractions allowed: ``4 / 24`` is a
        4-hour visit, named ``h4``). Response and remission are assessed at the last one.
    trial_id : str, default="trial"
        Written to ``trial_id`` and used as the prefix of ``patient_id``.

    Returns
    -------
    DataFrame
        One row per patient, in contract dtypes: ``patient_id``, ``trial_id``, ``arm``,
        baseline and regimen columns, ``endpoint_day``, ``madrs_*``, ``hamd17_*`` and
        ``ssi_*`` at each visit, the outcomes and the true probabilities ``p_*``.

    Examples
    --------
    >>> from ketapredict import Population, Regimen, simulate_trial
    >>> iv = dict(route="iv", dose_unit="mg/kg", infusion_minutes=40)
    >>> trial = simulate_trial(Population(diagnosis="TRD"),
    ...                        {"ketamine": Regimen(drug="ketamine", dose=0.5, **iv),
    ...                         "saline": Regimen(drug="saline", dose=0, **iv)},
    ...                        n_per_arm=2000, seed=1, visit_days=(1,))
    >>> rates = trial.groupby("arm")["response"].mean()
    >>> bool(rates["ketamine"] > rates["saline"] + 0.3)
    True
    """
    if not isinstance(population, Population):
        raise TypeError(f"population must be a Population; got {type(population).__name__}.")
    if isinstance(arms, Mapping):
        labels, regimens = list(arms), list(arms.values())
    else:
        regimens = list(arms)
        labels = [str(r) for r in regimens]
    if not regimens or not all(isinstance(r, Regimen) for r in regimens):
        raise TypeError("arms must be a non-empty mapping or sequence of Regimen.")
    if len(set(labels)) != len(labels):
        raise ValidationError(
            [Problem("arms", labels, f"arm labels must be distinct; got {labels!r}")], "simulation"
        )
    n_per_arm = _check_count("n_per_arm", n_per_arm)
    visits = _check_visits(visit_days)
    rng = np.random.default_rng(seed)
    n = n_per_arm * len(regimens)
    b = _draw_baseline(population, n, rng)
    which = rng.permutation(np.repeat(np.arange(len(regimens)), n_per_arm))
    regimen_cols = _regimen_arrays(regimens, which)
    outcomes = _simulate_courses(b, regimen_cols, visits, rng)
    groups = {
        "patient_id": np.array([f"{trial_id}-{i:06d}" for i in range(n)], dtype=object),
        "trial_id": np.full(n, trial_id, dtype=object),
        "arm": np.array(labels, dtype=object)[which],
    }
    return _frame(b, regimen_cols, outcomes, groups)


def simulate_arm(
    population: Population,
    regimen: Regimen,
    n: int,
    seed: int = 0,
    *,
    visit_days: Sequence[float] = (1, 7, 14, 28),
) -> pd.DataFrame:
    """Simulate ``n`` patients from ``population`` treated with ``regimen``.

    Parameters
    ----------
    population : Population
        Who is treated.
    regimen : Regimen
        The dose schedule every patient receives.
    n : int
        Number of patients.
    seed : int, default=0
        The same seed gives an identical frame.
    visit_days : sequence of float, default=(1, 7, 14, 28)
        Visit times in days after the first session; a visit between sessions sees the
        sessions given so far. Response and remission are assessed at the last visit.

    Returns
    -------
    DataFrame
        As :func:`simulate_trial`, with one arm.

    Examples
    --------
    >>> from ketapredict import Population, Regimen, simulate_arm
    >>> course = Regimen(drug="ketamine", route="iv", dose=0.5, dose_unit="mg/kg",
    ...                  infusion_minutes=40, sessions_per_week=2, n_sessions=4)
    >>> arm = simulate_arm(Population(diagnosis="TRD", madrs_mean=35), course, n=5000,
    ...                    seed=0, visit_days=(1, 8, 15))
    >>> change = arm["madrs_d15"] - arm["madrs_baseline"]
    >>> bool(-24 < change.mean() < -14)
    True
    >>> bool(abs(arm["response"].mean() - arm["p_response"].mean()) < 0.03)
    True
    """
    if not isinstance(regimen, Regimen):
        raise TypeError(f"regimen must be a Regimen; got {type(regimen).__name__}.")
    return simulate_trial(
        population, {str(regimen): regimen}, n, seed, visit_days=visit_days, trial_id="arm"
    )


@dataclass(frozen=True)
class TrialDesign:
    """A published trial design from ``data/trials.toml``."""

    name: str
    citation: str
    design: str
    population: Population
    arms: dict[str, Regimen]
    visit_days: tuple[float, ...]
    in_cohort: bool = True
    hypothetical: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@cache
def published_trials() -> dict[str, TrialDesign]:
    """The trial designs the virtual cohort is modelled on, keyed by name.

    Returns
    -------
    dict of str to TrialDesign

    Examples
    --------
    >>> from ketapredict import published_trials
    >>> print(published_trials()["singh2016_ajp"].arms["ketamine_2_per_week"])
    ketamine 0.5 mg/kg IV over 40 min, 2/week x 4
    """
    text = resources.files("ketapredict.data").joinpath("trials.toml").read_text("utf-8")
    designs = {}
    for name, spec in tomllib.loads(text).items():
        designs[name] = TrialDesign(
            name=name,
            citation=spec["citation"],
            design=spec["design"],
            population=Population(**spec["population"]),
            arms={label: Regimen(**arm) for label, arm in spec["arms"].items()},
            visit_days=tuple(spec["visit_days"]),
            in_cohort=spec.get("in_cohort", True),
            hypothetical=spec.get("hypothetical", False),
        )
    return designs


def simulate_cohort(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """A pooled virtual cohort from every published trial design.

    Every arm of every design in :func:`published_trials` gets the same number of patients,
    drawn from its trial's population, with the trial's visit days; response is assessed at
    the trial's last visit (``endpoint_day``). ``trial_id`` names the design.

    Parameters
    ----------
    n : int, default=5000
        Total patients (rounded down to a multiple of the number of arms, at least one per
        arm).
    seed : int, default=0
        The same seed gives an identical frame.

    Returns
    -------
    DataFrame
        As :func:`simulate_trial`. Visit columns a trial did not have are missing (NaN).

    Examples
    --------
    >>> from ketapredict import simulate_cohort
    >>> cohort = simulate_cohort(n=3000, seed=0)
    >>> cohort["trial_id"].nunique() >= 10
    True
    """
    n = _check_count("n", n)
    designs = [d for d in published_trials().values() if d.in_cohort]
    n_arms = sum(len(d.arms) for d in designs)
    per_arm = max(n // n_arms, 1)
    seeds = np.random.SeedSequence(seed).spawn(len(designs))
    frames = [
        simulate_trial(d.population, d.arms, per_arm, s, visit_days=d.visit_days, trial_id=d.name)
        for d, s in zip(designs, seeds, strict=True)
    ]
    cohort = pd.concat(frames, ignore_index=True)
    # each trial has its own visits: keep those some trial recorded, in one order
    visits = _visit_order(c for c in cohort.columns if _is_visit(c) and cohort[c].notna().any())
    rest = [c for c in cohort.columns if not _is_visit(c)]
    at = rest.index("endpoint_day") + 1
    return cohort[rest[:at] + visits + rest[at:]]


_SCALES = ("madrs", "hamd17", "ssi")


def _is_visit(name: str) -> bool:
    scale, _, when = name.partition("_")
    return scale in _SCALES and when[:1] in ("d", "h", "m") and when[1:].isdigit()


def _visit_order(names) -> list[str]:
    """Visit columns by scale (MADRS, HAMD-17, SSI), then by time."""
    return sorted(names, key=lambda k: (_SCALES.index(k.split("_")[0]), visit_days(k)))


def _replace_effects(**changes: Any) -> _Effects:
    """A copy of the effect parameters with some changed (for sensitivity analyses)."""
    unknown = set(changes) - {f.name for f in fields(_Effects)}
    if unknown:
        raise KeyError(f"unknown effect parameters: {sorted(unknown)}")
    return _Effects(**{**asdict(EFFECTS), **changes})
