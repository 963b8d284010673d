"""The validation figures: readable for a common outcome (response, ~40%) and a rare one
(cognitive decline, ~1.5%)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from ketapredict import cross_validate
from ketapredict.evaluate import (
    ValidationResult,
    active_drug,
    arm_labels,
    net_benefit,
    peer_models,
    score_predictions,
)
from ketapredict.plots import (
    ORACLE_CAPTION,
    calibration_bin_count,
    decision_thresholds,
    plot_calibration,
    validation_figures,
)
from ketapredict.trees import logit

NAMES = {"experiment": "baseline-x7", "feature_set": "core-y3"}


def _result(cohort: pd.DataFrame, outcome: str, oracle: bool = True) -> ValidationResult:
    """A validation of the simulator's truth (the oracle), a shrunken noisy copy of it
    (the model) and an overconfident one (a peer), scored by evaluate's own metrics."""
    kept = cohort[cohort[outcome].notna()]
    y = kept[outcome].astype(int).to_numpy()
    truth = kept[f"p_{outcome}"].to_numpy(dtype=float)
    rng = np.random.default_rng(1)
    margin = logit(truth, clip=1e-6)
    p = {
        "OutcomeModel": 1 / (1 + np.exp(-(0.8 * margin + rng.normal(0, 0.5, len(y))))),
        "logistic_regression": 1 / (1 + np.exp(-(1.5 * margin + 4))),
    }
    if oracle:
        p["oracle"] = truth
    design = {"arm": arm_labels(kept), "active": active_drug(kept)}
    metrics = pd.DataFrame(
        {name: score_predictions(y, q, **design, n_bootstraps=0) for name, q in p.items()}
    ).T
    predictions = pd.DataFrame(
        {
            "row": np.arange(len(y)),
            "fold": pd.factorize(kept["trial_id"])[0],
            outcome: y,
            **{f"p_{name}": q for name, q in p.items()},
        }
    )
    return ValidationResult(
        outcome=outcome,
        scheme="leave_one_trial_out",
        metrics=metrics,
        fold_metrics=pd.DataFrame(),
        decision_curve=pd.DataFrame(),
        subgroups=pd.DataFrame(),
        predictions=predictions,
    )


@pytest.fixture(scope="module")
def results(cohort):
    """Response from cross_validate itself (a fast peer in OutcomeModel's place), and a
    rare outcome with an overconfident peer."""
    sample = cohort.iloc[:1500]
    response = cross_validate(
        peer_models(sample)["logistic_regression"],
        sample,
        outcome="response",
        scheme="stratified_kfold",
        n_splits=3,
        peers=False,
        n_bootstraps=0,
        n_jobs=1,
    )
    return {"response": response, "cognitive_decline": _result(cohort, "cognitive_decline")}


@pytest.fixture(scope="module")
def curve():
    rows = [
        {
            "n_train": n,
            "repeat": r,
            "model": model,
            "within_arm_auc": auc + 0.02 * r,
            "active_ece": ece,
        }
        for n in (200, 800, 3200)
        for r in range(2)
        for model, auc, ece in (
            ("OutcomeModel", 0.6 + n / 40_000, 0.05),
            ("logistic_regression", 0.58 + n / 50_000, 0.06),
            ("oracle", 0.72, 0.01),
        )
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def figures(results, curve):
    drawn = {
        outcome: validation_figures(result, **NAMES, learning_curve=curve)
        for outcome, result in results.items()
    }
    for by_name in drawn.values():
        for figure in by_name.values():
            figure.canvas.draw()  # as saving does: creates the tick labels
    return drawn


def _texts(figure) -> list[Text]:
    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _words(figure) -> str:
    """All the figure's text, with line breaks (of wrapped captions) as spaces."""
    return " ".join(" ".join(t.get_text() for t in _texts(figure)).split())


def _points(figure, model: str) -> np.ndarray:
    """The (x, y) points of a model's calibration curve."""
    (line,) = [line for line in figure.axes[0].get_lines() if line.get_gid() == model]
    return np.asarray(line.get_xydata())


def test_calibration_bins_hold_equal_counts(results, figures):
    for outcome, result in results.items():
        y = result.predictions[outcome].to_numpy()
        p = result.predictions["p_OutcomeModel"].to_numpy()
        points = _points(figures[outcome]["calibration.png"], "OutcomeModel")
        k = len(points)
        assert k == int(np.clip(y.sum() // 10, 3, 10))  # about ten events per bin
        # each point is a k-th of the courses, ranked by prediction
        cuts = np.array_split(np.argsort(p, kind="stable"), k)
        assert points[:, 0] == pytest.approx([p[c].mean() for c in cuts], rel=1e-3)
        assert points[:, 1] == pytest.approx([y[c].mean() for c in cuts], abs=2 / len(y) * k)


def test_few_events_give_fewer_bins(cohort):
    result = _result(cohort.iloc[:600], "response")
    keep = result.predictions["response"].to_numpy() == 0
    keep[np.flatnonzero(~keep)[:35]] = True  # 35 events
    few = dataclasses.replace(result, predictions=result.predictions[keep])
    assert calibration_bin_count(35) == 3
    assert len(_points(plot_calibration(few, **NAMES), "OutcomeModel")) == 3
    assert len(_points(plot_calibration(few, **NAMES, n_bins=7), "oracle")) == 7
    # a bin holds at least 11 courses: it would tell those few patients' outcomes
    tiny = dataclasses.replace(result, predictions=result.predictions.iloc[:25])
    assert len(_points(plot_calibration(tiny, **NAMES), "OutcomeModel")) == 2


def test_a_rare_outcome_is_drawn_over_the_range_of_its_predictions(figures):
    figure = figures["cognitive_decline"]["calibration.png"]
    ax, hist = figure.axes
    top = _points(figure, "oracle")[:, 0].max()
    low, high = ax.get_xlim()
    assert low == 0
    # not 0 to 1 for a 1.5% outcome, yet every bin of the model and the oracle is shown
    assert top <= high < 0.5
    assert ax.get_ylim() == (low, high)
    assert hist.get_xlim() == (low, high)  # the histogram shares the axis
    assert ax.get_xscale() == "function"  # square-root axes spread the low risks
    # the overconfident peer's top bin falls outside, and the legend says so
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert any("off the plot" in label for label in labels if label.startswith("logistic"))


def test_a_common_outcome_keeps_linear_axes(figures):
    ax = figures["response"]["calibration.png"].axes[0]
    assert ax.get_xscale() == "linear"
    assert ax.get_xlim()[1] > 0.7


def test_calibration_legend_gives_ece_and_slope(results, figures):
    result = results["response"]
    figure = figures["response"]["calibration.png"]
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    ece = result.metrics.loc["OutcomeModel", "ece"]
    assert f"OutcomeModel: ECE {ece:.3f}, slope " in labels[0]


@pytest.mark.parametrize("outcome", ["response", "cognitive_decline"])
def test_decision_thresholds_start_below_the_base_rate(results, figures, outcome):
    result = results[outcome]
    base = result.predictions[outcome].mean()
    thresholds = decision_thresholds(base)
    assert thresholds[0] == pytest.approx(base / 3, abs=1e-4)
    assert thresholds[-1] == pytest.approx(min(0.9, 3 * base + 0.1), abs=1e-4)
    assert len(thresholds) >= 50  # finer than the 0.05 grid of the result's table
    low, high = figures[outcome]["decision_curve.png"].axes[0].get_xlim()
    assert low < base < high


@pytest.mark.parametrize("outcome", ["response", "cognitive_decline"])
def test_treat_all_does_not_set_the_scale(results, figures, outcome):
    result = results[outcome]
    y = result.predictions[outcome]
    thresholds = decision_thresholds(y.mean())
    curves = {
        name: net_benefit(y, result.predictions[f"p_{name}"], thresholds)
        for name in ("OutcomeModel", "oracle")
    }
    treat_all = curves["oracle"]["treat_all"]
    best = max(float(c["model"].max()) for c in curves.values())
    assert treat_all.min() < -5 * best  # treat all plunges far below the models
    bottom, top = figures[outcome]["decision_curve.png"].axes[0].get_ylim()
    assert treat_all.min() < bottom < 0
    assert -bottom <= 0.2 * top
    assert top >= best


def test_decision_curve_says_what_acting_means(figures):
    harm = _words(figures["cognitive_decline"]["decision_curve.png"])
    assert "choose a gentler schedule or monitor cognition" in harm
    benefit = _words(figures["response"]["decision_curve.png"])
    assert "proceed with the ketamine course" in benefit
    assert "treat all: act for every patient" in benefit
    assert "treat none: act for no one" in benefit


def test_titles_name_the_experiment_the_outcome_and_the_feature_set(figures):
    for outcome, words in (("response", "response"), ("cognitive_decline", "cognitive decline")):
        assert set(figures[outcome]) == {
            "roc.png",
            "calibration.png",
            "decision_curve.png",
            "learning_curve.png",
        }
        for figure in figures[outcome].values():
            text = _words(figure)
            assert NAMES["experiment"] in text
            assert NAMES["feature_set"] in text
            assert words in text
            assert "cognitive_decline" not in text


def test_figures_are_large_with_legible_text(figures):
    for by_name in figures.values():
        for name, figure in by_name.items():
            assert figure.get_size_inches()[0] * figure.dpi >= 800, name
            sizes = {t.get_fontsize() for t in _texts(figure)}
            assert min(sizes) >= 9, name


def test_nothing_spills_out_of_the_figure_or_over_the_axes(figures):
    for by_name in figures.values():
        for name, figure in by_name.items():
            renderer = figure.canvas.get_renderer()
            frame = figure.bbox
            for artist in [*figure.texts, *figure.legends, *figure.axes]:
                box = artist.get_window_extent(renderer)
                assert frame.x0 - 1 <= box.x0, name
                assert box.x1 <= frame.x1 + 1, name
                assert frame.y0 - 1 <= box.y0, name
                assert box.y1 <= frame.y1 + 1, name
            lowest = min(ax.get_tightbbox(renderer).y0 for ax in figure.axes)
            assert figure.legends[0].get_window_extent(renderer).y1 <= lowest, name


def test_the_oracle_is_explained_wherever_it_is_drawn(cohort, figures, curve):
    for by_name in figures.values():
        for name, figure in by_name.items():
            assert ORACLE_CAPTION in _words(figure), name
    without = validation_figures(_result(cohort, "response", oracle=False), **NAMES)
    for name, figure in without.items():
        assert "oracle" not in _words(figure).lower(), name


def test_every_model_has_its_own_colour_and_line_style(figures):
    for by_name in figures.values():
        for name, figure in by_name.items():
            lines = figure.legends[0].get_lines()
            styles = {(str(line.get_color()), str(line.get_linestyle())) for line in lines}
            assert len(styles) == len(lines), name


def test_roc_gives_the_headline_within_arm_auc(results, figures):
    result = results["response"]
    text = _words(figures["response"]["roc.png"])
    within = result.metrics.loc["OutcomeModel", "within_arm_auc"]
    assert f"active-drug patients is {within:.3f}" in text


def test_figures_render_to_png(figures, tmp_path):
    from matplotlib.image import imread

    figures["cognitive_decline"]["calibration.png"].savefig(tmp_path / "calibration.png")
    height, width, _ = imread(tmp_path / "calibration.png").shape
    assert width >= 800
    assert height >= 800
