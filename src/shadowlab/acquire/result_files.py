"""Import measurement results saved by Qiskit or Amazon Braket into shadowlab outcomes.

An experiment run from a measurement plan (a :class:`~shadowlab.plan.scheme.Scheme`) executes one
circuit per setting ``g`` -- prepare the state, rotate qubit ``q`` into the basis
``settings[g, q]``, measure every qubit -- ``repeats[g]`` times. The readers here turn the saved
results of those circuits back into the outcome array shadowlab estimates from:

* ``(scheme.n_snapshots, n_qubits)`` uint8, snapshot-major, qubit 0 first;
* 0 = eigenvalue +1 and 1 = eigenvalue -1 of the measured Pauli (bit 0 of a Z-basis measurement
  after the basis rotation);
* all shots of setting 0 first, then setting 1, ... (plan order), so that
  ``ShadowData.from_settings(scheme.settings, scheme.repeats, outcomes)`` is the data set.

Nothing here imports Qiskit or Braket: the files are plain JSON.

Circuit names and programs
--------------------------
Setting circuits made by shadowlab (:func:`shadowlab.acquire.qiskit_backend.setting_circuits_qiskit`)
are named ``shadowlab_<index>_<LETTERS>`` -- the setting's index in the plan and its basis letters,
qubit 0 first (:func:`setting_circuit_name`). Where a file records circuit names, the readers check
them against the plan (the indices must be consecutive, so a file holding a later slice of a plan,
with indices starting at some offset, is accepted). Braket results record the program that ran;
its measurement-basis rotations (the gates after the last ``barrier``) are checked against the plan.
``check_circuits=False`` skips both checks (shapes and shot counts are always checked).

Qiskit bit order
----------------
Qiskit bit strings are little-endian: the **rightmost** character is classical bit 0, and hex
keys such as ``"0x5"`` are the integer ``sum_k bit_k 2^k``. shadowlab's setting circuits measure
qubit ``q`` into classical bit ``q``, so classical bit ``q`` is the outcome of qubit ``q``:
``"0011"`` on four qubits means qubits 0 and 1 read 1 (eigenvalue -1), qubits 2 and 3 read 0.

Qiskit result files (:func:`read_qiskit_results`)
-------------------------------------------------
One JSON file, one entry per setting in plan order, in any of these forms:

(a) ``qiskit.result.Result.to_dict()`` (e.g. ``json.dump(result.to_dict(), f, default=str)``),
    optionally wrapped as ``{"__type__": "Result", "__value__": ...}``: ``results[i].data`` holds
    ``memory`` (one hex string -- or bit string -- per shot; used when present, shot order kept)
    or ``counts`` (hex or bit-string keys); ``results[i].header`` holds the circuit ``name`` and
    ``memory_slots`` (the number of classical bits, which must equal the plan's qubit count).
(b) A JSON list with one item per setting: a counts dict (bit-string keys, little-endian, spaces
    between registers ignored; ``"0x.."`` hex keys accepted too) or a list of per-shot bit
    strings (or hex outcomes). No names are recorded, so only bit counts and shot totals can be
    checked.
(c) shadowlab's own format, written by :func:`write_qiskit_results` (and by
    ``QiskitAerBackend.run_batch(save_to=...)``)::

        {"format": "shadowlab-qiskit-results", "version": 1,
         "metadata": {...provenance...},
         "pubs": [{"name": "shadowlab_0_XZY", "num_bits": 3, "shots": 2,
                   "bitstrings": ["010", "110"]}, ...]}

    one pub per setting in plan order; ``bitstrings`` are per shot in shot order (Qiskit's
    little-endian strings, as ``BitArray.get_bitstrings()`` gives them); a pub may give
    ``"counts"`` (bit-string keys) instead.
(d) A SamplerV2 ``PrimitiveResult`` serialized with ``qiskit_ibm_runtime.RuntimeEncoder`` (read
    without that package): per pub a ``DataBin`` whose single classical register (or the one
    named ``meas``) is a ``BitArray`` (packed bytes, ``np.save`` + zlib + base64). Pubs must
    have scalar shape (no parameter sweeps). Names are checked when the pub metadata carries
    shadowlab's circuit metadata (Aer's SamplerV2 passes it through as ``circuit_metadata``).

From counts the order of the shots within a setting is lost: they are expanded
deterministically, sorted by bit string (ascending, i.e. by the integer the string encodes),
each repeated by its count. With per-shot memory or bit strings the shot order is kept.

Braket result files (:func:`read_braket_results`)
-------------------------------------------------
Braket ``GateModelTaskResult`` JSON (the ``results.json`` Braket writes to S3, and what
``braket.task_result.GateModelTaskResult.json()`` gives), one per setting in plan order: a
directory of ``*.json`` files (sorted by name, numbers compared numerically, so ``task_2``
precedes ``task_10``), an explicit list of files, or one JSON file holding a list of results.
``measurements[s][j]`` is the bit of qubit ``measuredQubits[j]`` in shot ``s``; the measured
qubits must be exactly ``0 .. n-1`` (in any order). ``additionalMetadata.action.source`` (the
OpenQASM 3 program) is checked: after its last ``barrier``, qubit ``q`` must see exactly the
plan's rotation (``h`` for X, ``si`` then ``h`` for Y, nothing for Z; noise pragmas and
measurements are ignored). Circuits made by ``setting_circuits_braket`` have that barrier.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shadowlab.atomic import atomic_path
from shadowlab.errors import InputFormatError, ShadowlabError
from shadowlab.plan.scheme import LETTERS, Scheme

__all__ = [
    "BRAKET_RESULT_SCHEMA",
    "QISKIT_FORMAT",
    "QISKIT_FORMAT_VERSION",
    "QISKIT_REGISTER",
    "braket_record_outcomes",
    "check_settings",
    "check_settings_repeats",
    "read_braket_bits",
    "read_braket_results",
    "read_qiskit_bits",
    "read_qiskit_results",
    "setting_circuit_name",
    "setting_labels",
    "write_braket_results",
    "write_qiskit_results",
]

#: ``format`` field of shadowlab's Qiskit result files.
QISKIT_FORMAT = "shadowlab-qiskit-results"
QISKIT_FORMAT_VERSION = 1
#: Name of the classical register shadowlab's Qiskit setting circuits measure into.
QISKIT_REGISTER = "meas"
#: ``braketSchemaHeader.name`` of a Braket gate-model task result.
BRAKET_RESULT_SCHEMA = "braket.task_result.gate_model_task_result"

_NAME_RE = re.compile(r"shadowlab_(\d+)_([XYZ]+)")
_HEX_RE = re.compile(r"0[xX][0-9a-fA-F]+")
# Rotation gates before a Z-basis measurement, per basis code (0/1/2 = X/Y/Z), as Braket names them.
_BRAKET_ROTATIONS: tuple[tuple[str, ...], ...] = (("h",), ("si", "h"), ())
_BRAKET_ALIASES = {"sdg": "si"}


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def setting_labels(settings: np.ndarray) -> list[str]:
    """Letters (X/Y/Z, qubit 0 first) of each row of a ``(G, n)`` array of basis codes 0/1/2."""
    table = np.frombuffer(LETTERS.encode(), dtype=np.uint8)
    return [table[row].tobytes().decode() for row in np.asarray(settings, dtype=np.uint8)]


def setting_circuit_name(index: int, label: str) -> str:
    """The name shadowlab gives the circuit of setting ``index`` with letters ``label``.

    Examples
    --------
    >>> setting_circuit_name(7, "XZY")
    'shadowlab_7_XZY'
    """
    return f"shadowlab_{int(index)}_{label}"


def check_settings(settings: Any, n_qubits: int) -> np.ndarray:
    """Validate ``(G, n_qubits)`` basis codes 0/1/2 (``G >= 1``); returns contiguous uint8.

    A :class:`~shadowlab.plan.scheme.Scheme` stands for its settings.
    """
    s = np.asarray(getattr(settings, "settings", settings))
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] != n_qubits:
        raise ShadowlabError(f"settings must be a non-empty (n_settings, {n_qubits}) array of basis codes, "
                             f"got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.integer) or s.min() < 0 or s.max() > 2:
        raise ShadowlabError("settings must hold basis codes 0/1/2 (X/Y/Z)")
    return np.ascontiguousarray(s, dtype=np.uint8)


def check_settings_repeats(settings: Any, repeats: Any, n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch: ``(G, n_qubits)`` basis codes 0/1/2 and ``G`` positive repeat counts.

    Returns the settings as contiguous uint8 and the repeats as int64; raises
    :class:`ShadowlabError` naming the argument otherwise.
    """
    s = check_settings(settings, n_qubits)
    r = np.asarray(repeats)
    if r.shape != (s.shape[0],):
        raise ShadowlabError(f"repeats must have one count per setting: {s.shape[0]} settings, repeats shape {r.shape}")
    if not np.issubdtype(r.dtype, np.integer) or r.min() < 1:
        raise ShadowlabError("repeats must be positive integers")
    return s, r.astype(np.int64)


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ShadowlabError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ShadowlabError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"not UTF-8 text ({exc.reason}); expected JSON", path=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno) from None


def _write_json(path: Path, doc: Any, force: bool) -> None:
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Qiskit
# --------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One circuit's results: where in the file, the recorded name and bit count, the outcome rows."""

    where: str
    name: str | None
    num_bits: int | None
    rows: np.ndarray
    declared_shots: int | None = None


def _bitstrings_to_rows(strings: Sequence[str], n: int, where: str, path: Path) -> np.ndarray:
    """Little-endian Qiskit bit strings (rightmost = bit 0) to ``(len, n)`` outcome rows."""
    if not strings:
        return np.zeros((0, n), dtype=np.uint8)
    cleaned = []
    for s in strings:
        if not isinstance(s, str):
            raise InputFormatError(f"{where}: expected bit strings, found {type(s).__name__} {s!r}", path=path)
        c = s.replace(" ", "")
        if len(c) != n:
            raise InputFormatError(f"{where}: bit string {s!r} has {len(c)} bits, but the plan has {n} qubits "
                                   "(the setting circuits measure every qubit into its own classical bit)", path=path)
        cleaned.append(c)
    raw = np.frombuffer("".join(cleaned).encode("ascii", errors="replace"), dtype=np.uint8).reshape(-1, n)
    bits = raw - np.uint8(ord("0"))
    if bits.max() > 1:
        bad = next(s for s in strings if set(s.replace(" ", "")) - {"0", "1"})
        raise InputFormatError(f"{where}: {bad!r} is not a string of 0s and 1s", path=path)
    return np.ascontiguousarray(bits[:, ::-1])


def _hex_to_bitstrings(values: Sequence[str], n: int, where: str, path: Path) -> list[str]:
    out = []
    for v in values:
        if not isinstance(v, str) or not _HEX_RE.fullmatch(v):
            raise InputFormatError(f"{where}: expected a hex outcome such as '0x5', found {v!r}", path=path)
        x = int(v, 16)
        if x >> n:
            raise InputFormatError(f"{where}: outcome {v} has more than {n} bits, but the plan has {n} qubits",
                                   path=path)
        out.append(format(x, f"0{n}b"))
    return out


def _shots_to_rows(values: list[Any], n: int, where: str, path: Path) -> np.ndarray:
    """Per-shot outcomes, all hex (``"0x5"``) or all bit strings, to rows in shot order."""
    if values and all(isinstance(v, str) and _HEX_RE.fullmatch(v) for v in values):
        values = _hex_to_bitstrings(values, n, where, path)
    return _bitstrings_to_rows(values, n, where, path)


def _counts_to_rows(counts: Any, n: int, where: str, path: Path) -> np.ndarray:
    """Expand a counts dict into rows, sorted by bit string (see the module docs)."""
    if not isinstance(counts, Mapping):
        raise InputFormatError(f"{where}: expected a counts object {{bitstring: count}}, found "
                               f"{type(counts).__name__}", path=path)
    merged: dict[str, int] = {}
    for key, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InputFormatError(f"{where}: count of {key!r} must be a non-negative integer, got {count!r}",
                                   path=path)
        if isinstance(key, str) and _HEX_RE.fullmatch(key):
            bits = _hex_to_bitstrings([key], n, where, path)[0]
        else:
            bits = str(key).replace(" ", "")
            _bitstrings_to_rows([bits], n, where, path)  # validates length and characters
        merged[bits] = merged.get(bits, 0) + count
    keys = sorted(merged)
    rows = _bitstrings_to_rows(keys, n, where, path)
    return np.repeat(rows, np.array([merged[k] for k in keys], dtype=np.int64), axis=0)


def _decode_ndarray(obj: Any, where: str, path: Path) -> np.ndarray:
    if isinstance(obj, Mapping) and obj.get("__type__") == "ndarray":
        value = obj.get("__value__")
        if isinstance(value, list):
            return np.asarray(value, dtype=np.uint8)
        if isinstance(value, str):
            try:
                raw = zlib.decompress(base64.standard_b64decode(value))
                return np.load(io.BytesIO(raw), allow_pickle=False)
            except (binascii.Error, zlib.error, ValueError, OSError) as exc:
                raise InputFormatError(f"{where}: cannot decode the encoded BitArray array ({exc})",
                                       path=path) from None
    raise InputFormatError(f"{where}: expected an encoded ndarray ({{'__type__': 'ndarray', ...}})", path=path)


def _runtime_entries(doc: Mapping[str, Any], n: int, path: Path) -> list[_Entry]:
    value = doc.get("__value__")
    pubs = value.get("pub_results") if isinstance(value, Mapping) else None
    if not isinstance(pubs, list):
        raise InputFormatError("a PrimitiveResult without a 'pub_results' list", path=path)
    entries = []
    for i, pub in enumerate(pubs):
        where = f"pub_results[{i}]"
        body = pub.get("__value__") if isinstance(pub, Mapping) else None
        data = body.get("data") if isinstance(body, Mapping) else None
        fields_doc = data.get("__value__") if isinstance(data, Mapping) else None
        fields = fields_doc.get("fields") if isinstance(fields_doc, Mapping) else None
        if not isinstance(fields, Mapping) or not fields:
            raise InputFormatError(f"{where}: expected a sampler pub result with a DataBin of classical registers",
                                   path=path)
        shape = fields_doc.get("shape")
        if shape not in (None, [], ()):
            raise InputFormatError(f"{where}: pub has shape {shape}; only scalar pubs (no parameter sweeps, one "
                                   "circuit per setting) can be read", path=path)
        if len(fields) == 1:
            register = next(iter(fields))
        elif QISKIT_REGISTER in fields:
            register = QISKIT_REGISTER
        else:
            raise InputFormatError(f"{where}: registers {sorted(fields)}; expected one classical register "
                                   f"(or one named {QISKIT_REGISTER!r})", path=path)
        bit_array = fields[register]
        bits_doc = bit_array.get("__value__") if isinstance(bit_array, Mapping) else None
        if not isinstance(bits_doc, Mapping) or "num_bits" not in bits_doc or "array" not in bits_doc:
            raise InputFormatError(f"{where}: register {register!r} is not an encoded BitArray", path=path)
        num_bits = bits_doc["num_bits"]
        if not isinstance(num_bits, int):
            raise InputFormatError(f"{where}: BitArray num_bits must be an integer", path=path)
        packed = _decode_ndarray(bits_doc["array"], where, path)
        n_bytes = (num_bits + 7) // 8
        if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != n_bytes:
            raise InputFormatError(f"{where}: BitArray array must be uint8 of shape (shots, {n_bytes}), got "
                                   f"{packed.dtype} {packed.shape}", path=path)
        name = None
        meta = body.get("metadata") if isinstance(body, Mapping) else None
        circuit_meta = meta.get("circuit_metadata") if isinstance(meta, Mapping) else None
        if isinstance(circuit_meta, Mapping) and "shadowlab_setting" in circuit_meta:
            name = setting_circuit_name(int(circuit_meta.get("shadowlab_index", 0)),
                                        str(circuit_meta["shadowlab_setting"]))
        rows = np.zeros((packed.shape[0], n), dtype=np.uint8)
        if num_bits == n:
            # Bytes are big-endian and the bit string is the last num_bits bits: reverse for bit 0 first.
            rows = np.ascontiguousarray(np.unpackbits(packed, axis=1)[:, packed.shape[1] * 8 - n:][:, ::-1])
        entries.append(_Entry(where, name, num_bits, rows))
    return entries


def _result_dict_entries(doc: Mapping[str, Any], n: int, path: Path) -> list[_Entry]:
    results = doc.get("results")
    if not isinstance(results, list):
        raise InputFormatError("expected a 'results' list (qiskit Result.to_dict())", path=path)
    entries = []
    for i, res in enumerate(results):
        where = f"results[{i}]"
        if not isinstance(res, Mapping) or not isinstance(res.get("data"), Mapping):
            raise InputFormatError(f"{where}: expected an experiment result with a 'data' object", path=path)
        data = res["data"]
        header = res.get("header") if isinstance(res.get("header"), Mapping) else {}
        name = header.get("name")
        num_bits = header.get("memory_slots")
        if num_bits is None and isinstance(header.get("creg_sizes"), list):
            num_bits = sum(int(size) for _, size in header["creg_sizes"])
        if num_bits not in (None, n):
            rows = np.zeros((0, n), dtype=np.uint8)  # reported as a bit-count mismatch by _check_entries
        elif data.get("memory"):
            if not isinstance(data["memory"], list):
                raise InputFormatError(f"{where}: 'memory' must be a list of per-shot outcomes", path=path)
            rows = _shots_to_rows(data["memory"], n, where, path)
        elif "counts" in data:
            rows = _counts_to_rows(data["counts"], n, where, path)
        else:
            raise InputFormatError(f"{where}: no 'memory' or 'counts' in data (only measurement level 2 results "
                                   "can be read)", path=path)
        shots = res.get("shots")
        declared = shots if isinstance(shots, int) and not isinstance(shots, bool) else None
        entries.append(_Entry(where, name if isinstance(name, str) else None,
                              int(num_bits) if num_bits is not None else None, rows, declared))
    return entries


def _own_entries(doc: Mapping[str, Any], n: int, path: Path) -> list[_Entry]:
    version = doc.get("version")
    if version != QISKIT_FORMAT_VERSION:
        raise InputFormatError(f"{QISKIT_FORMAT} version {version!r} is not supported (expected "
                               f"{QISKIT_FORMAT_VERSION})", path=path)
    pubs = doc.get("pubs")
    if not isinstance(pubs, list):
        raise InputFormatError("expected a 'pubs' list", path=path)
    entries = []
    for i, pub in enumerate(pubs):
        where = f"pubs[{i}]"
        if not isinstance(pub, Mapping):
            raise InputFormatError(f"{where}: expected an object", path=path)
        num_bits = pub.get("num_bits")
        if not isinstance(num_bits, int):
            raise InputFormatError(f"{where}: 'num_bits' must be an integer", path=path)
        if num_bits != n:
            rows = np.zeros((0, n), dtype=np.uint8)
        elif "bitstrings" in pub:
            if not isinstance(pub["bitstrings"], list):
                raise InputFormatError(f"{where}: 'bitstrings' must be a list", path=path)
            rows = _bitstrings_to_rows(pub["bitstrings"], n, where, path)
        elif "counts" in pub:
            rows = _counts_to_rows(pub["counts"], n, where, path)
        else:
            raise InputFormatError(f"{where}: expected 'bitstrings' or 'counts'", path=path)
        shots = pub.get("shots")
        declared = shots if isinstance(shots, int) and not isinstance(shots, bool) else None
        name = pub.get("name")
        entries.append(_Entry(where, name if isinstance(name, str) else None, num_bits, rows, declared))
    return entries


def _list_entries(doc: list[Any], n: int, path: Path) -> list[_Entry]:
    entries = []
    for i, item in enumerate(doc):
        where = f"item [{i}]"
        if isinstance(item, Mapping):
            rows = _counts_to_rows(item, n, where, path)
        elif isinstance(item, list):
            rows = _shots_to_rows(item, n, where, path)
        else:
            raise InputFormatError(f"{where}: expected a counts object or a list of bit strings, found "
                                   f"{type(item).__name__}", path=path)
        entries.append(_Entry(where, None, None, rows))
    return entries


def _check_entries(entries: list[_Entry], scheme: Scheme, path: Path, check_circuits: bool) -> np.ndarray:
    n = scheme.n_qubits
    if len(entries) != scheme.n_settings:
        raise InputFormatError(f"holds results of {len(entries)} circuits, but the plan has {scheme.n_settings} "
                               "settings (one circuit per setting, in plan order)", path=path)
    labels = scheme.labels()
    offset: int | None = None
    for g, e in enumerate(entries):
        label = labels[g]
        if e.num_bits is not None and e.num_bits != n:
            raise InputFormatError(f"{e.where}: the circuit has {e.num_bits} classical bits, but the plan has {n} "
                                   "qubits (expected one bit per qubit)", path=path)
        if check_circuits and e.name is not None:
            m = _NAME_RE.fullmatch(e.name)
            expected = setting_circuit_name(g if offset is None else offset + g, label)
            if m is None:
                raise InputFormatError(f"{e.where}: circuit name {e.name!r} is not a shadowlab setting circuit "
                                       f"name; expected {expected!r} for setting {g} of the plan "
                                       "(pass check_circuits=False to skip this check)", path=path)
            index = int(m.group(1))
            if offset is None:
                offset = index - g
                expected = setting_circuit_name(index, label)
            if m.group(2) != label or index != offset + g:
                raise InputFormatError(f"{e.where}: circuit {e.name!r} does not match the plan: setting {g} is "
                                       f"{label}, expected circuit {expected!r}", path=path)
        shots = e.rows.shape[0]
        if e.declared_shots is not None and e.declared_shots != shots:
            raise InputFormatError(f"{e.where}: declares {e.declared_shots} shots but holds {shots} outcomes",
                                   path=path)
        if shots != scheme.repeats[g]:
            raise InputFormatError(f"{e.where}: {shots} shots, but the plan measures setting {g} ({label}) "
                                   f"{int(scheme.repeats[g])} times", path=path)
    return np.concatenate([e.rows for e in entries]).astype(np.uint8, copy=False)


def read_qiskit_results(path: str | os.PathLike[str], scheme: Scheme, *, check_circuits: bool = True) -> np.ndarray:
    """Outcomes of a plan from a saved Qiskit result file (formats (a)-(d) of the module docs).

    Parameters
    ----------
    path:
        The JSON file.
    scheme:
        The plan the circuits were made from: one circuit per setting, in plan order.
    check_circuits:
        Check the circuit names the file records (if any) against the plan.

    Returns
    -------
    numpy.ndarray
        ``(scheme.n_snapshots, scheme.n_qubits)`` uint8 outcomes, 0 = eigenvalue +1, qubit 0
        first, the shots of setting 0 first. Shots expanded from counts are sorted by bit string.

    Raises
    ------
    InputFormatError
        Naming the file and the entry: malformed JSON, an unknown layout, a circuit whose name
        or number of classical bits does not match the plan, a shot total different from the
        plan's repeat count, or a different number of circuits than settings.
    """
    p = Path(path)
    return _check_entries(_qiskit_entries(p, scheme.n_qubits), scheme, p, check_circuits)


def _qiskit_entries(p: Path, n: int) -> list[_Entry]:
    """Every circuit's results in a Qiskit result file (formats (a)-(d)), each ``n`` bits wide."""
    doc = _load_json(p)
    if isinstance(doc, Mapping) and doc.get("__type__") == "Result":
        doc = doc.get("__value__")
    if isinstance(doc, list):
        return _list_entries(doc, n, p)
    if isinstance(doc, Mapping) and doc.get("__type__") == "PrimitiveResult":
        return _runtime_entries(doc, n, p)
    if isinstance(doc, Mapping) and doc.get("format") == QISKIT_FORMAT:
        return _own_entries(doc, n, p)
    if isinstance(doc, Mapping) and "results" in doc:
        return _result_dict_entries(doc, n, p)
    raise InputFormatError("not a recognized Qiskit result file: expected Result.to_dict() JSON, a list of "
                           f"counts, a {QISKIT_FORMAT!r} file or a RuntimeEncoder PrimitiveResult", path=p)


def read_qiskit_bits(path: str | os.PathLike[str], n_bits: int) -> np.ndarray:
    """All measured bits of every circuit in a Qiskit result file, without a plan.

    For experiments that are not local-Pauli settings (e.g. two-copy Bell circuits): every
    circuit measured ``n_bits`` qubits into classical bits ``0..n_bits-1``.

    Returns
    -------
    numpy.ndarray
        ``(total shots, n_bits)`` uint8, column ``j`` = classical bit ``j``, circuits in file
        order (shots from counts sorted by bit string, see the module docs).
    """
    p = Path(path)
    entries = _qiskit_entries(p, n_bits)
    for e in entries:
        if e.num_bits is not None and e.num_bits != n_bits:
            raise InputFormatError(f"{e.where}: the circuit has {e.num_bits} classical bits, expected {n_bits}",
                                   path=p)
        if e.declared_shots is not None and e.declared_shots != e.rows.shape[0]:
            raise InputFormatError(f"{e.where}: declares {e.declared_shots} shots but holds {e.rows.shape[0]} "
                                   "outcomes", path=p)
    if not entries:
        raise InputFormatError("holds no circuit results", path=p)
    return np.concatenate([e.rows for e in entries]).astype(np.uint8, copy=False)


def read_braket_bits(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], n_bits: int) -> np.ndarray:
    """All measured bits of every Braket task result in ``source`` (see :func:`read_braket_results`),
    without a plan: ``(total shots, n_bits)`` uint8, column ``q`` = qubit ``q``, results in order."""
    records = _braket_records(source)
    if not records:
        raise InputFormatError("holds no Braket task results", path=Path(os.fspath(source)) if isinstance(
            source, str | os.PathLike) else None)
    parts = [braket_record_outcomes(rec, n_bits, where=where, path=path) for rec, where, path in records]
    return np.concatenate(parts)


def write_qiskit_results(path: str | os.PathLike[str], pubs: Sequence[Mapping[str, Any]], *,
                         metadata: Mapping[str, Any] | None = None, force: bool = False) -> None:
    """Write per-setting Qiskit results in shadowlab's format (c) (see the module docs).

    Parameters
    ----------
    path:
        Output JSON file, written atomically; an existing file is an error unless ``force``.
    pubs:
        One mapping per setting in plan order with ``name``, ``num_bits`` and ``bitstrings``
        (per shot, little-endian Qiskit strings) or ``counts``; ``shots`` is filled in.
    metadata:
        JSON-serializable provenance stored with the results.
    """
    out = []
    for pub in pubs:
        item = {"name": pub["name"], "num_bits": int(pub["num_bits"])}
        if "bitstrings" in pub:
            strings = [str(s) for s in pub["bitstrings"]]
            item["shots"] = len(strings)
            item["bitstrings"] = strings
        else:
            counts = {str(k): int(v) for k, v in pub["counts"].items()}
            item["shots"] = sum(counts.values())
            item["counts"] = counts
        out.append(item)
    doc = {"format": QISKIT_FORMAT, "version": QISKIT_FORMAT_VERSION, "metadata": dict(metadata or {}), "pubs": out}
    _write_json(Path(path), doc, force)


# --------------------------------------------------------------------------------------------
# Braket
# --------------------------------------------------------------------------------------------


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _braket_records(source: Any) -> list[tuple[Any, str, Path]]:
    """``(record, where, file)`` for every result in a directory, a list of files or one file."""
    if isinstance(source, str | os.PathLike):
        p = Path(source)
        if p.is_dir():
            files = sorted(p.glob("*.json"), key=_natural_key)
            if not files:
                raise ShadowlabError(f"{p}: no *.json result files in this directory")
        elif not p.exists():
            raise ShadowlabError(f"{p}: no such file or directory")
        else:
            doc = _load_json(p)
            if isinstance(doc, list):
                return [(rec, f"{p}[{i}]", p) for i, rec in enumerate(doc)]
            return [(doc, str(p), p)]
    elif isinstance(source, Sequence):
        files = [Path(f) for f in source]
        if not files:
            raise ShadowlabError("no Braket result files given")
    else:
        raise ShadowlabError(f"expected a directory, a JSON file or a list of files, got {type(source).__name__}")
    out = []
    for f in files:
        doc = _load_json(f)
        if isinstance(doc, list):
            raise InputFormatError("holds a list of results; give list files on their own, not in a list of files",
                                   path=f)
        out.append((doc, str(f), f))
    return out


def braket_record_outcomes(record: Mapping[str, Any], n_qubits: int, *, where: str = "result",
                           path: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Outcome rows ``(shots, n_qubits)`` uint8 of one Braket ``GateModelTaskResult`` (as a JSON dict).

    Column ``q`` is qubit ``q``: ``measurements[:, j]`` goes to qubit ``measuredQubits[j]``. The
    measured qubits must be exactly ``0 .. n_qubits - 1``.
    """
    p = None if path is None else Path(path)
    if not isinstance(record, Mapping):
        raise InputFormatError(f"{where}: expected a GateModelTaskResult object, found {type(record).__name__}", path=p)
    header = record.get("braketSchemaHeader")
    if isinstance(header, Mapping) and header.get("name") != BRAKET_RESULT_SCHEMA:
        raise InputFormatError(f"{where}: schema {header.get('name')!r} is not a Braket gate-model task result "
                               f"({BRAKET_RESULT_SCHEMA!r})", path=p)
    measurements = record.get("measurements")
    qubits = record.get("measuredQubits")
    if measurements is None:
        raise InputFormatError(f"{where}: no per-shot 'measurements' (a shots=0 task, or a result saved without "
                               "them); shadows need the measured bits of every shot", path=p)
    if not isinstance(qubits, list) or not all(isinstance(q, int) and not isinstance(q, bool) for q in qubits):
        raise InputFormatError(f"{where}: 'measuredQubits' must be a list of qubit indices", path=p)
    if sorted(qubits) != list(range(n_qubits)):
        raise InputFormatError(f"{where}: measured qubits {qubits}, but the plan has {n_qubits} qubits (expected "
                               f"each of 0..{n_qubits - 1} measured once)", path=p)
    try:
        arr = np.asarray(measurements, dtype=np.int64)
    except (ValueError, TypeError):
        raise InputFormatError(f"{where}: 'measurements' must be a list of equal-length lists of 0/1", path=p) from None
    if arr.size == 0:
        arr = arr.reshape(0, len(qubits))
    if arr.ndim != 2 or arr.shape[1] != len(qubits):
        raise InputFormatError(f"{where}: 'measurements' has shape {arr.shape}, expected (shots, {len(qubits)})",
                               path=p)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise InputFormatError(f"{where}: 'measurements' must hold only 0 and 1", path=p)
    out = np.empty((arr.shape[0], n_qubits), dtype=np.uint8)
    out[:, np.asarray(qubits, dtype=np.int64)] = arr
    meta = record.get("taskMetadata")
    shots = meta.get("shots") if isinstance(meta, Mapping) else None
    if isinstance(shots, int) and shots != arr.shape[0]:
        raise InputFormatError(f"{where}: taskMetadata says {shots} shots but there are {arr.shape[0]} measurements",
                               path=p)
    return out


_QUBIT_REF = re.compile(r"\$(\d+)|[A-Za-z_]\w*\s*\[\s*(\d+)\s*\]")


def _program_statements(source: str) -> list[str]:
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.DOTALL)
    statements = []
    for line in source.splitlines():
        s = line.split("//", 1)[0].strip()
        if not s or s.startswith("#"):
            continue  # pragmas (noise, verbatim, result types) carry no basis rotation
        statements.extend(part.strip() for part in s.split(";") if part.strip())
    return statements


def _check_braket_program(record: Mapping[str, Any], setting: np.ndarray, label: str, g: int, where: str,
                          path: Path) -> None:
    meta = record.get("additionalMetadata")
    action = meta.get("action") if isinstance(meta, Mapping) else None
    source = action.get("source") if isinstance(action, Mapping) else None
    if not isinstance(source, str):
        raise InputFormatError(f"{where}: no OpenQASM program recorded (additionalMetadata.action.source), so it "
                               f"cannot be checked against setting {g} ({label}); pass check_circuits=False to skip",
                               path=path)
    statements = _program_statements(source)
    barriers = [i for i, st in enumerate(statements) if re.match(r"barrier\b", st)]
    if not barriers:
        raise InputFormatError(f"{where}: the program has no barrier separating the state preparation from the "
                               f"measurement-basis rotations, so it cannot be checked against setting {g} ({label}); "
                               "circuits from setting_circuits_braket have one (pass check_circuits=False to skip)",
                               path=path)
    n = setting.size
    applied: list[list[str]] = [[] for _ in range(n)]
    for st in statements[barriers[-1] + 1:]:
        if re.search(r"\bmeasure\b", st):
            continue
        m = re.fullmatch(r"([A-Za-z_]\w*)\s*(\([^)]*\))?\s*(.*)", st, flags=re.DOTALL)
        refs = [int(a or b) for a, b in _QUBIT_REF.findall(m.group(3))] if m else []
        if m is None or len(refs) != 1:
            raise InputFormatError(f"{where}: after the last barrier the program has {st!r}; setting {g} ({label}) "
                                   "expects only single-qubit basis rotations and measurements", path=path)
        q = refs[0]
        if q >= n:
            raise InputFormatError(f"{where}: the program acts on qubit {q}, but the plan has {n} qubits", path=path)
        name = m.group(1).lower() + (m.group(2) or "")
        applied[q].append(_BRAKET_ALIASES.get(name, name))
    for q in range(n):
        expected = list(_BRAKET_ROTATIONS[int(setting[q])])
        if applied[q] != expected:
            raise InputFormatError(
                f"{where}: the program applies {applied[q] or 'no gate'} to qubit {q} before measuring, but setting "
                f"{g} ({label}) measures qubit {q} in the {LETTERS[int(setting[q])]} basis, which needs "
                f"{expected or 'no rotation'}; this is not the plan's circuit for setting {g}", path=path)


def read_braket_results(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], scheme: Scheme, *,
                        check_circuits: bool = True) -> np.ndarray:
    """Outcomes of a plan from saved Braket ``GateModelTaskResult`` JSON files (see the module docs).

    Parameters
    ----------
    source:
        A directory of ``*.json`` results (name order = plan order), a list of result files in
        plan order, or one JSON file holding a list of results (or a single result for a
        one-setting plan).
    scheme:
        The plan: result ``g`` must be setting ``g``'s circuit run ``repeats[g]`` times.
    check_circuits:
        Check each recorded program's basis rotations against its setting.

    Returns
    -------
    numpy.ndarray
        ``(scheme.n_snapshots, scheme.n_qubits)`` uint8 outcomes, 0 = eigenvalue +1, qubit 0
        first, in plan order and, within a setting, in the file's shot order.

    Raises
    ------
    InputFormatError
        Naming the file: malformed JSON, a result of another kind, measured qubits other than
        ``0 .. n-1``, a shot count different from the plan's repeat count, a program whose
        rotations are not the setting's, or a different number of results than settings.
    """
    records = _braket_records(source)
    first_path = records[0][2]
    if len(records) != scheme.n_settings:
        raise InputFormatError(f"holds {len(records)} task results, but the plan has {scheme.n_settings} settings "
                               "(one result per setting, in plan order)",
                               path=source if isinstance(source, str | os.PathLike) else first_path)
    labels = scheme.labels()
    parts = []
    for g, (record, where, path) in enumerate(records):
        rows = braket_record_outcomes(record, scheme.n_qubits, where=where, path=path)
        if check_circuits:
            _check_braket_program(record, scheme.settings[g], labels[g], g, where, path)
        if rows.shape[0] != scheme.repeats[g]:
            raise InputFormatError(f"{where}: {rows.shape[0]} shots, but the plan measures setting {g} ({labels[g]}) "
                                   f"{int(scheme.repeats[g])} times", path=path)
        parts.append(rows)
    return np.concatenate(parts)


def write_braket_results(path: str | os.PathLike[str], records: Sequence[Mapping[str, Any]], *,
                         force: bool = False) -> None:
    """Save Braket ``GateModelTaskResult`` dicts (one per setting, plan order) for :func:`read_braket_results`.

    A ``path`` ending in ``.json`` becomes one file holding a JSON list; any other path a
    directory of ``result_<index>.json`` files (indices zero-padded to equal width, so name
    order is plan order). Written atomically; an existing path is an error unless ``force``.
    """
    p = Path(path)
    if p.suffix.lower() == ".json":
        _write_json(p, [dict(r) for r in records], force)
        return
    width = max(6, len(str(max(len(records) - 1, 0))))
    with atomic_path(p, force=force) as tmp:
        tmp.mkdir()
        for g, record in enumerate(records):
            (tmp / f"result_{g:0{width}d}.json").write_text(json.dumps(dict(record), separators=(",", ":")) + "\n",
                                                             encoding="utf-8")
