"""Learning curves: OutcomeModel against its peers and the oracle, by training size.

For n_train in {300, 1000, 3000, 10000} courses drawn from ``simulate_cohort`` (5 repeats,
seeds 0-4; cognitive decline, about 1.3% of the courses tested, from 1,000 up to 30,000, as
300 courses hold about 3 events), every model is scored on one independent cohort of 20,000
patients (seed 10000): OutcomeModel, logistic regression, HistGradientBoosting and XGBoost
with defaults (the peers of ketapredict.evaluate) and the oracle (the true probabilities).
Outcomes:
response and cognitive decline. Metrics: AUC, PR AUC, Brier score, ECE.

Writes ``benchmarks/results/learning_curve.csv`` and ``learning_curve.png`` and prints the
mean (sd over repeats) per outcome, size and model, then the issue's targets.

Run: ``python benchmarks/learning_curve.py`` (about 2 minutes on 2 cores).
"""

import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ketapredict import OutcomeModel, simulate_cohort
from ketapredict.evaluate import expected_calibration_error, peer_models

SIZES = {
    "response": (300, 1000, 3000, 10_000),
    "cognitive_decline": (1000, 3000, 10_000, 30_000),
}
REPEATS = 5
OUTCOMES = ("response", "cognitive_decline")
TEST_SIZE = 20_000
RESULTS = Path(__file__).parent / "results"


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "brier": brier_score_loss(y, p),
        "ece": expected_calibration_error(y, p),
    }


def run(outcome: str, n: int, repeat: int, test: pd.DataFrame) -> list[dict]:
    train = simulate_cohort(n=n, seed=repeat)
    train = train[train[outcome].notna()]
    test = test[test[outcome].notna()]
    y_train = train[outcome].astype(int).to_numpy()
    y_test = test[outcome].astype(int).to_numpy()
    models = {
        "OutcomeModel": OutcomeModel(outcome, random_state=repeat, n_jobs=1),
        **peer_models(train, seed=repeat),
    }
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(train, y_train)
        seconds = time.perf_counter() - start
        p = model.predict_proba(test)[:, 1]
        rows.append(
            {
                "outcome": outcome,
                "n_train": n,
                "repeat": repeat,
                "model": name,
                "events_train": int(y_train.sum()),
                "fit_s": seconds,
                **scores(y_test, p),
            }
        )
    rows.append(
        {
            "outcome": outcome,
            "n_train": n,
            "repeat": repeat,
            "model": "oracle",
            "events_train": int(y_train.sum()),
            "fit_s": 0.0,
            **scores(y_test, test[f"p_{outcome}"].to_numpy()),
        }
    )
    return rows


def plot(results: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("auc", "pr_auc", "ece")
    fig, axes = plt.subplots(len(OUTCOMES), len(metrics), figsize=(13, 7))
    mean = results.groupby(["outcome", "model", "n_train"])[list(metrics)].mean()
    for row, outcome in enumerate(OUTCOMES):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            for model in results["model"].unique():
                series = mean.loc[(outcome, model)][metric]
                style = {
                    "OutcomeModel": {"lw": 2.5, "color": "C3"},
                    "oracle": {"lw": 1.5, "ls": "--", "color": "k"},
                }.get(model, {"lw": 1})
                ax.plot(series.index, series.values, marker="o", label=model, **style)
            ax.set_xscale("log")
            ax.set_title(f"{outcome}: {metric.replace('_', ' ').upper()}")
            sizes = SIZES[outcome]
            ax.set_xticks(sizes, [str(s) for s in sizes])
            if row == len(OUTCOMES) - 1:
                ax.set_xlabel("training patients")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        "ketapredict learning curves on the virtual cohort "
        f"(test: {TEST_SIZE:,} independent patients; mean of {REPEATS} repeats)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


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
    table = grouped[["auc", "pr_auc", "brier", "ece"]].agg(["mean", "std"])
    shown = pd.DataFrame(
        {
            m: [
                f"{a:.3f} ({b:.3f})"
                for a, b in zip(table[(m, "mean")], table[(m, "std")], strict=True)
            ]
            for m in ("auc", "pr_auc", "brier", "ece")
        },
        index=table.index,
    )
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(shown.to_string())
    print(
        f"\n{len(jobs)} training runs in {time.perf_counter() - start:.0f} s; wrote "
        f"{RESULTS / 'learning_curve.csv'} and {RESULTS / 'learning_curve.png'}\n"
    )

    mean = grouped[["auc", "pr_auc", "ece"]].mean()
    peers = ["logistic_regression", "hist_gradient_boosting", "xgboost_default"]
    for outcome in OUTCOMES:
        for n in SIZES[outcome]:
            ours = mean.loc[(outcome, n, "OutcomeModel")]
            best = mean.loc[[(outcome, n, p) for p in peers]]
            oracle = mean.loc[(outcome, n, "oracle")]
            print(
                f"{outcome:18s} n={n:>6}: AUC {ours.auc:.3f} vs best peer "
                f"{best.auc.max():.3f} ({'ok' if ours.auc >= best.auc.max() else 'MISS'}), "
                f"oracle gap {oracle.auc - ours.auc:.3f}; PR AUC {ours.pr_auc:.3f} vs "
                f"{best.pr_auc.max():.3f}; ECE {ours.ece:.4f}"
            )


if __name__ == "__main__":
    main()
