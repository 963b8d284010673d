"""Example studies in BIDS and ADaM layouts, written from virtual patients.

The package ships one small crossover study (a single ketamine or saline infusion in random
order, as in the mapping example of docs/own-data.md) in both formats, so that every command of
"Your own trial data" runs out of the box; the tests write fresh ones, malformed variants
included. Every value comes from :func:`ketapredict.simulate_crossover`: these are virtual
patients, not a real trial.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from ..regimen import Regimen

__all__ = ["crossover_study", "example_study", "write_adam", "write_bids"]

# Follow-ups at 24 h and a week, as the single-infusion crossovers assessed (Zarate 2006)
VISIT_DAYS = (1, 7)
STUDY = "KETX-CROSSOVER"
_IV = {"route": "iv", "dose_unit": "mg/kg", "infusion_minutes": 40}
_GROUP = {"MDD": "MDD", "bipolar": "BP"}
_SEX = {"female": "F", "male": "M"}
_CODE = {"ketamine": "d", "saline": "p"}  # drug / placebo, as the mapping example codes them
_TREATMENT = {"ketamine": "KETAMINE 0.5 MG/KG IV", "saline": "SALINE IV"}


def example_study(kind: str) -> Path:
    """The folder of the shipped example study: ``"bids"`` or ``"adam"``.

    Each holds a ``mapping.toml`` that reads it (``ketapredict ingest`` takes the mapping
    alone). The study is virtual (25 patients with major depression or bipolar depression,
    each given ketamine and saline in random order, two follow-ups a period, and two healthy
    volunteers the mapping leaves out).

    Examples
    --------
    >>> from ketapredict.io import example_study
    >>> sorted(p.name for p in example_study("adam").iterdir())
    ['adqs.json', 'adqs.xpt', 'adsl.json', 'adsl.xpt', 'mapping.toml']
    """
    if kind not in ("bids", "adam"):
        raise ValueError(f"Got kind={kind!r}, but expected 'bids' or 'adam'.")
    return Path(str(files("ketapredict") / "data" / "examples" / kind))


def crossover_study(n_mdd: int = 13, n_bipolar: int = 12, seed: int = 0) -> pd.DataFrame:
    """The virtual crossover behind the examples: one row per patient and period.

    Parameters
    ----------
    n_mdd, n_bipolar : int
        Patients with major depressive disorder and with bipolar depression.
    seed : int
        Seeds the two simulated crossovers (``seed`` and ``seed + 1``).

    Returns
    -------
    DataFrame
        As :func:`ketapredict.simulate_crossover`, patients numbered ``1..n`` in
        ``patient_id``, visits at days 2 and 10.
    """
    from ..cohort.population import Population
    from ..cohort.simulate import simulate_crossover

    arms = {
        "ketamine": Regimen(drug="ketamine", dose=0.5, **_IV),
        "saline": Regimen(drug="saline", dose=0.0, **_IV),
    }
    parts = [
        simulate_crossover(
            Population(diagnosis=diagnosis), arms, n, seed + i, visit_days=VISIT_DAYS
        )
        for i, (diagnosis, n) in enumerate((("MDD", n_mdd), ("bipolar", n_bipolar)))
        if n
    ]
    study = pd.concat(parts, ignore_index=True)
    key = study["patient_id"].astype(str) + "/" + study["diagnosis"].astype(str)
    study["patient_id"] = key.map({k: i for i, k in enumerate(dict.fromkeys(key), start=1)})
    # as a case report form records them: age and BMI to one decimal
    study[["age", "bmi"]] = study[["age", "bmi"]].round(1)
    return study.sort_values(["patient_id", "period"], ignore_index=True)


def _cell(value) -> str:
    """A BIDS TSV cell: ``n/a`` for missing, whole numbers without a decimal point."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "n/a"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{value:.1f}"
    return str(value)


def _write_tsv(frame: pd.DataFrame, path: Path) -> None:
    lines = ["\t".join(frame.columns)]
    lines += ["\t".join(_cell(v) for v in row) for row in frame.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _by_patient(study: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    return [(int(p), rows.set_index("period")) for p, rows in study.groupby("patient_id")]


def write_bids(study: pd.DataFrame, root: str | Path, *, healthy: int = 2) -> Path:
    """Write a crossover study (:func:`crossover_study`) as a BIDS dataset.

    ``participants.tsv`` (with its JSON sidecar), ``dataset_description.json`` and
    ``phenotype/madrs.tsv`` and ``phenotype/hamd.tsv`` (one row per participant and session:
    ``ses-b0`` the baseline of period 1, ``ses-d1`` / ``ses-d7`` after ketamine, ``ses-p1``
    / ``ses-p7`` after saline). ``healthy`` volunteers (group ``HV``) are added with a
    baseline session only.

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    (root / "phenotype").mkdir(parents=True, exist_ok=True)
    participants, madrs, hamd = [], [], []
    for number, rows in _by_patient(study):
        first = rows.loc[1]
        sub = f"sub-{number:02d}"
        participants.append(
            {
                "participant_id": sub,
                "age": first["age"],
                "sex": _SEX[first["sex"]],
                "group": _GROUP[first["diagnosis"]],
                "BMI": first["bmi"],
                "infusion_1": _CODE[rows.loc[1, "arm"]],
                "infusion_2": _CODE[rows.loc[2, "arm"]] if 2 in rows.index else None,
            }
        )
        sessions = [("ses-b0", first["madrs_baseline"], first["hamd17_baseline"])]
        for period, row in rows.iterrows():
            code = _CODE[row["arm"]]
            sessions += [
                (f"ses-{code}{day}", row[f"madrs_d{day}"], row[f"hamd17_d{day}"])
                for day in VISIT_DAYS
            ]
            del period
        madrs += [
            {"participant_id": sub, "session_id": s, "MADRS_Total": m} for s, m, _ in sessions
        ]
        hamd += [
            {"participant_id": sub, "session_id": s, "HAM17_Total": h} for s, _, h in sessions
        ]
    rng = np.random.default_rng(len(participants))
    for i in range(healthy):
        sub = f"sub-{len(participants) + 1:02d}"
        participants.append(
            {
                "participant_id": sub,
                "age": float(rng.integers(25, 60)),
                "sex": "F" if i % 2 else "M",
                "group": "HV",
                "BMI": round(float(rng.normal(25, 3)), 1),
                "infusion_1": None,
                "infusion_2": None,
            }
        )
        madrs.append({"participant_id": sub, "session_id": "ses-b0", "MADRS_Total": 2.0})
        hamd.append({"participant_id": sub, "session_id": "ses-b0", "HAM17_Total": 1.0})
    _write_tsv(pd.DataFrame(participants), root / "participants.tsv")
    _write_tsv(pd.DataFrame(madrs), root / "phenotype" / "madrs.tsv")
    _write_tsv(pd.DataFrame(hamd), root / "phenotype" / "hamd.tsv")
    sidecar = {
        "age": {"Description": "age at enrolment", "Units": "year"},
        "sex": {"Description": "sex", "Levels": {"M": "male", "F": "female"}},
        "group": {
            "Description": "diagnostic group",
            "Levels": {
                "MDD": "major depressive disorder",
                "BP": "bipolar depression",
                "HV": "healthy volunteer",
            },
        },
        "BMI": {"Description": "body-mass index", "Units": "kg/m^2"},
        "infusion_1": {
            "Description": "first infusion",
            "Levels": {"d": "ketamine 0.5 mg/kg", "p": "saline"},
        },
        "infusion_2": {
            "Description": "second infusion",
            "Levels": {"d": "ketamine 0.5 mg/kg", "p": "saline"},
        },
    }
    (root / "participants.json").write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
    (root / "phenotype" / "madrs.json").write_text(
        json.dumps(
            {
                "MeasurementToolMetadata": {
                    "Description": "Montgomery-Asberg Depression Rating Scale"
                },
                "MADRS_Total": {"Description": "MADRS total score", "Units": "score 0-60"},
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    (root / "phenotype" / "hamd.json").write_text(
        json.dumps(
            {"HAM17_Total": {"Description": "HAMD-17 total", "Units": "score 0-52"}}, indent=2
        ),
        encoding="utf-8",
    )
    (root / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": STUDY,
                "BIDSVersion": "1.10.0",
                "DatasetType": "raw",
                "GeneratedBy": [{"Name": "ketapredict", "Description": "virtual patients"}],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return root


def adam_datasets(study: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ADSL and ADQS records of a crossover study (:func:`crossover_study`)."""
    adsl, adqs = [], []
    for number, rows in _by_patient(study):
        first = rows.loc[1]
        usubjid = f"{STUDY}-{number:02d}"
        adsl.append(
            {
                "STUDYID": STUDY,
                "USUBJID": usubjid,
                "SUBJID": f"{number:02d}",
                "AGE": first["age"],
                "SEX": _SEX[first["sex"]],
                "DIAGGR1": _GROUP[first["diagnosis"]],
                "BMIBL": first["bmi"],
                "TRT01A": _TREATMENT[rows.loc[1, "arm"]],
                "TRT02A": _TREATMENT[rows.loc[2, "arm"]] if 2 in rows.index else "",
            }
        )
        for code, scale, name in (
            ("MADRSTOT", "madrs", "MADRS Total Score"),
            ("HAMD17T", "hamd17", "HAM-D 17-Item Total Score"),
        ):
            base = first[f"{scale}_baseline"]
            common = {"STUDYID": STUDY, "USUBJID": usubjid, "PARAMCD": code, "PARAM": name}
            adqs.append(
                {
                    **common,
                    "AVISIT": "BASELINE",
                    "AVISITN": 0.0,
                    "APERIOD": np.nan,
                    "TRTA": "",
                    "AVAL": base,
                    "BASE": base,
                    "CHG": np.nan,
                    "ABLFL": "Y",
                    "ANL01FL": "Y",
                }
            )
            for period, row in rows.iterrows():
                for day in VISIT_DAYS:
                    value = row[f"{scale}_d{day}"]
                    adqs.append(
                        {
                            **common,
                            "AVISIT": f"DAY {day}",
                            "AVISITN": float(day),
                            "APERIOD": float(period),
                            "TRTA": _TREATMENT[row["arm"]],
                            "AVAL": value,
                            "BASE": base,
                            "CHG": value - base,
                            "ABLFL": "",
                            "ANL01FL": "Y",
                        }
                    )
    return pd.DataFrame(adsl), pd.DataFrame(adqs)


_LABELS = {
    "STUDYID": "Study Identifier",
    "USUBJID": "Unique Subject Identifier",
    "SUBJID": "Subject Identifier for the Study",
    "AGE": "Age",
    "SEX": "Sex",
    "DIAGGR1": "Diagnosis Group 1",
    "BMIBL": "Baseline BMI (kg/m2)",
    "TRT01A": "Actual Treatment for Period 01",
    "TRT02A": "Actual Treatment for Period 02",
    "PARAMCD": "Parameter Code",
    "PARAM": "Parameter",
    "AVISIT": "Analysis Visit",
    "AVISITN": "Analysis Visit (N)",
    "APERIOD": "Period",
    "TRTA": "Actual Treatment",
    "AVAL": "Analysis Value",
    "BASE": "Baseline Value",
    "CHG": "Change from Baseline",
    "ABLFL": "Baseline Record Flag",
    "ANL01FL": "Analysis Flag 01",
}


def _dataset_json(frame: pd.DataFrame, name: str, label: str) -> dict:
    """A CDISC Dataset-JSON 1.1 document of ``frame``."""
    numeric = {c: pd.api.types.is_float_dtype(frame[c]) for c in frame.columns}
    columns = [
        {
            "itemOID": f"IT.{name}.{c}",
            "name": c,
            "label": _LABELS.get(c, c),
            "dataType": "double" if numeric[c] else "string",
            **({} if numeric[c] else {"length": max(1, int(frame[c].str.len().max()))}),
            **({"keySequence": 1} if c == "USUBJID" else {}),
        }
        for c in frame.columns
    ]
    rows = [
        [
            (None if np.isnan(v) else float(v)) if numeric[c] else (v or None)
            for c, v in zip(frame.columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False)
    ]
    return {
        "datasetJSONCreationDateTime": "2026-01-01T00:00:00",
        "datasetJSONVersion": "1.1.0",
        "fileOID": f"ketapredict.example.{name}",
        "originator": "ketapredict (virtual patients)",
        "sourceSystem": {"name": "ketapredict", "version": "example"},
        "studyOID": STUDY,
        "itemGroupOID": f"IG.{name}",
        "isReferenceData": False,
        "records": len(rows),
        "name": name,
        "label": label,
        "columns": columns,
        "rows": rows,
    }


def write_adam(
    study: pd.DataFrame, folder: str | Path, *, formats: tuple[str, ...] = ("xpt", "json")
) -> Path:
    """Write a crossover study as ADaM ADSL and ADQS, as SAS transport and Dataset-JSON.

    ADQS has one baseline record per parameter (``AVISIT = "BASELINE"``, no period) and one
    record per period and follow-up day (``AVISIT = "DAY 1"``..., ``APERIOD`` 1 or 2).

    Returns
    -------
    Path
        ``folder``.
    """
    import pyreadstat

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    adsl, adqs = adam_datasets(study)
    for frame, name, label in (
        (adsl, "ADSL", "Subject-Level Analysis Dataset"),
        (adqs, "ADQS", "Questionnaire Analysis Dataset"),
    ):
        if "xpt" in formats:
            pyreadstat.write_xport(
                frame,
                str(folder / f"{name.lower()}.xpt"),
                file_format_version=5,
                table_name=name,
                file_label=label,
                column_labels=[_LABELS.get(c, c) for c in frame.columns],
            )
        if "json" in formats:
            (folder / f"{name.lower()}.json").write_text(
                json.dumps(_dataset_json(frame, name, label), indent=1), encoding="utf-8"
            )
    return folder
