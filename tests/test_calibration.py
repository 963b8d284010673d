"""The virtual cohort against published trial results (CALIBRATION.md).

Published values come from the package data (``data/targets.toml``); every simulated value
is computed here, from the simulator, never stored.
"""

import numpy as np
import pytest

import ketapredict.simulate
from ketapredict import calibration_report, published_trials, simulate_trial
from ketapredict.calibration import targets

EXPRESSED = [t["id"] for t in targets() if "not_expressed" not in t]


def test_every_target_is_simulated_or_says_why_not(report):
    assert report["id"].tolist() == EXPRESSED
    not_expressed = report.attrs["not_expressed"]
    assert {row["id"] for row in not_expressed} | set(EXPRESSED) == {t["id"] for t in targets()}
    assert all(row["not_expressed"] for row in not_expressed)
    assert set(report["section"]) == {"A", "B", "C", "D"}
    assert report["passed"].dtype == bool
    assert report["simulated"].notna().all()


@pytest.mark.parametrize("target", EXPRESSED)
def test_target_is_reproduced(report, target):
    row = report.set_index("id").loc[target]
    assert row["passed"], f"{target}: simulated {row['simulated']:.3f}, needs {row['check']}"


def _change(arm, visit):
    return float((arm[f"madrs_{visit}"] - arm["madrs_baseline"]).mean())


def _responding(arm, visit):
    return arm[f"madrs_{visit}"] <= arm["madrs_baseline"] / 2


def _trial(name, visits, seed=123):
    design = published_trials()[name]
    frame = simulate_trial(design.population, design.arms, 20_000, seed, visit_days=visits)
    return dict(list(frame.groupby("arm", observed=True)))


# Each numeric A row recomputed from simulate_trial alone, with another seed than the report.
RECOMPUTE = {
    "A1.response_d1": ("zarate2006", (1, 7), lambda t: _responding(t["ketamine"], "d1").mean()),
    "A1.remission_d1": ("zarate2006", (1, 7), lambda t: (t["ketamine"]["madrs_d1"] <= 10).mean()),
    "A1.response_d7": ("zarate2006", (1, 7), lambda t: _responding(t["ketamine"], "d7").mean()),
    "A2.ketamine_d15": (
        "singh2016_ajp",
        (15,),
        lambda t: _change(t["ketamine_2_per_week"], "d15"),
    ),
    "A2.saline_d15": ("singh2016_ajp", (15,), lambda t: _change(t["saline_2_per_week"], "d15")),
    "A3.ketamine_d15": (
        "singh2016_ajp",
        (15,),
        lambda t: _change(t["ketamine_3_per_week"], "d15"),
    ),
    "A3.saline_d15": ("singh2016_ajp", (15,), lambda t: _change(t["saline_3_per_week"], "d15")),
    "A4.esketamine_0.20_d2": (
        "singh2016_biol",
        (2,),
        lambda t: _change(t["esketamine_0_20"], "d2"),
    ),
    "A4.esketamine_0.40_d2": (
        "singh2016_biol",
        (2,),
        lambda t: _change(t["esketamine_0_40"], "d2"),
    ),
    "A4.saline_d2": ("singh2016_biol", (2,), lambda t: _change(t["saline"], "d2")),
    "A5.ssi_ketamine_d1": (
        "grunebaum2018",
        (1,),
        lambda t: 1 - t["ketamine"]["ssi_d1"].mean() / t["ketamine"]["ssi_baseline"].mean(),
    ),
    "A5.ssi_midazolam_d1": (
        "grunebaum2018",
        (1,),
        lambda t: 1 - t["midazolam"]["ssi_d1"].mean() / t["midazolam"]["ssi_baseline"].mean(),
    ),
    "A5.hamd_ketamine_d1": (
        "grunebaum2018",
        (1,),
        lambda t: 1 - t["ketamine"]["hamd17_d1"].mean() / t["ketamine"]["hamd17_baseline"].mean(),
    ),
    "A5.hamd_midazolam_d1": (
        "grunebaum2018",
        (1,),
        lambda t: (
            1 - t["midazolam"]["hamd17_d1"].mean() / t["midazolam"]["hamd17_baseline"].mean()
        ),
    ),
    "A6.response_3d_ketamine": (
        "diazgranados2010",
        (40 / 1440, 80 / 1440, 110 / 1440, 230 / 1440, 1, 2, 3),
        lambda t: (
            np.column_stack(
                [
                    _responding(t["ketamine"], v)
                    for v in ("m40", "m80", "m110", "m230", "d1", "d2", "d3")
                ]
            )
            .any(1)
            .mean()
        ),
    ),
    "A6.response_3d_saline": (
        "diazgranados2010",
        (40 / 1440, 80 / 1440, 110 / 1440, 230 / 1440, 1, 2, 3),
        lambda t: (
            np.column_stack(
                [
                    _responding(t["saline"], v)
                    for v in ("m40", "m80", "m110", "m230", "d1", "d2", "d3")
                ]
            )
            .any(1)
            .mean()
        ),
    ),
}


def test_every_numeric_a_row_is_recomputed_here():
    numeric = {
        t["id"] for t in targets() if t["id"].startswith("A") and t.get("kind") in ("mean", "rate")
    }
    assert numeric == set(RECOMPUTE)


@pytest.mark.parametrize("target", sorted(RECOMPUTE))
def test_a_rows_recomputed_from_the_public_api(target):
    name, visits, statistic = RECOMPUTE[target]
    published = next(t for t in targets() if t["id"] == target)
    simulated = statistic(_trial(name, visits))
    assert abs(simulated - published["published"]) <= published["tolerance"], simulated


def test_the_checks_fail_for_a_simulator_without_drug_effect(monkeypatch):
    """A simulator in which ketamine does nothing must fail the calibration."""
    monkeypatch.setattr(
        ketapredict.simulate, "EFFECTS", ketapredict.simulate._replace_effects(drug_mean=0.0)
    )
    report = calibration_report(seed=0, n_per_arm=2000).set_index("id")
    for target in (
        "A1.response_d1",
        "A2.ketamine_d15",
        "A4.esketamine_0.40_d2",
        "A5.ssi_ketamine_d1",
        "A6.response_3d_ketamine",
        "A7.benefit_0.5",
    ):
        assert not report.loc[target, "passed"], target


def test_the_checks_fail_for_a_simulator_that_ignores_a_predictor(monkeypatch):
    monkeypatch.setattr(
        ketapredict.simulate, "EFFECTS", ketapredict.simulate._replace_effects(fh_aud_effect=-0.1)
    )
    report = calibration_report(seed=0, n_per_arm=4000).set_index("id")
    assert not report.loc["C.family_history_aud", "passed"]
