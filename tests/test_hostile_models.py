"""Hostile model directories: every way a model file can try to reach outside its directory,
break scoring or pass for another model is refused at load with a ModelFileError.

The cases are data (``HOSTILE_CASES``) so that ``benchmarks/fault_injection.py`` counts them
too: each edits a copy of the demo model, often recomputing every checksum afterwards as
anyone who can write the directory could (``reseal``), so that the structural checks, not
the checksums, must refuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from ketapredict import fit_risk_model
from ketapredict.models import outcome_models

DEMO = "demo_model"
OUTCOME = "response"


def demo_copy(where: Path) -> Path:
    """A fresh copy of the shipped demo model."""
    with resources.as_file(resources.files("ketapredict") / "data" / DEMO) as demo:
        shutil.copytree(demo, where)
    return where


def reseal(path: Path) -> None:
    """Recompute every checksum of a model directory, as an editor could."""
    from ketapredict.modelfile import content_digest

    manifest = json.loads((path / "manifest.json").read_text())
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
        manifest["files"] = {
            name: hashlib.sha256((path / name).read_bytes()).hexdigest()
            if (path / name).is_file()
            else digest
            for name, digest in manifest["files"].items()
        }
        manifest["content_sha256"] = content_digest(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def _edit_json(name: str, change: Callable, replace: bool = False) -> Callable:
    """An edit of one JSON file: ``change`` edits the record in place, or with
    ``replace`` returns the new content."""

    def edit(path: Path, outside: Path) -> None:
        record = json.loads((path / name).read_text())
        changed = change(record)
        record = changed if replace else record
        (path / name).write_text(json.dumps(record))
        reseal(path)

    return edit


def _manifest(change: Callable, resealed: bool = True) -> Callable:
    def edit(path: Path, outside: Path) -> None:
        manifest = json.loads((path / "manifest.json").read_text())
        manifest = change(manifest, outside)
        (path / "manifest.json").write_text(json.dumps(manifest))
        if resealed:
            reseal(path)

    return edit


def _raw_manifest(text: str | bytes) -> Callable:
    def edit(path: Path, outside: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (path / "manifest.json").write_bytes(data)

    return edit


def _outcome(change: Callable, replace: bool = False) -> Callable:
    return _edit_json(f"{OUTCOME}.json", change, replace)


def _trees(change: Callable, replace: bool = False) -> Callable:
    return _edit_json(f"{OUTCOME}.trees.json", change, replace)


def _modify(record: dict, member: int | None = None, rows: list | None = None, **change) -> None:
    """Give every linear member a valid dose-and-time modifier, then ``change`` one field
    of it (of one member only, with ``member``), or its coefficient rows."""
    n = len(record["linear"][0]["coef"])
    for i, linear in enumerate(record["linear"]):
        spec = {"column": 0, "low": 0.0, "high": 1.0, "log": True, "active": True}
        if member is None or member == i:
            spec.update(change)
        linear["modifiers"] = [spec]
        linear["coef_modifiers"] = rows if rows is not None else [[0.0] * n]


def _draw_required(imputer: dict, name: str, listed: bool) -> None:
    """Make a saved imputer draw the required field ``name`` first (a valid covariance)."""
    k = len(imputer["spec"])
    imputer["spec"].insert(0, [name, None])
    imputer["fields_"].insert(0, name)
    if listed:
        imputer["fields"].insert(0, name)
    imputer["mean"].insert(0, 0.5)
    covariance = np.eye(k + 1)
    covariance[1:, 1:] = imputer["covariance"]
    imputer["covariance"] = covariance.tolist()


def _step_columns(encoder: str, columns: list) -> Callable:
    """An edit giving every step of ``encoder`` in a saved feature set these columns."""

    def change(record: dict) -> None:
        for group in record["feature_set"]["groups"]:
            for step in group["steps"]:
                if step["encoder"] == encoder:
                    step["columns"] = columns

    return change


def _key_twice(name: str, key: str) -> Callable:
    """An edit giving ``key`` a second, earlier value in the file ``name`` (the manifest is
    not resealed: its parsed content, last value winning, is unchanged)."""

    def edit(path: Path, outside: Path) -> None:
        text = (path / name).read_text()
        (path / name).write_text("{" + json.dumps(key) + ": 0, " + text.lstrip()[1:])
        if name != "manifest.json":
            reseal(path)

    return edit


def _padded(sizes: dict[str, int]) -> Callable:
    """Files grown to ``sizes`` bytes with trailing white space (still valid JSON), resealed."""

    def edit(path: Path, outside: Path) -> None:
        for name, size in sizes.items():
            with open(path / name, "ab") as handle:
                handle.write(b" " * (size - (path / name).stat().st_size))
        reseal(path)

    return edit


def _symlink(name: str) -> Callable:
    """Replace a file by a link to an identical file outside: its checksum still matches."""

    def edit(path: Path, outside: Path) -> None:
        (path / name).unlink()
        (path / name).symlink_to(outside / name)

    return edit


def _special(name: str, kind: str) -> Callable:
    def edit(path: Path, outside: Path) -> None:
        (path / name).unlink()
        if kind == "fifo":
            os.mkfifo(path / name)  # a reader would block for ever
        else:
            (path / name).mkdir()

    return edit


def _first_split(trees: dict) -> int:
    return next(i for i, left in enumerate(trees["left"]) if left != -1)


def _set_node(key: str, value) -> Callable:
    def change(trees: dict) -> None:
        trees[key][_first_split(trees)] = value

    return change


def _leaf_value(value) -> Callable:
    def change(trees: dict) -> None:
        trees["value"][trees["left"].index(-1)] = value

    return change


def _node_loops(trees: dict) -> None:
    node = _first_split(trees)
    trees["left"][node] = node


def _node_points_back(trees: dict) -> None:
    # the first tree's second split points back at the root: a cycle
    splits = [i for i, left in enumerate(trees["left"]) if left != -1]
    trees["right"][splits[1]] = splits[0]


def _into_next_tree(trees: dict) -> None:
    trees["right"][_first_split(trees)] = trees["roots"][1]


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def _booster(change: Callable[[bytes], bytes]) -> Callable:
    """An edit of the response booster's bytes, resealed."""

    def edit(path: Path, outside: Path) -> None:
        booster = path / "response.ubj"
        booster.write_bytes(change(booster.read_bytes()))
        reseal(path)

    return edit


def _best_iteration(data: bytes) -> bytes:
    """A booster with a best_iteration attribute of "3" beside scikit-learn's."""

    def key(name: bytes) -> bytes:
        return b"L" + len(name).to_bytes(8, "big") + name

    extra = key(b"best_iteration") + b"S" + b"L" + (1).to_bytes(8, "big") + b"3"
    return data.replace(key(b"scikit_learn"), extra + key(b"scikit_learn"), 1)


def _other_booster(path: Path, outside: Path) -> None:
    """Another outcome's booster in place of the response's, resealed."""
    shutil.copy(path / "remission.ubj", path / "response.ubj")
    reseal(path)


# (id, edit, what the refusal names): each edit makes a hostile directory from a copy of
# the demo model; ``outside`` is a sibling directory holding another copy of it.
HOSTILE_CASES: list[tuple[str, Callable, str]] = [
    # -- names reaching outside the directory
    (
        "manifest-lists-parent-path",
        _manifest(
            lambda m, o: {**m, "files": {**m["files"], "../outside/response.json": "0" * 64}}
        ),
        "files a model does not have",
    ),
    (
        "manifest-lists-absolute-path",
        _manifest(lambda m, o: {**m, "files": {**m["files"], str(o / "response.json"): "0" * 64}}),
        "files a model does not have",
    ),
    (
        "manifest-outcome-is-a-path",
        _manifest(lambda m, o: {**m, "outcomes": [*m["outcomes"], "../outside/response"]}),
        "not distinct outcomes of the data contract",
    ),
    (
        "outcome-names-outside-trees",
        _outcome(lambda r: r.update(trees="../outside/response.trees.json")),
        "names the files",
    ),
    (
        "outcome-names-absolute-booster",
        _outcome(lambda r: r.update(booster="/etc/passwd")),
        "names the files",
    ),
    ("symlinked-trees", _symlink("response.trees.json"), "response.trees.json is not the file"),
    ("symlinked-outcome", _symlink("response.json"), "response.json is not the file"),
    ("symlinked-booster", _symlink("response.ubj"), "response.ubj is not the file"),
    ("symlinked-card", _symlink("model_card.md"), "model_card.md is not the file"),
    ("symlinked-manifest", _symlink("manifest.json"), "manifest.json is missing"),
    ("fifo-outcome", _special("response.json", "fifo"), "response.json is not the file"),
    ("fifo-manifest", _special("manifest.json", "fifo"), "manifest.json is missing"),
    # -- boosters: XGBoost's own reader crashed the interpreter on an empty or truncated file
    # -- what every report prints: a 1 MB name would be printed into each
    (
        "provenance-long-name",
        _manifest(lambda m, o: {**m, "provenance": {**m["provenance"], "name": "x" * 300}}),
        "provenance name must be text of at most 200 characters",
    ),
    # every report copies the provenance: 15 MB of it made each take a second
    (
        "provenance-too-large",
        _manifest(
            lambda m, o: {**m, "provenance": {**m["provenance"], "extra": [[0] * 1000] * 40}}
        ),
        "over the limit of 65,536 (every report carries a copy of it)",
    ),
    # a key given twice: readers differ on which counts, so the file would read as one
    # thing and load as another (a "saved" date put first needed no resealing)
    ("manifest-key-twice", _key_twice("manifest.json", "saved"), "'saved' is given twice"),
    ("outcome-key-twice", _key_twice(f"{OUTCOME}.json", "interval_z"), "'interval_z' is given"),
    (
        "interval-scale-true",
        _outcome(lambda r: r.update(interval_scale={"active": True, "comparator": 1.0})),
        "interval_scale active True is not a number",
    ),
    (
        "linear-unknown-field",
        _outcome(lambda r: r["linear"][0].update(nested=[[[0]]])),
        "linear component: unknown fields ['nested']",
    ),
    (
        "linear-penalty-text",
        _outcome(lambda r: r["linear"][0].update(C="0.1")),
        "linear C 0.1 is not a finite number",
    ),
    # two faults: both are named, so the sender fixes them in one round
    (
        "manifest-two-faults",
        _manifest(lambda m, o: {**m, "ketapredict_version": 5, "saved": "yesterday"}),
        "manifest.json field 'ketapredict_version': Input should be a valid string; field 'saved'",
    ),
    (
        "provenance-two-faults",
        _manifest(
            lambda m, o: {
                **m,
                "provenance": {**m["provenance"], "name": "x" * 300, "trained": 2026},
            }
        ),
        "at most 200 characters; got 300 characters; provenance trained must be text",
    ),
    ("empty-booster", _booster(lambda b: b""), "response.ubj: not a complete UBJSON document"),
    # typed constants take no bytes: k headers of 13 bytes could each claim the whole file
    (
        "booster-typed-constants",
        _booster(lambda b: b"[" + b"[$Z#L" + (10**6).to_bytes(8, "big") + b"]"),
        "response.ubj: a typed array of b'Z' values",
    ),
    # best_iteration would change what XGBClassifier.predict scores
    ("booster-best-iteration", _booster(_best_iteration), "attributes"),
    (
        "rounds-not-the-boosters",
        _outcome(lambda r: r.update(n_rounds=r["n_rounds"] + 1)),
        "n_rounds",
    ),
    ("classes-reversed", _outcome(lambda r: r.update(classes=r["classes"][::-1])), "classes"),
    (
        "truncated-booster",
        _booster(lambda b: b[: len(b) // 2]),
        "response.ubj: not a complete UBJSON document",
    ),
    ("garbage-booster", _booster(lambda b: b"{garbage"), "response.ubj: a length has the marker"),
    (
        "trailing-bytes-booster",
        _booster(lambda b: b + b"}"),
        "response.ubj: 1 bytes after the end",
    ),
    ("another-outcomes-booster", _other_booster, "response.ubj holds other trees"),
    ("directory-booster", _special("response.ubj", "dir"), "response.ubj is not the file"),
    # -- trees that would give NaN, loop, hang or index out of range
    # NaN and Infinity are no JSON: refused as the file is read
    ("nan-leaf", _trees(_leaf_value(float("nan"))), "NaN is not a JSON number"),
    ("infinite-leaf", _trees(_leaf_value(1e300)), "value has values that are not finite"),
    ("nan-threshold", _trees(_set_node("threshold", float("nan"))), "NaN is not a JSON number"),
    ("node-is-its-own-child", _trees(_node_loops), "a child must follow its parent"),
    ("node-points-back", _trees(_node_points_back), "a child must follow its parent"),
    ("child-in-next-tree", _trees(_into_next_tree), "a child must follow its parent"),
    ("child-out-of-range", _trees(_set_node("left", 10**9)), "a child must follow its parent"),
    ("huge-max-depth", _trees(lambda t: t.update(max_depth=10**9)), "max_depth"),
    ("wrong-max-depth", _trees(lambda t: t.update(max_depth=t["max_depth"] + 5)), "deep"),
    ("feature-out-of-range", _trees(_set_node("feature", 10**6)), "feature index"),
    ("negative-feature", _trees(_set_node("feature", -3)), "feature index"),
    ("huge-integer-index", _trees(_set_node("left", 10**30)), "trees: left"),
    ("string-threshold", _trees(_set_node("threshold", "0.5")), "trees: threshold"),
    ("nested-threshold", _trees(_set_node("threshold", [0.5])), "trees: threshold"),
    ("zero-cover-split", _trees(_set_node("cover", 0.0)), "cover"),
    (
        "infinite-base-margin",
        _trees(lambda t: t.update(base_margins=[1e400] * 21)),
        "Infinity is not a JSON number",
    ),
    ("trees-missing-field", _trees(lambda t: t.pop("cover")), "missing ['cover']"),
    ("trees-as-list", _trees(lambda t: [t], replace=True), "expected an object"),
    ("roots-unsorted", _trees(lambda t: t["roots"].reverse()), "roots"),
    ("members-out-of-order", _trees(lambda t: t["tree_member"].reverse()), "tree_member"),
    ("fewer-features-than-names", _trees(lambda t: t.update(n_features=3)), "feature index"),
    # -- calibrators, intervals, reference statistics
    (
        "nan-calibrator",
        _outcome(lambda r: r["calibrator"].update(a=float("nan"))),
        "NaN is not a JSON number",
    ),
    ("unknown-calibrator", _outcome(lambda r: r["calibrator"].update(method="exec")), "method"),
    (
        "isotonic-decreasing",
        _outcome(
            lambda r: r.update(
                calibrator={"method": "isotonic", "margins": [1, 0], "probabilities": [0.1, 0.9]}
            )
        ),
        "margins must increase",
    ),
    (
        "isotonic-probability-above-one",
        _outcome(
            lambda r: r.update(
                calibrator={"method": "isotonic", "margins": [0, 1], "probabilities": [0.1, 2.0]}
            )
        ),
        "calibrator field 'probabilities.1'",
    ),
    (
        "calibrator-string-number",
        _outcome(lambda r: r["calibrator"].update(a="0.9")),
        "calibrator field 'a'",
    ),
    (
        "replicate-calibrators-short",
        _outcome(lambda r: r["replicate_calibrators"].pop()),
        "one per",
    ),
    ("negative-interval-z", _outcome(lambda r: r.update(interval_z=-1.0)), "interval_z"),
    ("few-events-as-text", _outcome(lambda r: r.update(few_events="yes")), "few_events"),
    *(
        (
            f"assessed-day-{label}",
            _outcome(lambda r, day=day: r["feature_set"].update(assessed_day=day)),
            "assessed_day",
        )
        for label, day in (("negative", -1.0), ("text", "day 1"), ("huge", 1e9), ("true", True))
    ),
    # a feature set is checked as its file would be: a step without columns loaded, then
    # failed at scoring with an IndexError (or blamed the caller's complete Regimen)
    *(
        (f"feature-step-{encoder}-without-columns", _outcome(_step_columns(encoder, [])), said)
        for encoder, said in (
            ("severity_band", "lists no columns"),
            ("dose_schedule", "dose_schedule reads every regimen field"),
        )
    ),
    (
        "feature-step-reads-age-as-madrs",
        _outcome(_step_columns("severity_band", ["age", "madrs_baseline"])),
        "severity_band reads ['madrs_baseline'] only",
    ),
    (
        "feature-step-unknown-encoder",
        _outcome(lambda r: r["feature_set"]["groups"][0]["steps"][0].update(encoder="exec")),
        "encoder='exec' is not one of",
    ),
    (
        "feature-group-name-not-text",
        _outcome(lambda r: r["feature_set"]["groups"][0].update(name=["x"])),
        "groups[0].name is not a new name",
    ),
    (
        "feature-set-unknown-key",
        _outcome(lambda r: r["feature_set"].update(run="x")),
        "feature_set: missing [], unknown ['run']",
    ),
    (
        "linear-nan",
        _outcome(lambda r: r["linear"][0].update(intercept=float("nan"))),
        "NaN is not a JSON number",
    ),
    ("linear-short", _outcome(lambda r: r["linear"][0].update(coef=[1.0])), "linear coef"),
    # finite but extreme numbers summed to an infinite margin: NaN probabilities
    (
        "linear-huge-coef",
        _outcome(lambda r: r["linear"][0].update(coef=[1e308] * len(r["linear"][0]["coef"]))),
        "linear coef",
    ),
    (
        "linear-tiny-scale",
        _outcome(lambda r: r["linear"][0].update(scale=[1e-308] * len(r["linear"][0]["scale"]))),
        "linear scale",
    ),
    (
        "linear-text-intercept",
        _outcome(lambda r: r["linear"][0].update(intercept="1")),
        "intercept",
    ),
    (
        "feature-names-in-unknown",
        _outcome(lambda r: r.update(feature_names_in=["x"])),
        "feature_names_in",
    ),
    ("classes-three", _outcome(lambda r: r.update(classes=["a", "b", "c"])), "classes"),
    ("rounds-negative", _outcome(lambda r: r.update(n_rounds=-1)), "n_rounds"),
    ("leaf-weight-text", _outcome(lambda r: r.update(min_child_weight="x")), "min_child_weight"),
    ("modifier-outside", _outcome(lambda r: _modify(r, column=10**6)), "linear modifier"),
    ("modifier-text-range", _outcome(lambda r: _modify(r, low="0")), "linear modifier"),
    ("modifier-extra-key", _outcome(lambda r: _modify(r, run="x")), "linear modifier"),
    ("modifiers-differ", _outcome(lambda r: _modify(r, member=1, high=2.0)), "same for every"),
    ("modifier-rows-short", _outcome(lambda r: _modify(r, rows=[[0.0]])), "coef_modifiers"),
    ("imputer-huge-draws", _outcome(lambda r: r["imputer"].update(n_draws=10**9)), "n_draws"),
    # loaded, these set every patient's risk to >99% (or drew every missing value at the
    # end of its range) with no driver to say why
    (
        "trees-huge-base-margins",
        _trees(lambda t: t.update(base_margins=[1e308] * len(t["base_margins"]))),
        "each within +-100",
    ),
    (
        "imputer-impossible-mean",
        _outcome(lambda r: r["imputer"]["mean"].__setitem__(0, 1e300)),
        "impossible for values in",
    ),
    (
        "provenance-nan",
        _manifest(lambda m, o: {**m, "provenance": {**m["provenance"], "auc": float("nan")}}),
        "NaN is not a JSON number",
    ),
    (
        "recalibration-slope-reversed",
        _outcome(
            lambda r: r.update(
                recalibration={
                    "method": "intercept_slope",
                    "intercept": 0.1,
                    "slope": -1.4,
                    "covariance": [[0.01, 0.0], [0.0, 0.01]],
                }
            )
        ),
        "recalibration slope -1.4 is not above 0.001",
    ),
    # a required field among the drawn ones overwrote the diagnosis the clinician recorded
    (
        "imputer-draws-the-diagnosis",
        _outcome(lambda r: _draw_required(r["imputer"], "diagnosis", listed=False)),
        "fields_ some of them in order",
    ),
    (
        "imputer-lists-the-diagnosis",
        _outcome(lambda r: _draw_required(r["imputer"], "sex", listed=True)),
        "imputer field 'sex' is not an optional numeric or yes/no baseline field",
    ),
    (
        "imputer-conditions-on-a-drawn-field",
        _outcome(lambda r: r["imputer"]["spec"].__setitem__(-1, ["bmi", None])),
        "not the required baseline fields it conditions on",
    ),
    (
        "imputer-without-mean",
        _outcome(lambda r: r["imputer"].pop("mean")),
        "imputer: expected an object of ['covariance', 'fields', 'fields_', 'mean'",
    ),
    (
        "imputer-spec-not-pairs",
        _outcome(lambda r: r["imputer"]["spec"].__setitem__(0, ["bmi"])),
        "imputer spec: expected [name, category] pairs",
    ),
    (
        "imputer-outside-contract",
        _outcome(lambda r: r["imputer"]["spec"].append(["../etc", None])),
        "not in the contract",
    ),
    ("unknown-outcome-field", _outcome(lambda r: r.update(run="rm -rf /")), "unknown ['run']"),
    ("outcome-file-swapped", _outcome(lambda r: r.update(outcome="remission")), "not 'response'"),
    ("outcome-as-list", _outcome(lambda r: [r], replace=True), "holds a list"),
    ("feature-names-not-strings", _outcome(lambda r: r.update(feature_names=[1, 2])), "names"),
    (
        "reference-covariance-singular",
        _manifest(
            lambda m, o: {
                **m,
                "reference": {
                    **m["reference"],
                    "covariance": [[0.0] * len(r) for r in m["reference"]["covariance"]],
                },
            }
        ),
        "positive definite",
    ),
    *(
        (
            f"reference-{key}-as-text",
            _manifest(
                lambda m, o, key=key: {
                    **m,
                    "reference": {
                        **m["reference"],
                        key: "5" if key == "joint_threshold" else ["1", *m["reference"][key][1:]],
                    },
                }
            ),
            "statistics are not numbers",
        )
        for key in ("joint_threshold", "low")
    ),
    *(
        (
            f"recalibration-{label}",
            _outcome(
                lambda r, update=update: r.update(
                    recalibration={"method": "intercept_slope", **update}
                )
            ),
            message,
        )
        for label, update, message in (
            (
                "overflowing-covariance",
                {"intercept": 0, "slope": 1, "covariance": [[0, -1e308], [-1e308, 1e308]]},
                "not a covariance",
            ),
            (
                "huge-intercept",
                {"intercept": 1e5, "slope": 1.0, "covariance": [[0.01, 0], [0, 0]]},
                "beyond 1000",
            ),
            (
                "tiny-slope",
                {"intercept": 1.0, "slope": 1e-200, "covariance": [[0.01, 0], [0, 0]]},
                "not above 0.001",
            ),
        )
    ),
    (
        "provenance-deep-inside",
        _manifest(lambda m, o: {**m, "provenance": {"x": json.loads(_deep(500))}}),
        "nests deeper than 32",
    ),
    (
        "reference-unknown-feature",
        _manifest(
            lambda m, o: {
                **m,
                "reference": {**m["reference"], "binary": ["../etc/passwd"]},
            }
        ),
        "not features of the model",
    ),
    (
        "reference-zero-sd",
        _manifest(
            lambda m, o: {
                **m,
                "reference": {**m["reference"], "sd": [0.0] * len(m["reference"]["sd"])},
            }
        ),
        "sd must be positive",
    ),
    (
        "reference-drug-routes-not-texts",
        _manifest(
            lambda m, o: {**m, "reference": {**m["reference"], "drug_routes": [1, {"a": 2}]}}
        ),
        "reference drug_routes: expected at most 200 one-line texts",
    ),
    (
        "reference-drug-routes-huge",
        _manifest(
            lambda m, o: {
                **m,
                "reference": {**m["reference"], "drug_routes": ["ketamine iv"] * 10_000},
            }
        ),
        "reference drug_routes: expected at most 200 one-line texts",
    ),
    (
        "reference-schedules-too-long",
        _manifest(lambda m, o: {**m, "reference": {**m["reference"], "schedules": ["x" * 121]}}),
        "reference schedules: expected at most 1000 one-line texts",
    ),
    (
        "reference-diagnosis-schedules-not-a-list",
        _manifest(
            lambda m, o: {**m, "reference": {**m["reference"], "diagnosis_schedules": "TRD"}}
        ),
        "reference diagnosis_schedules: expected at most 1000 one-line texts",
    ),
    # a warning quotes these texts: a line break or an escape sequence in one would let the
    # file print a line of its own ("response  5%") into the report
    (
        "reference-drug-routes-write-a-line",
        _manifest(
            lambda m, o: {
                **m,
                "reference": {
                    **m["reference"],
                    "drug_routes": ["x\nresponse (MADRS -50%)  5%\x1b[31m"],
                },
            }
        ),
        "reference drug_routes: expected at most 200 one-line texts",
    ),
    (
        "reference-feature-name-with-escape",
        _manifest(
            lambda m, o: {
                **m,
                "reference": {**m["reference"], "seen_categories": ["route_iv\x1b]0;x\x07"]},
            }
        ),
        "reference seen_categories: expected a list of feature names",
    ),
    # -- malformed manifests (no checksum can be right for these)
    ("manifest-empty-list", _raw_manifest("[]"), "holds a list"),
    ("manifest-null", _raw_manifest("null"), "holds a NoneType"),
    ("manifest-string", _raw_manifest('"model"'), "holds a str"),
    ("manifest-deeply-nested", _raw_manifest(_deep(100_000)), "nested too deeply"),
    ("manifest-not-utf8", _raw_manifest(b'\xff\xfe{"format": 1}'), "not valid JSON"),
    (
        "manifest-files-as-list",
        _manifest(lambda m, o: {**m, "files": list(m["files"])}),
        "field 'files'",
    ),
    (
        "manifest-outcomes-as-object",
        _manifest(lambda m, o: {**m, "outcomes": {"response": 1}}),
        "field 'outcomes'",
    ),
    ("manifest-no-outcomes", _manifest(lambda m, o: {**m, "outcomes": []}), "field 'outcomes'"),
    (
        "manifest-nested-provenance",
        _manifest(lambda m, o: {**m, "provenance": json.loads(_deep(50))}),
        "field 'provenance'",
    ),
    ("manifest-unknown-field", _manifest(lambda m, o: {**m, "exec": "x"}), "field 'exec'"),
    ("manifest-saved-number", _manifest(lambda m, o: {**m, "saved": 2026}), "field 'saved'"),
    (
        "manifest-bad-digest",
        _manifest(lambda m, o: {**m, "files": {**m["files"], "response.json": "x"}}, False),
        "field 'files.response.json'",
    ),
    (
        "manifest-saved-date-edited",
        _manifest(lambda m, o: {**m, "saved": "1999-01-01"}, resealed=False),
        "changed after the model was saved",
    ),
    (
        "manifest-version-string-edited",
        _manifest(lambda m, o: {**m, "ketapredict_version": "9.9"}, resealed=False),
        "changed after the model was saved",
    ),
    ("manifest-huge", _raw_manifest(" " * (17 * 2**20) + "{}"), "over the limit"),
    # JSON allows trailing white space: a file padded past its limit, or files each under
    # it and together over the model's, checksums and all
    (
        "outcome-file-huge",
        _padded({f"{OUTCOME}.json": 65 * 2**20}),
        "over the limit of 67,108,864",
    ),
    (
        "files-huge-together",
        _padded(
            {f"{name}.json": 45 * 2**20 for name in ("response", "remission", "dissociation")}
        ),
        "over 134,217,728 bytes together",
    ),
]


def try_case(edit: Callable, work: Path, *, public_key=None, timeout: float = 60.0) -> dict:
    """Apply one hostile edit to a fresh copy of the demo model, load it and, if it loads,
    score a patient. Returns what happened: ``refused`` (a ModelFileError, with its
    message), ``loaded``, ``crashed`` (any other exception), ``hung``, ``nan`` and
    ``read_outside`` (a file outside the model directory was opened)."""
    from ketapredict import ModelFileError, RiskModel
    from ketapredict.schema import example_course

    model_dir, outside = work / "model", work / "outside"
    demo_copy(model_dir)
    demo_copy(outside)
    edit(model_dir, outside)
    result: dict = {"refused": False, "loaded": False, "crashed": None, "hung": False}
    result["read_outside"] = False
    result["nan"] = False
    opened: list[str] = []
    _WATCH.append(opened)

    def run() -> None:
        try:
            model = RiskModel.load(model_dir, public_key=public_key)
            result["loaded"] = True
            proba = model.predict_proba(_patients())
            interval = model.predict_interval(_patients())
            values = np.r_[proba.to_numpy().ravel(), interval[["low", "high"]].to_numpy().ravel()]
            result["nan"] = bool(
                (~np.isfinite(values)).any() or ((values < 0) | (values > 1)).any()
            )
            model.score(
                example_course(),
                _regimen(),
                horizon_day=28,
            )
        except ModelFileError as error:
            result["refused"] = True
            result["message"] = str(error)
        except BaseException as error:  # counted: the point is to find them
            result["crashed"] = repr(error)[:300]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    result["hung"] = thread.is_alive()
    _WATCH.remove(opened)
    inside = os.path.realpath(model_dir)
    result["read_outside"] = (
        any(
            not os.path.realpath(p).startswith(inside + os.sep) and os.path.realpath(p) != inside
            for p in opened
            if os.path.realpath(p).startswith(os.path.realpath(work))
        )
        and result["loaded"]
    )
    return result


# Paths opened while a case runs (sys.audit's "open" event, raised by open() and os.open):
# an audit hook cannot be removed, so it appends to whichever lists are being watched.
_WATCH: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _WATCH and isinstance(args[0], str | bytes | os.PathLike):
        for watched in _WATCH:
            watched.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def _patients():
    from ketapredict import simulate_cohort

    cached = _patients.__dict__.get("frame")
    if cached is None:
        cached = _patients.__dict__["frame"] = simulate_cohort(n=40, seed=5)
    return cached


def _regimen():
    from ketapredict import Regimen

    return Regimen(drug="ketamine", route="iv", dose=0.5, dose_unit="mg/kg",
                   infusion_minutes=40, sessions_per_week=2, n_sessions=8)  # fmt: skip


# -- tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in HOSTILE_CASES],
                         ids=[c[0] for c in HOSTILE_CASES])  # fmt: skip
def test_a_hostile_model_directory_is_refused_at_load(tmp_path, edit, message):
    result = try_case(edit, tmp_path)
    assert not result["hung"]
    assert result["crashed"] is None, result["crashed"]
    assert result["refused"], "the hostile model loaded"
    assert message in result["message"], result["message"]
    assert len(result["message"]) < 700
    assert not result["read_outside"]


def test_the_refusal_is_the_same_whether_or_not_the_named_file_exists(tmp_path):
    from ketapredict import ModelFileError, RiskModel

    messages = []
    for exists in (True, False):
        model = demo_copy(tmp_path / f"model{exists}")
        target = tmp_path / "secret.txt"
        if exists:
            target.write_text("x")
        elif target.exists():
            target.unlink()
        _manifest(lambda m, o: {**m, "files": {**m["files"], "../secret.txt": "0" * 64}})(
            model, tmp_path
        )
        with pytest.raises(ModelFileError) as error:
            RiskModel.load(model)
        messages.append(str(error.value).replace(str(model), "<model>"))
    assert messages[0] == messages[1]
    # a listed model file: missing or changed, the same words
    for damage in (lambda f: f.unlink(), lambda f: f.write_text("{}")):
        model = demo_copy(tmp_path / f"m{len(messages)}")
        damage(model / "response.json")
        with pytest.raises(ModelFileError) as error:
            RiskModel.load(model)
        messages.append(str(error.value).replace(str(model), "<model>"))
    assert messages[2] == messages[3]


@pytest.mark.parametrize(
    "edit",
    [
        _outcome(lambda r: r["calibrator"].update(a=10**20)),
        _outcome(lambda r: r["replicate_calibrators"][0].update(b=-(10**20))),
    ],
    ids=["calibrator", "replicate-calibrator"],
)
def test_a_whole_number_beyond_int64_is_read_as_a_float(tmp_path, edit):
    """Still a JSON number: read as a float at load, not met as a Python int at scoring."""
    result = try_case(edit, tmp_path)
    assert result["loaded"], result
    assert result["crashed"] is None
    assert not result["nan"]


def test_a_model_files_notes_print_on_one_line(tmp_path):
    """Notes with line breaks or terminal escapes load (models were saved with them) and
    print on their one line: they cannot add lines of their own to a report or a card."""
    from ketapredict import RiskModel
    from ketapredict.schema import example_course

    demo_copy(tmp_path / "model")
    notes = "Trained on site A.\nresponse (MADRS -50%)   99%\r\x1b[2K"
    _manifest(lambda m, o: {**m, "provenance": {**m["provenance"], "notes": notes}})(
        tmp_path / "model", tmp_path
    )
    model = RiskModel.load(tmp_path / "model")
    text = str(model.score(example_course(), horizon_day=28))
    # after the virtual cohort's notice, which a model of simulated data always leads with,
    # in the note's paragraph (wrapped, each further line indented): no line of its own
    assert "Not for clinical decisions. Trained on site A. response (MADRS -50%) 99% [2K" in (
        " ".join(text.split())
    )
    assert not any(line.startswith("response (MADRS -50%)   99%") for line in text.splitlines())
    assert "\x1b" not in text
    assert "\r" not in text


def test_provenance_nested_within_the_limit_still_gives_a_json_report(tmp_path):
    from ketapredict import RiskModel
    from ketapredict.schema import example_course

    demo_copy(tmp_path / "model")
    nested = json.loads(_deep(30))
    _manifest(lambda m, o: {**m, "provenance": {**m["provenance"], "x": nested}})(
        tmp_path / "model", tmp_path
    )
    report = RiskModel.load(tmp_path / "model").score(example_course(), horizon_day=28)
    assert json.loads(json.dumps(report.to_dict()))["provenance"]["x"] == nested


def test_a_loaded_model_reads_nothing_from_its_directory_afterwards(tmp_path):
    """A booster swapped after loading is never used, and re-saving writes the verified
    bytes: the files are read once, at load."""
    from ketapredict import RiskModel

    model_dir = demo_copy(tmp_path / "model")
    model = RiskModel.load(model_dir)
    before = model.predict_proba(_patients())
    original = (model_dir / "response.ubj").read_bytes()
    shutil.copy(model_dir / "remission.ubj", model_dir / "response.ubj")
    boosters = outcome_models(model)  # restored from the bytes read at load
    restored = boosters["response"].booster_.get_booster().save_raw("ubj")
    again = RiskModel.load(demo_copy(tmp_path / "fresh"))
    assert restored == outcome_models(again)["response"].booster_.get_booster().save_raw("ubj")
    shutil.rmtree(model_dir)
    np.testing.assert_array_equal(model.predict_proba(_patients()), before)
    saved = model.save(tmp_path / "resaved")
    assert (saved / "response.ubj").read_bytes() == original


@pytest.mark.parametrize("params", [{"callback": "os.system"}, {"max_depth": "deep"}])
def test_a_model_file_naming_unknown_parameters_is_refused_when_restored(tmp_path, params):
    from ketapredict import ModelFileError, RiskModel

    model_dir = demo_copy(tmp_path / "model")
    _outcome(lambda r: r["params"].update(params))(model_dir, tmp_path)
    model = RiskModel.load(model_dir)  # the clinician path never builds an OutcomeModel
    with pytest.raises(ModelFileError, match="params"):
        outcome_models(model)


@pytest.mark.parametrize("monotone", [["age"], {"no_such_feature": 1}, "yes"])
def test_a_model_file_with_a_bad_monotone_parameter_is_refused_when_restored(tmp_path, monotone):
    from ketapredict import ModelFileError, RiskModel

    model_dir = demo_copy(tmp_path / "model")
    _outcome(lambda r: r["params"].update(monotone=monotone))(model_dir, tmp_path)
    model = RiskModel.load(model_dir)
    with pytest.raises(ModelFileError, match="params"):
        outcome_models(model)


# -- signatures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from ketapredict import generate_keys

    return generate_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signed(tmp_path_factory, keys):
    from ketapredict import load_model

    return load_model().save(tmp_path_factory.mktemp("signed") / "model", signing_key=keys[0])


def test_a_signed_model_loads_with_its_public_key(tmp_path, keys, signed):
    from ketapredict import RiskModel

    model = RiskModel.load(signed, public_key=keys[1])
    assert model.provenance["data_kind"] == "simulated"
    assert (keys[0].stat().st_mode & 0o777) == 0o600  # the private key is its owner's only
    RiskModel.load(signed)  # without a key, the checksums alone


def _edited_and_resealed(path: Path) -> None:
    """The attacks the checksums cannot stop: a calibrator raised, the provenance made to
    claim real data without the warning, every checksum recomputed."""
    _outcome(lambda r: r["calibrator"].update(b=r["calibrator"]["b"] + 3.0))(path, path)
    _manifest(
        lambda m, o: {
            **m,
            "provenance": {
                **{k: v for k, v in m["provenance"].items() if "clinical" not in k},
                "data_kind": "real",
            },
        }
    )(path, path)


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        (lambda p, o: _edited_and_resealed(p), "is not a signature of this manifest"),
        (lambda p, o: (p / "manifest.sig").unlink(), "the model is not signed"),
        (lambda p, o: (p / "manifest.sig").write_bytes(b"\0" * 64), "is not a signature"),
        (lambda p, o: (p / "manifest.sig").write_bytes(b""), "is not a signature"),
        (_symlink("manifest.sig"), "the model is not signed"),
    ],
    ids=["edited-and-resealed", "signature-removed", "signature-forged", "signature-empty",
         "signature-symlinked"],
)  # fmt: skip
def test_an_edited_or_unsigned_model_is_refused_when_a_key_is_given(
    tmp_path, keys, signed, attack, message
):
    from ketapredict import ModelFileError, RiskModel

    model = tmp_path / "model"
    shutil.copytree(signed, model)
    shutil.copytree(signed, tmp_path / "outside")
    attack(model, tmp_path / "outside")
    if message.endswith("of this manifest"):  # edited and resealed
        edited = RiskModel.load(model)  # the checksums cannot tell
        assert edited.provenance["data_kind"] == "real"
    with pytest.raises(ModelFileError, match=message):
        RiskModel.load(model, public_key=keys[1])


def test_another_key_does_not_verify(tmp_path, signed):
    from ketapredict import ModelFileError, RiskModel, generate_keys

    _, other = generate_keys(tmp_path)
    with pytest.raises(ModelFileError, match="signed by another key"):
        RiskModel.load(signed, public_key=other)


def test_bad_keys_are_model_file_errors(tmp_path, keys, signed):
    from ketapredict import ModelFileError, RiskModel, load_model

    (tmp_path / "garbage.pub").write_text("not a key")
    for key in (tmp_path / "garbage.pub", tmp_path / "missing.pub", keys[0]):
        with pytest.raises(ModelFileError, match="public key"):
            RiskModel.load(signed, public_key=key)
    with pytest.raises(ModelFileError, match="signing key"):
        load_model().save(tmp_path / "out", signing_key=keys[1])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    from ketapredict import generate_keys

    with pytest.raises(FileExistsError, match="never overwritten"):
        generate_keys(keys[0].parent)


@pytest.mark.parametrize("name", ["../../escaped", "a/b", None, ".hidden", "x" * 201, "a\nb"])
def test_a_key_name_that_is_no_plain_stem_is_refused(tmp_path, name):
    """ "../../escaped" wrote the private key outside the directory named."""
    from ketapredict import ValidationError, generate_keys

    with pytest.raises(ValidationError, match="expected a plain file name"):
        generate_keys(tmp_path / "keys", name=name)
    assert not (tmp_path / "keys").exists()
    assert list(tmp_path.rglob("*.key")) == []
    # any plain name the command line takes is taken (it was ASCII only for a while)
    assert generate_keys(tmp_path / "keys", name="clé de site")[0].name == "clé de site.key"


def test_an_empty_path_is_no_place_for_a_model_or_keys(tmp_path, monkeypatch):
    """Path("") is the working directory: a model or keys landed there unasked."""
    from ketapredict import ValidationError, generate_keys, load_model

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="the path for the model is empty"):
        load_model().save("")
    with pytest.raises(ValidationError, match="the path for the keys is empty"):
        generate_keys("")
    with pytest.raises(ValidationError, match="must be text or a path; got NoneType"):
        generate_keys(None)
    assert list(tmp_path.iterdir()) == []


def _mutated_boosters(n: int, seed: int):
    """``n`` copies of the response booster, each cut short, with bytes changed, inserted or
    removed at random."""
    with resources.as_file(resources.files("ketapredict") / "data" / DEMO) as demo:
        original = (demo / "response.ubj").read_bytes()
    rng = np.random.default_rng(seed)
    for _ in range(n):
        data = bytearray(original)
        kind = rng.integers(4)
        if kind == 0:
            data = data[: rng.integers(len(data))]
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(len(data))) if data else 0
            if kind == 1 and data:
                data[at] = int(rng.integers(256))
            elif kind == 2:
                data[at:at] = bytes(rng.integers(0, 256, rng.integers(1, 9)).tolist())
            elif kind == 3 and data:
                del data[at : at + int(rng.integers(1, 9))]
        yield bytes(data)


def _decode_or_refuse(data: bytes) -> bool:
    """Whether a booster file was accepted; an accepted one must load into XGBoost and give
    finite margins (a crash here kills the test run)."""
    from xgboost import XGBClassifier

    from ketapredict import ModelFileError
    from ketapredict.modelfile import booster_json

    try:
        _, text = booster_json(data, 41, "response.ubj")
    except ModelFileError as error:
        message = str(error)
        text = None
    if text is None:
        assert message.startswith("response.ubj: "), message
        return False
    booster = XGBClassifier()
    booster.load_model(bytearray(text))
    margins = booster.get_booster().inplace_predict(np.zeros((3, 41)), predict_type="margin")
    assert np.isfinite(margins).all()
    return True


def test_a_damaged_booster_file_is_refused_or_read_never_crashing():
    """XGBoost's own reader crashed the interpreter on a truncated booster (a segmentation
    fault) and aborted it on an empty one. Booster files are decoded in Python first:
    500 damaged copies are each refused with a ModelFileError or, where the damage left a
    valid booster (a changed float), read without harm."""
    accepted = [_decode_or_refuse(data) for data in _mutated_boosters(500, seed=0)]
    assert 0 < sum(accepted) < len(accepted)


@pytest.mark.slow
def test_ten_thousand_damaged_booster_files_never_crash():
    accepted = [_decode_or_refuse(data) for data in _mutated_boosters(10_000, seed=1)]
    assert sum(accepted) < len(accepted)


def test_a_changed_base_score_is_refused_where_it_counts(tmp_path):
    """Without a linear component the booster's base score is part of every margin: one
    changed and resealed is refused at load (with one, the linear margin replaces it)."""
    from ketapredict import ModelFileError, RiskModel, simulate_cohort

    model = fit_risk_model(
        simulate_cohort(n=600, seed=2), ["response"], n_estimators=20, replicates=0, linear=False
    )
    path = model.save(tmp_path / "model")
    RiskModel.load(path)
    data = (path / "response.ubj").read_bytes()
    key = b"L" + (10).to_bytes(8, "big") + b"base_score"
    at = data.index(key) + len(key)
    assert data[at : at + 2] == b"SL"
    length = int.from_bytes(data[at + 2 : at + 10], "big")
    value = b"[9.9E-1]"
    changed = data[:at] + b"SL" + len(value).to_bytes(8, "big") + value
    (path / "response.ubj").write_bytes(changed + data[at + 10 + length :])
    reseal(path)
    with pytest.raises(ModelFileError, match="holds other trees"):
        RiskModel.load(path)


def test_a_model_too_large_to_load_is_said_before_it_is_saved(tmp_path):
    """What load would refuse for its size, save names (sparse files: no disk written)."""
    from ketapredict.modelfile import MAX_FILE_BYTES, MAX_MODEL_BYTES, size_problem

    names = ["a.json", "b.json", "c.json"]
    for name in names:
        with open(tmp_path / name, "wb") as handle:
            handle.truncate(MAX_FILE_BYTES // 2)
    assert size_problem(tmp_path, names) is None
    with open(tmp_path / "c.json", "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    assert "c.json (67,108,865 bytes) over the limit" in size_problem(tmp_path, names)
    for name in names:
        with open(tmp_path / name, "wb") as handle:
            handle.truncate(MAX_MODEL_BYTES // 3 + 1)
    assert "in all, over the limit of 134,217,728" in size_problem(tmp_path, names)


def test_a_provenance_too_large_to_load_is_refused_at_save_leaving_nothing(tmp_path):
    from ketapredict import RiskModel, ValidationError

    demo_copy(tmp_path / "demo")
    model = RiskModel.load(tmp_path / "demo")
    model.provenance = {**model.provenance, "log": "x" * (17 * 2**20)}
    with pytest.raises(ValidationError, match="over the limit of 65,536"):
        model.save(tmp_path / "saved")
    assert not (tmp_path / "saved").exists() or not any((tmp_path / "saved").iterdir())


def test_a_path_that_is_no_path_is_no_model():
    from ketapredict import ModelFileError, RiskModel

    with pytest.raises(ModelFileError, match="the path must be text or a path; got NoneType"):
        RiskModel.load(None)


@pytest.mark.parametrize("path", ["a" * 5000, "model\x00dir"])
def test_a_path_the_system_refuses_is_no_model(path):
    """A name too long for the file system raised a bare OSError from pathlib."""
    from ketapredict import ModelFileError, load_model

    with pytest.raises(ModelFileError, match="it is not a directory"):
        load_model(path)


def _more_members(copies: int) -> Callable:
    """An edit adding ``copies`` bootstrap members to the response (each a copy of member
    1's trees, calibrator and linear component), drawn 1,024 times: within every size
    limit, yet each patient's scoring would visit tens of millions of tree nodes."""

    def edit(path: Path, outside: Path) -> None:
        trees = json.loads((path / f"{OUTCOME}.trees.json").read_text())
        member = trees["tree_member"]
        ones = [i for i, m in enumerate(member) if m == 1]
        start = trees["roots"][ones[0]]
        end = trees["roots"][ones[-1] + 1] if ones[-1] + 1 < len(member) else len(trees["left"])
        nodes = ("feature", "threshold", "left", "right", "default_left", "value", "cover")
        block = {k: trees[k][start:end] for k in nodes}
        for _ in range(copies):
            offset = len(trees["left"]) - start
            trees["roots"] += [trees["roots"][i] + offset for i in ones]
            trees["tree_member"] += [len(trees["base_margins"])] * len(ones)
            for k in nodes:
                trees[k] += (
                    [c + offset if c != -1 else -1 for c in block[k]]
                    if k in ("left", "right")
                    else block[k]
                )
            trees["base_margins"].append(trees["base_margins"][1])
        (path / f"{OUTCOME}.trees.json").write_text(json.dumps(trees))
        record = json.loads((path / f"{OUTCOME}.json").read_text())
        record["replicate_calibrators"] += [record["replicate_calibrators"][0]] * copies
        record["linear"] += [record["linear"][1]] * copies
        record["imputer"]["n_draws"] = 1024
        (path / f"{OUTCOME}.json").write_text(json.dumps(record))
        reseal(path)

    return edit


def test_a_model_too_slow_to_score_is_refused_at_load(tmp_path):
    """1,000 replicates and 1,024 draws in 83 MB: 5 s a report, 102 s a comparison."""
    from ketapredict import ModelFileError, load_model

    model = demo_copy(tmp_path / "model")
    _more_members(0)(model, tmp_path)  # 1,024 draws alone: slower, still allowed
    assert load_model(model).score(
        {"age": 46, "sex": "female", "diagnosis": "TRD", "madrs_baseline": 34},
        {"drug": "ketamine", "route": "iv", "dose": 0.5, "infusion_minutes": 40},
        horizon_day=1,
    )
    _more_members(200)(model, tmp_path)
    with pytest.raises(ModelFileError, match="over the limit of 25,000,000"):
        load_model(model)


def test_a_model_too_slow_to_load_is_refused_at_save_leaving_nothing(tmp_path):
    from ketapredict import ValidationError, load_model

    model = load_model()
    for outcome in model._outcomes.values():
        outcome.imputer.n_draws = 4096  # 35.6 million nodes a patient
    with pytest.raises(ValidationError, match="scoring one patient would visit 35,610,624"):
        model.save(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()
