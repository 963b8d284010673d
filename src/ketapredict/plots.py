"""Figures of a validation that a clinician or a data scientist can read at a glance.

:func:`validation_figures` draws every figure of a :class:`~ketapredict.evaluate.ValidationResult`
(the ones an experiment logs to MLflow); each one is also a function of its own:

- :func:`plot_calibration`: observed against predicted risk over bins of *equal counts*
  (so a 2% outcome is spread over every bin, not piled into the first of ten equal-width
  ones), the events in each bin, and how the predictions are spread underneath.
- :func:`plot_decision_curve`: net benefit over the thresholds a clinician could choose for
  this outcome (see :func:`decision_thresholds`), scaled to the models, not to "treat all".
- :func:`plot_roc`: ROC curves with each model's AUC and its interval.
- :func:`plot_learning_curve`: discrimination and calibration by training size.

Every figure names the experiment, the outcome in clinical words and the feature set, keeps
text at 9 pt or more, tells the models apart by colour *and* line style, and carries a
caption saying how to read it (and what the oracle is, when it is drawn). Figures are
:class:`matplotlib.figure.Figure` objects made without pyplot, so nothing is left open in
pyplot's list of figures; save one with ``figure.savefig(path)``.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .evaluate import decision_thresholds
from .schema import MIN_CELL

if TYPE_CHECKING:  # matplotlib takes a second to import: only the plotting functions do
    from matplotlib.figure import Figure

    from .evaluate import ValidationResult

__all__ = [
    "calibration_bin_count",
    "decision_thresholds",
    "plot_calibration",
    "plot_decision_curve",
    "plot_learning_curve",
    "plot_roc",
    "validation_figures",
]

# Size: 8.5 in at 110 dpi is 935 px wide, legible in the MLflow artifact viewer without
# zooming; no text is smaller than 9 pt.
WIDTH = 8.5
DPI = 110
_TITLE_PT = 13
_SUBTITLE_PT = 10
_TEXT_PT = 10
_SMALL_PT = 9
_LEFT, _RIGHT = 1.0, 0.3  # inches of margin beside the axes
# Below this base rate, calibration is drawn on square-root axes.
RARE = 0.1

ORACLE_CAPTION = (
    "Oracle: the simulator's true probability for each patient — the best any model could do "
    "on this virtual cohort."
)
# What "treat" means on a decision curve: acting on the prediction.
_ACTIONS = {
    "response": "proceed with the ketamine course when the predicted chance of response is "
    "at least the threshold",
    "remission": "proceed with the ketamine course when the predicted chance of remission "
    "is at least the threshold",
    "cognitive_decline": "act on the predicted risk — choose a gentler schedule or monitor "
    "cognition — when it is at least the threshold",
    "dissociation": "act on the predicted risk — choose a gentler schedule or observe longer "
    "after the session — when it is at least the threshold",
}
_SCHEMES = {
    "leave_one_trial_out": "leave-one-trial-out",
    "grouped_kfold": "k-fold grouped by trial",
    "stratified_kfold": "stratified k-fold",
}
# A learner keeps its colour on the raw columns (solid) and on the encoded features
# (dash-dot); OutcomeModel is thick red, the oracle black and dashed.
_LEARNERS = {
    "logistic_regression": ("logistic regression", "#1f77b4"),
    "hist_gradient_boosting": ("hist. gradient boosting", "#ff7f0e"),
    "xgboost_default": ("XGBoost defaults", "#2ca02c"),
}
_OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


# --------------------------------------------------------------------------------------------
# Words and styles
# --------------------------------------------------------------------------------------------
def outcome_words(outcome: str) -> str:
    """The outcome in clinical words: ``cognitive decline (≥ 0.5 SD)``."""
    from .schema import OUTCOME_LABELS

    if outcome in OUTCOME_LABELS:
        words = OUTCOME_LABELS[outcome]
    else:
        from .schema import column

        try:
            words = column(outcome).clinical_label
        except (KeyError, ValueError):  # an outcome outside the contract
            words = outcome.replace("_", " ")
    return words.replace(">=", "≥").replace("<=", "≤")


def _model_label(name: str) -> str:
    if name == "oracle":
        return "oracle (true probability)"
    learner = name.removesuffix("_encoded")
    if learner in _LEARNERS:
        kind = "encoded features" if name.endswith("_encoded") else "raw columns"
        return f"{_LEARNERS[learner][0]}, {kind}"
    return name.replace("_", " ") if name != "OutcomeModel" else name


def _styles(models: list[str]) -> dict[str, dict[str, Any]]:
    """A distinct colour and line style for every model."""
    styles: dict[str, dict[str, Any]] = {}
    others = iter(_OTHER_COLOURS * 4)
    for name in models:
        learner = name.removesuffix("_encoded")
        if name == "OutcomeModel":
            style = {"color": "#c0202a", "lw": 2.8, "ls": "-", "marker": "o", "zorder": 6}
        elif name == "oracle":
            style = {"color": "black", "lw": 1.8, "ls": "--", "marker": "s", "zorder": 5}
        elif learner in _LEARNERS:
            encoded = name.endswith("_encoded")
            style = {
                "color": _LEARNERS[learner][1],
                "lw": 1.5,
                "ls": "-." if encoded else "-",
                "marker": "^" if encoded else "v",
                "zorder": 3,
            }
        else:
            style = {"color": next(others), "lw": 1.5, "ls": ":", "marker": "D", "zorder": 3}
        styles[name] = style
    return styles


def _models(result: ValidationResult) -> list[str]:
    """The models of a result, OutcomeModel and the oracle first."""
    names = [c.removeprefix("p_") for c in result.predictions.columns if c.startswith("p_")]
    first = [n for n in ("OutcomeModel", "oracle") if n in names]
    return first + [n for n in names if n not in first]


def _metric(result: ValidationResult, model: str, name: str) -> float:
    metrics = result.metrics
    if model in metrics.index and name in metrics.columns:
        value = pd.to_numeric(pd.Series([metrics.loc[model, name]]), errors="coerce").iloc[0]
        return float(value)
    return float("nan")


def _observed(result: ValidationResult) -> np.ndarray:
    return result.predictions[result.outcome].to_numpy(dtype=float)


def _subtitle(result: ValidationResult, experiment: str, feature_set: str) -> str:
    y = _observed(result)
    scheme = _SCHEMES.get(result.scheme, result.scheme.replace("_", " "))
    folds = result.predictions["fold"].nunique() if "fold" in result.predictions else None
    how = f"{scheme}, {folds} folds" if folds else scheme
    return (
        f"experiment '{experiment}' · feature set '{feature_set}'\n"
        f"out-of-fold predictions ({how}) · {len(y):,} courses, {int(y.sum()):,} with the "
        f"outcome ({y.mean():.1%})"
    )


def _percent_axis(axis) -> None:
    """Tick labels in percent, with no more decimals than they need (0.5%, 2%, 10%)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.3g}%"))


# Ticks of a square-root risk axis: dense where a rare outcome's patients are.
_ROOT_TICKS = (0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def _root_scale(ax, limit: float) -> None:
    """Both axes on a square-root scale: the diagonal stays straight, and the low risks
    where most patients of a rare outcome lie are spread out."""
    functions = (lambda x: np.sqrt(np.clip(x, 0, None)), np.square)
    ax.set_xscale("function", functions=functions)
    ax.set_yscale("function", functions=functions)
    ticks = [t for t in _ROOT_TICKS if t <= limit]
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.minorticks_off()


# --------------------------------------------------------------------------------------------
# Layout: title, subtitle, axes, legend and caption stacked and measured, in inches
# --------------------------------------------------------------------------------------------
def _new_figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, 6), dpi=DPI)
    FigureCanvasAgg(figure)  # to measure text before the figure is saved
    return figure


def _axes(figure: Figure, **kwargs):
    ax = figure.add_axes((0.1, 0.1, 0.8, 0.8), **kwargs)
    ax.tick_params(labelsize=_SMALL_PT + 0.5)
    ax.grid(True, color="#e4e4e4", lw=0.8)
    ax.set_axisbelow(True)
    return ax


def _wrap(figure: Figure, text: str, size: float, width: float):
    """A text artist of ``text`` wrapped to ``width`` inches (paragraphs kept)."""
    renderer = figure.canvas.get_renderer()
    chars = int(width * 72 / (size * 0.5))
    while True:
        wrapped = "\n".join(textwrap.fill(p, chars) for p in text.split("\n"))
        artist = figure.text(0, 0, wrapped, fontsize=size, va="top", ha="left")
        if artist.get_window_extent(renderer).width / figure.dpi <= width or chars < 30:
            return artist
        artist.remove()
        chars -= 4


def _finish(
    figure: Figure,
    rows: list[tuple[list, float]],
    *,
    title: str,
    subtitle: str,
    handles: list,
    caption: str,
) -> Figure:
    """Stack the title, subtitle, rows of axes (each with its height in inches), legend
    and caption from the top down, and size the figure to hold them."""
    renderer = figure.canvas.get_renderer()
    usable = WIDTH - _LEFT - _RIGHT
    texts = [
        (figure.text(0, 0, title, fontsize=_TITLE_PT, weight="bold", va="top"), 0.06),
        (_wrap(figure, subtitle, _SUBTITLE_PT, WIDTH - 0.3), 0.1),
    ]
    legend = None
    if handles:
        for ncols in (2, 1):
            legend = figure.legend(
                handles=handles,
                loc="upper left",
                ncols=ncols,
                fontsize=_SMALL_PT + 0.5,
                frameon=False,
                handlelength=3.2,
                columnspacing=1.5,
            )
            if legend.get_window_extent(renderer).width / figure.dpi <= WIDTH - 0.3:
                break
            legend.remove()
    notes = _wrap(figure, caption, _SMALL_PT + 0.5, WIDTH - 0.5)

    def inches(artist) -> float:
        return artist.get_window_extent(renderer).height / figure.dpi

    def overhang(axes) -> tuple[float, float]:
        """Inches of labels above and below a row of axes (titles, ticks, axis labels)."""
        above = below = 0.0
        for ax in axes:
            tight, box = ax.get_tightbbox(renderer), ax.get_window_extent(renderer)
            above = max(above, (tight.y1 - box.y1) / figure.dpi)
            below = max(below, (box.y0 - tight.y0) / figure.dpi)
        return above, below

    # provisional positions, for the axes' labels to be measured
    figure.set_size_inches(WIDTH, 4 + sum(h for _, h in rows))
    for axes, _ in rows:
        for ax in axes:
            ax.set_position((0.15, 0.3, 0.7, 0.4))
    top = 0.15
    places = []
    for artist, gap in texts:
        places.append((artist, 0.15, top))
        top += inches(artist) + gap
    top += 0.1
    row_places = []
    for axes, height in rows:
        above, below = overhang(axes)
        top += above + 0.05
        row_places.append((axes, top, height))
        top += height + below + 0.15
    if legend is not None:
        legend_top = top
        top += inches(legend) + 0.12
    places.append((notes, 0.25, top))
    top += inches(notes) + 0.2

    total = top
    figure.set_size_inches(WIDTH, total)
    for artist, x, y in places:
        artist.set_position((x / WIDTH, 1 - y / total))
    if legend is not None:
        legend.set_bbox_to_anchor((0.15 / WIDTH, 1 - legend_top / total), figure.transFigure)
    for axes, y, height in row_places:
        gap = 0.9 if len(axes) > 1 else 0.0
        width = (usable - gap * (len(axes) - 1)) / len(axes)
        for k, ax in enumerate(axes):
            left = _LEFT + k * (width + gap)
            ax.set_position(
                (left / WIDTH, 1 - (y + height) / total, width / WIDTH, height / total)
            )
    return figure


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------
def calibration_bin_count(events: int, courses: int | None = None) -> int:
    """Bins of a calibration plot or table: about ten events per bin, between 3 and 10
    bins, and with ``courses``, at least :data:`~ketapredict.schema.MIN_CELL` courses a bin.

    With fewer events per bin, a bin's observed rate is mostly noise; a bin of a few
    courses tells their outcomes (to whoever can work out their predicted risks).

    Examples
    --------
    >>> calibration_bin_count(3225), calibration_bin_count(102), calibration_bin_count(35)
    (10, 10, 3)
    >>> calibration_bin_count(12, courses=30)
    2
    """
    bins = int(np.clip(events // 10, 3, 10))
    if courses is not None:
        bins = min(bins, max(1, courses // MIN_CELL))
    return bins


def plot_calibration(
    result: ValidationResult,
    *,
    experiment: str = "",
    feature_set: str = "",
    n_bins: int | None = None,
) -> Figure:
    """Calibration of every model: observed against predicted risk over equal-count bins.

    Each point is a bin holding the same number of courses, ranked by that model's
    prediction (:func:`ketapredict.evaluate.calibration_bins`, as logged with the run);
    OutcomeModel's points carry their 95%
    intervals and event counts. The axes span the predictions (0 to a little above the
    largest bin), not 0 to 1, and a histogram of OutcomeModel's predictions (the oracle's
    as an outline) sits underneath on the same axis. The legend gives each model's ECE and
    calibration slope over all out-of-fold courses (``result.metrics``).

    Parameters
    ----------
    result : ValidationResult
        From :func:`ketapredict.cross_validate`.
    experiment, feature_set : str
        Named in the subtitle.
    n_bins : int, optional
        Bins per model; by default :func:`calibration_bin_count` of the events.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    A validation of a rare outcome (about 3%) by a model and the oracle; a result of
    :func:`ketapredict.cross_validate` is used the same way.

    >>> import numpy as np, pandas as pd
    >>> from ketapredict.evaluate import ValidationResult, score_predictions
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.beta(1, 30, 3000)
    >>> y = (rng.random(3000) < truth).astype(int)
    >>> p = {"OutcomeModel": np.clip(truth * rng.lognormal(0, 0.4, 3000), 0, 1), "oracle": truth}
    >>> result = ValidationResult(
    ...     "cognitive_decline", "stratified_kfold",
    ...     metrics=pd.DataFrame({m: score_predictions(y, q, n_bootstraps=0)
    ...                           for m, q in p.items()}).T,
    ...     fold_metrics=None, decision_curve=None, subgroups=None,
    ...     predictions=pd.DataFrame({"fold": rng.integers(0, 3, 3000), "cognitive_decline": y,
    ...                               **{f"p_{m}": q for m, q in p.items()}}))
    >>> figure = plot_calibration(result, experiment="demo", feature_set="core")
    >>> bool(figure.get_size_inches()[0] * figure.dpi >= 800)
    True
    >>> main, histogram = figure.axes
    >>> bool(main.get_xlim()[1] < 0.3)  # the range of the predictions, not 0 to 1
    True
    """
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    from .evaluate import calibration_bins

    y = _observed(result)
    models = _models(result)
    styles = _styles(models)
    # each bin of at least MIN_CELL patients (a crossover patient gives a course a period)
    per_patient = result.courses_per_patient
    k = (
        calibration_bin_count(int(y.sum()), len(y) // per_patient)
        if n_bins is None
        else int(n_bins)
    )
    tables = {
        name: calibration_bins(
            y,
            result.predictions[f"p_{name}"].to_numpy(dtype=float),
            k,
            min_courses=MIN_CELL * per_patient,
        )
        for name in models
    }
    # the axes span OutcomeModel's and the oracle's bins: a peer's extreme top bin (a
    # logistic regression predicting 80% for a 2% outcome) must not squash them
    leading = [n for n in ("OutcomeModel", "oracle") if n in tables] or models
    limit = max(float(tables[n][["mean_predicted", "observed"]].max().max()) for n in leading)
    limit = min(1.0, limit * 1.12 + 0.005)

    root = bool(y.mean() < RARE)
    figure = _new_figure()
    ax = _axes(figure)
    hist = _axes(figure, sharex=ax)
    ax.plot([0, 1], [0, 1], color="#888888", lw=1, zorder=1)
    handles = []
    for name in models:
        table, style = tables[name], styles[name]
        main = name == "OutcomeModel"
        ax.plot(
            table["mean_predicted"],
            table["observed"],
            gid=name,
            color=style["color"],
            lw=style["lw"] if main else 1.3,
            ls=style["ls"],
            marker=style["marker"],
            ms=7 if main else 5,
            alpha=1 if main or name == "oracle" else 0.85,
            zorder=style["zorder"],
        )
        if main:
            ax.errorbar(
                table["mean_predicted"],
                table["observed"],
                # clipped at 0: rounding can put a Wilson bound a hair past the rate
                yerr=np.clip(
                    [
                        table["observed"] - table["observed_low"],
                        table["observed_high"] - table["observed"],
                    ],
                    0,
                    None,
                ),
                fmt="none",
                ecolor=style["color"],
                elinewidth=1,
                capsize=3,
                zorder=style["zorder"],
            )
            # the events of each bin, where the bins stand far enough apart to read them
            scale = np.sqrt if root else (lambda x: x)
            where = scale(table["mean_predicted"].to_numpy()) / scale(limit)
            last = np.inf
            for k in reversed(range(len(table))):
                if last - where[k] < 0.06:
                    continue
                last = where[k]
                ax.annotate(
                    f"{int(table['events'].iloc[k])}",
                    (table["mean_predicted"].iloc[k], table["observed"].iloc[k]),
                    xytext=(7, -12),
                    textcoords="offset points",
                    fontsize=_SMALL_PT,
                    color=style["color"],
                    clip_on=True,
                    # above the peers' lines, with a white halo where one crosses it
                    zorder=10,
                    path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
                )
        ece = _metric(result, name, "ece")
        slope = _metric(result, name, "calibration_slope")
        label = _model_label(name)
        if np.isfinite(ece):
            label += f": ECE {ece:.3f}, slope {slope:.2f}"
        off = int(((table["mean_predicted"] > limit) | (table["observed"] > limit)).sum())
        if off:
            label += f" ({off} bin{'s' if off > 1 else ''} off the plot)"
        handles.append(
            Line2D(
                [],
                [],
                color=style["color"],
                lw=style["lw"] if main else 1.3,
                ls=style["ls"],
                marker=style["marker"],
                ms=7 if main else 5,
                label=label,
            )
        )
    handles.append(Line2D([], [], color="#888888", lw=1, label="perfect calibration"))
    if root:
        _root_scale(ax, limit)
    ax.set_xlim(0, limit)
    ax.set_ylim(0, limit)
    _percent_axis(ax.yaxis)
    ax.set_ylabel("observed rate in the bin", fontsize=_TEXT_PT)
    ax.tick_params(labelbottom=False)

    # bins of equal width on the axis as drawn
    bins = np.linspace(0, np.sqrt(limit), 41) ** 2 if root else np.linspace(0, limit, 41)
    ours = result.predictions.get("p_OutcomeModel")
    if ours is not None:
        p = ours.to_numpy(dtype=float)
        hist.hist(p[p <= limit], bins=bins, color="#c0202a", alpha=0.45, lw=0)
        above = int((p > limit).sum())
        if above:
            hist.text(
                0.99,
                0.92,
                f"{above:,} predictions above {limit:.0%} not shown",
                transform=hist.transAxes,
                ha="right",
                va="top",
                fontsize=_SMALL_PT,
            )
    if "p_oracle" in result.predictions:
        p = result.predictions["p_oracle"].to_numpy(dtype=float)
        hist.hist(p[p <= limit], bins=bins, histtype="step", color="black", lw=1.2)
    hist.set_ylabel("courses", fontsize=_TEXT_PT)
    hist.set_xlabel("predicted probability (mean within the bin)", fontsize=_TEXT_PT)
    _percent_axis(hist.xaxis)

    first = tables[models[0]]
    per_bin = round(len(y) / max(len(first), 1))
    caption = (
        f"Each point is a bin of about {per_bin:,} courses, ranked by the model's predicted "
        "probability: x is the bin's mean prediction, y the share of its courses with the "
        "outcome. On the grey diagonal the model is calibrated; below it, it over-predicts. "
        f"{_model_label(models[0])}'s bins show 95% intervals and (numbers) their events: "
        f"{', '.join(str(int(e)) for e in first['events'])}, lowest risk first. "
        "ECE: mean gap between observed and predicted over 10 equal-count bins "
        "(0 is best); slope: calibration slope (1 is best; below 1, predictions too extreme). "
        "Underneath: how OutcomeModel's predictions (filled) "
        + ("and the true probabilities (outline) " if "oracle" in models else "")
        + "are spread. All out-of-fold courses, every arm."
    )
    if root:
        caption += (
            f" The outcome is rare (under {RARE:.0%}): both axes are on a square-root scale, "
            "to spread the low risks where most patients lie."
        )
    if "oracle" in models:
        caption += "\n" + ORACLE_CAPTION
    return _finish(
        figure,
        [([ax], 4.4), ([hist], 1.2)],
        title=f"Calibration: {outcome_words(result.outcome)}",
        subtitle=_subtitle(result, experiment, feature_set),
        handles=handles,
        caption=caption,
    )


# --------------------------------------------------------------------------------------------
# Decision curve
# --------------------------------------------------------------------------------------------
def plot_decision_curve(
    result: ValidationResult,
    *,
    experiment: str = "",
    feature_set: str = "",
    thresholds: Any = None,
) -> Figure:
    """Decision curve: the net benefit of acting on each model's predictions.

    Net benefit at threshold t is (true positives − false positives × t / (1 − t)) / n
    (Vickers & Elkin 2006), computed with :func:`ketapredict.evaluate.net_benefit`. The
    thresholds run from a third of the base rate to ``min(0.9, 3 × base rate + 0.1)``
    (:func:`decision_thresholds`). The y-axis is scaled to the models: from 15% of the
    highest net benefit below zero to a little above it; "treat all", which falls steeply
    above the base rate, is clipped there and never sets the scale.

    Parameters
    ----------
    result : ValidationResult
        From :func:`ketapredict.cross_validate`.
    experiment, feature_set : str
        Named in the subtitle.
    thresholds : array-like of float, optional
        Defaults to :func:`decision_thresholds` of the observed base rate.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    A validation of a rare outcome (about 3%) by a model and the oracle; a result of
    :func:`ketapredict.cross_validate` is used the same way.

    >>> import numpy as np, pandas as pd
    >>> from ketapredict.evaluate import ValidationResult, score_predictions
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.beta(1, 30, 3000)
    >>> y = (rng.random(3000) < truth).astype(int)
    >>> p = {"OutcomeModel": np.clip(truth * rng.lognormal(0, 0.4, 3000), 0, 1), "oracle": truth}
    >>> result = ValidationResult(
    ...     "cognitive_decline", "stratified_kfold",
    ...     metrics=pd.DataFrame({m: score_predictions(y, q, n_bootstraps=0)
    ...                           for m, q in p.items()}).T,
    ...     fold_metrics=None, decision_curve=None, subgroups=None,
    ...     predictions=pd.DataFrame({"fold": rng.integers(0, 3, 3000), "cognitive_decline": y,
    ...                               **{f"p_{m}": q for m, q in p.items()}}))
    >>> figure = plot_decision_curve(result, experiment="demo", feature_set="core")
    >>> low, high = figure.axes[0].get_xlim()
    >>> bool(low < y.mean() < high)
    True
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from .evaluate import net_benefit

    y = _observed(result)
    base = float(y.mean())
    if thresholds is None:
        thresholds = decision_thresholds(base)
    thresholds = np.asarray(thresholds, dtype=float)
    models = _models(result)
    styles = _styles(models)
    curves = {
        name: net_benefit(y, result.predictions[f"p_{name}"].to_numpy(dtype=float), thresholds)
        for name in models
    }
    treat_all = curves[models[0]]["treat_all"]
    highest = max(max(float(c["model"].max()) for c in curves.values()), float(treat_all.max()))
    highest = max(highest, 1e-3)
    top, bottom = highest * 1.12, -0.15 * highest

    figure = _new_figure()
    ax = _axes(figure)
    handles = []
    for name in models:
        style = {k: v for k, v in styles[name].items() if k != "marker"}
        curve = curves[name]["model"]
        ax.plot(curve.index, curve.to_numpy(), **style)
        handles.append(Line2D([], [], **style, label=_model_label(name)))
    ax.plot(treat_all.index, treat_all.to_numpy(), color="#777777", lw=1.6, zorder=2)
    ax.axhline(0, color="black", lw=1.2, ls=":", zorder=2)
    below = treat_all[treat_all < bottom]
    all_label = "treat all: act for every patient"
    if len(below):
        all_label += f" (off the plot above {below.index[0]:.1%})"
    handles += [
        Line2D([], [], color="#777777", lw=1.6, label=all_label),
        Line2D([], [], color="black", lw=1.2, ls=":", label="treat none: act for no one"),
    ]
    ax.axvline(base, color="#777777", lw=1, ls=(0, (2, 2)))
    ax.annotate(
        f"base rate {base:.1%}",
        (base, top),
        xytext=(4, -4),
        textcoords="offset points",
        va="top",
        fontsize=_SMALL_PT,
        color="#555555",
    )
    ax.set_xlim(thresholds[0], thresholds[-1])
    ax.set_ylim(bottom, top)
    _percent_axis(ax.xaxis)
    ax.set_xlabel("threshold: act when the predicted probability is at least this", fontsize=10)
    # per 100 courses: "1.2 more patients helped per 100", not "0.012"
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.3g}"))
    ax.set_ylabel("net benefit: net true positives per 100 courses", fontsize=_TEXT_PT)
    action = _ACTIONS.get(
        result.outcome, "act on the prediction when it is at least the threshold"
    )
    # an example threshold inside the range, whose odds are a whole number of actions
    example = min(
        (t for t in (0.02, 0.05, 0.1, 0.2, 0.25, 0.5) if thresholds[0] <= t <= thresholds[-1]),
        key=lambda t: abs(np.log(t) - np.log(thresholds[0] * thresholds[-1]) / 2),
        default=0.2,
    )
    caption = (
        f"Acting here means: {action}. Net benefit = (true positives − false positives × "
        "t/(1 − t)) / courses: a threshold t says that one useful action is worth (1 − t)/t "
        f"needless ones (at {example:.0%}, {round((1 - example) / example)}). A model "
        "is worth using at the thresholds where its curve lies above both references, treat "
        "all and treat none; below zero, acting on it does more harm than good (curves are "
        "cut off a little below zero)."
    )
    if "oracle" in models:
        caption += "\n" + ORACLE_CAPTION
    return _finish(
        figure,
        [([ax], 4.6)],
        title=f"Decision curve: {outcome_words(result.outcome)}",
        subtitle=_subtitle(result, experiment, feature_set),
        handles=handles,
        caption=caption,
    )


# --------------------------------------------------------------------------------------------
# ROC
# --------------------------------------------------------------------------------------------
def plot_roc(result: ValidationResult, *, experiment: str = "", feature_set: str = "") -> Figure:
    """ROC curves of every model over all out-of-fold courses, with each AUC and interval.

    Pooled over every arm, the curve also rewards knowing the arm; the caption gives the
    headline, OutcomeModel's AUC within arm among active-drug patients.

    Parameters
    ----------
    result : ValidationResult
        From :func:`ketapredict.cross_validate`.
    experiment, feature_set : str
        Named in the subtitle.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    A validation of a rare outcome (about 3%) by a model and the oracle; a result of
    :func:`ketapredict.cross_validate` is used the same way.

    >>> import numpy as np, pandas as pd
    >>> from ketapredict.evaluate import ValidationResult, score_predictions
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.beta(1, 30, 3000)
    >>> y = (rng.random(3000) < truth).astype(int)
    >>> p = {"OutcomeModel": np.clip(truth * rng.lognormal(0, 0.4, 3000), 0, 1), "oracle": truth}
    >>> result = ValidationResult(
    ...     "cognitive_decline", "stratified_kfold",
    ...     metrics=pd.DataFrame({m: score_predictions(y, q, n_bootstraps=0)
    ...                           for m, q in p.items()}).T,
    ...     fold_metrics=None, decision_curve=None, subgroups=None,
    ...     predictions=pd.DataFrame({"fold": rng.integers(0, 3, 3000), "cognitive_decline": y,
    ...                               **{f"p_{m}": q for m, q in p.items()}}))
    >>> figure = plot_roc(result, experiment="demo", feature_set="core")
    >>> [text.get_text() for text in figure.legends[0].get_texts()][:2]
    ['OutcomeModel: AUC 0.7...', 'oracle (true probability): AUC 0.7...']
    """
    from matplotlib.lines import Line2D
    from sklearn.metrics import roc_curve

    y = _observed(result)
    models = _models(result)
    styles = _styles(models)
    figure = _new_figure()
    ax = _axes(figure)
    ax.plot([0, 1], [0, 1], color="#888888", lw=1)
    handles = []
    for name in models:
        style = {k: v for k, v in styles[name].items() if k != "marker"}
        p = result.predictions[f"p_{name}"].to_numpy(dtype=float)
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, **style)
        label = _model_label(name)
        auc, low, high = (_metric(result, name, m) for m in ("auc", "auc_low", "auc_high"))
        if np.isfinite(auc):
            label += f": AUC {auc:.3f}"
            if np.isfinite(low) and np.isfinite(high):
                label += f" ({low:.2f}–{high:.2f})"
        handles.append(Line2D([], [], **style, label=label))
    handles.append(Line2D([], [], color="#888888", lw=1, label="chance"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_xlabel("1 − specificity (false-positive rate)", fontsize=_TEXT_PT)
    ax.set_ylabel("sensitivity (true-positive rate)", fontsize=_TEXT_PT)
    caption = (
        "Each curve ranks all out-of-fold courses, every arm together, so it also rewards "
        "knowing which arm a patient was in. The AUC is the chance that a random course "
        "with the outcome is ranked above one without it (0.5: chance); brackets: 95% "
        f"interval, resampling {result.resampled}."
    )
    within = _metric(result, "OutcomeModel", "within_arm_auc")
    if np.isfinite(within):
        low = _metric(result, "OutcomeModel", "within_arm_auc_low")
        high = _metric(result, "OutcomeModel", "within_arm_auc_high")
        interval = f" ({low:.2f}–{high:.2f})" if np.isfinite(low) and np.isfinite(high) else ""
        caption += (
            " The headline, ranking patients on the same regimen: OutcomeModel's AUC within "
            f"arm among active-drug patients is {within:.3f}{interval}."
        )
    if "oracle" in models:
        caption += "\n" + ORACLE_CAPTION
    return _finish(
        figure,
        [([ax], 4.8)],
        title=f"ROC curves: {outcome_words(result.outcome)}",
        subtitle=_subtitle(result, experiment, feature_set),
        handles=handles,
        caption=caption,
    )


# --------------------------------------------------------------------------------------------
# Learning curve
# --------------------------------------------------------------------------------------------
def plot_learning_curve(
    curve: pd.DataFrame, *, outcome: str, experiment: str = "", feature_set: str = ""
) -> Figure:
    """Discrimination and calibration by training size, on one held-out part of the data.

    Left, the AUC within arm among active-drug patients; right, the ECE among them (both
    from :func:`ketapredict.evaluate.learning_curve`). Points are means over the repeated
    training samples of a size; OutcomeModel's band spans the lowest to the highest.

    Parameters
    ----------
    curve : DataFrame
        From :func:`ketapredict.evaluate.learning_curve`.
    outcome : str
        The outcome it was drawn for.
    experiment, feature_set : str
        Named in the subtitle.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> curve = pd.DataFrame({"n_train": [200, 400, 200, 400], "repeat": 0,
    ...                       "model": ["OutcomeModel"] * 2 + ["oracle"] * 2,
    ...                       "within_arm_auc": [0.60, 0.65, 0.70, 0.70],
    ...                       "active_ece": [0.08, 0.05, 0.02, 0.02]})
    >>> figure = plot_learning_curve(curve, outcome="response", experiment="demo",
    ...                              feature_set="core")
    >>> [ax.get_ylabel() for ax in figure.axes]
    ['AUC within arm, active-drug patients', 'ECE, active-drug patients']
    """
    from matplotlib.lines import Line2D

    models = list(dict.fromkeys(curve["model"]))
    models = [m for m in ("OutcomeModel", "oracle") if m in models] + [
        m for m in models if m not in ("OutcomeModel", "oracle")
    ]
    styles = _styles(models)
    sizes = sorted(int(n) for n in curve["n_train"].unique())
    figure = _new_figure()
    panels = [_axes(figure), _axes(figure)]
    metrics = [
        (
            "within_arm_auc",
            "AUC within arm, active-drug patients",
            "discrimination (higher is better)",
        ),
        ("active_ece", "ECE, active-drug patients", "calibration error (lower is better)"),
    ]
    handles = []
    for name in models:
        style = styles[name]
        group = curve[curve["model"] == name]
        for ax, (metric, _, _) in zip(panels, metrics, strict=True):
            if metric not in group:
                continue
            by_size = group.groupby("n_train")[metric]
            mean = by_size.mean()
            ax.plot(mean.index, mean.to_numpy(), **{**style, "ms": 6})
            if name == "OutcomeModel" and len(set(group["repeat"])) > 1:
                ax.fill_between(
                    mean.index,
                    by_size.min().to_numpy(),
                    by_size.max().to_numpy(),
                    color=style["color"],
                    alpha=0.15,
                    lw=0,
                )
        handles.append(Line2D([], [], **{**style, "ms": 6}, label=_model_label(name)))
    for ax, (_, label, heading) in zip(panels, metrics, strict=True):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training courses", fontsize=_TEXT_PT)
        ax.set_ylabel(label, fontsize=_TEXT_PT)
        ax.set_title(heading, fontsize=_TEXT_PT)
    repeats = int(curve["repeat"].nunique())
    caption = (
        f"Each point is the mean over {repeats} training sample(s) of that size, every model "
        "scored on the same held-out courses"
        + ("; the red band spans OutcomeModel's samples. " if repeats > 1 else ". ")
        + "A curve still improving at the right would gain from more data; where a peer "
        "catches up as the data grow, OutcomeModel's built-in structure matters less."
    )
    if "oracle" in models:
        caption += "\n" + ORACLE_CAPTION + " It does not learn, so its line is flat."
    return _finish(
        figure,
        [(panels, 4.0)],
        title=f"Learning curve: {outcome_words(outcome)}",
        subtitle=(
            f"experiment '{experiment}' · feature set '{feature_set}' · "
            f"training sizes {', '.join(f'{n:,}' for n in sizes)}"
        ),
        handles=handles,
        caption=caption,
    )


# --------------------------------------------------------------------------------------------
# All of them
# --------------------------------------------------------------------------------------------
def validation_figures(
    result: ValidationResult,
    *,
    experiment: str,
    feature_set: str,
    learning_curve: pd.DataFrame | None = None,
) -> dict[str, Figure]:
    """Every figure of a validation, by file name.

    Parameters
    ----------
    result : ValidationResult
        From :func:`ketapredict.cross_validate`.
    experiment : str
        The experiment's name, shown on every figure.
    feature_set : str
        The feature set's name, shown on every figure.
    learning_curve : DataFrame, optional
        From :func:`ketapredict.evaluate.learning_curve`; adds ``learning_curve.png``.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``roc.png``, ``calibration.png``, ``decision_curve.png`` and, given a learning
        curve, ``learning_curve.png``. The caller saves them (``figure.savefig(path)``
        or ``mlflow.log_figure``).

    Examples
    --------
    A validation of a rare outcome (about 3%) by a model and the oracle; a result of
    :func:`ketapredict.cross_validate` is used the same way.

    >>> import numpy as np, pandas as pd
    >>> from ketapredict.evaluate import ValidationResult, score_predictions
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.beta(1, 30, 3000)
    >>> y = (rng.random(3000) < truth).astype(int)
    >>> p = {"OutcomeModel": np.clip(truth * rng.lognormal(0, 0.4, 3000), 0, 1), "oracle": truth}
    >>> result = ValidationResult(
    ...     "cognitive_decline", "stratified_kfold",
    ...     metrics=pd.DataFrame({m: score_predictions(y, q, n_bootstraps=0)
    ...                           for m, q in p.items()}).T,
    ...     fold_metrics=None, decision_curve=None, subgroups=None,
    ...     predictions=pd.DataFrame({"fold": rng.integers(0, 3, 3000), "cognitive_decline": y,
    ...                               **{f"p_{m}": q for m, q in p.items()}}))
    >>> sorted(validation_figures(result, experiment="demo", feature_set="core"))
    ['calibration.png', 'decision_curve.png', 'roc.png']
    """
    names = {"experiment": experiment, "feature_set": feature_set}
    figures = {
        "roc.png": plot_roc(result, **names),
        "calibration.png": plot_calibration(result, **names),
        "decision_curve.png": plot_decision_curve(result, **names),
    }
    if learning_curve is not None:
        figures["learning_curve.png"] = plot_learning_curve(
            learning_curve, outcome=result.outcome, **names
        )
    return figures
