import re
import shutil
import subprocess

import pandas as pd
import pytest

from ketapredict import published_trials, validate
from ketapredict.cli import main


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_simulate_writes_a_valid_cohort_and_summarises_it(tmp_path, capsys, suffix):
    out = tmp_path / "sub" / f"cohort{suffix}"
    assert main(["simulate", "--n", "600", "--seed", "3", "--out", str(out)]) == 0
    written = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    validate(written)
    assert len(written) == 600  # exactly the courses asked for
    printed = capsys.readouterr().out
    assert "Virtual cohort: simulated patients" in printed
    assert "all trials" in printed
    for name, design in published_trials().items():
        if design.in_cohort:
            assert name in printed


def test_simulate_refuses_an_unknown_file_type(tmp_path):
    with pytest.raises(SystemExit, match=re.escape("expected a .parquet or .csv file name")):
        main(["simulate", "--n", "100", "--out", str(tmp_path / "cohort.xlsx")])


def test_calibrate_prints_every_target_and_exits_by_the_result(capsys):
    code = main(["calibrate", "--n-per-arm", "3000"])
    printed = capsys.readouterr().out
    assert "Fit targets: scripts/fit_cohort.py fitted the parameters to these." in printed
    assert "Validation targets: never used by the fit, nor to set anything else." in printed
    assert "Checks: never used by the fit" in printed
    for target in ("A1.response_d1", "G3.frequency_lasting_deficit", "F.bmi_d1", "F.oracle_auc"):
        assert target in printed
    assert "Oracle AUC of response within each active arm" in printed
    assert "popova2019/esketamine_56mg" in printed
    assert "Not simulated:" in printed
    assert "A8.other_adverse_events" in printed
    assert code == (1 if "Missed:" in printed else 0)


def test_bad_arguments_give_a_clear_error(capsys):
    assert main(["simulate", "--n", "0", "--out", "unused.csv"]) == 2
    assert "n=0 is not a positive whole number" in capsys.readouterr().err


def test_console_script_is_installed():
    executable = shutil.which("ketapredict")
    assert executable, "the ketapredict command is not on PATH; install the package"
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ketapredict ")


@pytest.mark.slow
def test_quickstart_runs_the_whole_package(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["quickstart", "--quiet"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "OutcomeModel",
        "oracle",
        "ketapredict risk report",
        "dominated",
        "ketapredict ui",
        "Not for clinical decisions",
    ):
        assert expected in out
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
