"""Import and export of shadow data sets in the formats other tools use.

Three formats round-trip bit-exactly (bases and outcomes; see each format for settings):

``"pennylane"``
    The ``(bits, recipes)`` pair of :func:`pennylane.classical_shadow`: two ``(T, n)`` integer
    arrays, ``bits`` 0 = eigenvalue +1 / 1 = eigenvalue -1, ``recipes`` 0/1/2 = X/Y/Z, column
    ``q`` = qubit ``q``. These are exactly shadowlab's ``outcomes`` and ``bases``. Stored as a
    ``.npz`` with arrays ``bits`` and ``recipes``, as a pair of ``.npy`` files
    ``(bits_path, recipes_path)``, or as one ``.npy`` holding the ``(2, T, n)`` stack a PennyLane
    QNode returns. Setting indices are not part of the format: they read back as
    ``arange(T)``.
``"huang"``
    The text format of Huang, Kueng and Preskill's reference implementation
    (``predicting-quantum-properties``): the number of qubits ``n`` on the first line, then one
    snapshot per line as ``n`` pairs ``<X|Y|Z> <1|-1>`` separated by whitespace, e.g.
    ``Z 1 Z -1 Y 1``. Outcome ``1`` is bit 0 and ``-1`` is bit 1. Blank lines (including a
    trailing newline) are ignored. Setting indices are not part of the format.
``"npz"``
    shadowlab's own NumPy archive: ``bases`` and ``outcomes`` (uint8, as in
    :class:`~shadowlab.data.dataset.ShadowData`), ``settings`` (int64, optional on reading) and,
    when the data set has any, ``metadata`` as a JSON string. Everything round-trips.

Every reader validates its input completely and raises :class:`~shadowlab.errors.InputFormatError`
naming the file (and, for text, the 1-based line) on the first problem. Readers record
provenance in ``metadata["source_format"]`` and ``metadata["source_path"]``. Writers refuse to
overwrite an existing file unless ``force=True`` and write through
:func:`~shadowlab.atomic.atomic_path`, so a failed write leaves nothing behind.

Zarr stores are handled by :mod:`shadowlab.data.store`; :func:`detect_format` only recognizes
them (a directory containing ``zarr.json``) so callers can dispatch.
"""

from __future__ import annotations

import codecs
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.atomic import atomic_path, check_can_write
from shadowlab.data.dataset import ShadowData
from shadowlab.errors import InputFormatError, ShadowlabError

SNAPSHOT_FORMATS: tuple[str, ...] = ("pennylane", "huang", "npz")
"""Snapshot file formats this module reads and writes."""

StrPath = str | os.PathLike[str]
PennyLaneSource = StrPath | tuple[StrPath, StrPath]

# --- text-parsing tables -------------------------------------------------------------------
# Byte-indexed lookup tables turn the per-token work into a few numpy gathers, which is what
# makes a 1e5 x 100 file parse in about a second instead of a minute of Python loops.
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[[9, 10, 11, 12, 13, 32]] = True  # the bytes bytes.split() treats as whitespace
_NO_CODE = 255
_LETTER_CODE = np.full(256, _NO_CODE, dtype=np.uint8)
_LETTER_CODE[[ord("X"), ord("Y"), ord("Z")]] = [0, 1, 2]
_ONE, _MINUS, _NEWLINE = ord("1"), ord("-"), ord("\n")

# The text reader works through the file in blocks of about this many bytes (cut at line
# ends) so that its index arrays stay small: a block of B bytes costs roughly 10 B of memory.
_CHUNK_BYTES = 1 << 22
# The text writer formats this many snapshots at a time, for the same reason.
_WRITE_ROWS = 1 << 14

# Each (basis, bit) pair as it appears in the text format, preceded by its separator and padded
# with NUL to a common width of 5 bytes; NULs are squeezed out after the rows are laid out.
_PAIR_TEXT = np.frombuffer(b" X 1\0 X -1 Y 1\0 Y -1 Z 1\0 Z -1", dtype=np.uint8).reshape(6, 5)

_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


# --- PennyLane (bits, recipes) -------------------------------------------------------------


def read_pennylane(source: PennyLaneSource) -> ShadowData:
    """Read PennyLane classical-shadow data ``(bits, recipes)``.

    Parameters
    ----------
    source:
        A ``.npz`` file with arrays ``bits`` and ``recipes``; a pair ``(bits_path,
        recipes_path)`` of ``.npy`` files; or one ``.npy`` file holding the ``(2, T, n)`` array
        a QNode returning :func:`pennylane.classical_shadow` produces (bits first).

    Returns
    -------
    ShadowData
        ``bases = recipes`` and ``outcomes = bits``; settings ``arange(T)``.

    Raises
    ------
    InputFormatError
        If an array is missing, not 2-D, not of an integer dtype, holds a value outside
        {0, 1} (bits) or {0, 1, 2} (recipes), the two shapes differ, or there are no snapshots.
    """
    if isinstance(source, tuple | list):
        if len(source) != 2:
            raise ShadowlabError(f"a PennyLane pair is (bits_path, recipes_path); got {len(source)} paths")
        bits_path, recipes_path = Path(source[0]), Path(source[1])
        bits = _load_npy(bits_path)
        recipes = _load_npy(recipes_path)
        provenance: Any = [str(bits_path.resolve()), str(recipes_path.resolve())]
    else:
        bits_path = recipes_path = Path(source)
        provenance = str(bits_path.resolve())
        if _sniff_bytes(bits_path).startswith(_NPY_MAGIC):
            stacked = _load_npy(bits_path)
            if stacked.ndim != 3 or stacked.shape[0] != 2:
                raise InputFormatError(
                    f"a single .npy file must hold the (2, T, n) stack of bits and recipes a PennyLane QNode "
                    f"returns; found shape {stacked.shape}",
                    path=bits_path,
                )
            bits, recipes = stacked[0], stacked[1]
        else:
            arrays = _load_npz(bits_path, required=("bits", "recipes"), hint="PennyLane (bits, recipes)")
            bits, recipes = arrays["bits"], arrays["recipes"]
    _check_code_array(bits, "bits", 1, bits_path)
    _check_code_array(recipes, "recipes", 2, recipes_path)
    if bits.shape != recipes.shape:
        where = "" if bits_path == recipes_path else f" (bits from {bits_path})"
        raise InputFormatError(
            f"bits shape {bits.shape} does not match recipes shape {recipes.shape}{where}; both must be "
            "(n_snapshots, n_qubits)",
            path=recipes_path,
        )
    return ShadowData(recipes, bits, metadata={"source_format": "pennylane", "source_path": provenance})


def write_pennylane(data: ShadowData, path: PennyLaneSource, *, force: bool = False) -> None:
    """Write ``data`` as PennyLane ``(bits, recipes)`` int8 arrays (PennyLane's own dtype).

    Parameters
    ----------
    data:
        The snapshots; setting indices and metadata are not written (the format has no place
        for them).
    path:
        A ``.npz`` path (arrays ``bits`` and ``recipes``), a ``.npy`` path (the ``(2, T, n)``
        stack, bits first), or a pair ``(bits_path, recipes_path)`` of ``.npy`` paths.
    force:
        Overwrite existing files.
    """
    _require_snapshots(data)
    bits = data.outcomes.astype(np.int8)
    recipes = data.bases.astype(np.int8)
    if isinstance(path, tuple | list):
        if len(path) != 2:
            raise ShadowlabError(f"a PennyLane pair is (bits_path, recipes_path); got {len(path)} paths")
        # Check both targets before writing either, so a refusal leaves no half-written pair.
        for p in path:
            check_can_write(p, force=force)
        with atomic_path(path[0], force=force) as tmp_bits, atomic_path(path[1], force=force) as tmp_recipes:
            _save_npy(tmp_bits, bits)
            _save_npy(tmp_recipes, recipes)
        return
    if Path(path).suffix.lower() == ".npy":
        with atomic_path(path, force=force) as tmp:
            _save_npy(tmp, np.stack([bits, recipes]))
        return
    with atomic_path(path, force=force) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, bits=bits, recipes=recipes)


# --- Huang et al. text format --------------------------------------------------------------


def read_huang_text(path: StrPath) -> ShadowData:
    """Read the reference text format of Huang et al.: ``n``, then lines of ``<X|Y|Z> <1|-1>`` pairs.

    Parameters
    ----------
    path:
        The text file. The first non-blank line is the number of qubits ``n``; each further
        non-blank line is one snapshot of exactly ``n`` pairs. Blank lines, trailing whitespace
        and Windows line ends are accepted; a leading UTF-8 byte-order mark is skipped.

    Returns
    -------
    ShadowData
        Outcome ``1`` is stored as bit 0, ``-1`` as bit 1; settings ``arange(T)``.

    Raises
    ------
    InputFormatError
        On an empty file, a missing or invalid header, a line with the wrong number of tokens,
        a basis other than ``X``/``Y``/``Z``, an outcome other than ``1``/``-1``, or no
        snapshots; the message gives ``path:line``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "m.txt"
    >>> _ = f.write_text("3\\nZ 1 Z -1 Y 1\\n")
    >>> d = read_huang_text(f)
    >>> d.bases.tolist(), d.outcomes.tolist()
    ([[2, 2, 1]], [[0, 1, 0]])
    """
    p = Path(path)
    raw = p.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    if not raw.strip():
        raise InputFormatError(
            "the file is empty; expected the number of qubits n on the first line, then one snapshot per line",
            path=p,
        )
    n, body_start, header_line = _huang_header(raw, p)
    bases, outcomes = _parse_huang_body(raw, body_start, n, p, header_line + 1)
    if bases.shape[0] == 0:
        raise InputFormatError(
            f"no snapshots: the file has the header (n = {n}) but no snapshot lines after it", path=p
        )
    return ShadowData(bases, outcomes, metadata={"source_format": "huang", "source_path": str(p.resolve())})


def write_huang_text(data: ShadowData, path: StrPath, *, force: bool = False) -> None:
    """Write ``data`` in the reference text format of Huang et al.

    Setting indices and metadata are not written (the format has no place for them).

    Parameters
    ----------
    data:
        The snapshots.
    path:
        Output file.
    force:
        Overwrite an existing file.
    """
    _require_snapshots(data)
    n = data.n_qubits
    with atomic_path(path, force=force) as tmp, open(tmp, "wb") as fh:
        fh.write(f"{n}\n".encode())
        for start in range(0, data.n_snapshots, _WRITE_ROWS):
            stop = min(start + _WRITE_ROWS, data.n_snapshots)
            pair = data.bases[start:stop].astype(np.intp) * 2 + data.outcomes[start:stop]
            rows = _PAIR_TEXT[pair].reshape(stop - start, 5 * n)
            rows[:, 0] = 0  # no separator before the first pair of a line
            laid_out = np.concatenate([rows, np.full((stop - start, 1), _NEWLINE, dtype=np.uint8)], axis=1).ravel()
            fh.write(laid_out[laid_out != 0].tobytes())


def _huang_header(raw: bytes, path: Path) -> tuple[int, int, int]:
    """Return ``(n, offset of the line after the header, 1-based header line)``."""
    # Blank lines before the header are skipped like blank lines anywhere else; the caller has
    # already rejected a file with no content at all, so this loop finds a non-blank line.
    pos, line_no = 0, 1
    while True:
        end = raw.find(b"\n", pos)
        stop = len(raw) if end < 0 else end
        text = raw[pos:stop].strip()
        if text or end < 0:
            break
        pos, line_no = stop + 1, line_no + 1
    if not (text.isdigit() and int(text) >= 1):
        shown = text[:60].decode("utf-8", "replace")
        raise InputFormatError(
            f"missing header: the first line must be the number of qubits n (a positive integer), found {shown!r}",
            path=path,
            line=line_no,
        )
    return int(text), (len(raw) if end < 0 else end + 1), line_no


def _parse_huang_body(raw: bytes, start: int, n: int, path: Path, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse the snapshot lines of ``raw[start:]`` block by block (blocks end at line ends)."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    bases_parts: list[np.ndarray] = []
    outcome_parts: list[np.ndarray] = []
    line = first_line
    while start < len(raw):
        stop = min(start + _CHUNK_BYTES, len(raw))
        if stop < len(raw):
            end = raw.find(b"\n", stop - 1)
            stop = len(raw) if end < 0 else end + 1
        b, o = _parse_huang_block(buf[start:stop], n, path, line)
        bases_parts.append(b)
        outcome_parts.append(o)
        line += raw.count(b"\n", start, stop)
        start = stop
    if not bases_parts:
        empty = np.zeros((0, n), dtype=np.uint8)
        return empty, empty
    return np.concatenate(bases_parts), np.concatenate(outcome_parts)


def _parse_huang_block(a: np.ndarray, n: int, path: Path, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse whole lines ``a`` (bytes as uint8); ``first_line`` is the line number of ``a[0]``."""
    space = _IS_SPACE[a]
    word = ~space
    # A token starts at a non-space byte after a space (or at the block start, a line start)
    # and ends at a non-space byte before a space (or at the block end).
    starts = np.flatnonzero(word & np.concatenate(([True], space[:-1])))
    ends = np.flatnonzero(word & np.concatenate((space[1:], [True])))
    line_starts = np.concatenate(([0], np.flatnonzero(a == _NEWLINE) + 1))
    first_token = np.searchsorted(starts, line_starts)
    per_line = np.diff(np.append(first_token, starts.size))
    used = per_line > 0
    wrong = used & (per_line != 2 * n)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise InputFormatError(
            f"expected {2 * n} tokens (n = {n} pairs '<X|Y|Z> <1|-1>', n from the header), found {per_line[i]}",
            path=path,
            line=first_line + i,
        )
    t = int(used.sum())
    if t == 0:
        empty = np.zeros((0, n), dtype=np.uint8)
        return empty, empty
    lengths = (ends - starts + 1).reshape(t, 2 * n)
    starts = starts.reshape(t, 2 * n)
    letter_at, outcome_at = starts[:, 0::2], starts[:, 1::2]
    codes = _LETTER_CODE[a[letter_at]]
    bad_letter = (lengths[:, 0::2] != 1) | (codes == _NO_CODE)
    outcome_len = lengths[:, 1::2]
    first_char = a[outcome_at]
    # Only read the second byte of two-byte tokens; clip so the gather never runs off the end.
    second_char = a[np.minimum(outcome_at + 1, a.size - 1)]
    plus = (outcome_len == 1) & (first_char == _ONE)
    minus = (outcome_len == 2) & (first_char == _MINUS) & (second_char == _ONE)
    bad_outcome = ~(plus | minus)
    if bad_letter.any() or bad_outcome.any():
        _raise_first_bad_token(a, starts, lengths, bad_letter, bad_outcome, used, path, first_line)
    return codes, minus.view(np.uint8)


def _raise_first_bad_token(
    a: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    bad_letter: np.ndarray,
    bad_outcome: np.ndarray,
    used: np.ndarray,
    path: Path,
    first_line: int,
) -> None:
    """Raise for the first invalid token in file order (only called once one is known to exist)."""
    bad = np.zeros(starts.shape, dtype=bool)
    bad[:, 0::2], bad[:, 1::2] = bad_letter, bad_outcome
    row, col = np.unravel_index(int(np.argmax(bad)), bad.shape)
    s = int(starts[row, col])
    token = a[s : s + int(lengths[row, col])].tobytes().decode("utf-8", "replace")
    line = first_line + int(np.flatnonzero(used)[row])
    qubit = col // 2
    if col % 2 == 0:
        message = f"token {col + 1} (basis of qubit {qubit}): expected X, Y or Z, found {token!r}"
    else:
        message = f"token {col + 1} (outcome of qubit {qubit}): expected 1 or -1, found {token!r}"
    raise InputFormatError(message, path=path, line=line)


# --- shadowlab .npz ------------------------------------------------------------------------


def read_npz(path: StrPath) -> ShadowData:
    """Read a shadowlab ``.npz`` archive of ``bases``, ``outcomes`` and optional ``settings``.

    Parameters
    ----------
    path:
        The archive. ``bases`` and ``outcomes`` are required ``(T, n)`` integer arrays;
        ``settings`` (``(T,)`` non-negative integers) defaults to ``arange(T)``; an optional
        0-d string ``metadata`` holds a JSON object.

    Returns
    -------
    ShadowData
        The data set; ``metadata`` is the stored one updated with the provenance keys.

    Raises
    ------
    InputFormatError
        If an array is missing or malformed, or there are no snapshots.
    """
    p = Path(path)
    arrays = _load_npz(p, required=("bases", "outcomes"), hint="shadowlab (bases, outcomes)")
    bases, outcomes = arrays["bases"], arrays["outcomes"]
    _check_code_array(bases, "bases", 2, p)
    _check_code_array(outcomes, "outcomes", 1, p)
    if bases.shape != outcomes.shape:
        raise InputFormatError(
            f"outcomes shape {outcomes.shape} does not match bases shape {bases.shape}; both must be "
            "(n_snapshots, n_qubits)",
            path=p,
        )
    settings = arrays.get("settings")
    if settings is not None:
        if not np.issubdtype(settings.dtype, np.integer):
            raise InputFormatError(f"settings must be an integer array, found dtype {settings.dtype}", path=p)
        if settings.shape != (bases.shape[0],):
            raise InputFormatError(
                f"settings must have one entry per snapshot: {bases.shape[0]} snapshots, settings shape "
                f"{settings.shape}",
                path=p,
            )
        if settings.min() < 0:
            raise InputFormatError(f"setting indices must be >= 0, found {int(settings.min())}", path=p)
    metadata: dict[str, Any] = {}
    if "metadata" in arrays:
        stored = arrays["metadata"]
        try:
            loaded = json.loads(str(stored.item()))
        except (ValueError, TypeError) as exc:
            raise InputFormatError(f"'metadata' must be a JSON object stored as a string: {exc}", path=p) from None
        if not isinstance(loaded, dict):
            raise InputFormatError(f"'metadata' must be a JSON object, found {type(loaded).__name__}", path=p)
        metadata.update(loaded)
    metadata.update(source_format="npz", source_path=str(p.resolve()))
    twirl = arrays.get("twirl")
    if twirl is not None and twirl.shape != bases.shape:
        raise InputFormatError(f"twirl masks must have the shape of the outcomes {bases.shape}, found {twirl.shape}",
                               path=p)
    try:
        return ShadowData(bases, outcomes, settings, metadata, twirl)
    except ShadowlabError as exc:
        raise InputFormatError(str(exc), path=p) from None


def write_npz(data: ShadowData, path: StrPath, *, force: bool = False) -> None:
    """Write ``data`` (bases, outcomes, settings, readout-twirl masks if any, and metadata) as a
    compressed ``.npz``.

    Parameters
    ----------
    data:
        The snapshots. Metadata is stored as JSON; values JSON cannot represent are stored as
        their ``str()``.
    path:
        Output file.
    force:
        Overwrite an existing file.
    """
    _require_snapshots(data)
    arrays: dict[str, np.ndarray] = {"bases": data.bases, "outcomes": data.outcomes, "settings": data.settings}
    if data.twirl is not None:
        arrays["twirl"] = data.twirl
    if data.metadata:
        # A 0-d unicode array keeps the archive loadable with allow_pickle=False.
        arrays["metadata"] = np.array(json.dumps(data.metadata, default=str))
    with atomic_path(path, force=force) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


# --- generic dispatch ----------------------------------------------------------------------


def detect_format(path: PennyLaneSource) -> str:
    """Tell the format of an existing snapshot file from its extension and content.

    Parameters
    ----------
    path:
        A file, a ``(bits, recipes)`` pair of paths, or a directory.

    Returns
    -------
    str
        One of :data:`SNAPSHOT_FORMATS`, or ``"zarr"`` for a directory containing ``zarr.json``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    InputFormatError
        If the content matches no known format.
    """
    if isinstance(path, tuple | list):
        return "pennylane"
    p = Path(path)
    if p.is_dir():
        if (p / "zarr.json").is_file():
            return "zarr"
        raise InputFormatError("a directory, but not a Zarr store (it has no zarr.json)", path=p)
    head = _sniff_bytes(p)
    if head.startswith(_NPY_MAGIC):
        return "pennylane"
    if head.startswith(_ZIP_MAGIC):
        names = _npz_names(p)
        if {"bits", "recipes"} <= names:
            return "pennylane"
        if {"bases", "outcomes"} <= names:
            return "npz"
        raise InputFormatError(
            f"a NumPy archive with arrays {sorted(names)}; expected 'bits' and 'recipes' (PennyLane) or "
            "'bases' and 'outcomes' (shadowlab)",
            path=p,
        )
    text = head.removeprefix(codecs.BOM_UTF8)
    first = next((line.strip() for line in text.split(b"\n") if line.strip()), b"")
    if first.isdigit():
        return "huang"
    raise InputFormatError(
        f"cannot tell the format: not a NumPy file, and the first line {first[:40].decode('utf-8', 'replace')!r} "
        f"is not the qubit count of the text format; pass fmt= (one of {', '.join(SNAPSHOT_FORMATS)})",
        path=p,
    )


def read_snapshots(path: PennyLaneSource, fmt: str | None = None) -> ShadowData:
    """Read a snapshot file in any of :data:`SNAPSHOT_FORMATS`.

    Parameters
    ----------
    path:
        The file (or, for PennyLane, a ``(bits, recipes)`` pair of ``.npy`` paths).
    fmt:
        The format; detected with :func:`detect_format` when omitted.
    """
    fmt = detect_format(path) if fmt is None else fmt
    if fmt == "pennylane":
        return read_pennylane(path)
    if isinstance(path, tuple | list):
        raise ShadowlabError(f"a pair of paths is only meaningful for the 'pennylane' format, not {fmt!r}")
    if fmt == "huang":
        return read_huang_text(path)
    if fmt == "npz":
        return read_npz(path)
    raise _unknown_format(fmt)


def write_snapshots(data: ShadowData, path: PennyLaneSource, fmt: str | None = None, *, force: bool = False) -> str:
    """Write ``data`` in any of :data:`SNAPSHOT_FORMATS`; return the format written.

    Only ``npz`` keeps readout-twirl masks; the others hold the (corrected) outcomes alone.

    Parameters
    ----------
    data:
        The snapshots.
    path:
        Output path (or a ``(bits, recipes)`` pair for PennyLane).
    fmt:
        The format. When omitted it follows the extension: a pair or ``.npy`` -> ``"pennylane"``,
        ``.npz`` -> ``"npz"`` (shadowlab's own, which keeps settings and metadata; pass
        ``fmt="pennylane"`` for a PennyLane ``.npz``), ``.txt``/``.dat`` -> ``"huang"``.
    force:
        Overwrite existing files.
    """
    if fmt is None:
        fmt = _format_for_extension(path)
    if fmt == "pennylane":
        write_pennylane(data, path, force=force)
        return fmt
    if isinstance(path, tuple | list):
        raise ShadowlabError(f"a pair of paths is only meaningful for the 'pennylane' format, not {fmt!r}")
    if fmt == "huang":
        write_huang_text(data, path, force=force)
    elif fmt == "npz":
        write_npz(data, path, force=force)
    else:
        raise _unknown_format(fmt)
    return fmt


def _format_for_extension(path: PennyLaneSource) -> str:
    if isinstance(path, tuple | list):
        return "pennylane"
    suffix = Path(path).suffix.lower()
    by_suffix = {".npy": "pennylane", ".npz": "npz", ".txt": "huang", ".dat": "huang", ".zarr": "zarr"}
    if suffix not in by_suffix:
        raise ShadowlabError(
            f"cannot tell the output format from the extension of {path}; use .npz, .npy or .txt, or pass fmt= "
            f"(one of {', '.join(SNAPSHOT_FORMATS)})"
        )
    return by_suffix[suffix]


def _unknown_format(fmt: str) -> ShadowlabError:
    if fmt == "zarr":
        return ShadowlabError("Zarr shadow stores are read and written by shadowlab.data.store, not by this module")
    return ShadowlabError(f"unknown snapshot format {fmt!r}; expected one of {', '.join(SNAPSHOT_FORMATS)}")


# --- helpers -------------------------------------------------------------------------------


def _require_snapshots(data: ShadowData) -> None:
    # The readers reject files without snapshots, so writing one would break the round trip.
    if data.n_snapshots == 0:
        raise ShadowlabError("the shadow data set is empty (0 snapshots); there is nothing to write")


def _sniff_bytes(path: Path, size: int = 1 << 16) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputFormatError(f"not a readable .npy array file: {exc}", path=path) from None
    if not isinstance(arr, np.ndarray):
        raise InputFormatError("expected a .npy array file, found a .npz archive", path=path)
    return arr


def _npz_names(path: Path) -> set[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return {name.removesuffix(".npy") for name in z.namelist()}
    except zipfile.BadZipFile as exc:
        raise InputFormatError(f"not a readable .npz archive: {exc}", path=path) from None


def _load_npz(path: Path, *, required: tuple[str, ...], hint: str) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` (no pickles), checking that ``required`` ones are present."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFormatError(f"not a readable .npz archive: {exc}", path=path) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputFormatError(f"expected a .npz archive of {hint} arrays, found a single .npy array", path=path)
    try:
        with loaded:
            arrays = {name: loaded[name] for name in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFormatError(f"corrupted .npz archive: {exc}", path=path) from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise InputFormatError(
            f"missing array(s) {missing} for {hint} data; the archive holds {sorted(arrays)}", path=path
        )
    return arrays


def _check_code_array(a: np.ndarray, name: str, max_code: int, path: Path) -> None:
    """Validate a ``(T, n)`` array of codes ``0..max_code`` read from ``path``."""
    if a.ndim != 2:
        raise InputFormatError(f"{name} must be a 2-D (n_snapshots, n_qubits) array, found shape {a.shape}", path=path)
    integral = np.issubdtype(a.dtype, np.integer) or (a.dtype == np.bool_ and max_code == 1)
    if not integral:
        raise InputFormatError(f"{name} must be an integer array, found dtype {a.dtype}", path=path)
    if a.shape[1] == 0:
        raise InputFormatError(f"{name} has no columns; a shadow data set needs at least one qubit", path=path)
    if a.shape[0] == 0:
        raise InputFormatError(f"no snapshots: {name} has shape {a.shape}", path=path)
    bad = (a < 0) | (a > max_code)
    if bad.any():
        s, q = np.unravel_index(int(np.argmax(bad)), a.shape)
        allowed = "0 or 1" if max_code == 1 else "0, 1 or 2 (X, Y, Z)"
        raise InputFormatError(f"{name}[{s}, {q}] = {a[s, q]} (snapshot {s}, qubit {q}); expected {allowed}", path=path)


def _save_npy(path: Path, a: np.ndarray) -> None:
    # Through a file handle so numpy does not append ".npy" to the temporary name.
    with open(path, "wb") as fh:
        np.save(fh, a, allow_pickle=False)
