"""Simulated trials: parallel arms, crossovers, and the pooled virtual cohort.

Real ketamine trial data is private, so ketapredict learns and is tested on virtual patients
whose behaviour reproduces published trials (``ketapredict calibrate`` shows how well) and
whose true outcome probabilities are known, so that every model can be measured against the
best possible score (the *oracle*). The generative model is described in
:mod:`ketapredict.cohort.model`; its parameters, each with its source, in
``cohort/parameters.toml``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import Problem, ValidationError, one_line, short_repr
from ..regimen import REGIMEN_FIELDS, Regimen
from ..schema import OUTCOMES, column, visit_days, visit_label
from .model import (
    course,
    latent_draws,
    predictors,
    profile,
    scale_logit,
    score,
    simulate_visits,
    true_probabilities,
)
from .parameters import Parameters, load_parameters
from .population import COGNITION, Population, draw_baseline, hidden_priors, mask

__all__ = [
    "TrialDesign",
    "TrialEffect",
    "published_trials",
    "simulate_arm",
    "simulate_cohort",
    "simulate_crossover",
    "simulate_trial",
]

_OUTCOMES = (
    "response",
    "remission",
    "cognition_change",
    "cognitive_decline",
    "cadss_peak",
    "cadss_last",
    "dissociation",
)
_TRUTH = tuple(f"p_{name}{suffix}" for suffix in ("", "_marginal") for name in OUTCOMES)


@dataclass(frozen=True)
class TrialEffect:
    """A trial's random effects, in standard-normal units.

    Trials differ beyond sampling noise (CALIBRATION.md E): each has its own shift of the
    nonspecific improvement and of the drug effect. Zero is the *typical* trial, which a
    meta-analytic pool resembles; :meth:`draw` gives a random trial.

    Parameters
    ----------
    nonspecific : float, default=0
        The nonspecific improvement is multiplied by ``1 + tau_nonspecific * nonspecific``.
    drug : float, default=0
        The maximal drug effect is shifted by ``tau_drug * drug`` (log-odds of MADRS).

    Examples
    --------
    >>> from ketapredict import TrialEffect
    >>> TrialEffect(drug=-1.0)  # a trial whose drug effect is one SD below the typical
    TrialEffect(nonspecific=0.0, drug=-1.0)
    """

    nonspecific: float = 0.0
    drug: float = 0.0

    def __post_init__(self) -> None:
        for name in ("nonspecific", "drug"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float | np.integer | np.floating)
                or not math.isfinite(value)
                or abs(value) > 10
            ):
                raise ValidationError(
                    [
                        Problem(
                            name,
                            value,
                            f"TrialEffect {name}={value!r} is not a number in -10 to 10 "
                            "(standard-normal units)",
                        )
                    ],
                    "simulation",
                )
            object.__setattr__(self, name, float(value))

    @classmethod
    def draw(cls, rng: np.random.Generator) -> TrialEffect:
        """A random trial's effects.

        Parameters
        ----------
        rng : numpy.random.Generator
            Draws the trial's two standard-normal effects.

        Returns
        -------
        TrialEffect
        """
        if not isinstance(rng, np.random.Generator):
            raise ValidationError(
                [
                    Problem(
                        "rng",
                        None,
                        "rng must be a numpy Generator (np.random.default_rng(seed)); got "
                        f"{type(rng).__name__}",
                    )
                ],
                "simulation",
            )
        nonspecific, drug = rng.standard_normal(2)
        return cls(float(nonspecific), float(drug))

    def as_tuple(self) -> tuple[float, float]:
        return (self.nonspecific, self.drug)


def _trial_effect(value: Any, rng: np.random.Generator) -> TrialEffect:
    if value is None:
        return TrialEffect()
    if isinstance(value, str) and value == "random":
        return TrialEffect.draw(rng)
    if isinstance(value, TrialEffect):
        return value
    raise ValidationError(
        [
            Problem(
                "trial_effect",
                value,
                f"trial_effect={value!r} is not None (a typical trial), 'random' or a TrialEffect",
            )
        ],
        "simulation",
    )


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------
def _check_visits(visit_days_: Sequence[float]) -> tuple[float, ...]:
    try:
        if isinstance(visit_days_, str | bytes):  # "17" is not the days 1 and 7
            raise TypeError("text is not a sequence of days")
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
    latest = column("endpoint_day").high
    if visits and max(visits) > latest:
        raise ValidationError(
            [
                Problem(
                    "visit_days",
                    visit_days_,
                    f"visit_days={short_repr(visit_days_)} goes beyond day {latest:g}, the "
                    "latest assessment day of the data contract",
                )
            ],
            "simulation",
        )
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


# The most patient courses one call simulates. A course takes about 520 bytes in the finished
# frame (52 MB for 100,000, measured) and a few times that while it is built, so a million is
# about half a gigabyte and 25 s: 100 times the experiments' cohorts (5,000 to 8,000), within
# a laptop's memory. Without a bound, n = 10**12 asks numpy for 450 GiB and fails after
# minutes of work, or takes the machine's memory first.
MAX_COURSES = 1_000_000


def _check_count(
    name: str,
    value: Any,
    minimum: int = 1,
    maximum: int = MAX_COURSES,
    limit: str = f"the most one call simulates ({MAX_COURSES:,} patient courses in all, about "
    "half a gigabyte)",
) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        what = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        raise ValidationError(
            [Problem(name, value, f"{name}={value!r} is not {what}")], "simulation"
        )
    if value > maximum:
        raise ValidationError(
            [
                Problem(
                    name,
                    value,
                    f"{name}={value!r} is more than {maximum:,}, {limit}",
                )
            ],
            "simulation",
        )
    return int(value)


def _check_seed(seed: Any, sequence: bool = True) -> Any:
    """A seed numpy accepts: a whole number >= 0, or with ``sequence`` a SeedSequence
    (ValidationError if not, as numpy's own errors would not name it)."""
    if sequence and isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValidationError(
            [Problem("seed", seed, f"seed={short_repr(seed)} is not a whole number >= 0")],
            "simulation",
        )
    return int(seed)


def _check_trial_id(trial_id: Any) -> str:
    """A trial's name: text on one line, 1 to 100 characters (it prefixes every
    ``patient_id``; None made ``None-000000`` and a missing ``trial_id``). A whole number
    is taken as its digits, as before."""
    if isinstance(trial_id, int | np.integer) and not isinstance(trial_id, bool):
        trial_id = str(trial_id)
    if (
        not (isinstance(trial_id, str) and trial_id.strip() and len(trial_id) <= 100)
        or one_line(trial_id) != trial_id
    ):
        raise ValidationError(
            [
                Problem(
                    "trial_id",
                    None,
                    f"trial_id must be text on one line of 1 to 100 characters; got "
                    f"{short_repr(trial_id)}",
                )
            ],
            "simulation",
        )
    return trial_id


def _check_population(population: Any) -> None:
    if not isinstance(population, Population):
        raise ValidationError(
            [
                Problem(
                    "population",
                    None,
                    f"population must be a Population (e.g. Population(diagnosis='TRD')); got "
                    f"{type(population).__name__}",
                )
            ],
            "simulation",
        )


def _arms(
    arms: Mapping[str, Regimen] | Sequence[Regimen], argument: str = "arms"
) -> tuple[list[str], list[Regimen]]:
    """The labels and regimens of ``arms`` (named ``argument`` in messages): a mapping of
    label to Regimen, or a sequence of Regimens labelled by their schedules."""
    if isinstance(arms, Mapping):
        labels, regimens = [str(k) for k in arms], list(arms.values())
    elif isinstance(arms, Iterable) and not isinstance(arms, str | bytes | Regimen):
        regimens = list(arms)
        labels = [str(r) for r in regimens]
    else:  # None, a number, or a text split into its letters as "arms"
        raise ValidationError(
            [
                Problem(
                    argument,
                    None,
                    f"{argument} must map a label to each Regimen or list the Regimens; got "
                    f"{short_repr(arms)}",
                )
            ],
            "simulation",
        )
    if not regimens:
        raise ValidationError([Problem(argument, None, f"{argument} names no arm")], "simulation")
    wrong = [
        Problem(f"arms[{label!r}]", None, f"arm {label!r} is a {type(r).__name__}, not a Regimen")
        for label, r in zip(labels, regimens, strict=True)
        if not isinstance(r, Regimen)
    ]
    if wrong:
        raise ValidationError(wrong, "simulation")
    if len(set(labels)) != len(labels):
        raise ValidationError(
            [Problem("arms", labels, f"arm labels must be distinct; got {labels!r}")], "simulation"
        )
    return labels, regimens


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------
def regimen_arrays(regimens: Sequence[Regimen], which: np.ndarray) -> dict[str, np.ndarray]:
    """Per-patient regimen columns from a list of regimens and each patient's index into it."""
    out = {}
    for name in REGIMEN_FIELDS:
        values = np.array([getattr(r, name) for r in regimens], dtype=object)[which]
        if name in ("dose", "infusion_minutes", "sessions_per_week", "n_sessions"):
            values = np.array([np.nan if v is None else v for v in values], dtype=float)
        out[name] = values
    return out


def _course_rows(
    population: Population,
    full: dict[str, np.ndarray],
    observed: dict[str, np.ndarray],
    regimens: dict[str, np.ndarray],
    visits: tuple[float, ...],
    latent,
    effect: TrialEffect,
    params: Parameters,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """One course per patient: regimen, visits, outcomes, and true probabilities."""
    c = course(regimens, full["weight_kg"], params)
    outcomes = simulate_visits(c, full, visits, params, rng, latent, effect.as_tuple())
    priors = hidden_priors(population, observed, params)
    truth = true_probabilities(
        c,
        predictors(observed),
        full["madrs_baseline"],
        profile(c, visits[-1], params),
        params,
        priors,
        effect.as_tuple(),
    )
    # what the record lacks: no cognitive outcome without a baseline battery, no visits of a
    # scale without its baseline
    untested = np.isnan(observed[COGNITION[0]])
    outcomes["cognition_change"] = np.where(untested, np.nan, outcomes["cognition_change"])
    outcomes["cognitive_decline"] = np.where(
        untested, None, outcomes["cognitive_decline"].astype(object)
    )
    for scale in ("hamd17", "ssi"):
        unrated = np.isnan(observed[f"{scale}_baseline"])
        for name in list(outcomes):
            if name.startswith(f"{scale}_"):
                outcomes[name] = np.where(unrated, np.nan, outcomes[name])
    return {
        **regimens,
        "endpoint_day": np.full(len(c.n_sessions), visits[-1]),
        **outcomes,
        **truth,
    }


def _simulate_parallel(
    population: Population,
    labels: list[str],
    regimens: list[Regimen],
    sizes: list[int],
    rng: np.random.Generator,
    visits: tuple[float, ...],
    trial_id: str,
    effect: TrialEffect,
    params: Parameters,
) -> pd.DataFrame:
    n = sum(sizes)
    full = draw_baseline(population, n, rng)
    which = rng.permutation(np.repeat(np.arange(len(regimens)), sizes))
    latent = latent_draws(n, params, rng)
    observed = mask(population, full, params, rng)
    rows = _course_rows(
        population,
        full,
        observed,
        regimen_arrays(regimens, which),
        visits,
        latent,
        effect,
        params,
        rng,
    )
    return _frame(_groups(trial_id, labels, which, period=1), observed, rows)


def _groups(trial_id: str, labels, which: np.ndarray, period: int) -> dict[str, np.ndarray]:
    """The group columns of one trial's rows: patient, trial, arm and period."""
    n = len(which)
    ids = np.char.add(f"{trial_id}-", np.char.zfill(np.arange(n).astype(str), 6)).astype(object)
    return {
        "patient_id": ids,
        "trial_id": np.full(n, trial_id, dtype=object),
        "arm": np.array(labels, dtype=object)[which],
        "period": np.full(n, float(period)),
    }


def rerated_baseline(
    full: dict[str, np.ndarray],
    gap_days: float,
    params: Parameters,
    rng: np.random.Generator | None = None,
    *,
    shift: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The baseline scores re-rated before a crossover's second period.

    Each scale moves by two ratings' fluctuation and the patient's drift over ``gap_days``
    (``shift``: standard-normal draws, else drawn from ``rng``); the drug and expectancy of
    the first period are assumed gone by then (no carryover).
    """
    n = len(full["age"])
    drift = params.drift_sd**2 * (1 - math.exp(-gap_days / params.growth_days))
    sd = math.sqrt(2 * params.visit_noise**2 + drift)
    shift = sd * (rng.standard_normal(n) if shift is None else shift)
    rerated = dict(full)
    for scale, factor in (
        ("madrs", 1.0),
        ("hamd17", params.hamd_factor),
        ("ssi", params.ssi_factor),
    ):
        name = f"{scale}_baseline"
        rerated[name] = score(scale_logit(full[name], scale) + factor * shift, scale)
    return rerated


def _simulate_crossover(
    population: Population,
    labels: list[str],
    regimens: list[Regimen],
    n_patients: int,
    rng: np.random.Generator,
    visits: tuple[float, ...],
    washout_days: float,
    trial_id: str,
    effect: TrialEffect,
    params: Parameters,
    rows_wanted: int | None = None,
) -> pd.DataFrame:
    full = draw_baseline(population, n_patients, rng)
    first = rng.permutation(np.arange(n_patients) % 2)  # half start with each arm
    latent = latent_draws(n_patients, params, rng)
    observed = mask(population, full, params, rng)
    periods = []
    for period, which in ((1, first), (2, 1 - first)):
        if period == 1:
            full_p, observed_p = full, observed
        else:
            full_p = rerated_baseline(full, visits[-1] + washout_days, params, rng)
            observed_p = dict(observed)
            for name in ("madrs_baseline", "hamd17_baseline", "ssi_baseline"):
                observed_p[name] = np.where(np.isnan(observed[name]), np.nan, full_p[name])
        rows = _course_rows(
            population,
            full_p,
            observed_p,
            regimen_arrays(regimens, which),
            visits,
            latent,
            effect,
            params,
            rng,
        )
        periods.append(_frame(_groups(trial_id, labels, which, period), observed_p, rows))
    frame = pd.concat(periods, ignore_index=True)
    order = np.lexsort((frame["period"].to_numpy(dtype=float), np.tile(np.arange(n_patients), 2)))
    frame = frame.iloc[order].reset_index(drop=True)
    if rows_wanted is not None and rows_wanted < len(frame):
        # an odd share of rows: one patient (at random) left after period 1; rows are
        # ordered patient by patient, period 1 then 2
        leaver = int(rng.integers(n_patients))
        frame = frame.drop(index=2 * leaver + 1).reset_index(drop=True)
    return frame


def _frame(
    groups: Mapping[str, np.ndarray],
    baseline: Mapping[str, np.ndarray],
    rows: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """Assemble a contract-typed frame: groups, baseline, regimen, visits, outcomes, truth."""
    data = {**groups, **baseline, **rows}
    visits = _visit_order(k for k in rows if _is_visit(k))
    order = [
        *groups,
        *baseline,
        *REGIMEN_FIELDS,
        "endpoint_day",
        *visits,
        *_OUTCOMES,
        *_TRUTH,
    ]
    frame = {}
    for name in order:
        col = column(name)
        values = data[name]
        if col.kind == "category":
            frame[name] = pd.Categorical(values, categories=col.categories)
        elif col.kind == "bool":
            values = np.asarray(values, dtype=object)
            missing = pd.isna(values)
            frame[name] = pd.arrays.BooleanArray(
                np.where(missing, False, values).astype(bool), missing
            )
        elif col.kind == "int":
            frame[name] = pd.array(np.asarray(values, dtype=float), dtype="Int64")
        elif col.kind == "string":
            frame[name] = pd.array(values, dtype="str")
        else:
            frame[name] = np.asarray(values, dtype=float)
    return pd.DataFrame(frame)


_SCALES = ("madrs", "hamd17", "ssi")


def _is_visit(name: str) -> bool:
    scale, _, when = name.partition("_")
    return scale in _SCALES and when[:1] in ("d", "h", "m") and when[1:].isdigit()


def _visit_order(names) -> list[str]:
    """Visit columns by scale (MADRS, HAMD-17, SSI), then by time."""
    return sorted(names, key=lambda k: (_SCALES.index(k.split("_")[0]), visit_days(k)))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def simulate_trial(
    population: Population,
    arms: Mapping[str, Regimen] | Sequence[Regimen],
    n_per_arm: int,
    seed: int | np.random.SeedSequence = 0,
    *,
    visit_days: Sequence[float] = (1, 7, 14, 28),
    trial_id: str = "trial",
    trial_effect: TrialEffect | str | None = None,
) -> pd.DataFrame:
    """Simulate a randomised parallel-arm trial: one population, several arms.

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
        4-hour visit, named ``h4``). A visit sees the sessions given before it. Response and
        remission are assessed at the last one (``endpoint_day``).
    trial_id : str, default="trial"
        Written to ``trial_id`` and used as the prefix of ``patient_id``.
    trial_effect : None, "random" or TrialEffect, default=None
        The trial's random effects: None simulates a *typical* trial (effects at zero),
        ``"random"`` draws them from ``seed``.

    Returns
    -------
    DataFrame
        One row per patient, in contract dtypes: ``patient_id``, ``trial_id``, ``arm``,
        ``period`` (1), baseline columns as recorded (some missing), regimen columns,
        ``endpoint_day``, ``madrs_*``, ``hamd17_*`` and ``ssi_*`` at each visit, the
        outcomes, and the true probabilities: ``p_*`` given this trial's effects and
        ``p_*_marginal`` for a new trial (effects unknown), each given the recorded columns.
        ``p_cognitive_decline`` (and its marginal) is missing, as ``cognitive_decline`` is,
        for a course without a cognitive battery: the outcome is a change from that baseline.

    Examples
    --------
    >>> from ketapredict import Population, Regimen, simulate_trial
    >>> iv = dict(route="iv", dose_unit="mg/kg", infusion_minutes=40)
    >>> trial = simulate_trial(Population(diagnosis="TRD"),
    ...                        {"ketamine": Regimen(drug="ketamine", dose=0.5, **iv),
    ...                         "saline": Regimen(drug="saline", dose=0, **iv)},
    ...                        n_per_arm=4000, seed=1, visit_days=(1,))
    >>> rates = trial.groupby("arm")["response"].mean()
    >>> bool(0.35 < rates["ketamine"] < 0.65 and 0.03 < rates["saline"] < 0.2)
    True
    """
    _check_population(population)
    labels, regimens = _arms(arms)
    n_per_arm = _check_count("n_per_arm", n_per_arm, maximum=MAX_COURSES // len(regimens))
    visits = _check_visits(visit_days)
    rng = np.random.default_rng(_check_seed(seed))
    effect = _trial_effect(trial_effect, rng)
    return _simulate_parallel(
        population,
        labels,
        regimens,
        [n_per_arm] * len(regimens),
        rng,
        visits,
        _check_trial_id(trial_id),
        effect,
        load_parameters(),
    )


def simulate_arm(
    population: Population,
    regimen: Regimen,
    n: int,
    seed: int | np.random.SeedSequence = 0,
    *,
    visit_days: Sequence[float] = (1, 7, 14, 28),
    trial_effect: TrialEffect | str | None = None,
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
    seed : int or numpy.random.SeedSequence, default=0
        The same seed gives an identical frame.
    visit_days : sequence of float, default=(1, 7, 14, 28)
        Visit times in days after the first session; a visit between sessions sees the
        sessions given so far. Response and remission are assessed at the last visit.
    trial_effect : None, "random" or TrialEffect, default=None
        As in :func:`simulate_trial`: None is a typical trial.

    Returns
    -------
    DataFrame
        As :func:`simulate_trial`, with one arm.

    Examples
    --------
    >>> from ketapredict import Population, Regimen, simulate_arm
    >>> course = Regimen(drug="ketamine", route="iv", dose=0.5, dose_unit="mg/kg",
    ...                  infusion_minutes=40, sessions_per_week=2, n_sessions=8)
    >>> arm = simulate_arm(Population(diagnosis="TRD", madrs_mean=35), course, n=5000,
    ...                    seed=0, visit_days=(1, 8, 15))
    >>> change = arm["madrs_d15"] - arm["madrs_baseline"]
    >>> bool(-24 < change.mean() < -12 and 8 < change.std() < 15)
    True
    >>> bool(abs(arm["response"].mean() - arm["p_response"].mean()) < 0.03)
    True
    """
    if not isinstance(regimen, Regimen):
        raise ValidationError(
            [Problem("regimen", None, f"regimen must be a Regimen; got {type(regimen).__name__}")],
            "simulation",
        )
    return simulate_trial(
        population,
        {str(regimen): regimen},
        _check_count("n", n),  # named as this function names it
        seed,
        visit_days=visit_days,
        trial_id="arm",
        trial_effect=trial_effect,
    )


def simulate_crossover(
    population: Population,
    regimens: Mapping[str, Regimen] | Sequence[Regimen],
    n: int,
    seed: int | np.random.SeedSequence = 0,
    *,
    washout_days: float = 7.0,
    visit_days: Sequence[float] = (1, 7),
    trial_id: str = "crossover",
    trial_effect: TrialEffect | str | None = None,
) -> pd.DataFrame:
    """Simulate a two-period crossover: every patient gets both regimens, in random order.

    A patient's own latent terms (nonspecific propensity, drug sensitivity, true exposure,
    dissociation and cognitive susceptibility) are the same in both periods. The second
    period starts ``washout_days`` after the first period's last visit, from baseline scores
    rated again (they move by the rating's fluctuation and the patient's drift over the gap);
    the first period's drug and expectancy are assumed gone by then, which is what the
    washout is for.

    Parameters
    ----------
    population : Population
        Who is recruited.
    regimens : two Regimen, or a mapping of two labels to Regimen
        The two arms; a sequence is labelled by each regimen's description.
    n : int
        Patients (each gives two rows).
    seed : int or numpy.random.SeedSequence, default=0
        The same seed gives an identical frame.
    washout_days : float, default=7
        Days from the first period's last visit to the second period's first session.
    visit_days : sequence of float, default=(1, 7)
        Visits in each period, in days after its session.
    trial_id : str, default="crossover"
        Written to ``trial_id`` and used as the prefix of ``patient_id``.
    trial_effect : None, "random" or TrialEffect, default=None
        As in :func:`simulate_trial`.

    Returns
    -------
    DataFrame
        One row per patient-period (``period`` 1 or 2, ``arm`` the period's regimen), in the
        columns of :func:`simulate_trial`; rows of one patient share ``patient_id``.

    Examples
    --------
    >>> from ketapredict import Population, Regimen, simulate_crossover
    >>> iv = dict(route="iv", dose_unit="mg/kg", infusion_minutes=40)
    >>> trial = simulate_crossover(Population(), {"ketamine": Regimen(drug="ketamine",
    ...                            dose=0.5, **iv), "saline": Regimen(drug="saline", dose=0,
    ...                            **iv)}, n=100, seed=0, washout_days=7)
    >>> trial.groupby("period").size().tolist()
    [100, 100]
    >>> bool((trial.groupby("patient_id")["arm"].nunique() == 2).all())
    True
    """
    _check_population(population)
    labels, regimens_ = _arms(regimens, "regimens")
    if len(regimens_) != 2:
        raise ValidationError(
            [
                Problem(
                    "regimens",
                    labels,
                    f"a crossover compares two regimens; got {len(regimens_)}: {labels!r}",
                )
            ],
            "simulation",
        )
    n = _check_count("n", n, maximum=MAX_COURSES // 2)  # two rows per patient
    visits = _check_visits(visit_days)
    if (
        isinstance(washout_days, bool)
        or not isinstance(washout_days, int | float | np.integer | np.floating)
        or not (0 <= washout_days <= 365)
    ):
        raise ValidationError(
            [
                Problem(
                    "washout_days",
                    washout_days,
                    f"washout_days={washout_days!r} is not a number of days in 0-365",
                )
            ],
            "simulation",
        )
    rng = np.random.default_rng(_check_seed(seed))
    effect = _trial_effect(trial_effect, rng)
    return _simulate_crossover(
        population,
        labels,
        regimens_,
        n,
        rng,
        visits,
        float(washout_days),
        _check_trial_id(trial_id),
        effect,
        load_parameters(),
    )


@dataclass(frozen=True)
class TrialDesign:
    """A published trial design from ``cohort/trials.toml``."""

    name: str
    citation: str
    design: str
    population: Population
    arms: dict[str, Regimen]
    visit_days: tuple[float, ...]
    crossover: bool = False
    washout_days: float = 0.0
    in_cohort: bool = True
    hypothetical: bool = False


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
    ketamine 0.5 mg/kg IV over 40 min, 2/week x 8
    >>> published_trials()["zarate2006"].crossover
    True
    """
    text = resources.files("ketapredict.cohort").joinpath("trials.toml").read_text("utf-8")
    designs = {}
    for name, spec in tomllib.loads(text).items():
        designs[name] = TrialDesign(
            name=name,
            citation=spec["citation"],
            design=spec["design"],
            population=Population(**spec["population"]),
            arms={label: Regimen(**arm) for label, arm in spec["arms"].items()},
            visit_days=tuple(spec["visit_days"]),
            crossover=spec.get("crossover", False),
            washout_days=float(spec.get("washout_days", 0.0)),
            in_cohort=spec.get("in_cohort", True),
            hypothetical=spec.get("hypothetical", False),
        )
    return designs


def simulate_cohort(n: int = 5000, seed: int = 0, *, trials_per_design: int = 1) -> pd.DataFrame:
    """A pooled virtual cohort of exactly ``n`` patient courses from every trial design.

    The designs are those of :func:`published_trials` (one, ``accelerated``, is hypothetical:
    it spans the dosing frequencies no published trial covers). Every arm of every design
    gets the same number of rows (up to
    one more for the first arms when ``n`` does not divide evenly), from its trial's
    population, with the trial's visit days; response is assessed at the trial's last visit
    (``endpoint_day``). Each trial draws its own random effects. Crossover designs give each
    patient a row per period (``period`` 1 and 2, same ``patient_id``); with an odd share of
    rows, one patient left after the first period.

    Parameters
    ----------
    n : int, default=5000
        Total rows (patient courses).
    seed : int, default=0
        The same seed gives an identical frame.
    trials_per_design : int, default=1
        How many trials of each design, each with its own random effects (``trial_id``
        ``zarate2006.2``...; the rows split evenly among them). Many trials estimate what
        varies between trials, as a calibration of intervals against the true
        probabilities must: 14 trials give 14 draws of a trial's effect.

    Returns
    -------
    DataFrame
        As :func:`simulate_trial`. Visit columns a trial did not have are missing (NaN).

    Examples
    --------
    >>> from ketapredict import simulate_cohort
    >>> cohort = simulate_cohort(n=3001, seed=0)
    >>> len(cohort), cohort["trial_id"].nunique()  # every design of the pooled cohort
    (3001, 14)
    >>> simulate_cohort(n=3000, seed=0, trials_per_design=4)["trial_id"].nunique()
    56
    """
    n = _check_count("n", n)
    draws = _check_count(
        "trials_per_design", trials_per_design, maximum=1000, limit="a thousand trials a design"
    )
    if draws == 1:
        return _simulate_cohort(n, seed, load_parameters())
    # each draw of the designs is a cohort of its own seed; every trial keeps its own name
    seeds = np.random.SeedSequence([_check_seed(seed, sequence=False), draws]).generate_state(
        draws
    )
    share, extra = divmod(n, draws)
    frames, dealt = [], 0
    for k, seed_ in enumerate(seeds):
        size = share + (k < extra)
        if size == 0:
            continue
        # rows are dealt to the arms in turn, each draw going on where the last stopped, so
        # that a small cohort still holds every design
        part = _simulate_cohort(size, int(seed_), load_parameters(), first_slot=dealt)
        dealt += size
        trial = part["trial_id"] + f".{k + 1}"
        # a patient is "<trial>-<number>": the number kept, the trial renamed
        number = part["patient_id"].str.rsplit("-", n=1).str[1]
        frames.append(part.assign(trial_id=trial, patient_id=trial + "-" + number))
    cohort = pd.concat(frames, ignore_index=True)
    visits = _visit_order(c for c in cohort.columns if _is_visit(c))
    rest = [c for c in cohort.columns if not _is_visit(c)]
    at = rest.index("endpoint_day") + 1
    return cohort[rest[:at] + visits + rest[at:]]


def _simulate_cohort(n: int, seed: int, params: Parameters, first_slot: int = 0) -> pd.DataFrame:
    """``n`` rows dealt to every arm of every design in turn, from arm ``first_slot`` on."""
    designs = [d for d in published_trials().values() if d.in_cohort]
    slots = [(d.name, label) for d in designs for label in d.arms]
    share, extra = divmod(n, len(slots))
    rows = {slot: share + ((k - first_slot) % len(slots) < extra) for k, slot in enumerate(slots)}
    seeds = np.random.SeedSequence(_check_seed(seed, sequence=False)).spawn(len(designs))
    frames = []
    for design, seed_ in zip(designs, seeds, strict=True):
        sizes = [rows[(design.name, label)] for label in design.arms]
        if sum(sizes) == 0:
            continue
        rng = np.random.default_rng(seed_)
        effect = TrialEffect.draw(rng)
        labels, regimens = list(design.arms), list(design.arms.values())
        if design.crossover:
            wanted = sum(sizes)
            frames.append(
                _simulate_crossover(
                    design.population,
                    labels,
                    regimens,
                    math.ceil(wanted / 2),
                    rng,
                    design.visit_days,
                    design.washout_days,
                    design.name,
                    effect,
                    params,
                    rows_wanted=wanted,
                )
            )
        else:
            frames.append(
                _simulate_parallel(
                    design.population,
                    labels,
                    regimens,
                    sizes,
                    rng,
                    design.visit_days,
                    design.name,
                    effect,
                    params,
                )
            )
    cohort = pd.concat(frames, ignore_index=True)
    # each trial has its own visits: keep those some trial recorded, in one order
    visits = _visit_order(c for c in cohort.columns if _is_visit(c) and cohort[c].notna().any())
    rest = [c for c in cohort.columns if not _is_visit(c)]
    at = rest.index("endpoint_day") + 1
    return cohort[rest[:at] + visits + rest[at:]]
