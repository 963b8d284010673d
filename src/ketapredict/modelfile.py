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
:func:`check_calibrator` and :func:`check_reference`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticError

from .exceptions import ModelFileError

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
# Size limits for one file of a model directory. The demo model's largest file is under
# 1 MB and a model trained on 100,000 patients under 10 MB; the limits are generous for
# real models and keep a hostile file from filling memory.
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_FILE_BYTES = 512 * 2**20

_Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_Text = Annotated[str, StringConstraints(max_length=200)]


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


def model_file_names(outcomes: Sequence[str]) -> list[str]:
    """The files a model of these outcomes has, besides the manifest and its signature."""
    return [f"{o}{kind}" for o in outcomes for kind in (".json", ".ubj", ".trees.json")]


def read_model_files(
    path: str | Path,
    *,
    format_version: int,
    outcomes_allowed: Sequence[str],
    optional: Sequence[str] = (),
    public_key: Any = None,
) -> ModelFiles:
    """Read and verify a model directory (see the module's description).

    Parameters
    ----------
    path : str or path-like
        The model directory.
    format_version : int
        The one version of the layout this ketapredict reads.
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
    path = Path(path)
    where = _where(path)
    if not path.is_dir():
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
    if manifest.get("format_version") != format_version:
        raise ModelFileError(
            f"{where}: format version {str(manifest.get('format_version'))[:20]} is not "
            f"{format_version}, the version this ketapredict reads; saved by ketapredict "
            f"{str(manifest.get('ketapredict_version'))[:20]}"
        )
    try:
        _Manifest.model_validate(manifest)
    except PydanticError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ModelFileError(
            f"{where}: {MANIFEST} field {field[:80]!r}: {first['msg']} "
            f"({error.error_count()} problem{'s' if error.error_count() > 1 else ''})"
        ) from None
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
    files = {}
    for name in sorted(listed):
        data = _read(path, name, MAX_FILE_BYTES, where)
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


def _parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
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
        _CALIBRATORS[method].model_validate(calibrator)
    except PydanticError as error:
        first = error.errors()[0]
        raise ValueError(
            f"calibrator {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None
    if method == "isotonic":
        margins = np.asarray(calibrator["margins"])
        if len(margins) != len(calibrator["probabilities"]) or (np.diff(margins) < 0).any():
            raise ValueError("isotonic calibrator: margins must increase, one per probability")
    return calibrator


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


def check_reference(reference: Any, feature_names: Sequence[str]) -> dict[str, Any]:
    """The training-distribution summary of a manifest, checked against the features it
    describes: names among ``feature_names``, finite ranges, positive spreads, and a
    positive definite covariance (its inverse measures how unusual a patient is).
    ValueError if not; an empty summary (no warnings) is allowed."""
    if reference == {}:
        return reference
    if not isinstance(reference, dict) or set(reference) != _REFERENCE_KEYS:
        raise ValueError(f"reference: expected the fields {sorted(_REFERENCE_KEYS)}")
    names = set(feature_names)
    for key in ("features", "continuous", "seen_categories", "binary"):
        value = reference[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"reference {key}: expected a list of feature names")
    for key in ("continuous", "binary"):
        outside = sorted(set(reference[key]) - names)
        if outside:
            raise ValueError(f"reference {key}: {outside[:3]} are not features of the model")
    k = len(reference["continuous"])
    try:
        vectors = {
            key: np.asarray(reference[key], dtype=float) for key in ("low", "high", "mean", "sd")
        }
        covariance = np.asarray(reference["covariance"], dtype=float)
        threshold = float(reference["joint_threshold"])
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
    return reference


# -- signatures -------------------------------------------------------------------------------
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
        try:
            return Path(key).read_bytes()
        except OSError as error:
            raise ModelFileError(
                f"cannot read the {what} {str(key)[:200]!r}: {error.strerror}"
            ) from None
    return None


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
