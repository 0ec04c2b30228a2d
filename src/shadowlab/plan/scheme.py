"""Measurement schemes: which local Pauli settings to measure, and how often.

A *scheme* is a list of settings (one basis letter X, Y or Z per qubit) with a repeat count
each. The total number of snapshots is the sum of the repeats. A scheme also says how it was
made, because the estimators need to know:

``uniform``
    Settings drawn independently, each qubit's basis uniformly from X, Y, Z. The standard
    ``mean`` estimator (``3^w`` per matching snapshot) is unbiased.
``biased``
    Settings drawn independently, qubit ``q`` in basis ``b`` with probability
    ``probabilities[q, b]`` (locally biased shadows, Hadfield et al. 2020). The ``mean``
    estimator uses ``prod_q 1 / probabilities[q, P_q]`` in place of ``3^w``, which keeps it
    unbiased; the probabilities travel with the data set.
``derandomized``
    Deterministic settings (Huang, Kueng, Preskill, PRL 127, 030503 (2021)); estimate with the
    ``matched`` estimator (the average over the snapshots that match each observable).
``custom``
    Anything else (a file a user wrote); ``matched`` is the safe estimator.

File format (plain text, UTF-8): one setting per line, its letters in qubit order (qubit 0
first), optionally followed by whitespace and a positive repeat count (default 1). Blank lines
and lines starting with ``#`` are ignored, except header lines of the form ``# key: value``
before the first setting, which carry ``kind``, ``qubits`` and, for biased schemes,
``probabilities`` (a JSON list of ``[pX, pY, pZ]`` per qubit). Example::

    # shadowlab scheme
    # kind: derandomized
    # qubits: 4
    XXZZ 10
    ZZXY
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.atomic import atomic_path
from shadowlab.errors import InputFormatError, ShadowlabError

SCHEME_KINDS = ("uniform", "biased", "derandomized", "custom")
LETTERS = "XYZ"
_CODE = {"X": 0, "Y": 1, "Z": 2}


@dataclass(frozen=True)
class Scheme:
    """Settings with repeat counts, and how they were chosen.

    Parameters
    ----------
    settings:
        ``(n_settings, n_qubits)`` uint8 basis codes, 0/1/2 = X/Y/Z, qubit 0 first.
    repeats:
        ``(n_settings,)`` positive int64 repeat counts (shots per setting).
    kind:
        One of :data:`SCHEME_KINDS`.
    probabilities:
        ``(n_qubits, 3)`` basis probabilities the settings were drawn from (``uniform`` and
        ``biased`` schemes); ``None`` for deterministic schemes.
    info:
        Free-form JSON-serializable facts (seed, observable file, hits, ...).

    Examples
    --------
    >>> s = Scheme.from_labels(["XZ", "YY"], repeats=[3, 1])
    >>> s.n_qubits, s.n_settings, s.n_snapshots, s.labels()
    (2, 2, 4, ['XZ', 'YY'])
    """

    settings: np.ndarray
    repeats: np.ndarray
    kind: str = "custom"
    probabilities: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        settings = np.asarray(self.settings)
        if settings.ndim != 2 or settings.shape[0] == 0 or settings.shape[1] == 0:
            raise ShadowlabError(f"scheme settings must be a non-empty 2-D array (settings x qubits), "
                                 f"got shape {settings.shape}")
        if settings.size and (settings.min() < 0 or settings.max() > 2):
            raise ShadowlabError("scheme settings must be basis codes 0/1/2 (X/Y/Z)")
        repeats = np.asarray(self.repeats, dtype=np.int64).reshape(-1)
        if repeats.shape != (settings.shape[0],):
            raise ShadowlabError(f"scheme has {settings.shape[0]} settings but {repeats.size} repeat counts")
        if np.any(repeats < 1):
            raise ShadowlabError("every repeat count must be a positive integer")
        if self.kind not in SCHEME_KINDS:
            raise ShadowlabError(f"scheme kind {self.kind!r} is not one of {', '.join(SCHEME_KINDS)}")
        probs = self.probabilities
        if probs is not None:
            probs = check_probabilities(probs, settings.shape[1])
        elif self.kind in ("uniform", "biased"):
            raise ShadowlabError(f"a {self.kind} scheme needs the basis probabilities it was drawn from")
        object.__setattr__(self, "settings", np.ascontiguousarray(settings, dtype=np.uint8))
        object.__setattr__(self, "repeats", repeats)
        object.__setattr__(self, "probabilities", probs)
        object.__setattr__(self, "info", dict(self.info))

    @classmethod
    def from_labels(cls, labels: list[str], repeats: list[int] | None = None, **kwargs: Any) -> Scheme:
        """A scheme from setting labels such as ``"XYZZ"``."""
        rows = [_parse_setting(label, None, None) for label in labels]
        if len({len(r) for r in rows}) > 1:
            raise ShadowlabError("scheme settings have different lengths")
        return cls(np.array(rows, dtype=np.uint8), np.ones(len(rows)) if repeats is None else repeats, **kwargs)

    @property
    def n_qubits(self) -> int:
        return int(self.settings.shape[1])

    @property
    def n_settings(self) -> int:
        return int(self.settings.shape[0])

    @property
    def n_snapshots(self) -> int:
        return int(self.repeats.sum())

    def labels(self) -> list[str]:
        """Setting labels, qubit 0 first."""
        table = np.frombuffer(LETTERS.encode(), dtype=np.uint8)
        return [table[row].tobytes().decode() for row in self.settings]

    def snapshot_settings(self) -> np.ndarray:
        """Setting index of every snapshot, settings in order, each repeated ``repeats`` times."""
        return np.repeat(np.arange(self.n_settings, dtype=np.int64), self.repeats)

    def batches(self, max_snapshots: int) -> Iterator[tuple[int, int]]:
        """Consecutive ``(first, stop)`` setting ranges of at most ``max_snapshots`` snapshots each.

        A setting with more repeats than ``max_snapshots`` is a batch of its own.
        """
        start = 0
        while start < self.n_settings:
            stop, total = start, 0
            while stop < self.n_settings and (stop == start or total + self.repeats[stop] <= max_snapshots):
                total += int(self.repeats[stop])
                stop += 1
            yield start, stop
            start = stop

    def record(self) -> dict[str, Any]:
        """The facts a data set keeps about the scheme it was measured with (JSON-serializable)."""
        return {
            "kind": self.kind,
            "n_settings": self.n_settings,
            "n_snapshots": self.n_snapshots,
            # Uniform is the estimators' default; only non-uniform probabilities need recording.
            "probabilities": None if self.probabilities is None or self.kind == "uniform"
            else self.probabilities.tolist(),
            "sha256": self.digest(),
            **({"info": self.info} if self.info else {}),
        }

    def digest(self) -> str:
        """SHA-256 of the settings and repeats: identifies a plan (e.g. when resuming)."""
        import hashlib

        h = hashlib.sha256()
        h.update(np.asarray(self.settings.shape, dtype=np.int64).tobytes())
        h.update(self.settings.tobytes())
        h.update(self.repeats.tobytes())
        return h.hexdigest()

    def equals(self, other: Scheme) -> bool:
        """Same settings and repeats, in the same order."""
        return (self.settings.shape == other.settings.shape and bool(np.array_equal(self.settings, other.settings))
                and bool(np.array_equal(self.repeats, other.repeats)))


def check_probabilities(probabilities: Any, n_qubits: int) -> np.ndarray:
    """Validate ``(n_qubits, 3)`` per-qubit basis probabilities (non-negative, rows summing to 1)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != (n_qubits, 3):
        raise ShadowlabError(f"basis probabilities must have shape ({n_qubits}, 3), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ShadowlabError("basis probabilities must be finite and non-negative")
    if np.any(np.abs(p.sum(axis=1) - 1.0) > 1e-9):
        raise ShadowlabError("basis probabilities of each qubit must sum to 1")
    return np.ascontiguousarray(p)


UNIFORM_PROBABILITIES = 1.0 / 3.0


def random_scheme(probabilities: np.ndarray, n_settings: int, rng: np.random.Generator, *, repeats: int = 1,
                  kind: str | None = None, info: dict[str, Any] | None = None) -> Scheme:
    """``n_settings`` settings drawn independently, qubit ``q`` in basis ``b`` with ``probabilities[q, b]``.

    ``kind`` defaults to ``uniform`` when every probability is 1/3 and ``biased`` otherwise.
    """
    n_qubits = np.asarray(probabilities).shape[0]
    p = check_probabilities(probabilities, n_qubits)
    if n_settings < 1 or repeats < 1:
        raise ShadowlabError("a scheme needs at least one setting and one repeat")
    cumulative = np.cumsum(p, axis=1)
    cumulative[:, -1] = 1.0
    u = rng.random((n_settings, n_qubits))
    settings = (u[:, :, None] >= cumulative[None, :, :2]).sum(axis=2).astype(np.uint8)
    if kind is None:
        kind = "uniform" if np.allclose(p, UNIFORM_PROBABILITIES, rtol=0, atol=1e-15) else "biased"
    return Scheme(settings, np.full(n_settings, repeats, dtype=np.int64), kind, p, info or {})


def uniform_scheme(n_qubits: int, n_settings: int, rng: np.random.Generator, *, repeats: int = 1,
                   info: dict[str, Any] | None = None) -> Scheme:
    """Uniformly random local Pauli settings (the default scheme)."""
    if n_qubits < 1:
        raise ShadowlabError("a scheme needs at least one qubit")
    return random_scheme(np.full((n_qubits, 3), UNIFORM_PROBABILITIES), n_settings, rng, repeats=repeats,
                         kind="uniform", info=info)


def _parse_setting(text: str, path: Path | None, line: int | None) -> list[int]:
    codes = []
    for ch in text:
        code = _CODE.get(ch.upper())
        if code is None:
            message = f"setting {text!r} has letter {ch!r}; expected only X, Y or Z (one per qubit)"
            if path is None:
                raise ShadowlabError(message)
            raise InputFormatError(message, path=path, line=line)
        codes.append(code)
    return codes


def read_scheme(path: str | os.PathLike[str], *, n_qubits: int | None = None) -> Scheme:
    """Read a scheme file (see the module docstring for the format).

    ``n_qubits``, if given, is checked against the file. Every malformed line is an
    :class:`InputFormatError` naming the file and line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ShadowlabError(f"{p}: no such scheme file") from None
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"not UTF-8 text ({exc.reason})", path=p) from None
    header: dict[str, str] = {}
    rows: list[list[int]] = []
    repeats: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if not rows and ":" in body:
                key, _, value = body.partition(":")
                header[key.strip().lower()] = value.strip()
            continue
        fields = line.split()
        if len(fields) > 2:
            raise InputFormatError(f"expected a setting and an optional repeat count, got {len(fields)} fields",
                                   path=p, line=lineno)
        codes = _parse_setting(fields[0], p, lineno)
        if rows and len(codes) != len(rows[0]):
            raise InputFormatError(f"setting {fields[0]!r} has {len(codes)} letters but the first setting has "
                                   f"{len(rows[0])}", path=p, line=lineno)
        count = 1
        if len(fields) == 2:
            try:
                count = int(fields[1])
            except ValueError:
                raise InputFormatError(f"repeat count {fields[1]!r} is not an integer", path=p, line=lineno) from None
            if count < 1:
                raise InputFormatError(f"repeat count must be positive, got {count}", path=p, line=lineno)
        rows.append(codes)
        repeats.append(count)
    if not rows:
        raise InputFormatError("no settings found", path=p)
    width = len(rows[0])
    declared = header.get("qubits")
    if declared is not None:
        try:
            declared_n = int(declared)
        except ValueError:
            raise InputFormatError(f"header 'qubits: {declared}' is not an integer", path=p) from None
        if declared_n != width:
            raise InputFormatError(f"header says {declared_n} qubits but the settings have {width} letters", path=p)
    if n_qubits is not None and width != n_qubits:
        raise InputFormatError(f"settings have {width} letters but {n_qubits} qubits were expected", path=p)
    kind = header.get("kind", "custom")
    if kind not in SCHEME_KINDS:
        raise InputFormatError(f"header kind {kind!r} is not one of {', '.join(SCHEME_KINDS)}", path=p)
    probs = None
    if "probabilities" in header:
        try:
            probs = check_probabilities(json.loads(header["probabilities"]), width)
        except (json.JSONDecodeError, ShadowlabError) as exc:
            raise InputFormatError(f"header probabilities: {exc}", path=p) from None
    info: dict[str, Any] = {}
    if "info" in header:
        try:
            info = json.loads(header["info"])
        except json.JSONDecodeError as exc:
            raise InputFormatError(f"header info is not JSON: {exc}", path=p) from None
    try:
        return Scheme(np.array(rows, dtype=np.uint8), np.array(repeats, dtype=np.int64), kind, probs, info)
    except ShadowlabError as exc:
        raise InputFormatError(str(exc), path=p) from None


def write_scheme(scheme: Scheme, path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Write ``scheme`` as text (atomically: a temporary file, then a rename)."""
    lines = ["# shadowlab scheme", f"# kind: {scheme.kind}", f"# qubits: {scheme.n_qubits}"]
    if scheme.probabilities is not None:
        lines.append(f"# probabilities: {json.dumps(scheme.probabilities.tolist())}")
    if scheme.info:
        lines.append(f"# info: {json.dumps(scheme.info, sort_keys=True)}")
    lines.append(f"# settings: {scheme.n_settings}, snapshots: {scheme.n_snapshots}")
    for label, count in zip(scheme.labels(), scheme.repeats, strict=True):
        lines.append(label if count == 1 else f"{label} {int(count)}")
    with atomic_path(Path(path), force=force) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
