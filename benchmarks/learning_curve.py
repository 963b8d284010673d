"""Learning curves: OutcomeModel against its peers and the oracle, by training size.

For n_train in {300, 1000, 3000, 10000} courses drawn from ``simulate_cohort`` (5 repeats,
seeds 0-4; cognitive decline, about 1.3% of the courses, also at 30,000), every model is
scored on one independent cohort of 20,000 courses (seed 10000): OutcomeModel, the peers
of ketapredict.evaluate on the raw columns and on the encoded features, and the oracle (the
true probabilities). Outcomes: response and cognitive decline.

"OutcomeModel_trees_only" is OutcomeModel without its linear component (``linear=False``),
to show what that component adds; "OutcomeModel_dose_time" is OutcomeModel with
``linear="dose_time"`` (each predictor's weight moves with dose and time). Neither is a peer.

The headline is the clinician's question (ketapredict.evaluate.score_predictions): the AUC
within arm among active-drug patients (n-weighted over arms with at least 5 events and 5
non-events in the test cohort), and calibration among active-drug patients (ECE over 10
equal-count bins, calibration slope). The AUC over all courses follows.

Writes ``benchmarks/results/learning_curve.csv`` and ``learning_curve.png`` and prints the
mean (sd over repeats) per outcome, size and model, then the issue's targets: OutcomeModel at
least as good as the best peer within arm from 1,000 courses, and within 0.015 of the oracle
at 3,000.

Run: ``python benchmarks/learning_curve.py`` (2-3 minutes on 2 cores; ``--plot``
redraws the figure from the last results). ``--beyond`` fits OutcomeModel alone on 30,000 and
100,000 courses (2 repeats) and prints its gap to the oracle there: how far more data closes
it (about 5 minutes). ``--ceiling`` fits linear designs to the true log-odds of each outcome
(unlimited data, no outcome noise) and prints their within-arm AUC: what each model class
allows (and gradient boosting's, for interactions of every order); then estimates the same
designs from 3,000 and 30,000 courses, from the outcome and from its measurement, at the
penalty that scores best with hindsight: how much of the gap at 3,000 courses is estimation
(6-10 minutes).
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ketapredict import OutcomeModel, simulate_cohort
from ketapredict.evaluate import active_drug, arm_labels, peer_models, score_predictions

SIZES = {
    "response": (300, 1000, 3000, 10_000),
    "cognitive_decline": (300, 1000, 3000, 10_000, 30_000),
}
REPEATS = 5
OUTCOMES = ("response", "cognitive_decline")
TEST_SIZE = 20_000
RESULTS = Path(__file__).parent / "results"
LEARNER_COLOURS = {
    "logistic_regression": "C0",
    "hist_gradient_boosting": "C1",
    "xgboost_default": "C2",
}
METRICS = (
    "within_arm_auc",
    "active_ece",
    "active_calibration_slope",
    "auc",
    "pr_auc",
    "brier",
)


def scores(y: np.ndarray, p: np.ndarray, test: pd.DataFrame) -> dict[str, float]:
    found = score_predictions(y, p, arm=arm_labels(test), active=active_drug(test), n_bootstraps=0)
    return {m: found[m] for m in METRICS}


def run(outcome: str, n: int, repeat: int, test: pd.DataFrame) -> list[dict]:
    train = simulate_cohort(n=n, seed=repeat)
    train = train[train[outcome].notna()]
    test = test[test[outcome].notna()]
    y_train = train[outcome].astype(int).to_numpy()
    y_test = test[outcome].astype(int).to_numpy()
    models = {
        "OutcomeModel": OutcomeModel(outcome, random_state=repeat, n_jobs=1),
        # what the linear component adds: the same model, trees alone
        "OutcomeModel_trees_only": OutcomeModel(
            outcome, linear=False, random_state=repeat, n_jobs=1
        ),
        "OutcomeModel_dose_time": OutcomeModel(
            outcome, linear="dose_time", random_state=repeat, n_jobs=1
        ),
        **peer_models(train, seed=repeat, outcome=outcome),
    }
    base = {"outcome": outcome, "n_train": n, "repeat": repeat, "events_train": y_train.sum()}
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        try:
            model.fit(train, y_train)
        except ValueError as error:  # too few events for this learner: say so, score nothing
            rows.append({**base, "model": name, "fit_s": np.nan, "error": str(error)[:80]})
            continue
        seconds = time.perf_counter() - start
        p = model.predict_proba(test)[:, 1]
        rows.append({**base, "model": name, "fit_s": seconds, **scores(y_test, p, test)})
    truth = test[f"p_{outcome}"].to_numpy()
    rows.append({**base, "model": "oracle", "fit_s": 0.0, **scores(y_test, truth, test)})
    return rows


def plot(results: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = {
        "within_arm_auc": "AUC within arm (active drug)",
        "active_ece": "ECE, active drug (equal-count bins)",
        "auc": "AUC over all courses",
    }
    fig, axes = plt.subplots(len(OUTCOMES), len(shown), figsize=(15, 8))
    mean = results.groupby(["outcome", "model", "n_train"])[list(shown)].mean()
    for row, outcome in enumerate(OUTCOMES):
        for col, (metric, title) in enumerate(shown.items()):
            ax = axes[row, col]
            for model in results["model"].unique():
                series = mean.loc[(outcome, model)][metric]
                if model == "OutcomeModel":
                    style = {"lw": 2.5, "color": "C3"}
                elif model == "OutcomeModel_trees_only":
                    style = {"lw": 1.5, "color": "C3", "ls": "--"}
                elif model == "OutcomeModel_dose_time":
                    style = {"lw": 1.5, "color": "C4"}
                elif model == "oracle":
                    style = {"lw": 1.5, "ls": "--", "color": "k"}
                else:  # a learner keeps its colour; dotted on the encoded features
                    style = {
                        "lw": 1,
                        "color": LEARNER_COLOURS[model.removesuffix("_encoded")],
                        "ls": ":" if model.endswith("_encoded") else "-",
                    }
                ax.plot(series.index, series.values, marker="o", label=model, **style)
            ax.set_xscale("log")
            ax.set_title(f"{outcome.replace('_', ' ')}: {title}", fontsize=10)
            sizes = SIZES[outcome]
            ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
            if row == len(OUTCOMES) - 1:
                ax.set_xlabel("training courses")
    axes[0, 0].legend(fontsize=8, title="dotted: on encoded features", title_fontsize=8)
    fig.suptitle(
        "ketapredict learning curves on the virtual cohort "
        f"(test: {TEST_SIZE:,} independent courses; mean of {REPEATS} repeats)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    test = simulate_cohort(n=TEST_SIZE, seed=10_000)
    jobs = [(o, n, r) for o in OUTCOMES for n in SIZES[o] for r in range(REPEATS)]
    start = time.perf_counter()
    rows = Parallel(n_jobs=-1)(delayed(run)(o, n, r, test) for o, n, r in jobs)
    results = pd.DataFrame([row for block in rows for row in block])
    RESULTS.mkdir(exist_ok=True)
    results.to_csv(RESULTS / "learning_curve.csv", index=False)
    plot(results, RESULTS / "learning_curve.png")

    grouped = results.groupby(["outcome", "n_train", "model"], sort=False)
    table = grouped[list(METRICS)].agg(["mean", "std"])
    shown = pd.DataFrame(
        {
            m: [
                f"{a:.3f} ({b:.3f})"
                for a, b in zip(table[(m, "mean")], table[(m, "std")], strict=True)
            ]
            for m in METRICS
        },
        index=table.index,
    )
    with pd.option_context("display.width", 250, "display.max_rows", 500):
        print(shown.to_string())
    if "error" in results:
        failed = results.dropna(subset=["error"])
        for row in failed.itertuples():
            print(f"not fitted: {row.outcome} n={row.n_train} {row.model}: {row.error}")
    print(
        f"\n{len(jobs)} training samples in {time.perf_counter() - start:.0f} s; wrote "
        f"{RESULTS / 'learning_curve.csv'} and {RESULTS / 'learning_curve.png'}\n"
    )

    mean = grouped[list(METRICS)].mean()
    for outcome in OUTCOMES:
        for n in SIZES[outcome]:
            block = mean.loc[(outcome, n)]
            ours, oracle = block.loc["OutcomeModel"], block.loc["oracle"]
            peers = block.drop(
                ["OutcomeModel", "OutcomeModel_trees_only", "OutcomeModel_dose_time", "oracle"]
            )
            best = peers["within_arm_auc"].idxmax()
            beats = ours.within_arm_auc >= peers.loc[best, "within_arm_auc"]
            gap = oracle.within_arm_auc - ours.within_arm_auc
            print(
                f"{outcome:18s} n={n:>6,}: within-arm AUC {ours.within_arm_auc:.3f} vs best "
                f"peer {peers.loc[best, 'within_arm_auc']:.3f} ({best}; "
                f"{'ok' if beats else 'MISS'}), oracle {oracle.within_arm_auc:.3f} (gap "
                f"{gap:.3f}{'' if n != 3000 else ', ok' if gap <= 0.015 else ', MISS'}); "
                f"active ECE {ours.active_ece:.4f}, slope {ours.active_calibration_slope:.2f}"
            )


def beyond(sizes: tuple[int, ...] = (30_000, 100_000), repeats: int = 2) -> None:
    """OutcomeModel's within-arm gap to the oracle on far more courses than the curves use."""
    test = simulate_cohort(n=TEST_SIZE, seed=10_000)
    for outcome in OUTCOMES:
        scored = test[test[outcome].notna()]
        y = scored[outcome].astype(int).to_numpy()
        oracle = scores(y, scored[f"p_{outcome}"].to_numpy(), scored)["within_arm_auc"]
        for n in sizes:
            found = []
            for repeat in range(repeats):
                train = simulate_cohort(n=n, seed=100 + repeat)
                train = train[train[outcome].notna()]
                model = OutcomeModel(outcome, random_state=repeat, n_jobs=-1)
                model.fit(train, train[outcome].astype(int).to_numpy())
                p = model.predict_proba(scored)[:, 1]
                found.append(scores(y, p, scored)["within_arm_auc"])
            print(
                f"{outcome:18s} n={n:>7,}: OutcomeModel within-arm AUC "
                + ", ".join(f"{a:.3f}" for a in found)
                + f"; oracle {oracle:.3f}; gap {oracle - np.mean(found):.3f}"
            )


# Patient features of the ceiling's linear designs (encoded features, as OutcomeModel sees
# them); the regimen enters through per-arm intercepts and the interactions below.
_PATIENT = (
    "madrs_baseline",
    "hamd17_baseline",
    "ssi_baseline",
    "processing_speed_z",
    "working_memory_z",
    "verbal_memory_z",
    "diagnosis_MDD",
    "diagnosis_TRD",
    "n_failed_treatments",
    "episode_months",
    "anxious_distress",
    "prior_suicide_attempt",
    "family_history_aud",
    "age",
    "bmi",
    "sex_female",
)


# Binary predictors whose interactions with every other one the richest design adds.
_SCALING = ("prior_suicide_attempt", "family_history_aud")


def _every_visit(table: pd.DataFrame) -> pd.DataFrame:
    """One row per course and MADRS visit, as if the course were assessed at that visit:
    the same patient's terms measured again at other days (and mid-course)."""
    import re

    parts = []
    for name in table.columns:
        day = re.fullmatch(r"madrs_d(\d+)", name)
        if day:
            rows = table[table[name].notna()].copy()
            rows["endpoint_day"] = float(day.group(1))
            parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def ceiling(outcome: str, n: int = 100_000, sizes: tuple[int, ...] = (3000, 30_000)) -> None:
    """How far linear model classes can rank patients within arm, with unlimited data and
    when estimated from ``sizes`` courses.

    Each design is fitted by least squares to the *true* log-odds of ``outcome`` (no outcome
    noise) on half of a cohort of ``n`` courses and scored within arm on the other half:
    what the class allows, whatever the training size. Then the same designs are estimated
    from training cohorts of each size in ``sizes`` (3 repeats, seeds 0-2), by a logistic
    regression of the yes/no outcome and by a ridge regression of the measurement it is cut
    from (:func:`ketapredict.schema.outcome_measure`), each at the penalty of a grid that
    scores best on the held-out half itself: an optimistic bound on what the design can
    learn from that many courses. For response, also by a ridge regression of the
    measurement at every MADRS visit (each visit a row, assessed that day). Missing values
    take the median. Beside the linear designs, gradient boosting fitted to the same true
    log-odds: what a class with interactions of every order allows.
    """
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    from ketapredict.schema import outcome_measure
    from ketapredict.trees import logit

    cohort = simulate_cohort(n=n, seed=10_000)
    cohort = cohort[cohort[outcome].notna()].reset_index(drop=True)
    encoder = OutcomeModel(outcome).fit(cohort.head(4000), cohort[outcome].head(4000))
    names = list(encoder.feature_names_)
    encoded = encoder.encoder_.transform(cohort)[names].astype(float)
    median = encoded.median()
    center = encoded[list(_PATIENT)].mean()
    spread = encoded[list(_PATIENT)].std()
    labels = sorted(set(arm_labels(cohort)))

    def designs(table: pd.DataFrame) -> dict[str, np.ndarray]:
        Z = encoder.encoder_.transform(table)[names].astype(float).fillna(median)
        P = ((Z[list(_PATIENT)] - center) / spread).to_numpy()
        on = Z["active_drug"].to_numpy()
        modifiers = [
            on * np.log1p(Z["racemic_iv_equivalent_mg_per_kg"].to_numpy()),
            on * np.log1p(Z["days_after_last_session"].to_numpy()),
            np.log1p(Z["endpoint_day"].to_numpy()),
            Z["new_oral_antidepressant"].to_numpy(),
        ]
        arms = pd.Categorical(arm_labels(table), categories=labels)
        intercepts = pd.get_dummies(arms, dtype=float).to_numpy()
        with_active = [intercepts, P, P * on[:, None]]
        with_modifiers = with_active + [P * m[:, None] for m in modifiers]
        # a past suicide attempt takes a fraction of the drug's effect, and the two binary
        # predictors with the largest effects change the spread: each feature's drug
        # interaction differs with them
        binary = [P * (on * Z[name].to_numpy())[:, None] for name in _SCALING]
        return {
            "one slope per feature": np.hstack([intercepts, P]),
            "+ x active drug": np.hstack(with_active),
            "+ x exposure, days since the last session, day, new oral antidepressant": np.hstack(
                with_modifiers
            ),
            "+ x active drug x past suicide attempt, family history of AUD": np.hstack(
                with_modifiers + binary
            ),
        }

    target = logit(cohort[f"p_{outcome}"].to_numpy(), clip=1e-9)
    y = cohort[outcome].astype(int).to_numpy()
    fit = np.arange(len(cohort)) % 2 == 0
    held = ~fit
    full = designs(cohort)

    def within(score: np.ndarray) -> float:
        p = 1.0 / (1.0 + np.exp(-score[held]))
        return scores(y[held], p, cohort[held])["within_arm_auc"]

    print(f"{outcome}, {held.sum():,} held-out courses: within-arm AUC among active-drug patients")
    for name, X in full.items():
        line = LinearRegression().fit(X[fit], target[fit])
        print(f"{name:75s} {within(line.predict(X)):.3f}  ({X.shape[1]} columns)")
    arms = pd.Series(arm_labels(cohort))
    P = full["one slope per feature"][:, len(labels) :]
    per_arm = np.zeros(len(cohort))
    for rows in arms.groupby(arms).groups.values():
        rows = np.asarray(rows)
        line = LinearRegression().fit(P[rows[fit[rows]]], target[rows[fit[rows]]])
        per_arm[rows] = line.predict(P[rows])
    print(f"{'one linear model per arm':75s} {within(per_arm):.3f}")
    # beyond linear designs: gradient boosting on the same noise-free log-odds, from the
    # patient features, the arm and the regimen's modifiers (interactions of every order)
    from sklearn.ensemble import HistGradientBoostingRegressor

    regimen = [
        "active_drug",
        "racemic_iv_equivalent_mg_per_kg",
        "days_after_last_session",
        "endpoint_day",
        "new_oral_antidepressant",
    ]
    F = np.column_stack(
        [encoded[list(_PATIENT)], pd.Categorical(arms).codes, encoded[regimen].fillna(0)]
    )
    flexible = HistGradientBoostingRegressor(
        max_iter=2000, learning_rate=0.05, categorical_features=[len(_PATIENT)], random_state=0
    ).fit(F[fit], target[fit])
    print(
        f"{'gradient boosting (no outcome noise, 50,000 courses)':75s} "
        f"{within(flexible.predict(F)):.3f}"
    )
    print(f"{'oracle (the true probabilities)':75s} {within(target):.3f}")

    estimators = {
        "logistic regression of the outcome": [
            (f"C={c:.2g}", LogisticRegression(C=c, max_iter=5000)) for c in np.logspace(-4, 1, 11)
        ],
        "ridge regression of its measurement": [
            (f"alpha={a:.2g}", Ridge(alpha=a)) for a in np.logspace(-1, 4, 11)
        ],
    }
    if outcome in ("response", "remission"):  # MADRS is measured at every visit
        estimators["ridge, the measurement at every visit"] = estimators[
            "ridge regression of its measurement"
        ]
    for size in sizes:
        found: dict[tuple[str, str, str], list[float]] = {}
        for repeat in range(3):
            train = simulate_cohort(n=size, seed=repeat)
            train = train[train[outcome].notna()].reset_index(drop=True)
            y_train = train[outcome].astype(int).to_numpy()
            measure = outcome_measure(train, outcome)
            visits = _every_visit(train) if outcome in ("response", "remission") else None
            at_visits = outcome_measure(visits, outcome) if visits is not None else None
            visit_designs = {}
            if visits is not None:
                # a mean for each arm on each day (the response rises and falls over a
                # course), outside the columns scored: within arm they are constant
                day = visits["endpoint_day"].map("{:g}".format)
                by_day = pd.get_dummies(arm_labels(visits) + " @ " + day, dtype=float)
                visit_designs = {k: np.hstack([v, by_day]) for k, v in designs(visits).items()}
            for name, X in designs(train).items():
                for kind, grid in estimators.items():
                    rows = ~np.isnan(measure) if kind.startswith("ridge") else slice(None)
                    target_train = measure if kind.startswith("ridge") else y_train
                    seen = X
                    if kind.endswith("every visit"):
                        seen, target_train = visit_designs[name], at_visits
                        rows = ~np.isnan(at_visits)
                    for label, estimator in grid:
                        estimator.fit(seen[rows], target_train[rows])
                        coef = np.ravel(estimator.coef_)[: full[name].shape[1]]
                        found.setdefault((name, kind, label), []).append(within(full[name] @ coef))
        print(
            f"estimated from {size:,} courses (mean of 3; the penalty best on the held-out half)"
        )
        for name in full:
            for kind in estimators:
                means = {
                    label: np.mean(found[(name, kind, label)]) for label, _ in estimators[kind]
                }
                best = max(means, key=means.get)
                print(f"  {name[:52]:52s} {kind:36s} {means[best]:.3f} ({best})")


if __name__ == "__main__":
    from _options import options

    parser = options(__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--plot", action="store_true", help="redraw the figure from the results")
    mode.add_argument("--beyond", action="store_true", help="OutcomeModel on 30,000 and 100,000")
    mode.add_argument("--ceiling", action="store_true", help="what each model class allows")
    args = parser.parse_args()
    if args.plot:
        plot(pd.read_csv(RESULTS / "learning_curve.csv"), RESULTS / "learning_curve.png")
    elif args.beyond:
        beyond()
    elif args.ceiling:
        for outcome in OUTCOMES:
            ceiling(outcome)
    else:
        main()
