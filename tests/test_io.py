"""Reading real-format studies: mapping files, BIDS, ADaM (SAS transport, Dataset-JSON)."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import ketapredict
from ketapredict import ValidationError
from ketapredict.cli import main
from ketapredict.io import example_study, load_mapping, read_adam, read_bids, read_dataset
from ketapredict.io.courses import IngestSummary
from ketapredict.io.examples import adam_datasets, crossover_study, write_adam, write_bids

# The example mapping, exactly as written.
EXAMPLE_MAPPING = """\
format = "bids"
diagnosis = { column = "group", values = { MDD = "MDD", BP = "bipolar" } }  # other groups dropped
[columns]                       # contract column = source column, or a table with a value map
age = "age"
bmi = "BMI"
sex = { column = "sex", values = { M = "male", F = "female" } }
[scores]                        # contract scale = phenotype column
madrs = "MADRS_Total"
hamd17 = "HAM17_Total"
[sessions]
"ses-b0" = { baseline = true }
"ses-d2" = { arm = "ketamine", day = 2 }
"ses-d10" = { arm = "ketamine", day = 10 }
"ses-p2" = { arm = "saline", day = 2 }
"ses-p10" = { arm = "saline", day = 10 }
[periods]                       # which participants.tsv column holds each period's arm code
columns = ["infusion_1", "infusion_2"]
codes = { d = "ketamine", p = "saline" }
[arms.ketamine]
drug = "ketamine"
route = "iv"
dose = 0.5
dose_unit = "mg/kg"
infusion_minutes = 40
sessions_per_week = 1
n_sessions = 1
[arms.saline]
drug = "saline"
route = "iv"
dose = 0
dose_unit = "mg/kg"
infusion_minutes = 40
sessions_per_week = 1
n_sessions = 1
"""

PARTICIPANTS = """\
participant_id\tage\tsex\tgroup\tBMI\tinfusion_1\tinfusion_2
sub-01\t40\tF\tMDD\t24.5\td\tp
sub-02\t51\tM\tBP\tn/a\tp\td
sub-03\t35\tF\tHV\t22.0\tn/a\tn/a
"""

MADRS = """\
participant_id\tsession_id\tMADRS_Total
sub-01\tses-b0\t30
sub-01\tses-d2\t14
sub-01\tses-d10\t16
sub-01\tses-p2\t28
sub-01\tses-p10\tn/a
sub-02\tses-b0\t36
sub-02\tses-p2\t30
sub-02\tses-p10\t33
sub-02\tses-d2\t12
sub-02\tses-d10\t9
sub-03\tses-b0\t3
"""

HAMD = """\
participant_id\tsession_id\tHAM17_Total
sub-01\tses-b0\t22
sub-01\tses-d10\t11
sub-02\tses-b0\t25
"""


def _edited_study(tmp_path, study: str, old: str, new: str):
    """A copy of an example study whose mapping has ``old`` replaced by ``new``; its
    mapping's path."""
    root = shutil.copytree(example_study(study), tmp_path / study)
    mapping = root / "mapping.toml"
    text = mapping.read_text()
    assert old in text
    mapping.write_text(text.replace(old, new))
    return mapping


def _bids(root, participants=PARTICIPANTS, madrs=MADRS, hamd=HAMD):
    (root / "phenotype").mkdir(parents=True)
    (root / "participants.tsv").write_text(participants)
    (root / "participants.json").write_text(json.dumps({"sex": {"Levels": {"M": "male"}}}))
    (root / "phenotype" / "madrs.tsv").write_text(madrs)
    (root / "phenotype" / "hamd.tsv").write_text(hamd)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny crossover"}))
    (root / "mapping.toml").write_text(EXAMPLE_MAPPING)
    return root


def test_the_example_mapping_reads_a_crossover_into_the_courses_computed_by_hand(tmp_path):
    root = _bids(tmp_path / "study")
    table = read_bids(root, root / "mapping.toml")
    got = table.set_index(["patient_id", "period"])
    # sub-03 is a healthy volunteer: dropped by the diagnosis map, and counted
    assert got.index.tolist() == [("sub-01", 1), ("sub-01", 2), ("sub-02", 1), ("sub-02", 2)]
    assert table.attrs["ingest"]["dropped"] == {"group = HV, not mapped": 1}
    assert got["arm"].tolist() == ["ketamine", "saline", "saline", "ketamine"]
    assert got["drug"].tolist() == ["ketamine", "saline", "saline", "ketamine"]
    assert got["dose"].tolist() == [0.5, 0.0, 0.0, 0.5]
    # the one baseline session serves both periods
    assert got["madrs_baseline"].tolist() == [30, 30, 36, 36]
    assert got["hamd17_baseline"].tolist() == [22, 22, 25, 25]
    assert got["madrs_d2"].tolist() == [14, 28, 30, 12]
    assert got["madrs_d10"].fillna(-1).tolist() == [16, -1, 33, 9]
    assert got["hamd17_d10"].fillna(-1).tolist() == [11, -1, -1, -1]
    assert (got["endpoint_day"] == 10).all()
    # response: day-10 MADRS at most half the baseline; remission: at most 10; a missing
    # day-10 MADRS stays missing (never carried forward)
    assert got["response"].tolist() == [False, pd.NA, False, True]
    assert got["remission"].tolist() == [False, pd.NA, False, True]
    assert got["sex"].tolist() == ["female", "female", "male", "male"]
    assert got["diagnosis"].tolist() == ["MDD", "MDD", "bipolar", "bipolar"]
    assert np.isnan(got.loc[("sub-02", 1), "bmi"])
    assert (got["trial_id"] == "tiny crossover").all()
    # the table is the contract's: validating it again changes nothing
    pd.testing.assert_frame_equal(ketapredict.validate(table), table)


def test_malformed_bids_gives_one_error_listing_every_problem(tmp_path):
    participants = PARTICIPANTS + "sub-04\t60\tF\tMDD\t30\td\tp\nsub-05\t33\tX\tMDD\t25\td\tz\n"
    participants += "sub-06\t45\tM\tMDD\t27\td\tp\n"
    madrs = MADRS + (
        "sub-01\tses-d2\t15\n"  # duplicate participant-session
        "sub-01\tses-x1\t20\n"  # a session the mapping does not name
        "sub-04\tses-d2\t20\n"  # sub-04 has no baseline
        "sub-05\tses-b0\t31\n"
        "sub-07\tses-b0\t31\n"  # not in participants.tsv
        "sub-02\tses-d2\tmany\n"  # not a number
    )
    root = _bids(tmp_path / "study", participants, madrs)  # sub-06: no phenotype rows
    with pytest.raises(ValidationError) as caught:
        read_bids(root, root / "mapping.toml")
    text = str(caught.value)
    for expected in (
        "second madrs value (15) for its participant at day 2 of period 1 (the first: ",
        "session 'ses-x1' is not in the mapping",
        "the participant of participants.tsv line 5 period 1 (ketamine): no baseline MADRS",
        "the participant of participants.tsv line 5 period 2 (saline): no baseline MADRS",
        "sex='X' is not in the mapping's values for sex",
        "infusion_2='z' is not an arm code of the mapping",
        "its participant is not in participants.tsv",
        "madrs score 'many' is not a number",
        "the participant of participants.tsv line 7 has no rows in phenotype/",
    ):
        assert expected in text, expected
    assert text.startswith("9 problems in the study at")
    assert "sub-" not in text  # participants by their line, never by their identifier
    # a bad value of a course's column: the course by its participant's line and period
    root = _bids(tmp_path / "old", PARTICIPANTS.replace("sub-01\t40", "sub-01\t400"), MADRS)
    with pytest.raises(ValidationError) as caught:
        read_bids(root, root / "mapping.toml")
    assert "row participants.tsv line 2, period 1: age='400' is outside" in str(caught.value)
    assert "sub-" not in str(caught.value)
    # every problem names where it is
    assert "phenotype/madrs.tsv line 13" in text


def test_incomplete_courses_can_be_dropped_and_are_counted(tmp_path):
    participants = PARTICIPANTS + "sub-04\t60\tF\tMDD\t30\td\tn/a\n"
    madrs = MADRS + "sub-04\tses-d2\t20\n"
    root = _bids(tmp_path / "study", participants, madrs)
    mapping = EXAMPLE_MAPPING.replace(
        'format = "bids"\n', 'format = "bids"\nincomplete = "drop"\n'
    )
    (root / "mapping.toml").write_text(mapping)
    table = read_bids(root, root / "mapping.toml")
    assert "sub-04" not in set(table["patient_id"])
    assert table.attrs["ingest"]["dropped"] == {
        "group = HV, not mapped": 1,
        "period 2 not started (infusion_2 empty)": 1,
        "courses without a baseline MADRS": 1,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "csv"}, "format='csv': Input should be 'bids' or 'adam'"),
        ({"columns": {"weight": "w"}}, "columns.weight='weight': not a baseline column"),
        (  # every course's BMI was its age (a review)
            {"columns": {"age": "age", "bmi": "age"}},
            "columns.bmi='age': the source column is already read as age",
        ),
        ({"scores": {"hamd17": "H"}}, "the MADRS is required (scores.madrs)"),
        ({"periods": None}, "the mapping has 2 arms, so it must say which arm each"),
        (
            {"sessions": {"ses-b0": {"baseline": True, "arm": "iv"}, "ses-d1": {"day": 1}}},
            "sessions.ses-b0.arm='iv': no such arm",
        ),
        (
            {
                "arms": {
                    "ketamine": {
                        "drug": "ketamine",
                        "route": "iv",
                        "dose": 9,
                        "infusion_minutes": 40,
                    },
                    "saline": {"drug": "saline", "route": "iv", "dose": 0, "infusion_minutes": 40},
                }
            },
            "arms.ketamine: dose=9 mg/kg is above",
        ),
        ({"sessions": {"ses-b0": {"baseline": True, "day": 3}}}, "give exactly one of"),
        ({"extra": 1}, "extra: unknown key; expected format, trial_id, path,"),
        (
            {
                "sessions": {
                    "ses-b0": {"baseline": True},
                    "ses-d1": {"arm": "ketamine", "day": True},  # was read as day 1
                }
            },
            "sessions.ses-d1.day=True: Input should be a valid number",
        ),
        (
            {"arms": {"ketamine": {"drug": "ketamine", "route": "iv", "dosee": 0.5}}},
            "arms.ketamine: unknown key 'dosee'",
        ),
    ],
)
def test_mapping_mistakes_are_named(change, message):
    import tomllib

    data = {**tomllib.loads(EXAMPLE_MAPPING), **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ValidationError, match=re.escape(message)):
        load_mapping(data)


def test_a_mapping_file_that_is_not_toml_or_not_utf8_is_a_validation_error(tmp_path):
    (tmp_path / "bad.toml").write_text("format = ")
    with pytest.raises(ValidationError, match="not valid TOML"):
        load_mapping(tmp_path / "bad.toml")
    (tmp_path / "latin.toml").write_bytes('format = "bids" # é'.encode("latin-1"))
    with pytest.raises(ValidationError, match="not UTF-8"):
        load_mapping(tmp_path / "latin.toml")


@pytest.fixture(scope="module")
def study():
    return crossover_study(n_mdd=5, n_bipolar=4, seed=3)


def _same(a, b):
    """Equal tables, but for the identifiers' spelling (sub-01 vs STUDY-01)."""
    a, b = a.copy(), b.copy()
    a["patient_id"] = a["patient_id"].str[-2:]
    b["patient_id"] = b["patient_id"].str[-2:]
    pd.testing.assert_frame_equal(a, b)


def test_adam_transport_and_dataset_json_read_into_the_bids_table(tmp_path, study):
    bids = write_bids(study, tmp_path / "bids")
    adam = write_adam(study, tmp_path / "adam")
    shipped = example_study("adam") / "mapping.toml"
    from_bids = read_bids(bids, example_study("bids") / "mapping.toml")
    from_xpt = read_adam(adam / "adsl.xpt", adam / "adqs.xpt", shipped)
    from_json = read_adam(adam / "adsl.json", adam / "adqs.json", shipped)
    assert len(from_bids) == 2 * study["patient_id"].nunique()
    _same(from_bids, from_xpt)
    _same(from_xpt, from_json)
    # and the courses are the simulated ones: same baseline MADRS of period 1, same visits
    first = study[study["period"] == 1].reset_index(drop=True)
    got = from_xpt[from_xpt["period"] == 1].reset_index(drop=True)
    np.testing.assert_array_equal(got["madrs_d7"], first["madrs_d7"])
    np.testing.assert_array_equal(got["madrs_baseline"], first["madrs_baseline"])
    assert got["response"].astype(bool).tolist() == first["response"].astype(bool).tolist()


def test_adam_variables_in_lower_case_are_read_as_the_mapping_names_them(tmp_path, study):
    """SAS variable names are case-insensitive; some exports write them in lower case, and
    each was refused as missing ("adqs.xpt has no USUBJID variable")."""
    import pyreadstat

    adam = write_adam(study, tmp_path / "adam")
    for name in ("adsl", "adqs"):
        document = json.loads((adam / f"{name}.json").read_text())
        for column in document["columns"]:
            column["name"] = column["name"].lower()
        (adam / f"{name}_lower.json").write_text(json.dumps(document))
        frame = read_dataset(adam / f"{name}.xpt")
        pyreadstat.write_xport(frame.rename(columns=str.lower), str(adam / f"{name}_lower.xpt"))
    shipped = example_study("adam") / "mapping.toml"
    expected = read_adam(adam / "adsl.xpt", adam / "adqs.xpt", shipped)
    for suffix in ("json", "xpt"):
        lower = read_adam(adam / f"adsl_lower.{suffix}", adam / f"adqs_lower.{suffix}", shipped)
        pd.testing.assert_frame_equal(lower, expected)


def test_dataset_json_1_0_reads_like_1_1(tmp_path, study):
    adam = write_adam(study, tmp_path / "adam", formats=("json",))
    new = json.loads((adam / "adqs.json").read_text())
    old = {
        "datasetJSONVersion": "1.0.0",
        "clinicalData": {
            "itemGroupData": {
                "IG.ADQS": {
                    "records": new["records"],
                    "name": "ADQS",
                    "items": [{"OID": "ITEMGROUPDATASEQ", "name": "ITEMGROUPDATASEQ"}]
                    + [{"OID": c["itemOID"], "name": c["name"]} for c in new["columns"]],
                    "itemData": [[i, *row] for i, row in enumerate(new["rows"], start=1)],
                }
            }
        },
    }
    (adam / "adqs10.json").write_text(json.dumps(old))
    pd.testing.assert_frame_equal(
        read_dataset(adam / "adqs10.json"), read_dataset(adam / "adqs.json")
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "a Dataset-JSON file is a JSON object"),
        ('{"datasetJSONVersion": "2.0"}', "is not 1.0 or 1.1"),
        (
            '{"datasetJSONVersion": "1.1.0", "columns": [{"name": "A"}], "rows": [[1, 2]]}',
            "record 1 is not a list of 1 values",
        ),
        (
            '{"datasetJSONVersion": "1.1.0", "columns": [{"name": "A"}], "rows": [[{"x": 1}]]}',
            "Dataset-JSON values are scalars",
        ),
        ("[" * 100_000, "not a JSON document"),
        (
            '{"datasetJSONVersion": "1.1.0", "records": 3, "columns": [{"name": "A"}], '
            '"rows": [[1], [2]]}',
            "it declares 3 records but holds 2; the file may have been cut short",
        ),
        (  # 1.0 states the count in its item group (a review found it unchecked)
            '{"datasetJSONVersion": "1.0.0", "clinicalData": {"itemGroupData": {"IG.ADSL": '
            '{"records": 99, "items": [{"name": "A"}], "itemData": [[1], [2]]}}}}',
            "it declares 99 records but holds 2; the file may have been cut short",
        ),
    ],
)
def test_malformed_dataset_json_is_a_validation_error(tmp_path, content, message):
    (tmp_path / "adsl.json").write_text(content)
    with pytest.raises(ValidationError, match=re.escape(message)):
        read_dataset(tmp_path / "adsl.json")


def test_a_transport_file_cut_short_is_refused_not_read_in_part(tmp_path):
    """The reader kept the whole records of a cut file: the last participant lost visits
    and a response, and ingest said nothing (a review of the command line)."""
    whole = (example_study("adam") / "adqs.xpt").read_bytes()
    (tmp_path / "adqs.xpt").write_bytes(whole[:-1037])
    with pytest.raises(ValidationError, match="not whole 80-byte records of SAS transport"):
        read_dataset(tmp_path / "adqs.xpt")
    # cut at a record's end, mid-observation: the partial observation tells (a diff review)
    for cut in (80, 400, 18_160):
        (tmp_path / "adqs.xpt").write_bytes(whole[:-cut])
        with pytest.raises(ValidationError, match="its last observation is cut off"):
            read_dataset(tmp_path / "adqs.xpt")


def test_a_file_that_is_not_transport_is_a_validation_error(tmp_path):
    (tmp_path / "adsl.xpt").write_text("not a SAS file".ljust(800))
    with pytest.raises(ValidationError, match="not a readable SAS transport file"):
        read_dataset(tmp_path / "adsl.xpt")
    (tmp_path / "adsl.csv").write_text("USUBJID\n01\n")
    with pytest.raises(ValidationError, match=re.escape("expected a .xpt")):
        read_dataset(tmp_path / "adsl.csv")


def test_malformed_adam_lists_every_problem(tmp_path, study):
    adsl, adqs = adam_datasets(study)
    adsl.loc[0, "TRT02A"] = "PLACEBO"  # an unknown treatment code
    adqs = adqs[
        ~(
            (adqs["USUBJID"] == adsl.loc[1, "USUBJID"])
            & (adqs["AVISIT"] == "BASELINE")
            & (adqs["PARAMCD"] == "MADRSTOT")
        )
    ]  # no baseline MADRS
    extra = adqs.iloc[[5]].assign(AVISIT="DAY 99")  # an unmapped visit
    flagged_out = adqs.iloc[[6]].assign(AVISIT="DAY 77", ANL01FL="")  # not analysed: ignored
    anonymous = adqs.iloc[[7, 8, 9]].assign(USUBJID="")  # records without a subject
    adqs = pd.concat([adqs, extra, flagged_out, anonymous], ignore_index=True)
    folder = tmp_path / "adam"
    folder.mkdir()
    import pyreadstat

    pyreadstat.write_xport(adsl, str(folder / "adsl.xpt"), file_format_version=5)
    pyreadstat.write_xport(adqs, str(folder / "adqs.xpt"), file_format_version=5)
    with pytest.raises(ValidationError) as caught:
        read_adam(folder / "adsl.xpt", folder / "adqs.xpt", example_study("adam") / "mapping.toml")
    text = str(caught.value)
    assert "TRT02A='PLACEBO' is not an arm code of the mapping" in text
    assert "no baseline MADRS" in text
    assert "visit 'DAY 99' is not in the mapping" in text
    assert "DAY 77" not in text
    first = len(adqs) - 2  # the first anonymous record, numbered from 1
    assert f"adqs.xpt record {first}: no participant id (and 2 more records)" in text
    assert "is not in adsl" not in text
    # the same without the unmapped visit: the record the flag leaves out is counted
    adqs = adqs[(adqs["AVISIT"] != "DAY 99") & (adqs["USUBJID"] != "")]
    adsl.loc[0, "TRT02A"] = adsl.loc[1, "TRT02A"]
    pyreadstat.write_xport(adsl, str(folder / "adsl.xpt"), file_format_version=5)
    pyreadstat.write_xport(adqs, str(folder / "adqs.xpt"), file_format_version=5)
    mapping = (example_study("adam") / "mapping.toml").read_text()
    (folder / "mapping.toml").write_text(
        mapping.replace('format = "adam"', 'format = "adam"\nincomplete = "drop"')
    )
    table = read_adam(folder / "adsl.xpt", folder / "adqs.xpt", folder / "mapping.toml")
    assert table.attrs["ingest"]["ignored_records"] == {"ANL01FL not Y": 1}


def test_a_slipped_parameter_code_is_named_and_another_parameter_is_counted(tmp_path):
    """A MADRS record coded MADRSTO was left out without a word, taking a patient's
    outcome away; records of parameters the mapping does not use are counted."""
    import pyreadstat

    from ketapredict import read_study

    folder = tmp_path / "study"
    shutil.copytree(example_study("adam"), folder)
    adqs, _ = pyreadstat.read_xport(str(folder / "adqs.xpt"))
    items = adqs[adqs["PARAMCD"] == "MADRSTOT"].assign(PARAMCD="MADRS01", AVAL=3.0)
    adqs = pd.concat([adqs, items], ignore_index=True)  # beside the total: not a slip
    pyreadstat.write_xport(adqs, str(folder / "adqs.xpt"), file_format_version=5)
    table = read_study(folder / "mapping.toml")
    assert table.attrs["ingest"]["ignored_records"] == {"PARAMCD not mapped: 'MADRS01'": 125}
    # STUDYID is read, as the trial, when the mapping names none
    assert table.attrs["ingest"]["columns_not_read"] == ["SUBJID"]
    slipped = adqs.index[adqs["PARAMCD"] == "MADRSTOT"][[5, 9]]
    adqs.loc[slipped, "PARAMCD"] = "madrstot "
    pyreadstat.write_xport(adqs, str(folder / "adqs.xpt"), file_format_version=5)
    with pytest.raises(ValidationError) as error:
        read_study(folder / "mapping.toml")
    assert str(error.value.problems[0]) == (
        f"adqs.xpt record {slipped[0] + 1} (and 1 more records): PARAMCD='madrstot' is not "
        "mapped, and that visit has no 'MADRSTOT' record (did you mean 'MADRSTOT'?): correct "
        "the code in adqs.xpt"
    )


def _edited_example(tmp_path, file: str, old: str, new: str):
    """A copy of the BIDS example with ``old`` replaced by ``new`` once in ``file``; the
    copy's mapping file."""
    folder = tmp_path / "study"
    shutil.copytree(example_study("bids"), folder)
    (folder / file).write_text((folder / file).read_text().replace(old, new, 1))
    return folder / "mapping.toml"


def test_a_required_field_left_out_of_the_mapping_is_said_of_the_mapping(tmp_path):
    """ "required column 'age' is missing" sent users to a participants.tsv that had it."""
    with pytest.raises(ValidationError) as error:
        read_bids(None, _edited_example(tmp_path, "mapping.toml", 'age = "age"\n', ""))
    assert [str(p) for p in error.value.problems] == [
        "the mapping's [columns] has no entry for age (age at baseline), which is required; "
        "participants.tsv has a column 'age': add age = 'age'"
    ]


def test_a_renamed_session_column_is_one_problem_with_its_fix(tmp_path):
    """It also said "no phenotype file has a 'MADRS_Total' column", of a file that had it."""
    scores = "dataset/phenotype/madrs.tsv"
    with pytest.raises(ValidationError) as error:
        read_bids(None, _edited_example(tmp_path, scores, "session_id", "session"))
    assert [str(p) for p in error.value.problems] == [
        "phenotype/madrs.tsv holds scores but no 'session_id' column (the name BIDS gives it; "
        "a mapping cannot rename it) (did you mean 'session'?)"
    ]


def test_a_column_the_mapping_does_not_read_is_named(tmp_path):
    """A site's added columns (weight, handedness) were dropped without a word."""
    folder = tmp_path / "study"
    shutil.copytree(example_study("bids"), folder)
    participants = folder / "dataset" / "participants.tsv"
    lines = participants.read_text().splitlines()
    participants.write_text(
        "\n".join([lines[0] + "\tweight\thandedness"] + [r + "\t70\tR" for r in lines[1:]]) + "\n"
    )
    summary = read_bids(None, folder / "mapping.toml").attrs["ingest"]
    assert summary["columns_not_read"] == ["weight", "handedness"]
    assert (
        "columns of participants.tsv the mapping does not read (a field of the data "
        "contract among them is read once [columns] maps it): weight, handedness"
        in str(IngestSummary(**summary))
    )


def test_experiments_read_studies_through_a_mapping(tmp_path):
    from ketapredict.experiment import load_experiment

    folder = tmp_path / "study"
    shutil.copytree(example_study("adam"), folder)
    (tmp_path / "real.toml").write_text(
        '[data]\nformat = "adam"\nmapping = "study/mapping.toml"\n'
        '[outcomes]\nnames = ["response"]\n'
    )
    experiment = load_experiment(tmp_path / "real.toml")
    assert len(experiment.load_data()) == 50
    assert not experiment.spec.data.simulated
    (tmp_path / "bad.toml").write_text('[data]\nformat = "adam"\n')
    with pytest.raises(ValidationError, match="needs mapping"):
        load_experiment(tmp_path / "bad.toml")


def test_ingest_writes_the_table_and_prints_what_it_kept(tmp_path, capsys):
    out = tmp_path / "courses.parquet"
    assert main(["ingest", str(example_study("bids") / "mapping.toml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "27 participants in participants.tsv; 25 kept, with 50 courses" in printed
    assert "left out: 2 (group = HV, not mapped)" in printed
    assert "ketamine: 25 (response assessed at day 7)" in printed
    assert "not read" not in printed  # the mapping reads every column of participants.tsv
    assert re.search(r"madrs_d7\s+50", printed)
    table = pd.read_parquet(out)
    assert len(table) == 50
    pd.testing.assert_frame_equal(
        ketapredict.validate(table).reset_index(drop=True),
        read_bids(None, example_study("bids") / "mapping.toml"),
    )


def test_ingest_reports_a_mistake_without_a_traceback(tmp_path, capsys):
    (tmp_path / "mapping.toml").write_text('format = "bids"\n')
    assert main(["ingest", str(tmp_path / "mapping.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ketapredict: ")
    assert "Traceback" not in err
    assert "diagnosis is required" in err


def test_dropouts_missing_rows_are_counted_and_a_subject_column_is_just_a_column(tmp_path):
    participants = PARTICIPANTS.replace("participant_id\t", "participant_id\tsubject\t", 1)
    participants = "\n".join(
        line if i == 0 else line.replace("\t", "\tx\t", 1)
        for i, line in enumerate(participants.splitlines())
    )
    participants += "\nsub-04\tx\t60\tF\tMDD\t30\td\tn/a\n"
    madrs = MADRS + "sub-04\tses-b0\t30\nsub-04\tses-d10\t12\nsub-04\tses-p10\tn/a\n"
    root = _bids(tmp_path / "study", participants, madrs)
    table = read_bids(root, root / "mapping.toml")
    summary = table.attrs["ingest"]
    assert summary["ignored_records"] == {
        "missing values of periods the participant did not start": 1
    }
    assert summary["dropped"]["period 2 not started (infusion_2 empty)"] == 1
    assert table.loc[table["patient_id"] == "sub-04", "response"].tolist() == [True]


@pytest.mark.parametrize(
    ("sessions", "message"),
    [
        (
            {"ses-b0": {"baseline": True}, "ses-4h": {"day": 0.1667}},
            "must be a whole number of minutes",
        ),
        (
            {"ses-b0": {"baseline": True}, "ses-a": {"day": 1}, "ses-b": {"day": 1.0}},
            "'ses-a' is the same visit (d1) of arm 'ketamine'",
        ),
    ],
)
def test_sessions_must_name_distinct_visits_in_whole_minutes(sessions, message):
    import tomllib

    data = {**tomllib.loads(EXAMPLE_MAPPING), "sessions": sessions}
    with pytest.raises(ValidationError, match=re.escape(message)):
        load_mapping(data)


def test_a_bids_path_that_is_no_dataset_directory_says_what_it_is(tmp_path):
    mapping = example_study("bids") / "mapping.toml"
    dataset = example_study("bids") / "dataset"
    for path, message in (
        (tmp_path / "datset", "does not exist; a BIDS dataset is a directory"),
        (dataset / "participants.tsv", "is a file, not a directory; give the dataset's"),
        (tmp_path, "no participants.tsv in"),
    ):
        with pytest.raises(ValidationError, match=re.escape(message)):
            ketapredict.read_bids(path, mapping)


def test_bids_files_that_are_no_dataset_file_are_refused_never_read(tmp_path):
    """A pipe would wait forever, a link may lead out of the dataset (to /dev/zero, or a
    file whose first line the error would show)."""
    import os

    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    dataset = root / "dataset"
    mapping = root / "mapping.toml"
    os.mkfifo(dataset / "phenotype" / "zz.tsv")
    with pytest.raises(ValidationError, match=r"phenotype/zz.tsv is not a regular file"):
        ketapredict.read_study(mapping)
    (dataset / "phenotype" / "zz.tsv").unlink()
    (tmp_path / "secret.tsv").write_text("user\tpassword\n")
    (dataset / "phenotype" / "zz.tsv").symlink_to(tmp_path / "secret.tsv")
    with pytest.raises(ValidationError, match="is a link to a file outside the dataset") as caught:
        ketapredict.read_study(mapping)
    assert "password" not in str(caught.value)
    (dataset / "phenotype" / "zz.tsv").unlink()
    inside = dataset / ".git" / "annex"  # DataLad's links stay inside the dataset
    inside.mkdir(parents=True)
    moved = dataset / "phenotype" / "madrs.tsv"
    shutil.move(moved, inside / "madrs.tsv")
    moved.symlink_to(inside / "madrs.tsv")
    assert len(ketapredict.read_study(mapping)) == 50


def test_bids_lines_are_the_files_own_and_scores_are_read_as_the_contract_reads_numbers(
    tmp_path,
):
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    participants = root / "dataset" / "participants.tsv"
    lines = participants.read_text().split("\n")
    lines[5] = lines[5].replace("\tF\t", "\tX\t").replace("\tM\t", "\tX\t")
    participants.write_text("\n".join([lines[0], "", "", *lines[1:]]))  # two blank lines
    with pytest.raises(ValidationError, match=r"participants.tsv line 8"):
        ketapredict.read_study(root / "mapping.toml")
    shutil.copy(example_study("bids") / "dataset" / "participants.tsv", participants)
    madrs = root / "dataset" / "phenotype" / "madrs.tsv"
    rows = madrs.read_text().split("\n")
    cells = rows[1].split("\t")
    column = rows[0].split("\t").index("MADRS_Total")
    cells[column] = "4_3"
    madrs.write_text("\n".join([rows[0], "\t".join(cells), *rows[2:]]))
    with pytest.raises(ValidationError, match=r"madrs.tsv line 2: madrs score '4_3' is not a num"):
        ketapredict.read_study(root / "mapping.toml")


def test_one_pass_reports_the_mapping_and_the_tables_problems_together(tmp_path):
    """A sex code the mapping lacks and an unmapped session (the mapping stage) beside an
    age that is no number and a MADRS beyond the scale (the table's checks): all at once,
    not the second two after the first are fixed."""
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    participants = root / "dataset" / "participants.tsv"
    lines = participants.read_text().split("\n")
    lines[1] = lines[1].replace("\tM\t", "\tmale\t")  # sub-01
    lines[2] = lines[2].replace("43.4", "forty")  # sub-02
    participants.write_text("\n".join(lines))
    madrs = root / "dataset" / "phenotype" / "madrs.tsv"
    rows = madrs.read_text().split("\n")
    rows = [r.replace("ses-p1", "ses-p14") if r.startswith("sub-03\t") else r for r in rows]
    rows = [
        r.replace("\tses-b0\t", "\tses-b0\t75\t").rsplit("\t", 1)[0]
        if r.startswith("sub-04\tses-b0")
        else r
        for r in rows
    ]
    madrs.write_text("\n".join(rows))
    with pytest.raises(ValidationError) as caught:
        ketapredict.read_study(root / "mapping.toml")
    text = str(caught.value)
    assert "'male' is not in the mapping's values for sex" in text
    assert "session 'ses-p14' is not in the mapping" in text
    assert "participants.tsv line 3" in text
    assert "madrs.tsv line 17: madrs_baseline=75.0 is outside 0-60" in text
    assert "no baseline MADRS" not in text  # the refused value, said once
    # each crossover period is a course of its own, so the table's problems come twice
    assert {p.column for p in caught.value.problems} == {"sex", "session", "age", "madrs_baseline"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda text: text.replace(
                '"ses-d1" = { arm = "ketamine", day = 1 }\n'
                '"ses-d7" = { arm = "ketamine", day = 7 }',
                '"ses-d1" = { skip = true }\n"ses-d7" = { skip = true }',
            ),
            "arms.ketamine: no follow-up visit is mapped for this arm",
        ),
        (
            lambda text: text.replace("[arms.ketamine]\n", "[arms.ketamine]\nendpoint_day = 14\n"),
            "arms.ketamine.endpoint_day = 14 is no mapped visit of this arm (its visits: "
            "day 1, 7)",
        ),
    ],
)
def test_an_arm_is_assessed_on_one_of_its_visits(tmp_path, edit, message):
    """Without one its responses were NaN days, or all silently missing."""
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    mapping = root / "mapping.toml"
    text = mapping.read_text()
    assert edit(text) != text
    mapping.write_text(edit(text))
    with pytest.raises(ValidationError, match=re.escape(message)):
        ketapredict.read_study(mapping)


def test_a_diagnosis_code_in_the_wrong_case_is_refused_not_dropped(tmp_path):
    """``mdd`` for ``MDD`` is a typo, not a group left out on purpose (as HV is): the
    participant was dropped, counted, and ingestion succeeded."""
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    participants = root / "dataset" / "participants.tsv"
    lines = participants.read_text().split("\n")
    lines[1] = lines[1].replace("\tMDD\t", "\tmdd \t")
    participants.write_text("\n".join(lines))
    with pytest.raises(ValidationError) as caught:
        ketapredict.read_study(root / "mapping.toml")
    assert [p.column for p in caught.value.problems] == ["group"]
    assert (
        "participants.tsv line 2: group='mdd' is not in the mapping's values (did you "
        "mean 'MDD'?" in str(caught.value)
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda b: b.decode().encode("utf-16"),
            "participants.tsv is not UTF-8 text (it is UTF-16, as spreadsheet programs save",
        ),
        (
            lambda b: b.replace(b"\n", b"\tZ\xfcrich\n", 3).replace(b"\tZ\xfcrich", b"", 2),
            "participants.tsv is not UTF-8 text (invalid start byte at line 3, byte ",
        ),
        (
            lambda b: b.replace(b"\n", b"\r"),
            "participants.tsv ends its lines with carriage returns alone (old Mac text)",
        ),
        (
            lambda b: b.replace(b"\t", b","),
            "it has no tab: BIDS tables are tab-separated, and this one looks comma-separated",
        ),
        (
            lambda b: b.replace(b"\tage\t", b"\tsex\t", 1),
            "participants.tsv repeats a column name in its header ('sex')",
        ),
    ],
    ids=["utf-16", "latin-1", "cr-only", "commas", "repeated-column"],
)
@pytest.mark.parametrize("table", ["participants.tsv", "phenotype/madrs.tsv"])
def test_a_table_saved_the_wrong_way_is_said_as_such(tmp_path, edit, message, table):
    """Spreadsheet exports: each was a puzzle (a byte offset, a repeated column that was
    not, an empty-looking header, a did-you-mean pointing at another scale's column)."""
    if table != "participants.tsv":
        if "repeats" in message:
            pytest.skip("the phenotype file has no 'age' column to repeat")
        message = message.replace("participants.tsv", table)
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    participants = root / "dataset" / table
    before = participants.read_bytes()
    participants.write_bytes(edit(before))
    assert participants.read_bytes() != before
    with pytest.raises(ValidationError, match=re.escape(message)):
        ketapredict.read_study(root / "mapping.toml")


def test_a_file_whose_identifiers_are_written_differently_is_one_problem(tmp_path):
    """77 problems, one a participant and one a course, hid that madrs.tsv wrote its
    identifiers without the 'sub-' prefix; none names an identifier."""
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    madrs = root / "dataset" / "phenotype" / "madrs.tsv"
    lines = madrs.read_text().split("\n")
    madrs.write_text("\n".join(line.removeprefix("sub-") for line in lines))
    with pytest.raises(ValidationError) as caught:
        ketapredict.read_study(root / "mapping.toml")
    assert [p.message for p in caught.value.problems] == [
        "none of the 27 participants of phenotype/madrs.tsv is in participants.tsv: 27 of them "
        "match one when case and a 'sub-' prefix are ignored; write the identifiers as "
        "participants.tsv does"
    ]
    # one stranger among known participants is still named by its line
    lines[1] = lines[1].replace("sub-01", "sub-99", 1)
    madrs.write_text("\n".join(lines))
    with pytest.raises(ValidationError, match=r"madrs\.tsv line 2: its participant is not in"):
        ketapredict.read_study(root / "mapping.toml")


@pytest.mark.parametrize(
    ("study", "wrong", "right", "message"),
    [
        ("bids", "MADRS_Total", "MADRS_total", "has a 'MADRS_total' column (scores.madrs) (did "
         "you mean 'MADRS_Total'?)"),
        ("adam", "MADRSTOT", "MADRSTT", "PARAMCD='MADRSTT' (did you mean 'MADRSTOT'?)"),
    ],
)  # fmt: skip
def test_a_scores_name_mistyped_in_the_mapping_gets_a_did_you_mean(
    tmp_path, study, wrong, right, message
):
    mapping = _edited_study(tmp_path, study, f'madrs = "{wrong}"', f'madrs = "{right}"')
    with pytest.raises(ValidationError, match=re.escape(message)):
        ketapredict.read_study(mapping)


def test_an_adam_did_you_mean_never_points_at_another_mapped_scale(tmp_path):
    mapping = _edited_study(tmp_path, "adam", 'madrs = "MADRSTOT"', 'madrs = "HAMD17X"')
    with pytest.raises(ValidationError) as caught:
        ketapredict.read_study(mapping)
    assert "PARAMCD='HAMD17X'" in str(caught.value)
    assert "HAMD17T" not in str(caught.value)


def test_a_score_out_of_range_is_named_by_its_own_file_and_line(tmp_path):
    """It was named by its participant's line in participants.tsv, a file that holds no
    scores."""
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    madrs = root / "dataset" / "phenotype" / "madrs.tsv"
    rows = madrs.read_text().split("\n")
    assert rows[2].startswith("sub-01\tses-p1\t")
    rows[2] = "sub-01\tses-p1\t75"
    madrs.write_text("\n".join(rows))
    with pytest.raises(ValidationError) as caught:
        ketapredict.read_study(root / "mapping.toml")
    assert str(caught.value).splitlines()[1:] == [
        "  phenotype/madrs.tsv line 3: madrs_d1=75.0 is outside 0-60 (MADRS total score)"
    ]


def test_an_arms_dose_below_any_studied_is_noted_in_the_summary(tmp_path):
    """0.5 mg of IV ketamine for 0.5 mg/kg was read without a word."""
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    mapping = root / "mapping.toml"
    text = mapping.read_text()
    assert str(ketapredict.read_study(mapping).attrs["ingest"]["notes"]) == "[]"
    mapping.write_text(text.replace('dose_unit = "mg/kg"', 'dose_unit = "mg"', 1))
    notes = ketapredict.read_study(mapping).attrs["ingest"]["notes"]
    assert len(notes) == 1
    assert notes[0].startswith("arms.ketamine: a session's dose, 0.0065 mg/kg")


def test_a_value_map_to_no_contract_value_is_a_fault_of_the_mapping(tmp_path):
    """Said once, of the mapping, not once for each participant with the code."""
    mapping = _edited_study(tmp_path, "bids", 'F = "female"', 'F = "femal"')
    with pytest.raises(ValidationError) as caught:
        ketapredict.read_study(mapping)
    assert [str(p.message) for p in caught.value.problems] == [
        "columns.sex.values.F: sex='femal' is not one of 'female', 'male' (did you mean 'female'?)"
    ]
    assert "mapping file" in str(caught.value)


def test_an_arm_with_no_madrs_on_its_assessment_day_is_refused(tmp_path):
    """A session mapped to a day the files never hold: the arm's every response was
    missing, and ingestion succeeded (evaluation then validated on the other arm)."""
    root = shutil.copytree(example_study("bids"), tmp_path / "bids")
    mapping = root / "mapping.toml"
    text = mapping.read_text()
    mapping.write_text(
        text.replace(
            '"ses-d7" = { arm = "ketamine", day = 7 }',
            '"ses-d7" = { arm = "ketamine", day = 7 }\n"ses-d14" = { arm = "ketamine", day = 14 }',
        )
    )
    with pytest.raises(ValidationError) as caught:
        ketapredict.read_study(mapping)
    assert [p.column for p in caught.value.problems] == ["endpoint_day"]
    assert (
        "arms.ketamine: none of its 25 courses has a MADRS on its assessment day, day 14 "
        "(session 'ses-d14')" in str(caught.value)
    )


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda m: load_mapping(None), "the mapping must be a path to its .toml file or its"),
        (lambda m: load_mapping(""), "mapping must be the path of a mapping file (.toml); got "
         "an empty path"),
        (lambda m: read_bids(0, m("bids")), "path must be the path of the BIDS dataset's "
         "folder; got int"),
        (lambda m: read_bids("", m("bids")), "got an empty path"),
        (lambda m: read_adam(0, None, m("adam")), "adsl must be the path of the ADSL dataset"),
    ],
)  # fmt: skip
def test_a_path_argument_that_is_no_path_is_named(call, said):
    """None or 0 gave a bare TypeError; "" was the current directory, "a directory"."""
    with pytest.raises(ValidationError, match=re.escape(said)):
        call(lambda kind: example_study(kind) / "mapping.toml")


def test_the_documented_sub_modules_are_reachable_after_a_plain_import():
    """The README writes ketapredict.io.example_study("bids") after `import ketapredict`:
    it raised AttributeError until `import ketapredict.io` (a newcomer's review)."""
    import subprocess
    import sys

    code = (
        "import ketapredict, sys\n"
        "assert 'ketapredict.io' not in sys.modules\n"
        "print(ketapredict.io.example_study.__name__, ketapredict.schema.MIN_CELL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["example_study", "11"]
