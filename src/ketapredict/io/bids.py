"""BIDS datasets: ``participants.tsv`` and ``phenotype/*.tsv`` to patient courses.

BIDS keeps one row per participant in ``participants.tsv`` (with a ``participant_id`` such
as ``sub-01`` and a JSON sidecar describing the columns) and questionnaire and clinical
scores in ``phenotype/<measure>.tsv``, one row per participant and session (a
``session_id`` column such as ``ses-b0``). Files are tab-separated UTF-8 text, with ``n/a``
for a missing value (BIDS specification, "Tabular files" and "Phenotypic and assessment
data").
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd

from .._files import checked_path
from ..exceptions import Problem, ValidationError
from .courses import SUBJECT, WHERE, assemble, did_you_mean
from .mapping import StudyMapping, load_mapping

__all__ = ["read_bids"]

# A BIDS table larger than this is refused: a trial's participants and scores are far
# smaller, and the file is read into memory whole (as adam's _MAX_JSON_BYTES).
_MAX_TSV_BYTES = 512 * 2**20


def _file_problem(path: Path, root: Path, name: str) -> str | None:
    """Why ``path`` is not a file of the dataset to read (None if it is): it must be a
    regular file (a pipe would wait forever, a device never end), inside the dataset once
    links are followed (DataLad's links into ``.git/annex`` are), and at most
    :data:`_MAX_TSV_BYTES`."""
    try:
        inside = path.resolve().is_relative_to(root.resolve())
        info = path.stat()
    except OSError as error:
        return f"{name} cannot be read ({error.strerror or error})"
    if not inside:
        return f"{name} is a link to a file outside the dataset"
    if not stat.S_ISREG(info.st_mode):
        return f"{name} is not a regular file (a directory, a device or a pipe)"
    if info.st_size > _MAX_TSV_BYTES:
        return f"{name} is larger than {_MAX_TSV_BYTES // 2**20} MiB"
    return None


def _not_utf8(raw: bytes, error: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8, by line and column, and what it may be instead."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "it is UTF-16, as spreadsheet programs save 'Unicode text': save it as UTF-8"
    line = raw.count(b"\n", 0, error.start) + 1
    column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
    return (
        f"{error.reason} at line {line}, byte {column} of the line: perhaps Latin-1 or "
        "Windows-1252; save it as UTF-8"
    )


def _read_tsv(path: Path, root: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """A BIDS TSV file as text cells, with ``where`` (file and line) for messages."""
    name = path.relative_to(root).as_posix()
    problem = _file_problem(path, root, name)
    if problem is not None:
        raise ValidationError([Problem(None, name, problem)], f"BIDS dataset at {str(root)!r}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(
            [Problem(None, name, f"{name} is not UTF-8 text ({_not_utf8(raw, error)})")],
            f"BIDS dataset at {str(root)!r}",
        ) from None
    if "\r" in text and "\n" not in text:
        raise ValidationError(
            [
                Problem(
                    None,
                    name,
                    f"{name} ends its lines with carriage returns alone (old Mac text); BIDS "
                    "tables end them with line feeds: save it again as such",
                )
            ],
            f"BIDS dataset at {str(root)!r}",
        )
    # rows end at a line feed (with or without a carriage return) and nowhere else (a
    # U+2028 in a notes cell is text); blank lines are skipped but keep their numbers
    numbered = [
        (number, line.removesuffix("\r"))
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    ]
    lines = [line for _, line in numbered]
    if not lines:
        raise ValidationError(
            [Problem(None, name, f"{name} is empty; BIDS tabular files start with a header row")],
            f"BIDS dataset at {str(root)!r}",
        )
    header = lines[0].split("\t")
    commas = (
        "; it has no tab: BIDS tables are tab-separated, and this one looks comma-separated"
        if len(header) == 1 and "," in header[0]
        else ""
    )
    problems = [
        Problem(c, None, f"{name} has no {c!r} column (its header: {', '.join(header)}){commas}")
        for c in required
        if c not in header
    ]
    if commas and not problems:  # a phenotype file, which requires no column by name
        problems.append(Problem(None, name, f"{name}: {commas.removeprefix('; ')}"))
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        problems.append(
            Problem(
                None,
                name,
                f"{name} repeats a column name in its header ({', '.join(map(repr, repeated))})",
            )
        )
    for reserved in (SUBJECT, WHERE):
        if reserved in header:
            problems.append(Problem(reserved, name, f"{name}: column {reserved!r} is reserved"))
    cells = [line.split("\t") for line in lines[1:]]
    numbers = [number for number, _ in numbered[1:]]
    for number, row in zip(numbers, cells, strict=True):
        if len(row) != len(header):
            problems.append(
                Problem(
                    None,
                    name,
                    f"{name} line {number} has {len(row)} cell{'s' * (len(row) != 1)}; the "
                    f"header has {len(header)}",
                )
            )
    if problems:
        raise ValidationError(problems, f"BIDS dataset at {str(root)!r}")
    frame = pd.DataFrame(cells, columns=header, dtype=object)
    frame[WHERE] = [f"{name} line {n}" for n in numbers]
    return frame


def _trial_id(mapping: StudyMapping, root: Path) -> str:
    if mapping.trial_id:
        return mapping.trial_id
    description = root / "dataset_description.json"
    if description.is_file():
        try:
            name = json.loads(description.read_text(encoding="utf-8")).get("Name")
        except (ValueError, AttributeError, UnicodeDecodeError):
            name = None
        if isinstance(name, str) and name.strip():
            return name.strip()[:100]
    return root.resolve().name


def read_bids(path: str | Path | None, mapping: str | Path | StudyMapping) -> pd.DataFrame:
    """Read a BIDS dataset's participants and phenotype files into patient courses.

    One row per participant and period (arm): the mapped baseline columns, the baseline
    scores, each follow-up score as a visit column (``madrs_d2``...), the arm's regimen and
    ``endpoint_day``, and ``response`` and ``remission`` derived at that day exactly as in the
    virtual cohort (missing when the MADRS of that day is: never carried forward). Crossover
    courses carry their ``period``.

    Parameters
    ----------
    path : str, path-like or None
        The dataset's root (holding ``participants.tsv`` and ``phenotype/``). None: the
        mapping's ``path``, else the mapping file's directory.
    mapping : str, path-like or StudyMapping
        A mapping file (``format = "bids"``, see :func:`ketapredict.io.load_mapping`).

    Returns
    -------
    DataFrame
        A table validated against the data contract; ``table.attrs["ingest"]`` holds the
        summary (participants, who was left out and why, courses per arm, visits available).

    Raises
    ------
    ValidationError
        Listing every problem at once: unknown sessions, arm codes or values, duplicate
        participant-sessions, participants without a baseline or without phenotype rows,
        scores that are not numbers, and any value outside the contract.

    Examples
    --------
    >>> import ketapredict
    >>> from ketapredict.io import example_study
    >>> table = ketapredict.read_bids(None, example_study("bids") / "mapping.toml")
    >>> table[["arm", "period"]].value_counts().sort_index().tolist()
    [13, 12, 12, 13]
    >>> table.attrs["ingest"]["dropped"]
    {'group = HV, not mapped': 2}
    """
    if not isinstance(mapping, StudyMapping):
        mapping = load_mapping(mapping)
    if mapping.format != "bids":
        raise ValidationError(
            [Problem("format", mapping.format, "read_bids needs a mapping with format = 'bids'")],
            "mapping file",
        )
    root = (
        checked_path(path, "path", "the BIDS dataset's folder")
        if path is not None
        else mapping.resolve(mapping.path or ".")
    )
    what = f"BIDS dataset at {str(root)!r}"
    participants_file = root / "participants.tsv"
    if not participants_file.exists():
        # say what the path is: a dataset is a directory (a misspelled one, or the
        # participants file itself given, read as "no participants.tsv" alone)
        if not root.exists():
            fault = f"{str(root)!r} does not exist; a BIDS dataset is a directory"
        elif not root.is_dir():
            fault = (
                f"{str(root)!r} is a file, not a directory; give the dataset's directory "
                "(the one holding participants.tsv)"
            )
        else:
            fault = f"no participants.tsv in {str(root)!r}"
        raise ValidationError([Problem(None, str(root), fault)], what)
    subjects = _read_tsv(participants_file, root, ("participant_id",))
    subjects = subjects.rename(columns={"participant_id": SUBJECT})

    phenotype = sorted((root / "phenotype").glob("*.tsv"))
    problems = []
    if not phenotype:
        problems.append(Problem(None, str(root), f"no phenotype/*.tsv files in {str(root)!r}"))
    records, found = [], set()
    headers: list[str] = []  # every phenotype column, for a "did you mean"
    for file in phenotype:
        table = _read_tsv(file, root, ())
        headers += [c for c in table.columns if c != WHERE]
        scales = {s: c for s, c in mapping.scores.items() if c in table.columns}
        if not scales:
            continue
        found.update(scales)  # its scales' column is there, whatever else is wrong
        for c in ("participant_id", "session_id"):
            if c not in table.columns:
                columns = [name for name in table.columns if name != WHERE]
                problems.append(
                    Problem(
                        c,
                        None,
                        f"{file.relative_to(root).as_posix()} holds scores but no {c!r} column"
                        " (the name BIDS gives it; a mapping cannot rename it)"
                        + did_you_mean(c, columns),
                    )
                )
        if "session_id" not in table.columns or "participant_id" not in table.columns:
            continue
        for scale, source in scales.items():
            found.add(scale)
            records.append(
                pd.DataFrame(
                    {
                        "subject": table["participant_id"],
                        "label": table["session_id"].str.strip(),
                        "scale": scale,
                        "value": table[source],
                        "period": None,
                        "where": table[WHERE],
                    }
                )
            )
    for scale, source in mapping.scores.items():
        if scale not in found and phenotype:
            others = set(mapping.scores.values())  # another scale's column is no typo
            hint = did_you_mean(source, [c for c in dict.fromkeys(headers) if c not in others])
            problems.append(
                Problem(
                    f"scores.{scale}",
                    source,
                    f"no phenotype file has a {source!r} column (scores.{scale}){hint}",
                )
            )
    if problems:
        raise ValidationError(problems, what)
    records = pd.concat(records, ignore_index=True)
    return assemble(
        mapping,
        subjects,
        records,
        trial_id=_trial_id(mapping, root),
        source=str(root),
        subject_file="participants.tsv",
        record_files="phenotype/",
    )
