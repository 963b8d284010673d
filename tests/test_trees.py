import json

import numpy as np
import pytest
import xgboost as xgb

from ketapredict.trees import TreeEnsemble, calibrated_log_odds


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, 6))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take each split's default way
    logit = np.nan_to_num(X[:, 0] + X[:, 1] * X[:, 2])
    y = (rng.random(2000) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_margins_and_shap_values_match_xgboost(depth):
    X, y = _data()
    boosters = [
        xgb.XGBClassifier(n_estimators=60, max_depth=depth, subsample=0.8, random_state=s).fit(
            X, y
        )
        for s in range(3)
    ]
    # through the JSON file format, as a saved model is read
    ensemble = TreeEnsemble.from_dict(
        json.loads(json.dumps(TreeEnsemble.from_xgboost(boosters).to_dict()))
    )
    assert ensemble.max_depth == depth
    expected = np.column_stack([b.predict(X, output_margin=True) for b in boosters])
    np.testing.assert_allclose(ensemble.margins(X), expected, atol=1e-5)
    np.testing.assert_allclose(ensemble.margins(X, members=1), expected[:, :1], atol=1e-5)
    # one patient at a time (the clinician path), with and without missing values
    complete = np.flatnonzero(~np.isnan(X).any(axis=1))[:3]
    gappy = np.flatnonzero(np.isnan(X).any(axis=1))[:3]
    for rows in (complete, gappy):
        for i in rows:
            np.testing.assert_allclose(
                ensemble.margins(X[i : i + 1]), expected[i : i + 1], atol=1e-5
            )

    shap, base = ensemble.contributions(X[:300], member=2)
    reference = boosters[2].get_booster().predict(xgb.DMatrix(X[:300]), pred_contribs=True)
    np.testing.assert_allclose(shap, reference[:, :-1], atol=1e-5)
    assert base == pytest.approx(reference[0, -1], abs=1e-5)
    np.testing.assert_allclose(base + shap.sum(axis=1), expected[:300, 2], atol=1e-5)


def test_features_shape_is_checked():
    X, y = _data()
    ensemble = TreeEnsemble.from_xgboost([xgb.XGBClassifier(n_estimators=5).fit(X, y)])
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        ensemble.margins(X[:, :4])


def test_calibrated_log_odds_stay_bounded():
    calibrator = {"method": "sigmoid", "a": 50.0, "b": 0.0}
    log_odds = calibrated_log_odds(np.array([-10.0, 0.0, 10.0]), calibrator)
    assert log_odds.tolist() == [-9.21, 0.0, 9.21]


def test_linear_terms_add_up_and_stay_flat_beyond_the_training_range():
    from ketapredict.trees import linear_margin, linear_terms

    linear = {
        "low": [0.0, 0.0, 0.0],
        "high": [10.0, 1.0, 1.0],
        "center": [5.0, 0.5, 0.5],
        "scale": [2.0, 0.5, 0.5],
        "coef": [0.4, -0.2, 0.3],
        "coef_active": [0.1, 0.0, 0.0],
        "active": 2,
        "intercept": -1.0,
    }
    X = np.array([[7.0, 1.0, 1.0], [7.0, 1.0, 0.0], [50.0, 1.0, 1.0], [np.nan, 0.0, 1.0]])
    terms = linear_terms(X, linear)
    # 7 is one SD above the centre: 0.4 alone, plus 0.1 on the active drug
    assert terms[0, 0] == pytest.approx(0.5)
    assert terms[1, 0] == pytest.approx(0.4)
    # 50 is beyond the training range (10): as 10
    assert terms[2, 0] == pytest.approx(2.5 * 0.5)
    assert terms[3, 0] == 0.0  # missing: at the mean
    np.testing.assert_allclose(linear_margin(X, linear), -1.0 + terms.sum(axis=1))
    assert (linear_margin(X, None) == 0).all()


def test_every_members_linear_margin_at_once_is_each_members_own():
    """linear_margins (one matrix product, each member clipped to its own range) gives
    each member's linear_margin; with columns, those features' terms alone."""
    from ketapredict.trees import linear_margin, linear_margins, linear_terms, stack_linear

    rng = np.random.default_rng(0)
    f = 6
    members = [
        {
            "low": list(rng.uniform(-2, -1, f)),
            "high": list(rng.uniform(1, 2, f)),
            "center": list(rng.normal(0, 0.1, f)),
            "scale": list(rng.uniform(0.5, 2, f)),
            "coef": list(rng.normal(0, 1, f)),
            "coef_active": list(rng.normal(0, 1, f) * (np.arange(f) < 4)),
            "active": 5,
            "intercept": float(rng.normal()),
        }
        for _ in range(7)
    ]
    X = rng.normal(0, 1.5, (500, f))  # many values beyond some member's range
    X[:, 5] = rng.integers(0, 2, 500)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[0, 1], X[1, 2], X[2, 0] = np.inf, -np.inf, 1e17  # clipped to the range, as one member
    stacked = stack_linear(members)
    each = np.column_stack([linear_margin(X, m) for m in members])
    np.testing.assert_allclose(linear_margins(X, stacked), each, rtol=0, atol=1e-12)
    # the first members alone, and a component without the active-drug interaction
    first = {k: v[:3] if isinstance(v, np.ndarray) else v for k, v in stacked.items()}
    np.testing.assert_allclose(linear_margins(X, first), each[:, :3], rtol=0, atol=1e-12)
    plain = [{**m, "active": None} for m in members]
    np.testing.assert_allclose(
        linear_margins(X, stack_linear(plain)),
        np.column_stack([linear_margin(X, m) for m in plain]),
        rtol=0,
        atol=1e-12,
    )
    columns = [1, 3]
    terms = np.column_stack([linear_terms(X, m)[:, columns].sum(axis=1) for m in members])
    np.testing.assert_allclose(linear_margins(X, stacked, columns), terms, rtol=0, atol=1e-12)
    # modifiers (linear="dose_time"): a patient feature's weight moves with column 4,
    # clipped, as log(1 + x), on the drug only
    X[:, 4] = rng.uniform(-1, 5, 500)
    spec = {"column": 4, "low": 0.0, "high": 3.0, "log": True, "active": True}
    moved = [
        {
            **m,
            "modifiers": [spec],
            "coef_modifiers": [list(rng.normal(0, 1, f) * (np.arange(f) < 4))],
        }
        for m in members
    ]
    each = np.column_stack([linear_margin(X, m) for m in moved])
    assert np.abs(each - np.column_stack([linear_margin(X, m) for m in members])).max() > 0.1
    np.testing.assert_allclose(linear_margins(X, stack_linear(moved)), each, rtol=0, atol=1e-12)
    terms = np.column_stack([linear_terms(X, m)[:, columns].sum(axis=1) for m in moved])
    np.testing.assert_allclose(
        linear_margins(X, stack_linear(moved), columns), terms, rtol=0, atol=1e-12
    )
