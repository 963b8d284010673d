"""How closely the virtual cohort reproduces published evidence: fit, validation and check
targets.

Every target of ``cohort/targets.toml`` is measured here on fresh Monte Carlo simulations
(20,000 patients per arm by default, a typical trial), from the simulated scores and outcomes
as a trial would report them, not from the model's internals; only the oracle AUC reads the
true probabilities, which is what it measures. Fit targets are those the fitting script
(:mod:`.fit`) fitted the parameters to; validation and check targets it never read (checks
are statements that also shaped a mechanism's form or a fixed value, see ``targets.toml``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..schema import KETAMINES, REMISSION_MAX, RESPONSE_FRACTION, visit_label
from .parameters import Parameters, load_parameters
from .population import COGNITION
from .simulate import (
    TrialEffect,
    _check_count,
    _check_seed,
    _simulate_cohort,
    _simulate_crossover,
    _simulate_parallel,
)
from .targets import Target, load_targets, predictor_design, setting

__all__ = ["calibration_report"]


# --------------------------------------------------------------------------------------------
# Simulated arms, each simulated once and shared by the targets that use it
# --------------------------------------------------------------------------------------------
class _Lab:
    def __init__(self, n_per_arm: int, seed: int, params: Parameters):
        self.n = n_per_arm
        self.seed = seed
        self.params = params
        self._trials: dict[tuple, pd.DataFrame] = {}
        self.extra: dict[str, object] = {}

    def trial(
        self,
        name: str,
        visits: Sequence[float],
        arms: Sequence[str] | None = None,
        *,
        n: int | None = None,
        effect: TrialEffect | None = None,
        seed: Sequence[int] = (),
    ) -> pd.DataFrame:
        """A typical trial of setting ``name`` (all its arms, or ``arms``) with ``visits``."""
        visits = tuple(sorted(float(v) for v in visits))
        arms = tuple(arms) if arms is not None else None
        key = (name, visits, arms, n, effect, tuple(seed))
        if key not in self._trials:
            s = setting(name)
            labels = list(arms) if arms is not None else list(s.arms)
            regimens = [s.arms[a] for a in labels]
            size = n or self.n
            # one stream per experiment, stable whatever order the targets run in
            rng = np.random.default_rng([self.seed, *seed, *map(ord, f"{name}{visits}{arms}")])
            effect_ = effect or TrialEffect()
            if s.crossover:
                frame = _simulate_crossover(
                    s.population, labels, regimens, size, rng, visits, s.washout_days, name,
                    effect_, self.params,
                )  # fmt: skip
            else:
                frame = _simulate_parallel(
                    s.population, labels, regimens, [size] * len(labels), rng, visits, name,
                    effect_, self.params,
                )  # fmt: skip
            self._trials[key] = frame
        return self._trials[key]

    def arms(self, name: str, visits: Sequence[float]) -> dict[str, pd.DataFrame]:
        frame = self.trial(name, visits)
        return {str(k): v for k, v in frame.groupby("arm", observed=True)}


def _rows(arms: dict[str, pd.DataFrame], which: str | list[str]) -> pd.DataFrame:
    if isinstance(which, str):
        return arms[which]
    return pd.concat([arms[w] for w in which], ignore_index=True)


# --------------------------------------------------------------------------------------------
# Statistics, from simulated frames
# --------------------------------------------------------------------------------------------
def _madrs(arm: pd.DataFrame, day: float) -> pd.Series:
    return arm[f"madrs_{visit_label(day)}"]


def _change(arm, day):
    return _madrs(arm, day) - arm["madrs_baseline"]


def _responding(arm, day):
    return _madrs(arm, day) <= arm["madrs_baseline"] * RESPONSE_FRACTION


def _advantage(arm, control, day) -> float:
    """Improvement of ``arm`` over ``control`` in MADRS points (positive favours ``arm``)."""
    return float(_change(control, day).mean() - _change(arm, day).mean())


def _smd(arm, control, day) -> float:
    """SMD of severity: difference of mean MADRS at the visit over its pooled SD."""
    pooled = np.sqrt((_madrs(arm, day).var() + _madrs(control, day).var()) / 2)
    return float(_madrs(control, day).mean() - _madrs(arm, day).mean()) / pooled


def _beta(arm, day, predictor) -> float:
    """Standardised coefficient of ``predictor`` regressing MADRS on (baseline, predictor)."""
    y = _madrs(arm, day).to_numpy(dtype=float)
    x = arm[predictor].astype(float).to_numpy()
    keep = ~np.isnan(x) & ~np.isnan(y)
    design = np.column_stack(
        [np.ones(keep.sum()), arm["madrs_baseline"].to_numpy()[keep], x[keep]]
    )
    coefficients, *_ = np.linalg.lstsq(design, y[keep], rcond=None)
    return float(coefficients[2] * x[keep].std() / y[keep].std())


def _thirds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    low, high = values.quantile([1 / 3, 2 / 3])
    return values <= low, values >= high


def _contrast(outcome: pd.Series, yes: pd.Series, no: pd.Series) -> float:
    return float(outcome[yes].astype(float).mean() - outcome[no].astype(float).mean())


def _composite(arm: pd.DataFrame) -> pd.Series:
    return arm[list(COGNITION)].mean(axis=1, skipna=False)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """AUC by the rank-sum (Mann-Whitney) statistic, ties counted half."""
    ranks = pd.Series(score).rank(method="average").to_numpy()
    positives = y.sum()
    negatives = len(y) - positives
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _standard(lab: _Lab, target: Target) -> float:
    """The declarative statistics of ``targets.toml``."""
    spec = target.spec
    day = spec.get("day")
    statistic = spec["statistic"]
    if statistic == "between_trial_sd":
        return _between_trial_sd(lab, target)
    if statistic == "cognition_change":
        arms = lab.arms(spec["setting"], (day,))  # the endpoint is the day itself
        return float(_rows(arms, spec["arm"])["cognition_change"].mean())
    visits = _setting_visits(spec["setting"])
    arms = lab.arms(spec["setting"], visits)
    arm = _rows(arms, spec["arm"])
    if statistic == "response":
        return float(_responding(arm, day).mean())
    if statistic == "remission":
        return float((_madrs(arm, day) <= spec.get("at_most", REMISSION_MAX)).mean())
    if statistic == "change":
        return float(_change(arm, day).mean())
    if statistic == "change_sd":
        return float(_change(arm, day).std())
    if statistic == "worse":
        return float((_change(arm, day) > 0).mean())
    if statistic == "advantage":
        return _advantage(arm, _rows(arms, spec["control"]), day)
    if statistic == "smd":
        return _smd(arm, _rows(arms, spec["control"]), day)
    if statistic == "reduction":
        scale = spec["scale"]
        rated = arm[f"{scale}_baseline"].notna()
        return float(
            1
            - arm.loc[rated, f"{scale}_{visit_label(day)}"].mean()
            / arm.loc[rated, f"{scale}_baseline"].mean()
        )
    if statistic == "beta":
        return _beta(arm, day, spec["predictor"])
    if statistic == "dissociation":
        return float(arm["dissociation"].astype(float).mean())
    if statistic == "dissociation_correlation":
        relative = _madrs(arm, day) / arm["madrs_baseline"]
        return float(np.corrcoef(arm["cadss_peak"], relative)[0, 1])
    if statistic == "variance_explained":
        columns = {
            name: arm[name].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            for name in arm.columns
            if arm[name].dtype.kind in "fiub" or str(arm[name].dtype) in ("boolean", "Int64")
        }
        columns["sex"] = arm["sex"].to_numpy(dtype=object)
        design = predictor_design(columns)
        y = _change(arm, day).to_numpy(dtype=float)
        keep = ~np.isnan(design).any(axis=1) & ~np.isnan(y)
        coefficients, *_ = np.linalg.lstsq(design[keep], y[keep], rcond=None)
        return float(np.var(design[keep] @ coefficients) / np.var(y[keep]))
    raise KeyError(f"{target.id}: unknown statistic {statistic!r}")


def _between_trial_sd(lab: _Lab, target: Target) -> float:
    """SD across random trials of an arm's observed response rate or mean change, less the
    patient-sampling part.

    200 trials of 200 patients at the report's full size (20,000 per arm): the SD is then
    known to about 5%. Smaller reports (tests) use fewer trials, down to 50 (about 10%)."""
    spec = target.spec
    day = spec["day"]
    means, sampling = [], []
    trials, size = min(200, max(50, lab.n // 100)), 200
    rng = np.random.default_rng([lab.seed, *map(ord, target.id)])
    for k in range(trials):
        effect = TrialEffect.draw(rng)
        frame = lab.trial(spec["setting"], (day,), [spec["arm"]], n=size, effect=effect, seed=(k,))
        if spec["of"] == "response":
            values = _responding(frame, day).to_numpy(dtype=float)
        else:
            values = _change(frame, day).to_numpy(dtype=float)
        means.append(values.mean())
        sampling.append(values.var(ddof=1) / len(values))
    between = np.var(means, ddof=1) - np.mean(sampling)
    return float(np.sqrt(max(between, 0.0)))


_CUSTOM: dict[str, tuple[Callable[[_Lab], float], tuple[float, ...]]] = {}


def _custom(target_id: str, setting_name: str | None = None, visits: Sequence[float] = ()):
    """Register the measure of a ``statistic = "custom"`` target (and the visits it needs)."""

    def register(function):
        _CUSTOM[target_id] = (function, tuple(visits))
        if setting_name is not None:
            _EXTRA_VISITS.setdefault(setting_name, set()).update(visits)
        return function

    return register


_EXTRA_VISITS: dict[str, set[float]] = {}


def _setting_visits(name: str) -> tuple[float, ...]:
    """Every visit the declarative targets and the custom measures of a setting need."""
    days = {
        float(t.spec["day"])
        for t in load_targets()
        if t.expressed
        and t.spec.get("setting") == name
        and t.spec.get("statistic") not in ("custom", "between_trial_sd", "cognition_change")
        and "day" in t.spec
    }
    return tuple(sorted(days | _EXTRA_VISITS.get(name, set())))


# -- A ------------------------------------------------------------------------------------
@_custom("A7.dissociation_rises_with_dose", "fava2020", (1,))
def _(lab):
    arms = lab.arms("fava2020", _setting_visits("fava2020"))
    rates = [
        arms[a]["dissociation"].astype(float).mean()
        for a in ("ketamine_0_1", "ketamine_0_2", "ketamine_0_5", "ketamine_1_0")
    ]
    return float(np.diff(rates).min())


@_custom("A8.dissociation_weakens", "singh2016_ajp", (15,))
def _(lab):
    arms = lab.arms("singh2016_ajp", _setting_visits("singh2016_ajp"))
    repeated = _rows(arms, ["ketamine_2_per_week", "ketamine_3_per_week"])
    return float((repeated["cadss_last"] - repeated["cadss_peak"]).mean())


# -- B ------------------------------------------------------------------------------------
_FIRST_3_DAYS = (40 / 1440, 80 / 1440, 110 / 1440, 230 / 1440, 1, 2, 3)


def _diazgranados(lab):
    return lab.arms("diazgranados2010", _setting_visits("diazgranados2010"))


def _response_any_3d(arm: pd.DataFrame) -> float:
    any_visit = np.column_stack([_responding(arm, v) for v in _FIRST_3_DAYS]).any(axis=1)
    return float(any_visit.mean())


@_custom("B2.response_3d_ketamine", "diazgranados2010", _FIRST_3_DAYS)
def _(lab):
    return _response_any_3d(_diazgranados(lab)["ketamine"])


@_custom("B2.response_3d_saline", "diazgranados2010", _FIRST_3_DAYS)
def _(lab):
    return _response_any_3d(_diazgranados(lab)["saline"])


@_custom("B2.largest_day2", "diazgranados2010", (1, 2, 3))
def _(lab):
    arms = _diazgranados(lab)
    effects = [_advantage(arms["ketamine"], arms["saline"], d) for d in (1, 2, 3)]
    return effects[1] / max(effects)


# -- C ------------------------------------------------------------------------------------
_COURSE = (4 / 24, 1, 7, 21)


def _single(lab):
    return lab.arms("single_iv", _setting_visits("single_iv"))


def _single_effect(lab, day):
    arms = _single(lab)
    return _advantage(arms["ketamine"], arms["saline"], day)


@_custom("C1.comparator_changes_effect", "single_iv", (1,))
def _(lab):
    arms = _single(lab)
    return _smd(arms["ketamine"], arms["midazolam"], 1) / _smd(arms["ketamine"], arms["saline"], 1)


@_custom("C2.placebo_grows_with_time", "placebo_courses", (1, 28))
def _(lab):
    saline = lab.arms("placebo_courses", _setting_visits("placebo_courses"))["saline"]
    return float(_change(saline, 1).mean() - _change(saline, 28).mean())


@_custom("C4.onset_2_4h", "single_iv", _COURSE)
def _(lab):
    return _single_effect(lab, 4 / 24) / _single_effect(lab, 1)


@_custom("C4.peak_24h", "single_iv", _COURSE)
def _(lab):
    return _single_effect(lab, 1) - max(_single_effect(lab, 4 / 24), _single_effect(lab, 7))


@_custom("C4.fades_over_a_week", "single_iv", _COURSE)
def _(lab):
    return _single_effect(lab, 7) / _single_effect(lab, 1)


@_custom("C4.back_by_3_weeks", "single_iv", _COURSE)
def _(lab):
    return _single_effect(lab, 21) / _single_effect(lab, 1)


# six sessions three a week: the 6th at day 5 * 7 / 3
_AFTER_SIXTH = 5 * 7 / 3


def _six_vs_one(lab):
    six = lab.trial("courses", (_AFTER_SIXTH + 1, _AFTER_SIXTH + 7), ["six_sessions"])
    one = lab.trial("courses", (1, 7), ["single"])
    return six, one


@_custom("C5.repeated_more_remission")
def _(lab):
    six, one = _six_vs_one(lab)
    remitted = (_madrs(six, _AFTER_SIXTH + 1) <= REMISSION_MAX).mean()
    return float(remitted - (_madrs(one, 1) <= REMISSION_MAX).mean())


@_custom("C5.repeated_longer_response")
def _(lab):
    six, one = _six_vs_one(lab)
    return float(_responding(six, _AFTER_SIXTH + 7).mean() - _responding(one, 7).mean())


# -- F ------------------------------------------------------------------------------------
def _ketamine_d1(lab):
    return _single(lab)["ketamine"]


@_custom("F.slow_processing_speed", "single_iv", (1,))
def _(lab):
    arm = _ketamine_d1(lab)
    low, high = _thirds(arm["processing_speed_z"])
    return _contrast(_responding(arm, 1), low, high)


@_custom("F.low_attention", "single_iv", (1,))
def _(lab):
    arm = _ketamine_d1(lab)
    low, high = _thirds(arm["working_memory_z"])
    return _contrast(_responding(arm, 1), low, high)


@_custom("F.failed_treatments", "single_iv", (1,))
def _(lab):
    arm = _ketamine_d1(lab)
    failed = arm["n_failed_treatments"].astype(float)
    return _contrast(_responding(arm, 1), failed >= 5, failed <= 3)


@_custom("F.episode_length", "single_iv", (1,))
def _(lab):
    arm = _ketamine_d1(lab)
    episode = arm["episode_months"]
    return _contrast(_responding(arm, 1), episode >= 24, episode < 24)


def _esketamine(lab):
    arms = lab.arms("popova2019", _setting_visits("popova2019"))
    return _rows(arms, ["esketamine_56mg", "esketamine_84mg"])


@_custom("F.esketamine_younger", "popova2019", (28,))
def _(lab):
    arm = _esketamine(lab)
    return _contrast(_responding(arm, 28), arm["age"] < 45, arm["age"] >= 45)


@_custom("F.esketamine_fewer_failed", "popova2019", (28,))
def _(lab):
    arm = _esketamine(lab)
    failed = arm["n_failed_treatments"].astype(float)
    return _contrast(_responding(arm, 28), failed <= 3, failed >= 4)


@_custom("F.anxious_depression", "single_iv", (1,))
def _(lab):
    arm = _ketamine_d1(lab)
    anxious = arm["anxious_distress"]
    return _contrast(_responding(arm, 1), anxious.eq(True), anxious.eq(False))


@_custom("F.oracle_auc")
def _(lab):
    cohort = _simulate_cohort(5 * lab.n, lab.seed, lab.params)
    active = cohort[cohort["drug"].isin(KETAMINES)]
    per_arm = {}
    for (trial, arm), rows in active.groupby(["trial_id", "arm"], observed=True):
        y = rows["response"].to_numpy(dtype=bool)
        if 0 < y.sum() < len(y):
            per_arm[f"{trial}/{arm}"] = (_auc(y, rows["p_response"].to_numpy()), len(rows))
    lab.extra["oracle_auc_by_arm"] = {k: round(v[0], 3) for k, v in per_arm.items()}
    aucs, sizes = zip(*per_arm.values(), strict=True)
    return float(np.average(aucs, weights=sizes))


# -- G ------------------------------------------------------------------------------------
@_custom("G1.single_dose_no_deficit")
def _(lab):
    frame = lab.trial("courses", (1,), ["single", "saline"])
    arms = {str(k): v for k, v in frame.groupby("arm", observed=True)}
    return float(
        arms["single"]["cognitive_decline"].astype(float).mean()
        - arms["saline"]["cognitive_decline"].astype(float).mean()
    )


# ten sessions: cognition 24 h after the twice-weekly course's last session, when the
# five-a-week course ended 20 days earlier (a lasting deficit)
_TEN_SESSIONS_END = 9 * 7 / 2 + 1


def _ten_sessions(lab):
    frame = lab.trial("courses", (_TEN_SESSIONS_END,), ["ten_at_5_per_week", "ten_at_2_per_week"])
    return {str(k): v for k, v in frame.groupby("arm", observed=True)}


@_custom("G3.frequency_lasting_deficit")
def _(lab):
    arms = _ten_sessions(lab)
    return float(
        arms["ten_at_5_per_week"]["cognitive_decline"].astype(float).mean()
        - arms["ten_at_2_per_week"]["cognitive_decline"].astype(float).mean()
    )


@_custom("G3.decline_in_a_subset")
def _(lab):
    return float(_ten_sessions(lab)["ten_at_5_per_week"]["cognitive_decline"].astype(float).mean())


@_custom("G4.high_cognition_more_decline")
def _(lab):
    arm = _ten_sessions(lab)["ten_at_5_per_week"]
    low, high = _thirds(_composite(arm))
    return _contrast(arm["cognitive_decline"], high, low)


@_custom("G4.low_cognition_more_response", "single_iv", (1,))
def _(lab):
    arm = _ketamine_d1(lab)
    low, high = _thirds(_composite(arm))
    return _contrast(_responding(arm, 1), low, high)


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------
def _measure(lab: _Lab, target: Target) -> float:
    if target.spec["statistic"] == "custom":
        return float(_CUSTOM[target.id][0](lab))
    return _standard(lab, target)


# Patients per simulated arm. Fewer than 100 leave the simulated figures noisier than most
# tolerances (and under 10 some targets have no responder to count); every simulated arm is
# kept until the report is done, about 22 MB per 1,000 patients per arm (205 MB at 2,000,
# 340 MB at 8,000, measured 2026-12-06), so 100,000 is about 2.4 GB.
MIN_PER_ARM = 100
MAX_PER_ARM = 100_000


def calibration_report(
    seed: int = 0, n_per_arm: int = 20_000, *, parameters: Parameters | None = None
) -> pd.DataFrame:
    """Published evidence next to the virtual cohort's, target by target.

    Every target of CALIBRATION.md that the simulator can express is simulated from scratch
    (no stored simulated value), as a typical trial, and judged by its n-based tolerance.
    ``role`` says whether the fitting script fitted the parameters to it (``"fit"``), never
    saw it and nothing was set from it (``"validation"``), or never saw it but it shaped a
    mechanism or a fixed value (``"check"``).

    Parameters
    ----------
    seed : int, default=0
        Seed of every simulated arm.
    n_per_arm : int, default=20000
        Patients per simulated arm, from :data:`MIN_PER_ARM` (100) to :data:`MAX_PER_ARM`
        (100,000).
    parameters : Parameters, optional
        Other parameter values (sensitivity analyses); default ``cohort/parameters.toml``.

    Returns
    -------
    DataFrame
        One row per target: ``id``, ``role``, ``section``, ``source``, ``statement``,
        ``kind``, ``published`` (NaN for statements without a figure), ``simulated``,
        ``difference`` (simulated - published), ``tolerance``, ``check`` (the rule in words)
        and ``passed``. ``report.attrs["not_expressed"]`` lists the statements the simulator
        does not model, with the reason; ``report.attrs["oracle_auc_by_arm"]`` the oracle AUC
        of response in each active arm of the pooled cohort.

    Examples
    --------
    >>> from ketapredict import calibration_report
    >>> report = calibration_report(n_per_arm=2000)
    >>> sorted(report["role"].unique())
    ['check', 'fit', 'validation']
    >>> row = report.set_index("id").loc["A4.placebo_change"]
    >>> print(row["role"], row["published"], round(float(row["tolerance"]), 2))
    fit -17.0 4.81
    """
    seed = _check_seed(seed, sequence=False)
    n_per_arm = _check_count(
        "n_per_arm", n_per_arm, MIN_PER_ARM, MAX_PER_ARM, "about 2.4 GB of simulated arms"
    )
    if parameters is not None and not isinstance(parameters, Parameters):
        raise TypeError(f"parameters must be a Parameters; got {type(parameters).__name__}.")
    lab = _Lab(n_per_arm, seed, parameters or load_parameters())
    rows, not_expressed = [], []
    for target in load_targets():
        if not target.expressed:
            not_expressed.append(
                {
                    "id": target.id,
                    "source": target.source,
                    "statement": target.statement,
                    "not_expressed": target.spec["not_expressed"],
                }
            )
            continue
        simulated = _measure(lab, target)
        passed, rule = target.check(simulated)
        rows.append(
            {
                "id": target.id,
                "role": target.role,
                "section": target.section,
                "source": target.source,
                "statement": target.statement,
                "kind": target.kind,
                "published": target.published,
                "simulated": simulated,
                "difference": simulated - target.published,
                "tolerance": target.tolerance,
                "check": rule,
                "passed": bool(passed),
            }
        )
    report = pd.DataFrame(rows)
    report.attrs["not_expressed"] = not_expressed
    report.attrs["oracle_auc_by_arm"] = lab.extra.get("oracle_auc_by_arm", {})
    report.attrs["seed"] = seed
    report.attrs["n_per_arm"] = n_per_arm
    return report
