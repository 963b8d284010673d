"""Model directories as untrusted input: reading, checking and signing their files.

A saved :class:`~ketapredict.RiskModel` travels between machines, shares and registries, so
loading one treats its directory like any other input from elsewhere:

- **names**: the only files opened are the model's own (``manifest.json``, and per outcome
  ``<outcome>.json``, ``<outcome>.ubj``, ``<outcome>.trees.json``, plus ``model_card.md``
  and ``manifest.sig``), named by the loader, never by a file; a name a file gives must be
  one of them. Nothing outside the directory can be reached, and a refused name gets the
  same message whether or not such a file exists.
- **files**: each is opened without following a symbolic link, must be a regular file (not
  a FIFO or a device, which could block or never end), is read once and whole, up to a size
  limit, at load, and is checked against its sha256 in the manifest. Nothing is read from
  the directory afterwards, so a file swapped after loading is never used.
- **shapes**: the manifest has a strict schema, and every field of it is covered by
  ``content_sha256``; a malformed shape is a :class:`~ketapredict.ModelFileError`.
- **authenticity**: checksums catch accidents (a truncated copy, a changed file), not
  edits: whoever can write the directory can also recompute them. A detached Ed25519
  signature (``manifest.sig``, over the bytes of ``manifest.json``, which name every file's
  sha256) can only be made with the private key, so a model loaded with the matching public
  key is the one the key's holder saved, unchanged. A signature says who released a model,
  not that the model is good, and it cannot help if the private key leaks.

Structural checks of what the files contain (trees, calibrators, reference statistics) sit
beside the readers of each part: :meth:`ketapredict.trees.TreeEnsemble.from_dict`,
:func:`check_calibrator` and :func:`check_reference`. A booster file is decoded in Python
(:func:`read_ubjson`, :func:`booster_json`): XGBoost's own reader trusts its input, and
only ever reads the JSON of what was decoded and checked.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic import ValidationError as PydanticError

from ._files import not_a_path
from ._json import unique_keys
from .exceptions import ModelFileError, Problem, ValidationError, one_line, short_repr

__all__ = [
    "MANIFEST",
    "SIGNATURE",
    "ModelFiles",
    "check_calibrator",
    "check_reference",
    "content_digest",
    "generate_keys",
    "read_model_files",
    "sign",
]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# Size limits of a model directory: of the manifest, of each other file and of all of
# them. The demo model's largest file is under 1 MB and a model trained on 100,000 patients
# under 10 MB, so the limits are generous for real models. They bound memory too: parsed
# JSON takes up to 25 times its bytes (a file of empty lists), so the 512 MiB a file could
# once hold came to about 12 GB. RiskModel.save refuses a model beyond them, so that
# nothing is saved that would not load.
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_FILE_BYTES = 64 * 2**20
MAX_MODEL_BYTES = 128 * 2**20

_Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_Text = Annotated[str, StringConstraints(max_length=200)]


# Provenance fields printed in every report, and their longest allowed text.
# The provenance as JSON, at most: every report copies it, so a 15 MB one made each report
# take a second (the demo model's is 3 kB; a recalibration record adds about 1 kB).
MAX_PROVENANCE_BYTES = 65_536
_SHOWN = {"name": 200, "ketapredict_version": 200, "trained": 200, "data_kind": 200,
          "notes": 2000}  # fmt: skip


def _non_finite(value: Any, key: str = "") -> Iterator[str]:
    """The keys (``metrics.response.auc``) of the non-finite numbers in a JSON-like value."""
    if isinstance(value, float) and not math.isfinite(value):
        yield key
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _non_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _non_finite(v, f"{key}[{i}]")


# Provenance is free-form JSON; deeper than this is not a record of where a model came from
# (and a report's to_dict() copies it recursively).
_PROVENANCE_DEPTH = 32


def _too_deep(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (without recursion: the JSON
    reader allows nesting near Python's recursion limit)."""
    level, current = 0, [value]
    while current:
        current = [
            child
            for item in current
            if isinstance(item, Mapping | list | tuple)
            for child in (item.values() if isinstance(item, Mapping) else item)
        ]
        level += 1
        if current and level > limit:
            return True
    return False


def _listed(error: PydanticError, shown: int = 3) -> str:
    """A pydantic error's problems on one line: the first ``shown``, each with its field,
    and how many more (every fault named at once, so a sender fixes them in one round)."""
    problems = error.errors()
    text = "; ".join(
        f"field {'.'.join(map(str, problem['loc']))[:80]!r}: {problem['msg']}"
        for problem in problems[:shown]
    )
    more = len(problems) - shown
    return text + (f"; and {more} more problem{'s' if more > 1 else ''}" if more > 0 else "")


def provenance_problems(provenance: Mapping[str, Any]) -> list[str]:
    """What is wrong with the provenance: a field every report prints (:data:`_SHOWN`) that
    is not readable text (reports print it on one line:
    :func:`~ketapredict.exceptions.one_line`), a number that is not finite (JSON has no
    NaN, and a report's ``to_dict()`` must stay JSON), nesting deeper than 32 levels, or
    more than :data:`MAX_PROVENANCE_BYTES` of JSON."""
    if _too_deep(provenance, _PROVENANCE_DEPTH):
        return [f"provenance nests deeper than {_PROVENANCE_DEPTH} levels"]
    size = len(json.dumps(provenance, default=str).encode())
    if size > MAX_PROVENANCE_BYTES:
        return [
            f"provenance takes {size:,} bytes as JSON, over the limit of "
            f"{MAX_PROVENANCE_BYTES:,} (every report carries a copy of it)"
        ]
    return [
        f"provenance {key} is not a finite number (NaN or infinite); leave it out"
        for key in _non_finite(dict(provenance))
    ] + [
        f"provenance {key} must be text of at most {limit:,} characters; got "
        + (
            f"{len(value):,} characters"
            if isinstance(value, str)
            else f"a value of type {type(value).__name__}"
        )
        for key, limit in _SHOWN.items()
        if (value := provenance.get(key)) is not None
        and (not isinstance(value, str) or len(value) > limit)
    ]


class _Manifest(BaseModel):
    """``manifest.json``: strict (no unknown fields, no coercion)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["ketapredict-risk-model"]
    format_version: int
    ketapredict_version: _Text
    saved: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    outcomes: Annotated[list[_Text], Field(min_length=1, max_length=64)]
    provenance: dict[str, Any]
    reference: dict[str, Any]
    files: dict[_Text, _Hex]
    content_sha256: _Hex

    @field_validator("provenance")
    @classmethod
    def _shown_in_every_report(cls, provenance: dict[str, Any]) -> dict[str, Any]:
        """The provenance fields every report prints are text of a readable length (a
        1 MB name would be printed into each report)."""
        problems = provenance_problems(provenance)
        if problems:
            raise ValueError("; ".join(problems))
        return provenance


@dataclass(frozen=True)
class ModelFiles:
    """A model directory as read: its manifest and the verified bytes of its files."""

    path: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    files: dict[str, bytes]

    def json(self, name: str) -> Any:
        """A verified JSON file, parsed (ModelFileError if it is not JSON)."""
        return _parse_json(self.files[name], f"{name} of {_where(self.path)}")

    def text(self, name: str) -> str:
        try:
            return self.files[name].decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(f"{_where(self.path)}: {name} is not UTF-8 text") from None


def content_digest(manifest: Mapping[str, Any]) -> str:
    """The sha256 of every field of a manifest but ``content_sha256`` itself."""
    content = {k: v for k, v in manifest.items() if k != "content_sha256"}
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def size_problem(path: Path, names: Sequence[str]) -> str | None:
    """Why the written files ``names`` in ``path`` would not load for their size (None if
    they would): one over :data:`MAX_FILE_BYTES`, or all over :data:`MAX_MODEL_BYTES`."""
    sizes = {name: (path / name).stat().st_size for name in names}
    large = [f"{name} ({size:,} bytes)" for name, size in sizes.items() if size > MAX_FILE_BYTES]
    if large:
        return f"{', '.join(large)} over the limit of {MAX_FILE_BYTES:,} bytes a file"
    if sum(sizes.values()) > MAX_MODEL_BYTES:
        return f"{sum(sizes.values()):,} bytes in all, over the limit of {MAX_MODEL_BYTES:,}"
    return None


def model_file_names(outcomes: Sequence[str]) -> list[str]:
    """The files a model of these outcomes has, besides the manifest and its signature."""
    return [f"{o}{kind}" for o in outcomes for kind in (".json", ".ubj", ".trees.json")]


def read_model_files(
    path: str | Path,
    *,
    format_version: int | Sequence[int],
    outcomes_allowed: Sequence[str],
    optional: Sequence[str] = (),
    public_key: Any = None,
) -> ModelFiles:
    """Read and verify a model directory (see the module's description).

    Parameters
    ----------
    path : str or path-like
        The model directory.
    format_version : int or sequence of int
        The versions of the layout this ketapredict reads.
    outcomes_allowed : sequence of str
        The outcomes a manifest may name (the data contract's).
    optional : sequence of str
        Files a model may have besides its outcomes' (``model_card.md``).
    public_key : optional
        An Ed25519 public key (see :func:`sign`); when given, ``manifest.sig`` must be its
        signature of ``manifest.json``.

    Raises
    ------
    ModelFileError
        Naming the file and the problem.
    """
    if not isinstance(path, str | os.PathLike):
        raise ModelFileError(
            f"no ketapredict model: the path must be text or a path; got {type(path).__name__}"
        )
    path = Path(path)
    where = _where(path)
    # os.path: False for a name the system refuses (too long, a NUL), where pathlib raises
    if not os.path.isdir(path):
        raise ModelFileError(f"no {where}: it is not a directory")
    raw = _read(path, MANIFEST, MAX_MANIFEST_BYTES, where)
    if raw is None:
        raise ModelFileError(f"no {where}: {MANIFEST} is missing")
    manifest = _parse_json(raw, f"{MANIFEST} of {where}")
    if not isinstance(manifest, dict):
        raise ModelFileError(
            f"{where}: {MANIFEST} holds a {type(manifest).__name__}, expected an object"
        )
    if manifest.get("format") != "ketapredict-risk-model":
        raise ModelFileError(
            f"{where}: manifest format is {str(manifest.get('format'))[:60]!r}, "
            "expected 'ketapredict-risk-model'"
        )
    versions = [format_version] if isinstance(format_version, int) else list(format_version)
    if manifest.get("format_version") not in versions or isinstance(
        manifest.get("format_version"), bool
    ):
        readable = " or ".join(map(str, versions))
        raise ModelFileError(
            f"{where}: format version {str(manifest.get('format_version'))[:20]} is not "
            f"{readable}, the versions this ketapredict reads; saved by ketapredict "
            f"{str(manifest.get('ketapredict_version'))[:20]}"
        )
    try:
        _Manifest.model_validate(manifest)
    except PydanticError as error:
        raise ModelFileError(f"{where}: {MANIFEST} {_listed(error)}") from None
    if public_key is not None:
        _verify(path, raw, public_key, where)
    if manifest["content_sha256"] != content_digest(manifest):
        raise ModelFileError(
            f"{where}: {MANIFEST} was changed after the model was saved (its fields no longer "
            "match content_sha256), so it is refused"
        )
    outcomes = manifest["outcomes"]
    if len(set(outcomes)) != len(outcomes) or not set(outcomes) <= set(outcomes_allowed):
        raise ModelFileError(
            f"{where}: manifest outcomes {outcomes} are not distinct outcomes of the data "
            f"contract ({', '.join(outcomes_allowed)})"
        )
    # only the files a model has, by their own names: no listed name reaches outside the
    # directory (``../``, an absolute path), and the message is the same for every such name
    needed = set(model_file_names(outcomes))
    listed = set(manifest["files"])
    unknown = sorted(listed - needed - set(optional))
    if unknown:
        raise ModelFileError(
            f"{where}: the manifest lists files a model does not have: "
            f"{[name[:60] for name in unknown[:5]]}; expected only "
            f"{sorted(needed | set(optional))}"
        )
    if not needed <= listed:
        raise ModelFileError(
            f"{where}: the manifest does not list every model file "
            f"(missing {sorted(needed - listed)})"
        )
    files, total = {}, 0
    for name in sorted(listed):
        data = _read(path, name, MAX_FILE_BYTES, where)
        total += 0 if data is None else len(data)
        if total > MAX_MODEL_BYTES:
            raise ModelFileError(
                f"{where}: its files hold over {MAX_MODEL_BYTES:,} bytes together, the limit "
                "of a model"
            )
        # one message for missing, not a regular file and changed
        if data is None or hashlib.sha256(data).hexdigest() != manifest["files"][name]:
            raise ModelFileError(
                f"{where}: {name} is not the file saved with the model (missing, not a "
                f"regular file, or changed since: its sha256 differs from {MANIFEST}'s), "
                "so the model is refused"
            )
        files[name] = data
    return ModelFiles(path=path, manifest=manifest, manifest_bytes=raw, files=files)


def _where(path: Path) -> str:
    return f"ketapredict model at {str(path)[:200]!r}"


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _parse_json(data: bytes, what: str) -> Any:
    """A model file's JSON: strict JSON, so without NaN or Infinity (Python writes them,
    JSON has none, and a report's ``to_dict()`` must stay valid JSON), and without a key
    given twice in one object."""
    try:
        return json.loads(data, parse_constant=_not_json, object_pairs_hook=unique_keys)
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise ModelFileError(f"{what}: not valid JSON ({str(error)[:100]})") from None
    except RecursionError:
        raise ModelFileError(f"{what}: nested too deeply to be a model file") from None


def _read(path: Path, name: str, limit: int, where: str) -> bytes | None:
    """A regular file's bytes, without following a symbolic link; None if there is no such
    regular file. Raises ModelFileError if it is larger than ``limit``."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    file = path / name
    if not hasattr(os, "O_NOFOLLOW") and file.is_symlink():  # pragma: no cover (Windows)
        return None
    try:
        descriptor = os.open(file, flags)
    except OSError:  # missing, a link (ELOOP), unreadable
        return None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):  # a directory, FIFO or device
        os.close(descriptor)
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if info.st_size > limit:
            raise ModelFileError(
                f"{where}: {name} is {info.st_size:,} bytes, over the limit of {limit:,}"
            )
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ModelFileError(f"{where}: {name} is over the limit of {limit:,} bytes")
    return data


# -- XGBoost's binary format (UBJSON), read in Python -------------------------------------------
# XGBoost's own reader of its binary model format trusts its input: on this machine a
# truncated copy of a saved booster crashed the interpreter (segmentation fault) and an empty
# file aborted it, where an exception was due. So a booster file is decoded here, with every
# length checked against the bytes left, and XGBoost only ever parses the JSON re-encoded
# from what was decoded and checked (ketapredict.risk). The format: Universal Binary JSON
# (ubjson.org, draft 12), big-endian, as XGBoost writes it.
_UBJ_NUMBERS = {
    b"i": np.dtype(">i1"),
    b"U": np.dtype(">u1"),
    b"I": np.dtype(">i2"),
    b"l": np.dtype(">i4"),
    b"L": np.dtype(">i8"),
    b"d": np.dtype(">f4"),
    b"D": np.dtype(">f8"),
}
_UBJ_CONSTANTS = {b"Z": None, b"T": True, b"F": False}
_UBJ_MAX_DEPTH = 64
# Values outside typed arrays a booster may hold: each tree has about 25, so the demo
# model's largest booster 1,874 and 1,000 rounds about 25,000. Decoding takes about 1.6
# microseconds a value on the development machine: a bound on a hostile file's time.
_UBJ_MAX_ITEMS = 1_000_000


def read_ubjson(data: bytes, what: str) -> Any:
    """Decode a UBJSON document (an XGBoost ``.ubj`` booster file) into Python objects:
    objects as dicts, typed numeric arrays as numpy arrays, other arrays as lists.

    Every count and length is checked against the bytes that remain, typed containers must
    be arrays of numbers (all XGBoost writes), nesting is limited to 64 levels and values
    outside typed arrays to a million, and the document must use every byte: anything else
    is a :class:`~ketapredict.ModelFileError` naming ``what``.

    Examples
    --------
    >>> read_ubjson(b"{L\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01aU\\x07}", "x")
    {'a': 7}
    >>> read_ubjson(b"{", "a booster")
    Traceback (most recent call last):
    ...
    ketapredict.exceptions.ModelFileError: a booster: not a complete UBJSON document ...
    """
    view = memoryview(data)
    position = items = 0

    def fail(reason: str) -> ModelFileError:
        return ModelFileError(f"{what}: {reason}")

    def take(n: int) -> memoryview:
        nonlocal position
        if n < 0 or position + n > len(view):
            raise fail(f"not a complete UBJSON document (ends at byte {len(view)})")
        chunk = view[position : position + n]
        position += n
        return chunk

    def number(marker: bytes) -> Any:
        dtype = _UBJ_NUMBERS[marker]
        value = np.frombuffer(take(dtype.itemsize), dtype=dtype)[0]
        return int(value) if dtype.kind in "iu" else float(value)

    def length() -> int:
        marker = bytes(take(1))
        if marker not in _UBJ_NUMBERS or _UBJ_NUMBERS[marker].kind not in "iu":
            raise fail(f"a length has the marker {marker!r}, not an integer's")
        n = number(marker)
        if n < 0 or n > len(view) - position:
            raise fail(f"a length of {n} is more than the {len(view) - position} bytes left")
        return n

    def text() -> str:
        try:
            return bytes(take(length())).decode("utf-8")
        except UnicodeDecodeError:
            raise fail("a string is not UTF-8") from None

    def value(marker: bytes, depth: int) -> Any:
        if marker in _UBJ_NUMBERS:
            return number(marker)
        if marker in _UBJ_CONSTANTS:
            return _UBJ_CONSTANTS[marker]
        if marker == b"S":
            return text()
        if marker == b"C":
            return bytes(take(1)).decode("latin-1")
        if marker in (b"[", b"{"):
            if depth >= _UBJ_MAX_DEPTH:
                raise fail(f"nested more than {_UBJ_MAX_DEPTH} levels")
            return container(marker == b"{", depth + 1)
        raise fail(f"unknown UBJSON marker {marker!r} at byte {position - 1}")

    def container(is_object: bool, depth: int) -> Any:
        nonlocal items
        if bytes(view[position : position + 1]) == b"$":
            # XGBoost writes typed containers only as arrays of numbers; typed constants
            # (items of no bytes) could claim any count, typed objects it never writes
            take(1)
            typed = bytes(take(1))
            if is_object or typed not in _UBJ_NUMBERS:
                kind = "object" if is_object else "array"
                raise fail(f"a typed {kind} of {typed!r} values, which XGBoost does not write")
            if bytes(take(1)) != b"#":
                raise fail("a typed array without a count")
            marker = bytes(take(1))
            if marker not in _UBJ_NUMBERS or _UBJ_NUMBERS[marker].kind not in "iu":
                raise fail(f"a count has the marker {marker!r}, not an integer's")
            count, dtype = number(marker), _UBJ_NUMBERS[typed]
            if count < 0 or count * dtype.itemsize > len(view) - position:
                raise fail(f"a count of {count} is more than the bytes left")
            return np.frombuffer(take(count * dtype.itemsize), dtype=dtype).astype(
                dtype.newbyteorder("=")
            )
        count = None
        if bytes(view[position : position + 1]) == b"#":
            take(1)
            count = length()  # each item takes at least a byte
        out: Any = {} if is_object else []
        k = 0
        while True:
            if count is not None:
                if k == count:
                    return out
            elif bytes(view[position : position + 1]) == (b"}" if is_object else b"]"):
                take(1)
                return out
            items += 1
            if items > _UBJ_MAX_ITEMS:
                raise fail(f"more than {_UBJ_MAX_ITEMS:,} values outside typed arrays")
            key = text() if is_object else None
            item = value(bytes(take(1)), depth)
            if is_object:
                out[key] = item
            else:
                out.append(item)
            k += 1

    document = value(bytes(take(1)), 0)
    if position != len(view):
        raise fail(f"{len(view) - position} bytes after the end of the document")
    return document


def booster_json(data: bytes, n_features: int, what: str) -> tuple[dict[str, Any], bytes]:
    """A booster file (XGBoost's UBJSON) decoded by :func:`read_ubjson` and checked to be
    what :class:`~ketapredict.OutcomeModel` saves: one binary-logistic gradient-boosted
    tree ensemble over ``n_features`` features, numerical splits only, every tree's arrays
    as long as its node count, its children and parents pointing within it. Returns the
    decoded document and its JSON, which is what XGBoost is given
    (:class:`~ketapredict.ModelFileError` naming ``what`` if anything is off; the trees
    themselves are compared with the scoring trees by the loader)."""
    document = read_ubjson(data, what)

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value.tolist() if isinstance(value, np.ndarray) else value

    try:
        _check_booster(document, n_features)
        text = json.dumps(plain(document), allow_nan=False).encode()  # NaN anywhere: refused
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        reason = error.args[0] if isinstance(error, ValueError) and error.args else repr(error)
        raise ModelFileError(
            f"{what}: not a booster ketapredict saved ({str(reason)[:160]})"
        ) from None
    return document, text


_TREE_ARRAYS = (
    "left_children",
    "right_children",
    "parents",
    "split_indices",
    "split_conditions",
    "default_left",
    "base_weights",
    "loss_changes",
    "sum_hessian",
    "split_type",
)
_TREE_CATEGORIES = ("categories", "categories_nodes", "categories_segments", "categories_sizes")
_ROOT_PARENT = 2147483647  # XGBoost's "no parent"


# The attributes XGBClassifier saves, and nothing else.
_ATTRIBUTES = {"scikit_learn": '{"_estimator_type": "classifier"}'}


def _count(text: Any) -> int:
    """A count XGBoost writes as text: ASCII digits only (Python's int() also reads "0_7"
    and other scripts' digits, which XGBoost does not)."""
    if not isinstance(text, str) or re.fullmatch(r"[0-9]{1,9}", text) is None:
        raise ValueError(f"{str(text)[:20]!r} is not a count")
    return int(text)


def _check_booster(document: Any, n_features: int) -> None:
    """ValueError (or KeyError, TypeError) unless ``document`` is a booster as
    :func:`booster_json` describes."""

    def keys(value: Any, expected: set[str], where: str) -> None:
        if not isinstance(value, dict) or set(value) != expected:
            found = sorted(value)[:8] if isinstance(value, dict) else type(value).__name__
            raise ValueError(f"{where}: expected the fields {sorted(expected)}, found {found}")

    def array(value: Any, n: int, where: str) -> np.ndarray:
        if not isinstance(value, np.ndarray) or value.shape != (n,):
            raise ValueError(f"{where}: expected {n} numbers")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{where}: not every number is finite")
        return value

    keys(document, {"learner", "version"}, "the document")
    learner = document["learner"]
    keys(
        learner,
        {"attributes", "feature_names", "feature_types", "gradient_booster",
         "learner_model_param", "objective"},
        "learner",
    )  # fmt: skip
    if learner["objective"].get("name") != "binary:logistic":
        raise ValueError(f"objective {str(learner['objective'].get('name'))[:40]!r}")
    params = learner["learner_model_param"]
    if (params["num_feature"], params["num_class"], params["num_target"]) != (
        str(n_features),
        "0",
        "1",
    ):
        raise ValueError(f"learner_model_param {str(params)[:120]}")
    base = float(str(params["base_score"]).strip("[]"))
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"base_score {base}")
    # OutcomeModel fits XGBoost on arrays: no feature names or types; and the only
    # attribute is scikit-learn's estimator type (another, such as best_iteration, would
    # change what XGBClassifier.predict scores)
    if learner["feature_names"] != [] or learner["feature_types"] != []:
        raise ValueError("feature_names and feature_types: expected none")
    if learner["attributes"] != _ATTRIBUTES:
        raise ValueError(f"attributes {str(learner['attributes'])[:80]}: expected {_ATTRIBUTES}")
    booster = learner["gradient_booster"]
    keys(booster, {"model", "name"}, "gradient_booster")
    if booster["name"] != "gbtree":
        raise ValueError(f"gradient_booster {str(booster['name'])[:40]!r}, not gbtree")
    model = booster["model"]
    keys(model, {"cats", "gbtree_model_param", "iteration_indptr", "tree_info", "trees"}, "model")
    trees = model["trees"]
    if not isinstance(trees, list) or not trees:
        raise ValueError("trees: expected a list of trees")
    n_trees = len(trees)
    if model["gbtree_model_param"] != {"num_parallel_tree": "1", "num_trees": str(n_trees)}:
        raise ValueError(f"gbtree_model_param {str(model['gbtree_model_param'])[:80]}")
    if (array(np.asarray(model["tree_info"]), n_trees, "tree_info") != 0).any():
        raise ValueError("tree_info: every tree is of class 0")
    indptr = np.asarray(model["iteration_indptr"])
    if indptr.shape != (n_trees + 1,) or (indptr != np.arange(n_trees + 1)).any():
        raise ValueError("iteration_indptr: expected one tree per round")
    cats = model["cats"]
    keys(cats, {"enc", "feature_segments", "sorted_idx"}, "cats")
    if any(len(v) for v in cats.values()):
        raise ValueError("cats: categorical features are not used")
    for k, tree in enumerate(trees):
        where = f"tree {k}"
        keys(tree, {*_TREE_ARRAYS, *_TREE_CATEGORIES, "id", "tree_param"}, where)
        keys(
            tree["tree_param"],
            {"num_deleted", "num_feature", "num_nodes", "size_leaf_vector"},
            f"{where} tree_param",
        )
        n = _count(tree["tree_param"]["num_nodes"])
        if (
            tree["id"] != k
            or not 1 <= n <= 1_000_000
            or tree["tree_param"]["num_feature"] != str(n_features)
            or (tree["tree_param"]["num_deleted"], tree["tree_param"]["size_leaf_vector"])
            != ("0", "1")
        ):
            raise ValueError(f"{where}: tree_param {str(tree['tree_param'])[:100]}")
        left, right, parents, feature = (
            array(tree[name], n, f"{where} {name}").astype(np.int64)
            for name in ("left_children", "right_children", "parents", "split_indices")
        )
        for name in ("split_conditions", "default_left", "base_weights", "loss_changes",
                     "sum_hessian", "split_type"):  # fmt: skip
            array(tree[name], n, f"{where} {name}")
        if (tree["split_type"] != 0).any() or any(len(tree[c]) for c in _TREE_CATEGORIES):
            raise ValueError(f"{where}: categorical splits are not used")
        leaf = left == -1
        split = np.flatnonzero(~leaf)
        children = np.concatenate([left[split], right[split]])
        if (
            (right[leaf] != -1).any()
            or ((children < 1) | (children >= n)).any()
            or len(np.unique(children)) != len(children)
            or len(children) != n - 1
            or ((feature[split] < 0) | (feature[split] >= n_features)).any()
            or parents[0] != _ROOT_PARENT
            or (parents[left[split]] != split).any()
            or (parents[right[split]] != split).any()
        ):
            raise ValueError(f"{where}: its nodes do not form a tree")


# -- structural checks ------------------------------------------------------------------------
_Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Sigmoid(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    method: Literal["sigmoid"]
    a: _Finite
    b: _Finite


class _Isotonic(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    method: Literal["isotonic"]
    margins: Annotated[list[_Finite], Field(min_length=1, max_length=1_000_000)]
    probabilities: Annotated[
        list[Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]],
        Field(min_length=1, max_length=1_000_000),
    ]


class _Uncalibrated(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    method: Literal["none"]


_CALIBRATORS = {"sigmoid": _Sigmoid, "isotonic": _Isotonic, "none": _Uncalibrated}


def check_calibrator(calibrator: Any) -> dict[str, Any]:
    """A saved calibrator, checked: a known method with finite parameters; an isotonic
    one with increasing margins and probabilities in [0, 1]. ValueError if not."""
    method = calibrator.get("method") if isinstance(calibrator, dict) else None
    if method not in _CALIBRATORS:
        raise ValueError(
            f"calibrator method {str(method)[:40]!r} is not one of {sorted(_CALIBRATORS)}"
        )
    try:
        # as floats: a JSON integer is a valid number, but one beyond int64 is not a float
        # to numpy (a whole number of 10**20 would fail at scoring, not here)
        checked = _CALIBRATORS[method].model_validate(calibrator).model_dump()
    except PydanticError as error:
        raise ValueError(f"calibrator {_listed(error)}") from None
    if method == "isotonic":
        margins = np.asarray(calibrator["margins"])
        if len(margins) != len(calibrator["probabilities"]) or (np.diff(margins) < 0).any():
            raise ValueError("isotonic calibrator: margins must increase, one per probability")
    return checked


_REFERENCE_KEYS = {
    "features",
    "continuous",
    "low",
    "high",
    "mean",
    "sd",
    "covariance",
    "joint_threshold",
    "seen_categories",
    "binary",
}


# The kinds of course a model keeps as trained on (ketapredict.regimen.schedule_kinds): the
# contract's drugs by its routes are a few dozen, by one session or repeated, with or without
# a new antidepressant, and by three diagnoses; a file listing more was not written by
# ketapredict, nor one whose texts are longer than the longest such text.
_KINDS = {
    "drug_routes": (200, 60, "'ketamine iv'"),
    "schedules": (1000, 120, "'ketamine iv, one session, without a new oral antidepressant'"),
    "diagnosis_schedules": (1000, 120, "'TRD: ketamine iv, one session'"),
}


def check_reference(reference: Any, feature_names: Sequence[str]) -> dict[str, Any]:
    """The training-distribution summary of a manifest, checked against the features it
    describes: names among ``feature_names``, finite ranges, positive spreads, and a
    positive definite covariance (its inverse measures how unusual a patient is).
    ValueError if not; an empty summary (no warnings) is allowed."""
    if reference == {}:
        return reference
    if not isinstance(reference, dict) or set(reference) - set(_KINDS) != _REFERENCE_KEYS:
        raise ValueError(
            f"reference: expected the fields {sorted(_REFERENCE_KEYS)} (and any of "
            f"{', '.join(_KINDS)})"
        )
    for key, (most, longest, example) in _KINDS.items():
        kinds = reference.get(key, [])
        if not (
            isinstance(kinds, list)
            and len(kinds) <= most
            and all(isinstance(k, str) and 0 < len(k) <= longest and _printable(k) for k in kinds)
        ):
            raise ValueError(
                f"reference {key}: expected at most {most} one-line texts such as {example}"
            )
    names = set(feature_names)
    for key in ("features", "continuous", "seen_categories", "binary"):
        value = reference[key]
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _printable(v) for v in value
        ):
            raise ValueError(f"reference {key}: expected a list of feature names")
    for key in ("continuous", "binary"):
        outside = sorted(set(reference[key]) - names)
        if outside:
            raise ValueError(f"reference {key}: {outside[:3]} are not features of the model")
    k = len(reference["continuous"])
    try:
        # numbers only (numpy would read the text "1" as 1.0, and scoring would then meet
        # the text), kept as the floats checked here
        vectors = {key: _numbers(reference[key]) for key in ("low", "high", "mean", "sd")}
        covariance = _numbers(reference["covariance"])
        threshold = reference["joint_threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError
        threshold = float(threshold)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("reference: its statistics are not numbers") from None
    for key, vector in vectors.items():
        if vector.shape != (k,) or not np.isfinite(vector).all():
            raise ValueError(f"reference {key}: expected {k} finite numbers")
    if (vectors["sd"] <= 0).any() or (vectors["low"] > vectors["high"]).any():
        raise ValueError("reference: every sd must be positive and every low at most high")
    if covariance.shape != (k, k) or not np.isfinite(covariance).all():
        raise ValueError(f"reference covariance: expected {k} x {k} finite numbers")
    if k and (not np.allclose(covariance, covariance.T) or np.linalg.eigvalsh(covariance)[0] <= 0):
        raise ValueError("reference covariance is not symmetric positive definite")
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"reference joint_threshold {threshold!r} is not a positive number")
    return {
        **reference,
        **{key: vector.tolist() for key, vector in vectors.items()},
        "covariance": covariance.tolist(),
        "joint_threshold": threshold,
    }


def _printable(text: str) -> bool:
    """Whether ``text`` prints as written: a warning quotes these texts, and a control
    character in one (a line break, an escape sequence) would let a model file write lines
    of its own into a report."""
    return one_line(text) == text


def _numbers(value: Any) -> np.ndarray:
    """A JSON array of numbers as floats (TypeError for text, true/false or anything else,
    at any depth)."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":  # text, bool, or mixed / ragged (object)
        raise TypeError("not numbers")
    return array.astype(float)


# -- signatures -------------------------------------------------------------------------------
def key_name_problem(name: Any) -> str | None:
    """Why ``name`` is no stem for key files, or None: it must be a plain file name (no
    directory: "../evil" wrote the keys outside the directory given; not starting with "."
    ("" wrote hidden .key and .pub files); on one line; at most 200 characters)."""
    if (
        not isinstance(name, str)
        or not name
        or name.startswith(".")
        or name != os.path.basename(name)
        or "\\" in name
        or one_line(name) != name
        or len(name) > 200
    ):
        return (
            f"name {short_repr(name)}: expected a plain file name (no directory, not "
            "starting with '.', on one line, at most 200 characters); the keys go in the "
            "directory given"
        )
    return None


def generate_keys(directory: str | Path, name: str = "ketapredict") -> tuple[Path, Path]:
    """Make an Ed25519 key pair for signing models: ``<name>.key`` and ``<name>.pub``.

    The private key (PEM, PKCS #8, unencrypted, readable by its owner only) signs models
    with ``RiskModel.save(path, signing_key=...)``; keep it where only the people who
    release models can read it. The public key (PEM) goes with the models to whoever loads
    them: ``load_model(path, public_key=...)``.

    Parameters
    ----------
    directory : str or path-like
        Where to write the two files (created if missing); existing keys are never
        overwritten.
    name : str, default="ketapredict"
        The files' stem.

    Returns
    -------
    (Path, Path)
        The private and the public key file.

    Raises
    ------
    FileExistsError
        If either file exists already.
    ValidationError
        If ``directory`` is no path or empty, or ``name`` is no plain file stem.

    Examples
    --------
    >>> import tempfile
    >>> from ketapredict import generate_keys
    >>> private, public = generate_keys(tempfile.mkdtemp())
    >>> public.read_text().splitlines()[0]
    '-----BEGIN PUBLIC KEY-----'
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    problems = []
    fault = not_a_path(directory, "the keys")
    if fault:
        problems.append(Problem("directory", None, fault))
    fault = key_name_problem(name)
    if fault:
        problems.append(Problem("name", None, fault))
    if problems:
        raise ValidationError(problems, "arguments")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_file, public_file = directory / f"{name}.key", directory / f"{name}.pub"
    for file in (private_file, public_file):
        if file.exists():
            raise FileExistsError(f"{str(file)!r} exists; keys are never overwritten")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # the private key is created readable by its owner only, never world-readable first
    descriptor = os.open(private_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private)
    public_file.write_bytes(public)
    return private_file, public_file


def sign(path: str | Path, signing_key: Any) -> Path:
    """Sign a saved model: write ``manifest.sig``, the Ed25519 signature of its
    ``manifest.json`` (which names every file's sha256). :meth:`RiskModel.save` calls it
    when given ``signing_key``.

    Parameters
    ----------
    path : str or path-like
        A model directory.
    signing_key : str, path-like, bytes or Ed25519PrivateKey
        The private key, its PEM file or its PEM bytes (:func:`generate_keys`).

    Returns
    -------
    Path
        The signature file.
    """
    path = Path(path)
    key = _private_key(signing_key)
    signature = path / SIGNATURE
    signature.write_bytes(key.sign((path / MANIFEST).read_bytes()))
    return signature


def fingerprint(public_key: Any) -> str:
    """The sha256 of a public key's raw bytes, first 16 hex digits: a short name for it."""
    from cryptography.hazmat.primitives import serialization

    raw = _public_key(public_key).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:16]


def _verify(path: Path, manifest: bytes, public_key: Any, where: str) -> None:
    from cryptography.exceptions import InvalidSignature

    key = _public_key(public_key)
    signature = _read(path, SIGNATURE, 1024, where)
    if signature is None:
        raise ModelFileError(
            f"{where}: the model is not signed ({SIGNATURE} is missing), and a public key "
            "was given, so it is refused"
        )
    try:
        key.verify(signature, manifest)
    except InvalidSignature:
        raise ModelFileError(
            f"{where}: {SIGNATURE} is not a signature of this manifest by the given key "
            f"(fingerprint {fingerprint(key)}): the model was changed after signing or "
            "signed by another key, so it is refused"
        ) from None


def _key_bytes(key: Any, what: str) -> bytes | None:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str | os.PathLike):
        if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
            return key.encode()
        from ._files import not_a_file

        fault = not_a_file(key, "a key file")  # /dev/zero or a pipe: never ends
        if fault is not None:
            raise ModelFileError(f"the {what} {str(key)[:200]!r} {fault}")
        try:
            with open(key, "rb") as handle:
                data = handle.read(_MAX_KEY_BYTES + 1)
        except OSError as error:
            raise ModelFileError(
                f"cannot read the {what} {str(key)[:200]!r}: {error.strerror}"
            ) from None
        if len(data) > _MAX_KEY_BYTES:
            raise ModelFileError(
                f"the {what} {str(key)[:200]!r} is over {_MAX_KEY_BYTES:,} bytes; an Ed25519 "
                "key file (PEM) is under 200"
            )
        return data
    return None


# The largest key file read: a PEM Ed25519 key is about 120 bytes.
_MAX_KEY_BYTES = 65_536


def _private_key(key: Any):
    return _key(key, private=True)


def _public_key(key: Any):
    return _key(key, private=False)


def _key(key: Any, *, private: bool):
    """An Ed25519 key object from itself, its PEM file or its PEM bytes (ModelFileError
    naming what was expected if it is not one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    kind = Ed25519PrivateKey if private else Ed25519PublicKey
    if isinstance(key, kind):
        return key
    what = "signing key" if private else "public key"
    data = _key_bytes(key, what)
    try:
        if not data:
            loaded = None
        elif private:
            loaded = serialization.load_pem_private_key(data, password=None)
        else:
            loaded = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        loaded = None
    if not isinstance(loaded, kind):
        expected = (
            "an unencrypted Ed25519 private key in PEM (make one with `ketapredict keys`)"
            if private
            else "an Ed25519 public key in PEM (the .pub file of `ketapredict keys`)"
        )
        raise ModelFileError(f"the {what} {str(key)[:80]!r} is not {expected}")
    return loaded
