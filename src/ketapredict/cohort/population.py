"""Who a trial recruits: baseline covariates, which of them go missing, and what is known
about a missing one.

Every continuous covariate that can go missing is a transform of a Gaussian given the
always-recorded ones (log BMI given body weight and sex, log episode length given the failed
treatments, cognition given age), and every binary one is a Bernoulli draw. So when a value is
missing, its distribution given what was recorded (:func:`hidden_priors`) is known, and the
model integrates it out of each patient's true outcome probabilities. Exactly, but for the
clip of these covariates to the contract's ranges (BMI 12-80, weight 25-300 kg, episode
0.5-600 months, cognition -6 to 6), which touches about 2 patients in 10,000 (measured:
episode 1.4 and BMI 0.4 in 10,000 over every design).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from ..exceptions import Problem, ValidationError, short_repr
from ..schema import column
from .parameters import Parameters

__all__ = [
    "COGNITION",
    "Population",
    "draw_baseline",
    "hidden_priors",
    "logistic",
    "mask",
    "severity",
]

# Defaults by diagnosis for covariates whose distribution differs most between trial
# populations. They are typical of ketamine trial samples, not calibration targets.
_BY_DIAGNOSIS = {
    # failed adequate antidepressant trials in the episode (TRD: at least 2 by definition)
    "failed_treatments_mean": {"TRD": 3.5, "MDD": 0.4, "bipolar": 2.5},
    "episode_months_median": {"TRD": 24.0, "MDD": 6.0, "bipolar": 12.0},
    "suicide_attempt_rate": {"TRD": 0.25, "MDD": 0.20, "bipolar": 0.40},
}

# Cognition: three domain z-scores against healthy norms, correlated 0.5, SD 0.9, declining
# with age (per year above 45): processing speed fastest. Assumed, typical of depressed
# samples (about half an SD below norms: Population.cognition_mean).
COGNITION = ("processing_speed_z", "working_memory_z", "verbal_memory_z")
COGNITION_AGE_SLOPE = np.array([-0.02, -0.01, -0.015])
COGNITION_COVARIANCE = 0.9**2 * (0.5 * np.ones((3, 3)) + 0.5 * np.eye(3))

# Height: log-normal by sex, median 1.63 m (women) and 1.77 m (men), SD of log height 0.04
# (about 7 cm). Assumed adult norms. Weight = BMI x height^2, so BMI given weight and sex is
# Gaussian on the log scale.
_HEIGHT_MEDIAN = {"female": 1.63, "male": 1.77}
_LOG_HEIGHT_SD = 0.04

# Episode length: log-normal around the population median, longer with more failed
# treatments (+12% per failed treatment above the mean), SD of the log 0.8. Assumed.
_EPISODE_FAILED_SLOPE = 0.12
_LOG_EPISODE_SD = 0.8

# The binary fields that can go missing, and their population rates.
BINARY_FIELDS = ("family_history_aud", "prior_suicide_attempt", "anxious_distress")


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
        Log-normal; weight follows from BMI and a sex-specific log-normal height.
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
        Fraction of patients the trial's design gives a baseline cognitive battery, HAMD-17
        and SSI (0: the trial did not collect it). Within a trial, values also go missing at
        the rates of ``cohort/parameters.toml``.

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
        # as a patient record reads it: case and surrounding spaces are no part of the value
        spelled = str(self.diagnosis).strip().casefold()
        normalised = {d.casefold(): d for d in diagnoses}.get(spelled)
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
            if value is None and name in _BY_DIAGNOSIS and normalised is None:
                continue  # a by-diagnosis default the bad diagnosis left unset
            if (
                not isinstance(value, Real)  # numpy's numbers too, as every other argument
                or isinstance(value, bool | np.bool_)
                or not (math.isfinite(value) and low <= value <= high)
            ):
                problems.append(
                    Problem(
                        name, value, f"{name}={value!r} is not a number from {low:g} to {high:g}"
                    )
                )
            elif isinstance(value, np.generic):  # kept as a Python number, as written
                object.__setattr__(self, name, value.item())
        failed = self.failed_treatments_mean
        if normalised == "TRD" and isinstance(failed, int | float) and failed < 2:
            problems.append(
                Problem(
                    "failed_treatments_mean",
                    failed,
                    "failed_treatments_mean must be at least 2 for TRD",
                )
            )
        if normalised == "MDD" and isinstance(failed, int | float) and failed > 1:
            problems.append(
                Problem(
                    "failed_treatments_mean",
                    failed,
                    "failed_treatments_mean must be at most 1 for MDD (two or more failed "
                    "trials is TRD)",
                )
            )
        if (
            isinstance(self.madrs_min, int | float)
            and isinstance(self.madrs_mean, int | float)
            and isinstance(self.madrs_sd, int | float)
            and self.madrs_min > self.madrs_mean + 2 * self.madrs_sd
        ):
            problems.append(
                Problem(
                    "madrs_min",
                    self.madrs_min,
                    f"madrs_min={self.madrs_min!r} leaves almost no one eligible; keep it "
                    "below madrs_mean + 2 madrs_sd",
                )
            )
        if problems:
            raise ValidationError(problems, "population")

    def rate(self, field: str) -> float:
        """The population rate of a binary baseline field.

        Parameters
        ----------
        field : {"family_history_aud", "prior_suicide_attempt", "anxious_distress"}
            The binary baseline field.

        Returns
        -------
        float
        """
        rates = {
            "family_history_aud": self.family_history_aud_rate,
            "prior_suicide_attempt": self.suicide_attempt_rate,
            "anxious_distress": self.anxious_distress_rate,
        }
        if field not in rates:
            raise ValidationError(
                [
                    Problem(
                        "field",
                        field,
                        f"{short_repr(field)} has no population rate; expected one of "
                        f"{', '.join(rates)}",
                    )
                ],
                "arguments",
            )
        return rates[field]

    def log_bmi(self) -> tuple[float, float]:
        """Mean and SD of log BMI (log-normal with mean ``bmi_mean`` and SD ``bmi_sd``)."""
        sd = math.sqrt(math.log(1 + (self.bmi_sd / self.bmi_mean) ** 2))
        return math.log(self.bmi_mean) - sd**2 / 2, sd


def _truncated_normal(rng, mean, sd, low, high, n):
    values = rng.normal(mean, sd, n)
    for _ in range(100):
        bad = (values < low) | (values > high)
        if not bad.any():
            break
        values[bad] = rng.normal(mean, sd, bad.sum())
    return np.clip(values, low, high)


def draw_baseline(pop: Population, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every baseline covariate of ``n`` patients, none missing (see :func:`mask`)."""
    age = np.round(_truncated_normal(rng, pop.age_mean, pop.age_sd, 18, 80, n), 1)
    female = rng.random(n) < pop.female_fraction
    sex = np.where(female, "female", "male").astype(object)
    log_height = np.log(np.where(female, _HEIGHT_MEDIAN["female"], _HEIGHT_MEDIAN["male"]))
    log_height = log_height + _LOG_HEIGHT_SD * rng.standard_normal(n)
    mean, sd = pop.log_bmi()
    log_bmi = mean + sd * rng.standard_normal(n)
    # Recorded at full precision (computed values), so a recorded value is the model's own
    # and the conditional distributions below are exact; the clip to the contract's range
    # touches about 1 patient in 100,000.
    bmi = np.clip(np.exp(log_bmi), 12, 80)
    weight = np.clip(np.exp(log_bmi + 2 * log_height), 25, 300)

    failed_mean = pop.failed_treatments_mean
    if pop.diagnosis == "TRD":
        failed = 2 + rng.poisson(failed_mean - 2, n)
    elif pop.diagnosis == "MDD":
        failed = (rng.random(n) < failed_mean).astype(int)
    else:
        failed = rng.poisson(failed_mean, n)
    failed = np.minimum(failed, 30).astype(float)
    log_episode = _log_episode_mean(pop, failed) + _LOG_EPISODE_SD * rng.standard_normal(n)
    episode = np.clip(np.exp(log_episode), 0.5, 600)

    madrs = np.round(_truncated_normal(rng, pop.madrs_mean, pop.madrs_sd, pop.madrs_min, 60, n))
    # HAMD-17 linked to MADRS (MADRS 33 ~ HAMD-17 24; assumed linear link)
    hamd = np.clip(np.round(0.68 * madrs + 1.5 + rng.normal(0, 2.5, n)), 0, 52)
    # SSI follows severity only, so that a missing suicide attempt keeps its population rate
    ssi_latent = pop.ssi_mean + 0.25 * (madrs - pop.madrs_mean)
    ssi = ssi_latent + rng.normal(0, 5.0, n)
    for _ in range(100):
        low = ssi < pop.ssi_min
        if not low.any():
            break
        ssi[low] = ssi_latent[low] + rng.normal(0, 5.0, low.sum())
    ssi = np.clip(np.round(np.maximum(ssi, pop.ssi_min)), 0, 38)

    cognition = _cognition_mean(pop, age) + rng.multivariate_normal(
        np.zeros(3), COGNITION_COVARIANCE, n
    )
    cognition = np.clip(cognition, -6, 6)

    baseline = {
        "age": age,
        "sex": sex,
        "bmi": bmi,
        "weight_kg": weight,
        "diagnosis": np.full(n, pop.diagnosis, dtype=object),
        "n_failed_treatments": failed,
        "episode_months": episode,
        "anxious_distress": (rng.random(n) < pop.anxious_distress_rate).astype(float),
        "prior_suicide_attempt": (rng.random(n) < pop.suicide_attempt_rate).astype(float),
        "family_history_aud": (rng.random(n) < pop.family_history_aud_rate).astype(float),
        "madrs_baseline": madrs,
        "hamd17_baseline": hamd,
        "ssi_baseline": ssi,
    }
    for k, name in enumerate(COGNITION):
        baseline[name] = cognition[:, k]
    return baseline


def _log_episode_mean(pop: Population, failed: np.ndarray) -> np.ndarray:
    return math.log(pop.episode_months_median) + _EPISODE_FAILED_SLOPE * (
        failed - pop.failed_treatments_mean
    )


def _cognition_mean(pop: Population, age: np.ndarray) -> np.ndarray:
    return pop.cognition_mean + np.outer(age - 45, COGNITION_AGE_SLOPE)


def logistic(x):
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def severity(madrs: np.ndarray) -> np.ndarray:
    """Baseline MADRS standardised as the model's predictors are: per 6 points above 33."""
    return (np.asarray(madrs, dtype=float) - 33.0) / 6.0


def missing_chances(
    pop: Population, full: dict[str, np.ndarray], params: Parameters
) -> dict[str, np.ndarray]:
    """Each field's chance of going missing, per patient, from design and within trial.

    A field goes missing if the design did not collect it for the patient (chance
    ``1 - collected``) or, collected, it went missing within the trial.
    """
    n = len(full["age"])
    p = params
    cognition = logistic(
        math.log(p.missing_cognition / (1 - p.missing_cognition))
        + p.missing_cognition_severity * severity(full["madrs_baseline"])
    )

    def combined(collected: float, within: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to((1 - collected) + collected * np.asarray(within), (n,))

    def by_value(field: str, positive: float, negative: float) -> np.ndarray:
        return combined(1.0, np.where(full[field] > 0, positive, negative))

    return {
        "bmi": combined(1.0, p.missing_bmi),
        "episode_months": combined(1.0, p.missing_episode),
        "anxious_distress": combined(1.0, p.missing_anxious),
        "family_history_aud": by_value(
            "family_history_aud",
            p.missing_family_history_positive,
            p.missing_family_history_negative,
        ),
        "prior_suicide_attempt": by_value(
            "prior_suicide_attempt",
            p.missing_suicide_attempt_positive,
            p.missing_suicide_attempt_negative,
        ),
        "hamd17_baseline": combined(pop.hamd17_rated, p.missing_hamd17),
        "ssi_baseline": combined(pop.ssi_rated, p.missing_ssi),
        "cognition": combined(pop.cognition_tested, cognition),
    }


def mask(
    pop: Population,
    full: dict[str, np.ndarray],
    params: Parameters,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The recorded baseline: ``full`` with the values that went missing set to NaN."""
    chances = missing_chances(pop, full, params)
    draws = rng.random((len(chances), len(full["age"])))
    observed = dict(full)
    for (field, chance), u in zip(chances.items(), draws, strict=True):
        missing = u < chance
        for name in COGNITION if field == "cognition" else (field,):
            observed[name] = np.where(missing, np.nan, full[name])
    return observed


def hidden_priors(
    pop: Population, observed: dict[str, np.ndarray], params: Parameters
) -> dict[str, Any]:
    """What is known of each missing value, given the recorded ones.

    Returns
    -------
    dict
        ``"log_bmi"`` and ``"log_episode"``: (mean, variance) of the Gaussian given the
        recorded weight and sex, or failed treatments; ``"cognition"``: (mean vectors,
        covariance) given age; each binary field: the probability that it is 1 given that it
        is missing. Entries are for every patient; they matter only where the value is
        missing.
    """
    n = len(observed["age"])
    mean, sd = pop.log_bmi()
    female = observed["sex"] == "female"
    log_height = np.log(np.where(female, _HEIGHT_MEDIAN["female"], _HEIGHT_MEDIAN["male"]))
    # log weight = log BMI + 2 log height: condition the bivariate normal on log weight
    height_var = 4 * _LOG_HEIGHT_SD**2
    gain = sd**2 / (sd**2 + height_var)
    log_weight = np.log(observed["weight_kg"])
    bmi_mean = mean + gain * (log_weight - mean - 2 * log_height)
    bmi_var = np.full(n, sd**2 * (1 - gain))

    episode_mean = _log_episode_mean(pop, observed["n_failed_treatments"])
    episode_var = np.full(n, _LOG_EPISODE_SD**2)

    priors: dict[str, Any] = {
        "log_bmi": (bmi_mean, bmi_var),
        "log_episode": (episode_mean, episode_var),
        "cognition": (_cognition_mean(pop, observed["age"]), COGNITION_COVARIANCE),
    }
    # Binary fields missing not at random: Bayes on the chance of going missing by value.
    chances_if = {
        "family_history_aud": (
            params.missing_family_history_positive,
            params.missing_family_history_negative,
        ),
        "prior_suicide_attempt": (
            params.missing_suicide_attempt_positive,
            params.missing_suicide_attempt_negative,
        ),
        "anxious_distress": (params.missing_anxious, params.missing_anxious),
    }
    for field, (if_one, if_zero) in chances_if.items():
        rate = pop.rate(field)
        one = rate * if_one
        zero = (1 - rate) * if_zero
        priors[field] = one / (one + zero)
    return priors
