"""Boosted trees as numpy arrays: margins and exact SHAP values without XGBoost.

The clinician path scores one patient in about a millisecond and must start in a fresh
process without importing XGBoost or scikit-learn (each takes over a second to import). A
:class:`TreeEnsemble` holds the trees of several boosters ("members": the fitted model and
its bootstrap replicates) as flat node arrays read from XGBoost's JSON model, evaluates all
of them at once with vectorised traversal, and computes exact TreeSHAP values for a member.

SHAP values use the leaf decomposition of TreeSHAP (Lundberg et al. 2020, Nature Machine
Intelligence 2:56-67, "From local explanations to global understanding with explainable AI
for trees"): with the path-dependent value function, each leaf contributes
``value * prod_{j in S} p_j * prod_{j not in S} q_j``, where ``p_j`` says whether the patient
follows the leaf's path at the splits on feature ``j`` and ``q_j`` is the share of the
training cover that does. The Shapley value of such a product game has a closed form,
summed over leaves; it equals XGBoost's ``pred_contribs`` (tested).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

__all__ = [
    "TreeEnsemble",
    "calibrated_log_odds",
    "expit",
    "linear_margin",
    "linear_margins",
    "linear_terms",
    "logit",
    "modifier_values",
    "rounded_outward",
    "stack_linear",
]

# Calibrated log-odds are kept within +-9.2 (probabilities 1e-4 to 1 - 1e-4): no model of
# these data can be certain.
MAX_LOG_ODDS = 9.21
# Up to this many rows, walk the trees row by row (fast for one patient); more rows walk
# them in (rows x trees) blocks.
_FEW_ROWS = 8
# Row blocks for traversal: bounds the (rows x trees) working arrays to ~50 MB.
_BLOCK_CELLS = 4_000_000
# Bounds on a saved ensemble (an untrusted file): a traversal takes max_depth steps, so the
# depth is bounded; OutcomeModel grows trees at most 12 deep (models.py). The sizes are
# about 100 times those of the models ketapredict trains (the demo model has about 30,000
# nodes and 81 members), and keep a hostile file from asking for gigabytes.
MAX_TREE_DEPTH = 32
_MAX_NODES = 20_000_000
_MAX_MEMBERS = 10_000
_MAX_FEATURES = 100_000


def _float32_list(values: np.ndarray) -> list[float]:
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32)]


def _array(state: Mapping[str, Any], name: str, dtype: Any) -> np.ndarray:
    """One saved list as a 1-d array of ``dtype`` (ValueError naming it if it is not)."""
    values = state[name]
    if not isinstance(values, list):
        raise ValueError(f"trees: {name} is not a list")
    try:
        array = np.asarray(values)  # numbers give int64 or float64; anything else does not
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"trees: {name} is not a flat list of numbers ({error})") from None
    kinds = "iub" if np.issubdtype(dtype, np.integer) else "iubf"
    if array.ndim != 1 or (len(array) and array.dtype.kind not in kinds):
        what = "integers" if kinds == "iub" else "numbers"
        raise ValueError(f"trees: {name} is not a flat list of {what}")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused as not finite
        return array.astype(dtype)


def logit(p: Any, clip: float = 0.0) -> np.ndarray:
    """Log-odds of probabilities, first clipped to [clip, 1 - clip] when ``clip`` > 0."""
    p = np.asarray(p, dtype=float)
    if clip:
        p = np.clip(p, clip, 1 - clip)
    return np.log(p) - np.log1p(-p)


def expit(log_odds: Any) -> np.ndarray:
    """Probabilities of log-odds (the logistic function, :func:`logit`'s inverse)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(log_odds, dtype=float)))


@dataclass(frozen=True)
class TreeEnsemble:
    """The trees of one or more boosters over the same encoded features.

    Build it with :meth:`from_xgboost`; rebuild a saved one with :meth:`from_dict`.

    Attributes
    ----------
    n_features : int
    base_margins : ndarray of shape (n_members,)
        Each member's margin before any tree (XGBoost's ``base_score`` as log-odds).
    roots : ndarray of int
        Root node of each tree; ``tree_member`` gives its member.
    feature, threshold, left, right, default_left, value, cover : ndarray
        One entry per node. A split sends ``x < threshold`` left and a missing value to
        ``default_left``; a leaf has ``left == -1`` and its output in ``value``; ``cover``
        is the training hessian sum (needed for SHAP values).
    """

    n_features: int
    base_margins: np.ndarray
    roots: np.ndarray
    tree_member: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    cover: np.ndarray
    max_depth: int

    @property
    def n_members(self) -> int:
        return len(self.base_margins)

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_xgboost(cls, boosters: Sequence[Any]) -> TreeEnsemble:
        """Compile fitted XGBoost boosters (``Booster`` or ``XGBClassifier``) over the same
        features, binary logistic objective. Member ``k`` is ``boosters[k]``."""
        models = []
        for booster in boosters:
            raw = booster.get_booster() if hasattr(booster, "get_booster") else booster
            models.append(json.loads(raw.save_raw("json")))
        return cls.from_xgboost_json(models)

    @classmethod
    def from_xgboost_json(cls, models: Sequence[Mapping[str, Any]]) -> TreeEnsemble:
        """Compile parsed XGBoost JSON models (``Booster.save_raw("json")``)."""
        columns: dict[str, list] = {
            k: [] for k in ("feature", "threshold", "left", "right", "default_left", "value")
        }
        columns["cover"] = []
        roots, tree_member, base_margins = [], [], []
        n_features = None
        offset = 0
        for member, model in enumerate(models):
            learner = model["learner"]
            objective = learner["objective"]["name"]
            if objective != "binary:logistic":
                raise ValueError(f"TreeEnsemble reads binary:logistic boosters; got {objective}")
            params = learner["learner_model_param"]
            base = float(str(params["base_score"]).strip("[]"))
            # a booster fitted on a resample without events has a base score of 0
            base_margins.append(float(logit(base, clip=1e-12)))
            n = int(params["num_feature"])
            if n_features is not None and n != n_features:
                raise ValueError("Every member of a TreeEnsemble needs the same features.")
            n_features = n
            for tree in learner["gradient_booster"]["model"]["trees"]:
                left = np.asarray(tree["left_children"], dtype=np.int32)
                leaf = left == -1
                right = np.asarray(tree["right_children"], dtype=np.int32)
                columns["feature"].append(np.where(leaf, 0, tree["split_indices"]))
                columns["threshold"].append(np.asarray(tree["split_conditions"], np.float32))
                columns["left"].append(np.where(leaf, -1, left + offset))
                columns["right"].append(np.where(leaf, -1, right + offset))
                columns["default_left"].append(np.asarray(tree["default_left"], dtype=bool))
                split_conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
                columns["value"].append(np.where(leaf, split_conditions.astype(float), 0.0))
                hessian = np.asarray(tree["sum_hessian"], dtype=np.float32)
                columns["cover"].append(hessian.astype(float))
                roots.append(offset)
                tree_member.append(member)
                offset += len(left)
        arrays = {k: np.concatenate(v) if v else np.empty(0) for k, v in columns.items()}
        ensemble = cls(
            n_features=int(n_features or 0),
            base_margins=np.asarray(base_margins, dtype=float),
            roots=np.asarray(roots, dtype=np.int32),
            tree_member=np.asarray(tree_member, dtype=np.int32),
            feature=arrays["feature"].astype(np.int32),
            threshold=arrays["threshold"].astype(np.float32),
            left=arrays["left"].astype(np.int32),
            right=arrays["right"].astype(np.int32),
            default_left=arrays["default_left"].astype(bool),
            value=arrays["value"].astype(float),
            cover=arrays["cover"].astype(float),
            max_depth=0,
        )
        object.__setattr__(ensemble, "max_depth", ensemble._depth())
        return ensemble

    @classmethod
    def concatenate(cls, ensembles: Sequence[TreeEnsemble]) -> TreeEnsemble:
        """One ensemble holding the members of several, in order (same features)."""
        if len({e.n_features for e in ensembles}) != 1:
            raise ValueError("Only ensembles over the same features can be concatenated.")
        nodes = np.cumsum([0, *(len(e.left) for e in ensembles)])
        members = np.cumsum([0, *(e.n_members for e in ensembles)])

        def shifted(name: str, offsets: np.ndarray) -> np.ndarray:
            parts = []
            for e, offset in zip(ensembles, offsets, strict=False):
                values = getattr(e, name)
                parts.append(np.where(values == -1, -1, values + offset) if offset else values)
            return np.concatenate(parts).astype(np.int32)

        return cls(
            n_features=ensembles[0].n_features,
            base_margins=np.concatenate([e.base_margins for e in ensembles]),
            roots=shifted("roots", nodes),
            tree_member=np.concatenate(
                [e.tree_member + m for e, m in zip(ensembles, members, strict=False)]
            ).astype(np.int32),
            feature=np.concatenate([e.feature for e in ensembles]),
            threshold=np.concatenate([e.threshold for e in ensembles]),
            left=shifted("left", nodes),
            right=shifted("right", nodes),
            default_left=np.concatenate([e.default_left for e in ensembles]),
            value=np.concatenate([e.value for e in ensembles]),
            cover=np.concatenate([e.cover for e in ensembles]),
            max_depth=max(e.max_depth for e in ensembles),
        )

    def _depth(self) -> int:
        # XGBoost numbers children after their parent, so one pass in order finds depths
        depth_of = np.zeros(len(self.left), dtype=np.int32)
        for node in np.flatnonzero(self.left != -1):
            for child in (self.left[node], self.right[node]):
                depth_of[child] = max(depth_of[child], depth_of[node] + 1)
        return int(depth_of.max(initial=0))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists for a JSON file.

        XGBoost stores thresholds, leaf values and covers as float32; they are written as
        the shortest decimals that read back to the same float32.
        """
        return {
            "n_features": self.n_features,
            "max_depth": self.max_depth,
            "base_margins": self.base_margins.tolist(),
            "roots": self.roots.tolist(),
            "tree_member": self.tree_member.tolist(),
            "feature": self.feature.tolist(),
            "threshold": _float32_list(self.threshold),
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "default_left": self.default_left.astype(int).tolist(),
            "value": _float32_list(self.value),
            "cover": _float32_list(self.cover),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TreeEnsemble:
        """Rebuild an ensemble written by :meth:`to_dict`, checking its structure.

        A saved model is untrusted input, so the trees are checked before anything walks
        them: every child index lies after its parent and inside its own tree (so no
        traversal can loop or leave its tree), the depth is the one stored and at most
        ``MAX_TREE_DEPTH``, every feature index is one of ``n_features``, and every
        threshold, leaf value, cover and base margin is finite (a NaN leaf would give a NaN
        probability).

        Raises
        ------
        ValueError
            Naming the part of the trees that is wrong.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"trees: expected an object; got {type(state).__name__}")
        keys = set(cls.__dataclass_fields__)
        if set(state) != keys:
            unknown = [str(name)[:40] for name in sorted(set(state) - keys)[:5]]
            raise ValueError(
                f"trees: expected {len(keys)} fields; missing {sorted(keys - set(state))}, "
                f"unknown {unknown}"
            )
        n_features, max_depth = state["n_features"], state["max_depth"]
        for name, value, high in (
            ("n_features", n_features, _MAX_FEATURES),
            ("max_depth", max_depth, MAX_TREE_DEPTH),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise ValueError(f"trees: {name} {str(value)[:40]} is not an integer 0 to {high}")
        base_margins = _array(state, "base_margins", np.float64)
        roots = _array(state, "roots", np.int64)
        tree_member = _array(state, "tree_member", np.int64)
        nodes = {
            name: _array(state, name, dtype)
            for name, dtype in (
                ("feature", np.int64),
                ("threshold", np.float32),
                ("left", np.int64),
                ("right", np.int64),
                ("default_left", np.int64),
                ("value", np.float32),
                ("cover", np.float32),
            )
        }
        n_nodes = len(nodes["left"])
        if n_nodes > _MAX_NODES or any(len(v) != n_nodes for v in nodes.values()):
            raise ValueError(
                f"trees: the node arrays need one equal length up to {_MAX_NODES:,}; got "
                + ", ".join(f"{k} {len(v)}" for k, v in nodes.items())
            )
        n_members = len(base_margins)
        # a base margin is the logit of a base rate clipped at 1e-12 (at most 27.6 from 0):
        # one of 1e308 set every patient's risk to >99% with no driver to say why
        if not 1 <= n_members <= _MAX_MEMBERS or not (np.abs(base_margins) <= 100).all():
            raise ValueError(
                f"trees: expected 1 to {_MAX_MEMBERS} base_margins, each within +-100"
            )
        if len(tree_member) != len(roots):
            raise ValueError("trees: roots and tree_member differ in length")
        if len(roots) and (roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= n_nodes):
            raise ValueError("trees: roots must start at node 0 and increase within the nodes")
        if len(roots) and (
            (np.diff(tree_member) < 0).any() or tree_member[0] < 0 or tree_member[-1] >= n_members
        ):
            raise ValueError("trees: tree_member must list members 0 to n-1 in order")
        if not len(roots) and n_nodes:
            raise ValueError("trees: nodes without any root")
        left, right = nodes["left"], nodes["right"]
        leaf = left == -1
        node = np.arange(n_nodes)
        # a child comes after its parent and before the next tree's root (XGBoost numbers
        # nodes so): no loop, no jump into another tree
        end = np.r_[roots[1:], n_nodes][np.searchsorted(roots, node, side="right") - 1]
        split = ~leaf
        bad = (leaf & (right != -1)) | (
            split & ((left <= node) | (right <= node) | (left >= end) | (right >= end))
        )
        if bad.any():
            raise ValueError(
                f"trees: node {int(np.flatnonzero(bad)[0])} has children "
                f"{int(left[bad][0])} and {int(right[bad][0])}: a child must follow its parent "
                "inside its own tree (-1 and -1 for a leaf)"
            )
        feature = nodes["feature"]
        if ((feature < 0) | (feature >= max(n_features, 1))).any():
            raise ValueError(f"trees: a feature index lies outside 0 to {n_features - 1}")
        if not np.isin(nodes["default_left"], (0, 1)).all():
            raise ValueError("trees: default_left must be 0 or 1")
        for name in ("threshold", "value", "cover"):
            if not np.isfinite(nodes[name]).all():
                raise ValueError(f"trees: {name} has values that are not finite numbers")
        # SHAP values divide a child's cover by its parent's
        if (nodes["cover"] < 0).any() or (nodes["cover"][split] <= 0).any():
            raise ValueError("trees: cover must be positive at every split")
        ensemble = cls(
            n_features=n_features,
            base_margins=base_margins,
            roots=roots.astype(np.int32),
            tree_member=tree_member.astype(np.int32),
            feature=feature.astype(np.int32),
            threshold=nodes["threshold"],
            left=left.astype(np.int32),
            right=right.astype(np.int32),
            default_left=nodes["default_left"].astype(bool),
            value=nodes["value"].astype(float),
            cover=nodes["cover"].astype(float),
            max_depth=max_depth,
        )
        depth = ensemble._depth()
        if depth != max_depth:
            raise ValueError(f"trees: max_depth is {max_depth} but the trees are {depth} deep")
        return ensemble

    # -- prediction -------------------------------------------------------------------------
    def margins(
        self,
        X: np.ndarray,
        members: int | None = None,
        trees: np.ndarray | None = None,
        base: bool = True,
    ) -> np.ndarray:
        """Members' margins (log-odds before calibration), shape (n_rows, n_members).

        ``X`` is the encoded feature matrix; NaN is missing. Values are compared in float32,
        as XGBoost does, so margins match XGBoost's to rounding. ``members=k`` evaluates
        only the first ``k`` members. ``trees`` (a boolean mask over every tree) sums only
        those trees, and ``base=False`` leaves out the base margins: a margin is the sum of
        the parts over a split of the trees.
        """
        k = self.n_members if members is None else min(members, self.n_members)
        n_trees = int(np.searchsorted(self.tree_member, k))
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"expected encoded features of shape (n, {self.n_features}); got {X.shape}"
            )
        if trees is None:
            roots, owner = self.roots[:n_trees], self.tree_member[:n_trees]
        else:
            chosen = np.flatnonzero(trees[:n_trees])
            roots, owner = self.roots[chosen], self.tree_member[chosen]
        out = np.zeros((len(X), k))
        # trees are stored member by member: sum each member's contiguous run
        bounds = np.flatnonzero(np.r_[True, np.diff(owner) != 0]) if len(roots) else []
        if len(roots) and len(X) <= _FEW_ROWS:
            prefix = trees is None  # the roots' splits of a prefix of the trees are cached
            for i, row in enumerate(X):
                per_tree = self.value[self._leaves_of_row(row, roots, prefix)]
                out[i, owner[bounds]] = np.add.reduceat(per_tree, bounds)
        elif len(roots):
            step = max(1, _BLOCK_CELLS // len(roots))
            for start in range(0, len(X), step):
                block = X[start : start + step]
                per_tree = self.value[self._leaves(block, roots)]
                out[start : start + len(block), owner[bounds]] = np.add.reduceat(
                    per_tree, bounds, axis=1
                )
        return out + self.base_margins[:k] if base else out

    def tree_features(self) -> np.ndarray:
        """Which features each tree splits on: boolean, shape (n_trees, n_features)."""
        cached = self.__dict__.get("_tree_features")
        if cached is None:
            split = np.flatnonzero(self.left != -1)
            # the tree of each node: the last root at or before it (trees are contiguous)
            tree = np.searchsorted(self.roots, split, side="right") - 1
            cached = np.zeros((len(self.roots), self.n_features), bool)
            cached[tree, self.feature[split]] = True
            self.__dict__["_tree_features"] = cached
        return cached

    @property
    def _children(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right children with leaves pointing at themselves, so a traversal can
        take a fixed number of steps without checking for leaves."""
        cached = self.__dict__.get("_loops")
        if cached is None:
            nodes = np.arange(len(self.left), dtype=np.int32)
            leaf = self.left == -1
            cached = (np.where(leaf, nodes, self.left), np.where(leaf, nodes, self.right))
            self.__dict__["_loops"] = cached
        return cached

    def _step(self, x: np.ndarray, missing: np.ndarray, node: np.ndarray) -> np.ndarray:
        """The next node for values ``x`` at ``node`` (NaN < t is false, so a missing value
        goes left only where its split says so)."""
        to_left, to_right = self._children
        left = (x < self.threshold[node]) | (missing & self.default_left[node])
        return np.where(left, to_left[node], to_right[node])

    def _leaves_of_row(self, row: np.ndarray, roots: np.ndarray, prefix: bool) -> np.ndarray:
        to_left, to_right = self._children
        if np.isnan(row).any():
            missing = np.isnan(row)
            node = roots
            for _ in range(self.max_depth):
                feature = self.feature[node]
                node = self._step(row[feature], missing[feature], node)
            return node
        # no missing value (the usual case): fewer lookups, roots' splits read once
        feature, threshold, left, right = self._root_splits(roots, prefix)
        node = np.where(row[feature] < threshold, left, right)
        for _ in range(self.max_depth - 1):
            go = row[self.feature[node]] < self.threshold[node]
            node = np.where(go, to_left[node], to_right[node])
        return node

    def _root_splits(self, roots: np.ndarray, prefix: bool) -> tuple[np.ndarray, ...]:
        """The roots' features, thresholds and children; cached when ``roots`` are the
        first ``len(roots)`` trees' (a member prefix, the usual case)."""
        cache = self.__dict__.setdefault("_root_cache", {})
        key = len(roots)
        if not prefix or key not in cache:
            to_left, to_right = self._children
            splits = (
                self.feature[roots],
                self.threshold[roots],
                to_left[roots],
                to_right[roots],
            )
            if not prefix:
                return splits
            cache[key] = splits
        return cache[key]

    def _leaves(self, X: np.ndarray, roots: np.ndarray) -> np.ndarray:
        if self.max_depth <= 2:
            return self._shallow_leaves(X, roots)
        # Level by level. The first two levels read whole columns (X[:, features], fast
        # and contiguous): the roots' features, then both children's, picking per row;
        # deeper levels gather per (row, tree).
        to_left, to_right = self._children
        missing = np.isnan(X)
        x = X[:, self.feature[roots]]
        node = self._step(x, missing[:, self.feature[roots]], roots)
        if self.max_depth < 2:
            return node
        went_left = node == to_left[roots]
        left_child, right_child = to_left[roots], to_right[roots]
        x = np.where(went_left, X[:, self.feature[left_child]], X[:, self.feature[right_child]])
        gone = np.where(
            went_left, missing[:, self.feature[left_child]], missing[:, self.feature[right_child]]
        )
        node = self._step(x, gone, node)
        rows = np.arange(len(X))[:, None]
        for _ in range(self.max_depth - 2):
            feature = self.feature[node]
            node = self._step(X[rows, feature], missing[rows, feature], node)
        return node

    def _shallow_leaves(self, X: np.ndarray, roots: np.ndarray) -> np.ndarray:
        """The leaves of trees at most 2 deep (the default): each tree's three splits are
        compared with the rows' columns at once, so no per-(row, tree) node is gathered
        level by level. A leaf points at itself (``_children``), so shallower trees and
        one-leaf trees need no special case."""
        to_left, to_right = self._children

        def goes_left(node: np.ndarray) -> np.ndarray:
            x = X[:, self.feature[node]]
            return (x < self.threshold[node]) | (np.isnan(x) & self.default_left[node])

        left, right = to_left[roots], to_right[roots]
        if self.max_depth < 2:
            return np.where(goes_left(roots), left, right)
        return np.where(
            goes_left(roots),
            np.where(goes_left(left), to_left[left], to_right[left]),
            np.where(goes_left(right), to_left[right], to_right[right]),
        )

    # -- SHAP values ------------------------------------------------------------------------
    def contributions(self, X: np.ndarray, member: int = 0) -> tuple[np.ndarray, float]:
        """Exact TreeSHAP values of one member, per encoded feature, and its base value.

        Returns
        -------
        contributions : ndarray of shape (n_rows, n_features)
        base_value : float
            The member's expected margin; ``base_value + contributions.sum(axis=1)`` is its
            margin for each row.
        """
        paths = self._paths(member)
        X = np.asarray(X, dtype=np.float32)
        nodes, goes_left = paths["nodes"], paths["goes_left"]  # (leaves, depth)
        real = nodes >= 0
        safe = np.where(real, nodes, 0)
        x = X[:, self.feature[safe]]  # (rows, leaves, depth)
        left = np.where(np.isnan(x), self.default_left[safe], x < self.threshold[safe])
        follows = np.where(real, left == goes_left, True)
        # p of each slot (distinct feature on the path): all its splits followed
        slots = paths["slot"]  # (leaves, depth): slot of each path node
        depth = nodes.shape[1]
        p = np.ones((len(X), *nodes.shape))
        for k in range(depth):
            for s in range(depth):
                hit = (slots[:, k] == s) & real[:, k]
                p[:, :, s] = np.where(hit, p[:, :, s] * follows[:, :, k], p[:, :, s])
        q = paths["q"]  # (leaves, depth), 1 for empty slots
        weights = np.array(
            [factorial(s) * factorial(depth - s - 1) / factorial(depth) for s in range(depth)]
        )
        phi = np.zeros((len(X), *nodes.shape))
        for i in range(depth):
            # coefficients of prod_{k != i} (q_k + p_k t), by power of t
            coef = np.zeros((len(X), nodes.shape[0], depth))
            coef[:, :, 0] = 1.0
            for k in range(depth):
                if k == i:
                    continue
                shifted = np.concatenate([np.zeros_like(coef[:, :, :1]), coef[:, :, :-1]], axis=2)
                coef = coef * q[None, :, k, None] + shifted * p[:, :, k, None]
            phi[:, :, i] = (p[:, :, i] - q[None, :, i]) * (coef @ weights)
        phi *= paths["value"][None, :, None]
        # sum each (leaf, slot) share into its feature
        return phi.reshape(len(X), -1) @ paths["to_feature"], paths["base_value"]

    def _paths(self, member: int) -> dict[str, np.ndarray]:
        cache = self.__dict__.setdefault("_path_cache", {})
        if member in cache:
            return cache[member]
        depth = max(1, self.max_depth)
        nodes, goes_left, values, parents = [], [], [], []
        for root in self.roots[self.tree_member == member]:
            stack = [(int(root), [], [])]
            while stack:
                node, path, directions = stack.pop()
                if self.left[node] == -1:
                    pad = depth - len(path)
                    nodes.append(path + [-1] * pad)
                    goes_left.append(directions + [True] * pad)
                    values.append(self.value[node])
                    parents.append([*path[1:], node] + [-1] * pad)
                    continue
                stack.append((int(self.left[node]), [*path, node], [*directions, True]))
                stack.append((int(self.right[node]), [*path, node], [*directions, False]))
        nodes = np.asarray(nodes, dtype=np.int64).reshape(-1, depth)
        goes_left = np.asarray(goes_left, dtype=bool).reshape(-1, depth)
        children = np.asarray(parents, dtype=np.int64).reshape(-1, depth)
        real = nodes >= 0
        # merge splits on the same feature into one slot (TreeSHAP's path unwinding)
        slot = np.full(nodes.shape, -1)
        slot_feature = np.full(nodes.shape, -1)
        q = np.ones(nodes.shape)
        for row in range(len(nodes)):
            seen: dict[int, int] = {}
            for k in range(depth):
                if not real[row, k]:
                    continue
                f = int(self.feature[nodes[row, k]])
                s = seen.setdefault(f, len(seen))
                slot[row, k] = s
                slot_feature[row, s] = f
                q[row, s] *= self.cover[children[row, k]] / self.cover[nodes[row, k]]
        values = np.asarray(values, dtype=float)
        base_value = float(self.base_margins[member] + (values * q.prod(axis=1)).sum())
        to_feature = np.zeros((slot_feature.size, self.n_features))
        flat = slot_feature.ravel()
        to_feature[np.flatnonzero(flat >= 0), flat[flat >= 0]] = 1.0
        cache[member] = {
            "to_feature": to_feature,
            "nodes": nodes,
            "goes_left": goes_left,
            "slot": slot,
            "slot_feature": slot_feature,
            "q": q,
            "value": values,
            "base_value": base_value,
        }
        return cache[member]


def rounded_outward(ends: np.ndarray, rounding: Any) -> np.ndarray:
    """A range's ends rounded outward (``rounding``: np.floor for the lowest, np.ceil for
    the highest) to two significant digits: a model file keeps a feature's range, not one
    patient's exact value (the oldest patient's age, 77.123456, as 78).

    Examples
    --------
    >>> import numpy as np
    >>> from ketapredict.trees import rounded_outward
    >>> rounded_outward(np.array([20.27, 0.0123, 0.0, 1.0, -3.14]), np.floor).tolist()
    [20.0, 0.012, 0.0, 1.0, -3.2]
    >>> rounded_outward(np.array([77.123456, 1.0]), np.ceil).tolist()
    [78.0, 1.0]
    """
    magnitude = np.floor(np.log10(np.abs(np.where(ends == 0, 1.0, ends)))) - 1
    step = 10.0**magnitude
    out = rounding(np.round(ends / step, 9)) * step  # 1.0 stays 1.0, not 1.0000000002
    return np.round(np.where(ends == 0, 0.0, out), 12)


def calibrated_log_odds(margin: np.ndarray, calibrator: Mapping[str, Any]) -> np.ndarray:
    """Apply a fitted calibrator (``OutcomeModel.calibrator_``) to tree margins.

    Returns calibrated log-odds clipped to +-9.2, so probabilities stay within 1e-4 and
    1 - 1e-4.
    """
    margin = np.asarray(margin, dtype=float)
    method = calibrator["method"]
    if method == "sigmoid":
        log_odds = calibrator["a"] * margin + calibrator["b"]
    elif method == "isotonic":
        p = np.interp(margin, calibrator["margins"], calibrator["probabilities"])
        with np.errstate(divide="ignore"):
            log_odds = logit(p)
    else:
        log_odds = margin
    return np.clip(log_odds, -MAX_LOG_ODDS, MAX_LOG_ODDS)


def linear_terms(X: np.ndarray, linear: Mapping[str, Any]) -> np.ndarray:
    """Each feature's term of a linear component (``OutcomeModel.linear_``), shape (n, f).

    A feature's term is its standardised value times its coefficient, plus, for a patient
    feature, its interaction with the active drug (``coef_active``) when the row is on one:
    the interaction is the patient's, since the clinician chose the drug. A missing value
    sits at the training mean (term 0); a value beyond the training range counts as its
    nearest end (a line extrapolated to a dose never given would claim near certainty).
    With ``modifiers`` (``OutcomeModel(linear="dose_time")``), a patient feature's
    coefficient also moves with each modifier's value (:func:`modifier_values`: the
    drug's exposure, the days since the last session...) by ``coef_modifiers``: how a
    predictor's weight changes with dose and time; the term stays the patient's.
    The terms add up, with ``intercept``, to the component's margin, so they are its exact
    SHAP values against the training mean (interventional, features taken as
    independent).
    """
    X = np.asarray(X, dtype=float)
    active = linear.get("active")
    # the row's own drug, whatever the training range of the flag
    on = None if active is None else np.nan_to_num(X[:, active])[:, None]
    modifiers = modifier_values(X, linear)
    if "low" in linear:  # beyond the training range a term stays flat, as trees do
        X = np.clip(X, linear["low"], linear["high"])
    z = np.nan_to_num((X - np.asarray(linear["center"])) / np.asarray(linear["scale"]))
    coef = np.asarray(linear["coef"], dtype=float)
    if active is not None:
        coef = coef + on * np.asarray(linear["coef_active"], dtype=float)
    if modifiers.shape[1]:
        coef = coef + modifiers @ np.asarray(linear["coef_modifiers"], dtype=float)
    return z * coef


def modifier_values(X: np.ndarray, linear: Mapping[str, Any]) -> np.ndarray:
    """The values of a linear component's modifiers, shape (n, modifiers).

    A modifier reads one regimen column, clipped to its training range, optionally as
    ``log(1 + x)`` and times the active-drug flag (``{"column", "low", "high", "log",
    "active"}``); a missing value counts as 0.
    """
    X = np.asarray(X, dtype=float)
    modifiers = linear.get("modifiers") or []
    out = np.zeros((len(X), len(modifiers)))
    for m, spec in enumerate(modifiers):
        value = np.nan_to_num(np.clip(X[:, spec["column"]], spec["low"], spec["high"]))
        if spec["log"]:
            value = np.log1p(np.maximum(value, 0.0))
        if spec["active"]:
            value = value * np.nan_to_num(X[:, linear["active"]])
        out[:, m] = value
    return out


def linear_margin(X: np.ndarray, linear: Mapping[str, Any] | None) -> np.ndarray:
    """The margin of a linear component (0 without one)."""
    if linear is None:
        return np.zeros(len(X))
    return linear["intercept"] + linear_terms(X, linear).sum(axis=1)


def stack_linear(linears: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several members' linear components (same features) as arrays, one row per member."""
    keys = ("low", "high", "center", "scale", "coef", "coef_active")
    out: dict[str, Any] = {k: np.array([m[k] for m in linears], dtype=float) for k in keys}
    out["intercept"] = np.array([m["intercept"] for m in linears], dtype=float)
    out["active"] = linears[0].get("active")
    # the modifiers are the same for every member (the model's, from its training data)
    out["modifiers"] = linears[0].get("modifiers") or []
    f = out["coef"].shape[1] if out["coef"].ndim == 2 else 0
    out["coef_modifiers"] = np.array(
        [m.get("coef_modifiers", np.zeros((0, f))) for m in linears], dtype=float
    ).reshape(len(linears), len(out["modifiers"]), f)
    return out


def linear_margins(
    X: np.ndarray, stacked: Mapping[str, Any], columns: Sequence[int] | None = None
) -> np.ndarray:
    """Every member's linear margin, shape (n, members): :func:`linear_margin` at once.

    One matrix product for all members: a member's term is ``w (clip(x) - center)`` with
    ``w = coef / scale``, so the margins are ``x @ w.T`` less the recorded features'
    ``w * center``, plus a correction for the few values beyond some member's training
    range (each member clips to its own, a bootstrap sample's, range). With ``columns``,
    only those features' terms, without the intercept: the terms add up, so the margin of a
    row that differs from another in a few columns is the other's plus their difference.
    """
    X = np.asarray(X, dtype=float)
    k = len(stacked["coef"])
    if k == 0:
        return np.zeros((len(X), 0))
    active = stacked["active"]
    n_modifiers = len(stacked.get("modifiers") or [])
    # one block of k rows per coefficient vector: the features', the drug's interactions,
    # each modifier's
    blocks = [stacked["coef"]]
    if active is not None:
        blocks.append(stacked["coef_active"])
    blocks += [stacked["coef_modifiers"][:, m] for m in range(n_modifiers)]
    parts = len(blocks)
    chosen = slice(None) if columns is None else np.asarray(columns, dtype=int)
    weights = np.vstack(blocks) / np.tile(stacked["scale"], (parts, 1))
    weights = weights[:, chosen]
    center, low, high = (
        np.tile(stacked[name], (parts, 1))[:, chosen] for name in ("center", "low", "high")
    )
    # first into the widest range of any member, so that the product never sees an infinite
    # or huge value (inf - inf would be NaN, and 1e17 would swamp the row's rounding)
    values = np.clip(X[:, chosen], low.min(axis=0), high.max(axis=0))
    missing = np.isnan(values)
    observed = np.where(missing, 0.0, values)
    terms = observed @ weights.T - (~missing).astype(float) @ (weights * center).T
    # NaN compares false: a missing value is never beyond
    rows, cols = np.nonzero((values < low.max(axis=0)) | (values > high.min(axis=0)))
    if rows.size:
        x = observed[rows, cols][:, None]
        clipped = np.clip(x, low[:, cols].T, high[:, cols].T)
        np.add.at(terms, rows, (clipped - x) * weights[:, cols].T)
    margin = terms[:, :k] + (stacked["intercept"] if columns is None else 0.0)
    block = 1
    if active is not None:
        margin += np.nan_to_num(X[:, active])[:, None] * terms[:, k : 2 * k]
        block = 2
    if n_modifiers:
        moved = modifier_values(X, stacked)
        for m in range(n_modifiers):
            start = (block + m) * k
            margin += moved[:, m : m + 1] * terms[:, start : start + k]
    return margin
