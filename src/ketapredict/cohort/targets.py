"""The published targets of ``cohort/targets.toml``, their tolerances and settings.

A target's tolerance follows from its sample size (CALIBRATION.md, "How to fit and how to
judge a fit"); the rules are in the file's header and in :func:`_tolerance`. Both the
fitting script (:mod:`.fit`, fit targets only) and the report (:mod:`.calibration`, every
target) read them from here.
"""

from __future__ import annotations

import math
import operator
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from ..regimen import Regimen
from .population import COGNITION, Population
from .simulate import published_trials

__all__ = ["Setting", "Target", "load_targets", "predictor_design", "setting"]

# Between-trial spreads (CALIBRATION.md E, and its "How to fit" section): a response rate
# about 0.07, a mean change about 2 MADRS points. An SD of change 2.8 points, assumed: no
# source gives the spread of SDs between trials; within Singh 2016 (D1), the twice- and
# three-times-weekly arms of the same drug (n about 17 each, expected to share an SD) differ
# by 4.7 and 4.5 points where their sampling SEs are 2.5 and 2.0, which gives
# sqrt((d^2 - se^2) / 2) = 2.8 for both.
# A standardised beta 0.05 and an SMD 0.3 (I^2 = 78% for severity, E1): assumed sizes.
# A correlation 0.1 (assumed).
TAU = {"rate": 0.07, "mean": 2.0, "sd": 2.8, "beta": 0.05, "smd": 0.3, "correlation": 0.1}
_Z = 1.96  # two-sided 5% significance
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class Target:
    """One published result, how it is simulated, and when a simulation reproduces it."""

    id: str
    role: str  # "fit", "validation" or "check" (see targets.toml)
    source: str
    statement: str
    kind: str
    published: float
    tolerance: float
    rule: str
    spec: dict[str, Any] = field(repr=False)

    @property
    def section(self) -> str:
        return self.id[0]

    @property
    def expressed(self) -> bool:
        return "not_expressed" not in self.spec

    @property
    def weight(self) -> float:
        """Precision weight for fitting: 1 / (tolerance / 2)^2."""
        return 1.0 / (self.tolerance / 2) ** 2

    def check(self, simulated: float) -> tuple[bool, str]:
        """Whether ``simulated`` reproduces the target, and the rule in words."""
        if not math.isfinite(simulated):
            return False, "a finite value"
        if self.kind in ("rate", "mean", "sd", "beta", "tau", "correlation"):
            ok = abs(simulated - self.published) <= self.tolerance
            return ok, f"|difference| <= {self.tolerance:.3g} ({self.rule})"
        if self.kind == "significant":
            return simulated >= self.tolerance, f"d >= {self.tolerance:.3g} ({self.rule})"
        if self.kind == "not_significant":
            return simulated <= self.tolerance, f"d <= {self.tolerance:.3g} ({self.rule})"
        op, *bounds = self.spec["expect"]
        if op == "between":
            return bounds[0] <= simulated <= bounds[1], f"between {bounds[0]:g} and {bounds[1]:g}"
        return _OPS[op](simulated, bounds[0]), f"{op} {bounds[0]:g}"


def _tolerance(spec: dict[str, Any]) -> tuple[float, str]:
    """A target's tolerance (or significance threshold) and the rule that gave it."""
    kind = spec.get("kind")
    trials = spec.get("trials", 1)
    n = spec.get("n")
    if "tolerance" in spec:
        return float(spec["tolerance"]), spec.get("tolerance_rule", "as published")
    if kind == "rate":
        p = spec["published"]
        value = 2 * math.sqrt(p * (1 - p) / n + TAU["rate"] ** 2 / trials)
        return value, f"n={n}, {trials} trial(s)"
    if kind == "mean":
        se = spec["se"] if "se" in spec else spec["sd"] / math.sqrt(n)
        value = 2 * math.sqrt(se**2 + TAU["mean"] ** 2 / trials)
        return value, f"SE {se:.2f}, {trials} trial(s)"
    if kind == "sd":
        sd = spec["published"]
        value = 2 * math.sqrt(sd**2 / (2 * (n - 1)) + TAU["sd"] ** 2 / trials)
        return value, f"n={n}"
    if kind == "beta":
        value = 2 * math.sqrt(1 / n + TAU["beta"] ** 2 / trials)
        return value, f"n={n}"
    if kind == "correlation":
        r = spec["published"]
        value = 2 * math.sqrt((1 - r**2) ** 2 / (n - 1) + TAU["correlation"] ** 2 / trials)
        return value, f"n={n}"
    if kind == "tau":
        value = 2 * spec["published"] / math.sqrt(2 * n)
        return value, f"{n} studies"
    if kind in ("significant", "not_significant"):
        # The trial is one draw: its d ~ N(typical d, SE^2 + tau^2). The published result is
        # reproduced when it lies in the 95% range of such draws, as for rates and means;
        # a significant result needs at least the typical effect's direction.
        paired = spec.get("paired", False)
        se = math.sqrt((1 if paired else 2) / n)
        spread = _Z * math.sqrt(se**2 + TAU["smd"] ** 2)
        what = f"{n} patients paired" if paired else f"{n} per arm"
        if kind == "significant":
            return max(0.0, _Z * se - spread), f"significant with {what}: d_trial >= {_Z * se:.2f}"
        return _Z * se + spread, f"not significant with {what}: d_trial < {_Z * se:.2f}"
    return math.nan, ""


# The baseline predictors of the variance_explained statistic (Niciu 2014 regressed outcome
# on clinical baseline variables).
_DESIGN_COLUMNS = (
    "age",
    "bmi",
    "n_failed_treatments",
    "anxious_distress",
    "prior_suicide_attempt",
    "family_history_aud",
    "madrs_baseline",
    *COGNITION,
)


def predictor_design(table: Mapping[str, Any]) -> np.ndarray:
    """The design matrix of ``variance_explained``: intercept, baseline predictors, female
    sex and log episode length, one row per patient (NaN where a value is missing)."""
    columns = [np.asarray(table[name], dtype=float) for name in _DESIGN_COLUMNS]
    female = np.asarray(table["sex"], dtype=object) == "female"
    episode = np.log(np.asarray(table["episode_months"], dtype=float))
    ones = np.ones(len(female))
    return np.column_stack([ones, *columns, female.astype(float), episode])


@cache
def _file() -> dict[str, Any]:
    text = resources.files("ketapredict.cohort").joinpath("targets.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def load_targets() -> tuple[Target, ...]:
    """Every target of ``cohort/targets.toml``, in file order."""
    out = []
    for spec in _file()["target"]:
        tolerance, rule = _tolerance(spec)
        out.append(
            Target(
                id=spec["id"],
                role=spec["role"],
                source=spec["source"],
                statement=spec["statement"],
                kind=spec.get("kind", ""),
                published=float(spec.get("published", math.nan)),
                tolerance=tolerance,
                rule=rule,
                spec=spec,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class Setting:
    """A simulated experiment: population, arms and, for a crossover, its washout."""

    name: str
    population: Population
    arms: dict[str, Regimen]
    crossover: bool = False
    washout_days: float = 0.0


def setting(name: str) -> Setting:
    """A setting of ``targets.toml``, or a published trial design of ``trials.toml``."""
    settings = _file().get("setting", {})
    if name in settings:
        spec = settings[name]
        return Setting(
            name,
            Population(**spec["population"]),
            {label: Regimen(**arm) for label, arm in spec["arms"].items()},
        )
    design = published_trials()[name]
    return Setting(
        name, design.population, dict(design.arms), design.crossover, design.washout_days
    )
