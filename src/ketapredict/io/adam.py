"""CDISC ADaM datasets: ADSL and a basic data structure (BDS) dataset to patient courses.

ADaM exchanges a subject-level dataset (ADSL: one record per subject, ``USUBJID``,
demographics and each period's treatment ``TRTxxA``) and long "basic data structure"
datasets such as ADQS (questionnaires): one record per subject, parameter (``PARAMCD``) and
analysis visit (``AVISIT`` / ``AVISITN``), with the value in ``AVAL``, the period in
``APERIOD`` and analysis flags such as ``ANL01FL`` (CDISC ADaM Implementation Guide v1.3).
Files come as SAS V5 transport (``.xpt``, the format submissions use; read with pyreadstat)
or CDISC Dataset-JSON (``.json``, versions 1.0 and 1.1).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pandas as pd

from .._files import checked_path, not_a_file
from ..exceptions import Problem, ValidationError, short_repr
from .courses import SUBJECT, WHERE, _text, assemble, did_you_mean
from .mapping import StudyMapping, load_mapping

__all__ = ["read_adam", "read_dataset"]

# Dataset-JSON files over this size are refused: an ADSL or ADQS of a trial is far smaller,
# and json.loads holds the whole file in memory several times over.
_MAX_JSON_BYTES = 512 * 2**20


def _bad(path: Path, message: str) -> ValidationError:
    return ValidationError([Problem(None, path.name, f"{path.name}: {message}")], "ADaM dataset")


def _dataset_json(path: Path) -> pd.DataFrame:
    """A Dataset-JSON file (1.1: ``columns`` and ``rows``; 1.0: ``clinicalData`` or
    ``referenceData`` with one ``itemGroupData`` entry of ``items`` and ``itemData``)."""
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise _bad(path, f"larger than {_MAX_JSON_BYTES // 2**20} MiB")
    try:
        document = json.loads(path.read_bytes().decode("utf-8-sig"))  # a BOM is no data
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _bad(path, f"not a JSON document ({type(error).__name__}: {error})") from None
    if not isinstance(document, dict):
        raise _bad(path, "a Dataset-JSON file is a JSON object")
    version = str(document.get("datasetJSONVersion", ""))
    if version.startswith("1.1"):
        columns, rows = document.get("columns"), document.get("rows")
        declared = document.get("records")
        names_key = "name"
    elif version.startswith("1.0"):
        data = document.get("clinicalData") or document.get("referenceData")
        groups = data.get("itemGroupData") if isinstance(data, dict) else None
        if not isinstance(groups, dict) or len(groups) != 1:
            raise _bad(path, "Dataset-JSON 1.0 needs exactly one itemGroupData entry")
        group = next(iter(groups.values()))
        if not isinstance(group, dict):
            raise _bad(path, "its itemGroupData entry is not an object")
        columns, rows = group.get("items"), group.get("itemData")
        declared = group.get("records")  # 1.0 states the count in the item group
        names_key = "name"
    else:
        raise _bad(path, f"datasetJSONVersion {version!r} is not 1.0 or 1.1")
    if not isinstance(columns, list) or not all(
        isinstance(c, dict) and isinstance(c.get(names_key), str) for c in columns
    ):
        raise _bad(path, "its columns are not a list of objects with a name")
    if not isinstance(rows, list):
        raise _bad(path, f"its rows are not a list of lists of {len(columns)} values")
    for number, row in enumerate(rows, start=1):
        if not (isinstance(row, list) and len(row) == len(columns)):
            raise _bad(path, f"record {number} is not a list of {len(columns)} values")
    # both versions state the row count: a file cut short (at a record's end) loses rows
    if declared is not None and declared != len(rows):
        raise _bad(
            path,
            f"it declares {short_repr(declared)} records but holds {len(rows)}; the file may "
            "have been cut short",
        )
    if any(isinstance(v, dict | list) for r in rows for v in r):
        raise _bad(path, "a value is an object or a list; Dataset-JSON values are scalars")
    names = [c[names_key] for c in columns]
    if len(set(names)) != len(names):
        raise _bad(path, "a column name appears twice")
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return frame.drop(columns=["ITEMGROUPDATASEQ"], errors="ignore")  # 1.0's row counter


# SAS transport (XPORT version 5) files are sequences of 80-byte records (SAS Technical
# Support TS-140, "The record layout of a SAS transport file").
_XPORT_RECORD = 80


_MEMBER = b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
_NAMESTR = b"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!"
_OBS = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!"


def _xport_ends_mid_record(path: Path, size: int) -> bool:
    """Whether a one-member SAS transport (version 5) file ends inside an observation: its
    data are whole observations (each the sum of its variables' lengths, from their
    NAMESTR records) and blank padding to 80 bytes, so a file cut at an 80-byte boundary
    mid-observation leaves a partial one (TS-140). A cut that falls between observations
    cannot be told from a whole file; other layouts (version 8, several members) are not
    judged."""
    with open(path, "rb") as handle:
        whole = handle.read()  # pyreadstat reads the whole file next in any case
    if whole.count(_MEMBER) != 1 or whole.count(_NAMESTR) != 1 or whole.count(_OBS) != 1:
        return False
    member, names, obs = whole.find(_MEMBER), whole.find(_NAMESTR), whole.find(_OBS)
    try:
        length = int(whole[member + 74 : member + 78])  # a NAMESTR record's bytes: 140
        count = int(whole[names + 54 : names + 58])  # the variables
    except ValueError:
        return False
    start = names + _XPORT_RECORD
    if length <= 0 or start + count * length > obs:
        return False
    observation = sum(
        int.from_bytes(whole[start + i * length + 4 : start + i * length + 6], "big")
        for i in range(count)
    )
    if observation <= 0:
        return False
    data = size - (obs + _XPORT_RECORD)
    tail = whole[size - data % observation :] if data % observation else b""
    return tail.strip(b" ") != b""


def read_dataset(path: str | Path) -> pd.DataFrame:
    """One ADaM dataset from SAS transport (``.xpt``) or Dataset-JSON (``.json``).

    Parameters
    ----------
    path : str or path-like
        A ``.xpt`` or ``.json`` file.

    Returns
    -------
    DataFrame
        The records as they are (numbers as floats, text as text).

    Raises
    ------
    ValidationError
        If the file is missing, of another format, or malformed.
    """
    path = Path(path)
    fault = not_a_file(path, "a .xpt or .json file")
    if fault is not None:
        raise _bad(path, "no such file" if fault == "does not exist" else fault)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _dataset_json(path)
    if suffix == ".xpt":
        # SAS transport is written in 80-byte records, the last padded with blanks: a file
        # of any other length was cut short, and the reader would keep its whole records
        # and lose the rest without a word (a participant's last visits)
        size = path.stat().st_size
        if size % _XPORT_RECORD:
            raise _bad(
                path,
                f"its {size:,} bytes are not whole {_XPORT_RECORD}-byte records of SAS "
                "transport; the file may have been cut short",
            )
        if _xport_ends_mid_record(path, size):
            raise _bad(
                path,
                "its last observation is cut off (the data do not end in whole observations "
                "and blank padding); the file may have been cut short",
            )
        import pyreadstat

        try:
            frame, _ = pyreadstat.read_xport(str(path))
        except Exception as error:  # pyreadstat raises its own ReadstatError and others
            try:
                # XPORT stores no encoding; SAS sessions in WLATIN1 write Latin-1 text
                # ("Zürich" as one byte 0xfc), which is no UTF-8
                frame, _ = pyreadstat.read_xport(str(path), encoding="latin1")
            except Exception:
                raise _bad(path, f"not a readable SAS transport file ({error})") from None
        return frame
    raise _bad(
        path, f"expected a .xpt (SAS transport) or .json (Dataset-JSON) file, not {suffix!r}"
    )


def read_adam(
    adsl: str | Path | None,
    efficacy: str | Path | None,
    mapping: str | Path | StudyMapping,
) -> pd.DataFrame:
    """Read ADaM ADSL and an efficacy or questionnaire dataset into patient courses.

    The same table as :func:`ketapredict.read_bids` gives for the same study: one row per
    subject and period, response and remission derived at each arm's endpoint.

    Parameters
    ----------
    adsl, efficacy : str, path-like or None
        The subject-level dataset and the BDS dataset holding the scores (e.g. ADQS), as
        ``.xpt`` or Dataset-JSON ``.json``. None: the mapping's ``adsl`` / ``efficacy``.
    mapping : str, path-like or StudyMapping
        A mapping file with ``format = "adam"`` (see :func:`ketapredict.io.load_mapping`):
        ``[scores]`` give the ``PARAMCD`` of each scale, ``[visits]`` the visit variable and
        what each of its values is, ``[periods]`` the ADSL treatment variables of each
        period.

    Returns
    -------
    DataFrame
        Validated against the data contract, with the summary in ``table.attrs["ingest"]``.

    Raises
    ------
    ValidationError
        Listing every problem at once.

    Examples
    --------
    >>> import ketapredict
    >>> from ketapredict.io import example_study
    >>> folder = example_study("adam")
    >>> table = ketapredict.read_adam(folder / "adsl.xpt", folder / "adqs.xpt",
    ...                               folder / "mapping.toml")
    >>> len(table), sorted(table["arm"].unique())
    (50, ['ketamine', 'saline'])
    """
    if not isinstance(mapping, StudyMapping):
        mapping = load_mapping(mapping)
    if mapping.format != "adam":
        raise ValidationError(
            [Problem("format", mapping.format, "read_adam needs a mapping with format = 'adam'")],
            "mapping file",
        )
    paths = {}
    for name, given in (("adsl", adsl), ("efficacy", efficacy)):
        path = (
            checked_path(given, name, f"the {name.upper()} dataset (.xpt or .json)")
            if given is not None
            else mapping.resolve(getattr(mapping, name))
        )
        if path is None:
            raise ValidationError(
                [Problem(name, None, f"no {name} dataset: pass it, or set {name} in the mapping")],
                "ADaM study",
            )
        paths[name] = path
    names = mapping.adam
    wanted = _variables(mapping)
    subjects_raw = _as_mapped(read_dataset(paths["adsl"]), wanted)
    records_raw = _as_mapped(read_dataset(paths["efficacy"]), wanted)
    what = f"ADaM study {paths['adsl'].name} + {paths['efficacy'].name}"
    problems = []
    needed = [names.subject, names.parameter, names.value, mapping.visits.variable, *names.flags]
    for variable in needed:
        if variable not in records_raw.columns:
            problems.append(
                Problem(variable, None, f"{paths['efficacy'].name} has no {variable} variable")
            )
    if names.subject not in subjects_raw.columns:
        problems.append(
            Problem(names.subject, None, f"{paths['adsl'].name} has no {names.subject} variable")
        )
    if problems:
        raise ValidationError(problems, what)

    for frame, file in ((subjects_raw, paths["adsl"]), (records_raw, paths["efficacy"])):
        for reserved in (SUBJECT, WHERE):
            if reserved in frame.columns:
                problems.append(
                    Problem(reserved, None, f"{file.name}: variable {reserved!r} is reserved")
                )
    if problems:
        raise ValidationError(problems, what)
    subjects = subjects_raw.rename(columns={names.subject: SUBJECT}).astype(object)
    subjects[SUBJECT] = subjects[SUBJECT].map(_text)
    subjects[WHERE] = [f"{paths['adsl'].name} record {i}" for i in range(1, len(subjects) + 1)]

    records = records_raw.astype(object)
    records[WHERE] = [f"{paths['efficacy'].name} record {i}" for i in range(1, len(records) + 1)]
    parameter = records[names.parameter].map(_text)
    scale_of = {code: scale for scale, code in mapping.scores.items()}
    absent = [code for code in scale_of if not (parameter == code).any()]
    if absent:
        raise ValidationError(
            [
                Problem(
                    f"scores.{scale_of[code]}",
                    code,
                    f"{paths['efficacy'].name} has no records with {names.parameter}={code!r}"
                    # never another mapped scale's code
                    + did_you_mean(
                        code, [c for c in parameter.dropna().unique() if c not in scale_of]
                    ),
                )
                for code in absent
            ],
            what,
        )
    ignored = {}
    problems = _slipped_parameters(records, parameter, scale_of, mapping, paths["efficacy"].name)
    if problems:
        raise ValidationError(problems, what)
    other = sorted(parameter[~parameter.isin(scale_of)].dropna().unique())
    if other:  # another parameter's records (item scores, other scales): said, not silent
        shown = ", ".join(map(repr, other[:5])) + (
            f" and {len(other) - 5} more" if len(other) > 5 else ""
        )
        ignored[f"{names.parameter} not mapped: {shown}"] = int((~parameter.isin(scale_of)).sum())
    records = records[parameter.isin(scale_of)]  # the mapped scales' records only
    for flag in names.flags:
        flagged = records[flag].map(_text) == "Y"
        if (~flagged).any():
            ignored[f"{flag} not Y"] = int((~flagged).sum())
        records = records[flagged]
    period = _period_of(records, names.period)
    long = pd.DataFrame(
        {
            "subject": records[names.subject].map(_text),
            "label": records[mapping.visits.variable].map(_text),
            "scale": records[names.parameter].map(_text).map(scale_of),
            "value": records[names.value],
            "period": period.map(_text),
            "where": records[WHERE],
        }
    )
    return assemble(
        mapping,
        subjects,
        long,
        trial_id=mapping.trial_id or _study_id(subjects_raw, paths["adsl"]),
        source=f"{paths['adsl']} + {paths['efficacy'].name}",
        subject_file=paths["adsl"].name,
        record_files=paths["efficacy"].name,
        ignored=ignored,
        read_by_reader=["STUDYID"] if mapping.trial_id is None else [],
    )


def _period_of(records: pd.DataFrame, variable: str | None) -> pd.Series:
    """Each record's period variable (APERIOD), or None throughout where it has none."""
    if variable is not None and variable in records.columns:
        return records[variable]
    return pd.Series(None, index=records.index, dtype=object)


def _slipped_parameters(
    records: pd.DataFrame,
    parameter: pd.Series,
    scale_of: dict[str, str],
    mapping: StudyMapping,
    file: str,
) -> list[Problem]:
    """The records whose parameter code is a slip of a mapped one: a code not mapped, close
    to a mapped code (``MADRSTO`` for ``MADRSTOT``), at a subject's visit that the mapping
    reads and where that mapped code has no record. Left out, such a record silently took a
    patient's outcome away; another parameter's records (item scores ``MADRS01``, a scale
    not used) sit beside the mapped code's at the same visits, or at visits the mapping does
    not read, or are not close to any code, and are only counted."""
    names = mapping.adam
    visit = records[mapping.visits.variable].map(_text)
    subject = records[names.subject].map(_text)
    period = _period_of(records, names.period).map(_text)
    keys = pd.Series(list(zip(subject, visit, period, strict=True)), index=records.index)
    problems = []
    for code in sorted(parameter[~parameter.isin(scale_of)].dropna().unique()):
        near = [
            m for m in scale_of if m.casefold() == code.casefold()
        ] or difflib.get_close_matches(code, list(scale_of), n=1, cutoff=0.8)
        if not near:
            continue
        mapped = set(keys[parameter == near[0]])
        visits = set(mapping.visits.values)  # a visit the mapping reads; not screening
        slips = [
            i
            for i in records.index[parameter == code]
            if keys[i] not in mapped and visit[i] in visits
        ]
        if slips:
            first = records.loc[slips[0], WHERE]
            more = f" (and {len(slips) - 1} more records)" if len(slips) > 1 else ""
            problems.append(
                Problem(
                    names.parameter,
                    code,
                    f"{first}{more}: {names.parameter}={code!r} is not mapped, and that "
                    f"visit has no {near[0]!r} record (did you mean {near[0]!r}?): correct "
                    f"the code in {file}",
                )
            )
    return problems


def _variables(mapping: StudyMapping) -> list[str]:
    """Every variable name the mapping reads from the datasets."""
    names = mapping.adam
    found = [names.subject, names.parameter, names.value, *names.flags, "STUDYID"]
    found += [names.period] if names.period else []
    found += [mapping.visits.variable] if mapping.visits is not None else []
    found += list(mapping.periods.columns) if mapping.periods is not None else []
    found += list(mapping.keep)
    for spec in (mapping.diagnosis, *mapping.columns.values()):
        if not isinstance(spec, str):
            found.append(spec.column)
        elif spec is not mapping.diagnosis:
            found.append(spec)
    return found


def _as_mapped(frame: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """The dataset with its variables named as the mapping names them, where they differ in
    case only: SAS variable names are case-insensitive (``usubjid`` is ``USUBJID``), and
    some exports write them in lower case. A name the dataset has in two cases is left as
    it is."""
    by_upper = {name.upper(): name for name in reversed(wanted)}
    upper = [c.upper() if isinstance(c, str) else c for c in frame.columns]
    renames = {
        c: by_upper[u]
        for c, u in zip(frame.columns, upper, strict=True)
        if isinstance(c, str) and u in by_upper and c != by_upper[u] and upper.count(u) == 1
    }
    return frame.rename(columns=renames)


def _study_id(adsl: pd.DataFrame, path: Path) -> str:
    if "STUDYID" in adsl.columns:
        ids = {t for t in adsl["STUDYID"].map(_text) if t}
        if len(ids) == 1:
            return ids.pop()[:100]
    return path.stem
