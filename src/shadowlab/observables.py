"""Readers and writers of observable files, returning :class:`~shadowlab.paulis.PauliSum`.

Formats (names in :data:`OBSERVABLE_FORMATS`):

``"reference"``
    The observable format of Huang et al.'s reference implementation: the number of qubits
    ``n`` on the first line, then one observable per line as ``k P q P q ...`` (``k`` = number
    of pairs, ``P`` in X/Y/Z, ``q`` a 0-based qubit), optionally followed by a positive weight,
    e.g. ``2 X 0 Y 1`` or ``2 X 0 Y 1 0.5``. A line ``0`` is the identity.
``"terms"``
    One term per line, ``[coefficient] <label>``: ``0.5 X0 Z3``, ``-1.2 XZIIY`` or just
    ``X0 Z1`` (coefficient 1). Labels are dense (``I``/``X``/``Y``/``Z``, qubit 0 first) or
    sparse (letter-qubit pairs); a lone ``I`` is the identity on any number of qubits. ``#``
    starts a comment. An optional header ``n = 10`` before the first term fixes the number of
    qubits; without it ``n`` is the length of the dense labels (which must all agree) or else
    1 + the largest qubit index.
``"molecule-alternating"``
    Molecular Hamiltonians as alternating lines: a dense label, then its coefficient as a
    Python complex literal such as ``(0.17+0j)``.
``"molecule-json"``
    ``{"paulis": [{"label": "IZXY", "coeff": {"real": r, "imag": i}}, ...]}``.

Common rules: blank lines (including a trailing newline) and trailing whitespace are ignored in
every text format, and line numbers in errors are physical 1-based line numbers. Every problem
raises :class:`~shadowlab.errors.InputFormatError` naming the file and line, what was expected
and what was found. Coefficients must be real: a Hamiltonian is Hermitian, so an imaginary part
above ``1e-12`` is an error. Identity terms are kept (as a weight-0
:class:`~shadowlab.paulis.PauliString`), because they shift energies. Duplicate terms are kept
as they are, not merged.

Two pitfalls of the reference tool are deliberately not reproduced: it treats a line with a
trailing space as having weight 0 (so the observable is silently never measured), and it reads
the empty remainder of the header line as an extra identity observable.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from shadowlab.atomic import atomic_path
from shadowlab.errors import InputFormatError, ShadowlabError
from shadowlab.paulis import CODE_OF_LETTER, LETTERS, PauliString, PauliSum

OBSERVABLE_FORMATS: tuple[str, ...] = ("reference", "terms", "molecule-alternating", "molecule-json")
"""Observable file formats :func:`read_observables` understands."""

StrPath = str | os.PathLike[str]

IMAG_TOLERANCE = 1e-12
"""Largest imaginary part of a coefficient that is treated as rounding noise and dropped."""

_UINT = re.compile(r"[0-9]+")
_DENSE = re.compile(r"[IXYZ]+")
_N_HEADER = re.compile(r"n\s*=\s*(\S*)", re.IGNORECASE)


# --- reference format ----------------------------------------------------------------------


def read_reference_observables(path: StrPath) -> tuple[PauliSum, np.ndarray]:
    """Read the reference observable format (``n``, then ``k P q P q ... [weight]`` lines).

    Parameters
    ----------
    path:
        The file.

    Returns
    -------
    observables : PauliSum
        One term per observable, coefficients 1.
    weights : numpy.ndarray
        ``(len(observables),)`` float64 weight per observable; 1.0 where the line gives none.

    Raises
    ------
    InputFormatError
        On a missing header, ``k`` not matching the number of pairs, an unknown letter, a qubit
        ``>= n`` or repeated, a weight that is not a positive finite number, or no observables.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "obs.txt"
    >>> _ = f.write_text("3\\n2 X 0 Y 1\\n1 Z 2 0.5\\n")
    >>> obs, w = read_reference_observables(f)
    >>> obs.labels, w.tolist()
    (('X0 Y1', 'Z2'), [1.0, 0.5])
    """
    p = Path(path)
    lines = _content_lines(_read_text(p))
    if not lines:
        raise InputFormatError("the file is empty; expected the number of qubits n on the first line", path=p)
    header_no, header = lines[0]
    if not (_UINT.fullmatch(header) and int(header) >= 1):
        raise InputFormatError(
            f"missing header: the first line must be the number of qubits n (a positive integer), found {header!r}",
            path=p,
            line=header_no,
        )
    n = int(header)
    terms: list[PauliString] = []
    weights: list[float] = []
    for line_no, text in lines[1:]:
        term, weight = _parse_reference_line(text, n, p, line_no)
        terms.append(term)
        weights.append(weight)
    if not terms:
        raise InputFormatError(f"no observables: the file has the header (n = {n}) but no observable lines", path=p)
    return PauliSum(n, tuple(terms), np.ones(len(terms))), np.asarray(weights, dtype=np.float64)


def _parse_reference_line(text: str, n: int, path: Path, line_no: int) -> tuple[PauliString, float]:
    tokens = text.split()

    def fail(message: str) -> InputFormatError:
        return InputFormatError(message, path=path, line=line_no)

    if not _UINT.fullmatch(tokens[0]):
        raise fail(f"expected the number of pairs k (a non-negative integer) as the first token, found {tokens[0]!r}")
    k = int(tokens[0])
    expected = 1 + 2 * k
    if len(tokens) not in (expected, expected + 1):
        raise fail(
            f"k = {k} needs {expected} tokens ('{k}' then {k} pairs '<X|Y|Z> <qubit>'), optionally followed by a "
            f"weight, found {len(tokens)} tokens; does k match the number of pairs?"
        )
    pairs: dict[int, int] = {}
    for j in range(k):
        letter, qubit = tokens[1 + 2 * j], tokens[2 + 2 * j]
        if letter not in CODE_OF_LETTER:
            raise fail(f"pair {j + 1}: expected a Pauli letter X, Y or Z, found {letter!r}")
        if not _UINT.fullmatch(qubit):
            raise fail(f"pair {j + 1}: expected a qubit index 0..{n - 1}, found {qubit!r}")
        q = int(qubit)
        if q >= n:
            raise fail(f"pair {j + 1}: qubit {q} is out of range; the header says n = {n} (indices 0..{n - 1})")
        if q in pairs:
            raise fail(f"pair {j + 1}: qubit {q} appears twice in one observable")
        pairs[q] = CODE_OF_LETTER[letter]
    weight = 1.0
    if len(tokens) == expected + 1:
        weight = _parse_real(tokens[-1])
        if weight is None or not (math.isfinite(weight) and weight > 0):
            raise fail(
                f"expected a positive finite weight after the {k} pairs, found {tokens[-1]!r} (or k = {k} does "
                "not match the number of pairs)"
            )
    qubits = tuple(sorted(pairs))
    return PauliString(qubits, tuple(pairs[q] for q in qubits)), weight


def write_reference_observables(
    observables: PauliSum, path: StrPath, *, weights: np.ndarray | None = None, force: bool = False
) -> None:
    """Write ``observables`` in the reference format, one ``k P q P q ... [weight]`` line each.

    Parameters
    ----------
    observables:
        The observables; all coefficients must be 1 (the format has no coefficients; use
        :func:`write_terms` for a weighted sum).
    path:
        Output file.
    weights:
        Optional positive finite weight per observable, written at the end of each line.
    force:
        Overwrite an existing file.

    Raises
    ------
    ShadowlabError
        If a coefficient is not 1, there are no observables, or the weights are invalid.
    """
    if len(observables) == 0:
        raise ShadowlabError("no observables to write")
    if not np.all(observables.coeffs == 1.0):
        raise ShadowlabError(
            "the reference observable format has no coefficients, and these observables have coefficients other "
            "than 1; write them with write_terms instead"
        )
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(observables),):
            raise ShadowlabError(f"need one weight per observable: {len(observables)} observables, weights {w.shape}")
        if not np.all(np.isfinite(w) & (w > 0)):
            raise ShadowlabError("weights must be positive finite numbers")
    lines = [str(observables.n_qubits)]
    for i, term in enumerate(observables.terms):
        fields = [str(term.weight)]
        fields += [f"{LETTERS[c]} {q}" for q, c in zip(term.qubits, term.codes, strict=True)]
        if w is not None:
            fields.append(repr(float(w[i])))  # repr round-trips a float exactly
        lines.append(" ".join(fields))
    _write_lines(path, lines, force=force)


# --- one term per line ---------------------------------------------------------------------


def read_terms(path: StrPath, *, n_qubits: int | None = None) -> PauliSum:
    """Read one ``[coefficient] <label>`` term per line, with ``#`` comments and optional ``n = N``.

    Parameters
    ----------
    path:
        The file.
    n_qubits:
        System size to use when the file states none (no header, only sparse labels), e.g. the
        data set's; without it such a file is taken to span 1 + its largest qubit index.

    Returns
    -------
    PauliSum
        The terms in file order with their coefficients (1 where none is given).

    Raises
    ------
    InputFormatError
        On an unparsable coefficient or label, a label that does not fit ``n``, dense labels of
        different lengths, or no terms.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "h.txt"
    >>> _ = f.write_text("# a Hamiltonian\\nn = 3\\n0.5 X0 Z2\\n-1.5 IYI\\nZ1\\n")
    >>> h = read_terms(f)
    >>> h.n_qubits, h.labels, h.coeffs.tolist()
    (3, ('X0 Z2', 'Y1', 'Z1'), [0.5, -1.5, 1.0])
    """
    p = Path(path)
    lines = _content_lines(_read_text(p), comment="#")
    n: int | None = None
    terms: list[PauliString] = []
    coeffs: list[float] = []
    where: list[tuple[int, str, bool]] = []  # (line, label, is dense) per term, to check against n
    for line_no, text in lines:
        header = _N_HEADER.fullmatch(text)
        if header:
            if terms or n is not None:
                raise InputFormatError("the header 'n = N' must come once, before the first term", path=p, line=line_no)
            value = header.group(1)
            if not (_UINT.fullmatch(value) and int(value) >= 1):
                raise InputFormatError(f"expected 'n = <positive integer>', found {text!r}", path=p, line=line_no)
            n = int(value)
            continue
        if not terms and n is None and _UINT.fullmatch(text):
            raise InputFormatError(
                f"found a lone integer {text!r} as the first line: that is the header of the 'reference' observable "
                "format ('k P q ...' lines); in a 'terms' file write the qubit count as 'n = N'",
                path=p,
                line=line_no,
            )
        coeff, label = _split_coefficient(text, p, line_no)
        term = _parse_label(label, p, line_no)
        terms.append(term)
        coeffs.append(coeff)
        where.append((line_no, label, label != "I" and bool(_DENSE.fullmatch(label))))
    if not terms:
        raise InputFormatError("no terms: the file has no term lines", path=p)
    n = _resolve_qubit_count(n, terms, where, p, default=n_qubits)
    return PauliSum(n, tuple(terms), np.asarray(coeffs))


def _split_coefficient(text: str, path: Path, line_no: int) -> tuple[float, str]:
    """Split ``'[coefficient] label'``; the coefficient is present when the first token is a number."""
    parts = text.split(maxsplit=1)
    coeff = _parse_real(parts[0])
    if coeff is None:
        return 1.0, text
    if not math.isfinite(coeff):
        raise InputFormatError(f"expected a finite coefficient, found {parts[0]!r}", path=path, line=line_no)
    if len(parts) == 1:
        raise InputFormatError(
            f"expected a Pauli label after the coefficient {parts[0]!r} (e.g. '{parts[0]} X0 Z1'), found nothing",
            path=path,
            line=line_no,
        )
    return coeff, parts[1].strip()


def _parse_label(label: str, path: Path, line_no: int) -> PauliString:
    if label == "I":
        return PauliString((), ())
    try:
        return PauliString.from_label(label)
    except ShadowlabError as exc:
        raise InputFormatError(
            f"expected a Pauli label, dense ('XIZY', qubit 0 first) or sparse ('X0 Z3'), found {label!r} ({exc})",
            path=path,
            line=line_no,
        ) from None


def _resolve_qubit_count(
    n: int | None, terms: list[PauliString], where: list[tuple[int, str, bool]], p: Path, *, default: int | None = None
) -> int:
    """Infer or check ``n`` against every term, naming the first offending line."""
    dense = [(line, len(label)) for line, label, is_dense in where if is_dense]
    source = "the header"
    if n is None and dense:
        n = dense[0][1]
        source = f"the dense label on line {dense[0][0]}"
    if n is None and default is not None:
        n = default
        source = "the data set"
    if n is None:
        return 1 + max((t.qubits[-1] for t in terms if t.qubits), default=0)
    for term, (line, label, is_dense) in zip(terms, where, strict=True):
        if is_dense and len(label) != n:
            raise InputFormatError(
                f"dense label {label!r} has {len(label)} letters, but {source} gives {n} qubits; all dense labels "
                "must have one letter per qubit",
                path=p,
                line=line,
            )
        if term.qubits and term.qubits[-1] >= n:
            raise InputFormatError(
                f"{label!r} acts on qubit {term.qubits[-1]}, but {source} gives {n} qubits (indices 0..{n - 1})",
                path=p,
                line=line,
            )
    return n


def write_terms(observables: PauliSum, path: StrPath, *, dense: bool = False, force: bool = False) -> None:
    """Write ``observables`` as an ``n = N`` header and ``coefficient label`` lines.

    Coefficients are written with ``repr`` so that they read back bit-exactly.

    Parameters
    ----------
    observables:
        The terms.
    path:
        Output file.
    dense:
        Write dense labels (``XIZ``) instead of sparse ones (``X0 Z2``); the identity is ``I``
        either way.
    force:
        Overwrite an existing file.
    """
    if len(observables) == 0:
        raise ShadowlabError("no terms to write")
    n = observables.n_qubits
    lines = [f"n = {n}"]
    for coeff, term in zip(observables.coeffs, observables.terms, strict=True):
        label = term.to_dense(n) if dense and term.weight else term.to_sparse()
        lines.append(f"{float(coeff)!r} {label}")
    _write_lines(path, lines, force=force)


# --- molecular Hamiltonians ----------------------------------------------------------------


def read_molecule_alternating(path: StrPath) -> PauliSum:
    """Read a molecular Hamiltonian of alternating label / complex-coefficient lines.

    Parameters
    ----------
    path:
        The file: a dense label (``IZXY``, one letter per qubit, qubit 0 first), then its
        coefficient as a Python complex literal (``(0.17+0j)``) or a real number, repeated.

    Returns
    -------
    PauliSum
        The Hamiltonian, identity term included.

    Raises
    ------
    InputFormatError
        On a label or coefficient out of place, labels of different lengths, or a
        coefficient with an imaginary part above :data:`IMAG_TOLERANCE`.
    """
    p = Path(path)
    lines = _content_lines(_read_text(p))
    if not lines:
        raise InputFormatError("the file is empty; expected a Pauli label, then its coefficient", path=p)
    terms: list[PauliString] = []
    coeffs: list[float] = []
    n = len(lines[0][1])
    for i in range(0, len(lines), 2):
        label_no, label = lines[i]
        if not _DENSE.fullmatch(label):
            found = "a coefficient" if _parse_complex(label) is not None else repr(label)
            raise InputFormatError(
                f"expected a Pauli label of I, X, Y, Z (labels and coefficients alternate), found {found}",
                path=p,
                line=label_no,
            )
        if len(label) != n:
            raise InputFormatError(
                f"label {label!r} has {len(label)} letters, but the first label (line {lines[0][0]}) has {n}; "
                "every label needs one letter per qubit",
                path=p,
                line=label_no,
            )
        if i + 1 == len(lines):
            raise InputFormatError(f"label {label!r} has no coefficient line after it", path=p, line=label_no)
        coeff_no, coeff_text = lines[i + 1]
        value = _parse_complex(coeff_text)
        if value is None:
            raise InputFormatError(
                f"expected the coefficient of {label!r} as a number such as (0.17+0j), found {coeff_text!r}",
                path=p,
                line=coeff_no,
            )
        coeffs.append(_real_coefficient(value, coeff_text, p, coeff_no))
        terms.append(PauliString.from_pairs((ch, q) for q, ch in enumerate(label) if ch != "I"))
    return PauliSum(n, tuple(terms), np.asarray(coeffs))


def read_molecule_json(path: StrPath) -> PauliSum:
    """Read a molecular Hamiltonian ``{"paulis": [{"label": ..., "coeff": {"real": r, "imag": i}}]}``.

    A coefficient may also be a plain real number. Errors about an entry name its index and,
    where it can be located, its line.

    Parameters
    ----------
    path:
        The JSON file.

    Returns
    -------
    PauliSum
        The Hamiltonian, identity term included.

    Raises
    ------
    InputFormatError
        On invalid JSON, a missing ``paulis`` list, a malformed entry, labels of different
        lengths, or a coefficient with an imaginary part above :data:`IMAG_TOLERANCE`.
    """
    p = Path(path)
    text = _read_text(p)
    if not text.strip():
        raise InputFormatError('the file is empty; expected {"paulis": [...]}', path=p)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=p, line=exc.lineno) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("paulis"), list):
        raise InputFormatError('expected a JSON object {"paulis": [...]} with a list of terms', path=p)
    entries = doc["paulis"]
    if not entries:
        raise InputFormatError("no terms: the 'paulis' list is empty", path=p)
    # Entries carry no line numbers after json.loads; every entry has exactly one "label" key
    # (label values are plain letters), so the k-th "label" key in the text is entry k's.
    label_lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r'"label"\s*:', text)]
    if len(label_lines) != len(entries):
        label_lines = []

    def fail(k: int, message: str) -> InputFormatError:
        return InputFormatError(f"paulis[{k}]: {message}", path=p, line=label_lines[k] if label_lines else None)

    terms: list[PauliString] = []
    coeffs: list[float] = []
    n = None
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or "label" not in entry or "coeff" not in entry:
            raise fail(k, f'expected {{"label": ..., "coeff": ...}}, found {json.dumps(entry)[:80]}')
        label = entry["label"]
        if not (isinstance(label, str) and _DENSE.fullmatch(label)):
            raise fail(k, f"expected a Pauli label of I, X, Y, Z, found {label!r}")
        if n is None:
            n = len(label)
        elif len(label) != n:
            raise fail(k, f"label {label!r} has {len(label)} letters, but paulis[0] has {n}")
        coeff = entry["coeff"]
        if isinstance(coeff, dict) and "real" in coeff:
            re_part, im_part = coeff["real"], coeff.get("imag", 0.0)
        else:
            re_part, im_part = coeff, 0.0
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (re_part, im_part)):
            raise fail(k, f'expected the coefficient as {{"real": r, "imag": i}} or a number, found {coeff!r}')
        if not math.isfinite(re_part):
            raise fail(k, f"expected a finite coefficient, found {coeff!r}")
        if abs(im_part) > IMAG_TOLERANCE:
            raise fail(k, _imaginary_message(f"{re_part}{im_part:+}j"))
        coeffs.append(float(re_part))
        terms.append(PauliString.from_pairs((ch, q) for q, ch in enumerate(label) if ch != "I"))
    assert n is not None
    return PauliSum(n, tuple(terms), np.asarray(coeffs))


def _real_coefficient(value: complex, text: str, path: Path, line_no: int) -> float:
    if not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise InputFormatError(f"expected a finite coefficient, found {text!r}", path=path, line=line_no)
    if abs(value.imag) > IMAG_TOLERANCE:
        raise InputFormatError(_imaginary_message(text), path=path, line=line_no)
    return value.real


def _imaginary_message(found: str) -> str:
    return (
        f"coefficient {found} has a nonzero imaginary part (above {IMAG_TOLERANCE:g}); a Hamiltonian is Hermitian, "
        "so its Pauli coefficients must be real"
    )


# --- dispatch ------------------------------------------------------------------------------


def detect_observable_format(path: StrPath) -> str:
    """Tell which of :data:`OBSERVABLE_FORMATS` a file is in, from its extension and first lines.

    ``.json`` or a leading ``{`` -> ``"molecule-json"``; a lone integer on the first line ->
    ``"reference"``; a dense label followed by a line holding only a number ->
    ``"molecule-alternating"``; anything else -> ``"terms"``.
    """
    p = Path(path)
    text = _read_text(p)
    if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return "molecule-json"
    first_two = []
    for _, line in _iter_content_lines(text, comment="#"):
        first_two.append(line)
        if len(first_two) == 2:
            break
    if not first_two:
        raise InputFormatError("the file is empty; no observables to read", path=p)
    if _UINT.fullmatch(first_two[0]):
        return "reference"
    if _DENSE.fullmatch(first_two[0]) and len(first_two) == 2 and _parse_complex(first_two[1]) is not None:
        return "molecule-alternating"
    return "terms"


def read_observables(path: StrPath, fmt: str | None = None, *, n_qubits: int | None = None) -> PauliSum:
    """Read an observable file in any of :data:`OBSERVABLE_FORMATS`.

    For the ``"reference"`` format the per-observable weights are dropped; use
    :func:`read_reference_observables` to get them.

    Parameters
    ----------
    path:
        The file.
    fmt:
        The format; detected with :func:`detect_observable_format` when omitted.
    n_qubits:
        System size for files that state none (see :func:`read_terms`); files that state one
        keep it, so a mismatch with the data is still caught.
    """
    fmt = detect_observable_format(path) if fmt is None else fmt
    if fmt == "reference":
        return read_reference_observables(path)[0]
    if fmt == "terms":
        return read_terms(path, n_qubits=n_qubits)
    if fmt == "molecule-alternating":
        return read_molecule_alternating(path)
    if fmt == "molecule-json":
        return read_molecule_json(path)
    raise ShadowlabError(f"unknown observable format {fmt!r}; expected one of {', '.join(OBSERVABLE_FORMATS)}")


# --- helpers -------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # -sig: tolerate a byte-order mark from Windows editors
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputFormatError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", path=path, line=line) from None


def _iter_content_lines(text: str, *, comment: str | None = None) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, stripped text)`` of the non-blank lines, comments removed."""
    for line_no, line in enumerate(text.split("\n"), start=1):
        if comment is not None:
            line = line.split(comment, 1)[0]
        stripped = line.strip()
        if stripped:
            yield line_no, stripped


def _content_lines(text: str, *, comment: str | None = None) -> list[tuple[int, str]]:
    return list(_iter_content_lines(text, comment=comment))


def _parse_real(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def _parse_complex(token: str) -> complex | None:
    try:
        return complex(token)
    except ValueError:
        return None


def _write_lines(path: StrPath, lines: list[str], *, force: bool) -> None:
    with atomic_path(path, force=force) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
