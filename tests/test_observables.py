"""Observable files: the reference format, one term per line, and molecular Hamiltonians."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadowlab.errors import InputFormatError, ShadowlabError
from shadowlab.observables import (
    OBSERVABLE_FORMATS,
    detect_observable_format,
    read_molecule_alternating,
    read_molecule_json,
    read_observables,
    read_reference_observables,
    read_terms,
    write_reference_observables,
    write_terms,
)
from shadowlab.paulis import PauliString, PauliSum

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MOLECULES = SHARED_DATA / "molecules"
needs_molecules = pytest.mark.skipif(
    not MOLECULES.is_dir(), reason=f"shared molecule data not found at {MOLECULES} (expected beside the repo)"
)

# The example observable file of the reference implementation (first lines).
REFERENCE_EXAMPLE = "10\n2 X 0 Y 1\n2 X 1 Y 2\n4 X 0 X 1 X 2 X 3\n"


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def assert_located(exc: pytest.ExceptionInfo[InputFormatError], path: Path, line: int | None) -> None:
    """The error names the file and the 1-based line."""
    assert exc.value.path == str(path)
    assert exc.value.line == line
    where = path.name if line is None else f"{path.name}:{line}:"
    assert where in str(exc.value)


# --- reference format ----------------------------------------------------------------------


def test_reference_example(tmp_path: Path) -> None:
    obs, weights = read_reference_observables(write(tmp_path, "observables.txt", REFERENCE_EXAMPLE))
    assert obs.n_qubits == 10
    assert obs.labels == ("X0 Y1", "X1 Y2", "X0 X1 X2 X3")
    assert np.array_equal(obs.coeffs, np.ones(3))
    assert np.array_equal(weights, np.ones(3))


def test_reference_pitfalls_of_the_original_tool_are_avoided(tmp_path: Path) -> None:
    # Trailing spaces do not turn into a zero weight, the header line does not add an identity
    # observable, and blank lines (including several trailing newlines) are skipped.
    content = "3 \n2 X 0 Y 1 \n\n1 Z 2   0.25\t\n0\n\n\n"
    obs, weights = read_reference_observables(write(tmp_path, "obs.txt", content))
    assert obs.labels == ("X0 Y1", "Z2", "I")
    assert weights.tolist() == [1.0, 0.25, 1.0]
    assert obs.terms[2].weight == 0  # an explicit "0" line is the identity


def test_reference_pairs_in_any_order_are_sorted(tmp_path: Path) -> None:
    obs, _ = read_reference_observables(write(tmp_path, "obs.txt", "4\n2 Z 3 X 1\n"))
    assert obs.terms[0] == PauliString((1, 3), (0, 2))


BAD_REFERENCE = {
    "k_too_large": ("3\n3 X 0 Y 1\n", 2, "k = 3 needs 7 tokens"),
    "k_too_small": ("3\n1 X 0 Y 1\n", 2, "k = 1 needs 3 tokens"),
    "k_not_integer": ("3\nX 0 Y 1\n", 2, "expected the number of pairs k"),
    "qubit_out_of_range": ("3\n2 X 0 Y 3\n", 2, "qubit 3 is out of range; the header says n = 3"),
    "repeated_qubit": ("3\n2 X 1 Y 1\n", 2, "qubit 1 appears twice"),
    "unknown_letter": ("3\n\n2 X 0 W 1\n", 3, "expected a Pauli letter X, Y or Z, found 'W'"),
    "identity_letter": ("3\n1 I 0\n", 2, "found 'I'"),
    "qubit_not_integer": ("3\n1 X a\n", 2, "expected a qubit index 0..2, found 'a'"),
    "negative_qubit": ("3\n1 X -1\n", 2, "found '-1'"),
    "weight_zero": ("3\n1 X 0 0\n", 2, "positive finite weight"),
    "weight_negative": ("3\n1 X 0 -2.5\n", 2, "found '-2.5'"),
    "weight_inf": ("3\n1 X 0 inf\n", 2, "found 'inf'"),
    "weight_nan": ("3\n1 X 0 nan\n", 2, "found 'nan'"),
    "weight_not_number": ("3\n1 X 0 Z\n", 2, "found 'Z'"),
    "missing_header": ("2 X 0 Y 1\n", 1, "missing header"),
    "header_zero": ("0\n1 X 0\n", 1, "missing header"),
    "error_on_later_line": ("3\n2 X 0 Y 1\n2 X 1 Y 2\n2 X 2 Y 5\n", 4, "qubit 5"),
}


@pytest.mark.parametrize("case", sorted(BAD_REFERENCE))
def test_bad_reference_observables(tmp_path: Path, case: str) -> None:
    content, line, fragment = BAD_REFERENCE[case]
    path = write(tmp_path, f"{case}.txt", content)
    with pytest.raises(InputFormatError, match=fragment) as exc:
        read_reference_observables(path)
    assert_located(exc, path, line)


@pytest.mark.parametrize(("content", "fragment"), [("", "empty"), ("\n \n", "empty"), ("4\n\n", "no observables")])
def test_reference_without_observables(tmp_path: Path, content: str, fragment: str) -> None:
    path = write(tmp_path, "obs.txt", content)
    with pytest.raises(InputFormatError, match=fragment) as exc:
        read_reference_observables(path)
    assert_located(exc, path, None)


def test_reference_round_trip_with_weights(tmp_path: Path) -> None:
    obs = PauliSum.from_labels(["X0 Y1", "Z4", "IIIII", "X1 Y2 Z3"], n_qubits=5)
    weights = np.array([1.0, 0.1, 2.5, 1 / 3])
    write_reference_observables(obs, tmp_path / "obs.txt", weights=weights)
    back, back_weights = read_reference_observables(tmp_path / "obs.txt")
    assert back.n_qubits == 5 and back.terms == obs.terms
    assert np.array_equal(back_weights, weights)
    write_reference_observables(obs, tmp_path / "plain.txt")
    assert (tmp_path / "plain.txt").read_text() == "5\n2 X 0 Y 1\n1 Z 4\n0\n3 X 1 Y 2 Z 3\n"


def test_reference_writer_refuses_coefficients_and_overwrite(tmp_path: Path) -> None:
    with pytest.raises(ShadowlabError, match="write_terms"):
        write_reference_observables(PauliSum.from_labels(["X0"], [0.5]), tmp_path / "obs.txt")
    with pytest.raises(ShadowlabError, match="positive finite"):
        write_reference_observables(PauliSum.from_labels(["X0"]), tmp_path / "obs.txt", weights=np.array([0.0]))
    assert list(tmp_path.iterdir()) == []
    path = write(tmp_path, "obs.txt", "precious")
    with pytest.raises(ShadowlabError, match="already exists"):
        write_reference_observables(PauliSum.from_labels(["X0"]), path)
    assert path.read_text() == "precious"


# --- terms format --------------------------------------------------------------------------


def test_terms_forms(tmp_path: Path) -> None:
    content = "# header comment\n\nn = 5\n0.5 X0 Z3   # trailing comment\n-1.2 XZIIY\nX0 Z1\n2 I\n1e-3 y 2\n"
    h = read_terms(write(tmp_path, "h.txt", content))
    assert h.n_qubits == 5
    assert h.labels == ("X0 Z3", "X0 Z1 Y4", "X0 Z1", "I", "Y2")
    assert h.coeffs.tolist() == [0.5, -1.2, 1.0, 2.0, 1e-3]


def test_terms_qubit_count_inference(tmp_path: Path) -> None:
    assert read_terms(write(tmp_path, "dense.txt", "XZI\n0.5 IIY\nZ1\n")).n_qubits == 3
    assert read_terms(write(tmp_path, "sparse.txt", "X0 Z6\nY2\n")).n_qubits == 7
    assert read_terms(write(tmp_path, "identity.txt", "3.5 I\n")).n_qubits == 1


BAD_TERMS = {
    "dense_lengths_differ": ("XZI\n\nXZII\n", 3, "has 4 letters, but the dense label on line 1 gives 3 qubits"),
    "dense_vs_header": ("n = 4\nXZI\n", 2, "the header gives 4 qubits"),
    "sparse_beyond_header": ("n = 4\nX0\nZ4\n", 3, "acts on qubit 4, but the header gives 4 qubits"),
    "sparse_beyond_dense": ("XZ\nY2\n", 2, "acts on qubit 2"),
    "bad_label": ("0.5 X0 W1\n", 1, "expected a Pauli label"),
    "repeated_qubit": ("X0 Z0\n", 1, "appears twice"),
    "coefficient_without_label": ("X0\n0.5\n", 2, "expected a Pauli label after the coefficient"),
    "infinite_coefficient": ("inf X0\n", 1, "finite coefficient"),
    "complex_coefficient": ("(0.5+1j) X0\n", 1, "expected a Pauli label"),
    "lone_integer_header": ("3\n0.5 X0\n", 1, "'reference'"),
    "late_header": ("X0\nn = 3\n", 2, "before the first term"),
    "bad_header": ("n = three\nX0\n", 1, "positive integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_TERMS))
def test_bad_terms(tmp_path: Path, case: str) -> None:
    content, line, fragment = BAD_TERMS[case]
    path = write(tmp_path, f"{case}.txt", content)
    with pytest.raises(InputFormatError, match=fragment) as exc:
        read_terms(path)
    assert_located(exc, path, line)


def test_terms_without_terms(tmp_path: Path) -> None:
    path = write(tmp_path, "h.txt", "# nothing\nn = 3\n")
    with pytest.raises(InputFormatError, match="no terms") as exc:
        read_terms(path)
    assert_located(exc, path, None)


@st.composite
def pauli_sums(draw: st.DrawFn) -> PauliSum:
    n = draw(st.integers(1, 60))
    m = draw(st.integers(1, 12))
    terms = []
    for _ in range(m):
        qubits = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 6)))
        terms.append(PauliString.from_pairs((draw(st.integers(0, 2)), q) for q in qubits))
    coeffs = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=True), min_size=m, max_size=m))
    return PauliSum(n, tuple(terms), np.asarray(coeffs))


@settings(max_examples=40, deadline=None)
@given(h=pauli_sums(), dense=st.booleans())
def test_terms_round_trip_is_exact(h: PauliSum, dense: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.txt"
        write_terms(h, path, dense=dense)
        assert detect_observable_format(path) == "terms"
        back = read_observables(path)
    assert back.n_qubits == h.n_qubits and back.terms == h.terms
    assert np.array_equal(back.coeffs, h.coeffs)


@settings(max_examples=25, deadline=None)
@given(h=pauli_sums())
def test_reference_round_trip_is_exact(h: PauliSum) -> None:
    obs = PauliSum(h.n_qubits, h.terms, np.ones(len(h)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "obs.txt"
        write_reference_observables(obs, path)
        assert detect_observable_format(path) == "reference"
        back = read_observables(path)
    assert back.n_qubits == obs.n_qubits and back.terms == obs.terms


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Path, *args: object, **kwargs: object) -> None:
        with open(self, "w") as fh:
            fh.write("partial")
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", boom)
    with pytest.raises(OSError, match="disk full"):
        write_terms(PauliSum.from_labels(["X0"]), tmp_path / "h.txt")
    with pytest.raises(OSError, match="disk full"):
        write_reference_observables(PauliSum.from_labels(["X0"]), tmp_path / "obs.txt")
    assert list(tmp_path.iterdir()) == []


# --- molecule formats ----------------------------------------------------------------------


def test_molecule_alternating(tmp_path: Path) -> None:
    path = write(tmp_path, "jw.txt", "IIII\n(-0.5+0j)\nZZII\n(0.25-0j)\n\nXYYX\n0.125\n")
    h = read_molecule_alternating(path)
    assert h.n_qubits == 4 and h.labels == ("I", "Z0 Z1", "X0 Y1 Y2 X3")
    assert h.coeffs.tolist() == [-0.5, 0.25, 0.125]
    assert detect_observable_format(path) == "molecule-alternating"


BAD_ALTERNATING = {
    "imaginary_part": ("ZZ\n(0.5+0.01j)\n", 2, "imaginary part"),
    "missing_coefficient": ("ZZ\n(0.5+0j)\nXX\n", 3, "has no coefficient"),
    "two_labels": ("ZZ\nXX\n(0.5+0j)\n", 2, "expected the coefficient of 'ZZ'"),
    "two_coefficients": ("ZZ\n(0.5+0j)\n(0.5+0j)\nXX\n", 3, "found a coefficient"),
    "label_length": ("ZZ\n(0.5+0j)\nXXX\n(1+0j)\n", 3, "has 3 letters, but the first label"),
    "bad_letter": ("ZZ\n(0.5+0j)\nXQ\n(1+0j)\n", 3, "expected a Pauli label"),
    "nan_coefficient": ("ZZ\nnan\n", 2, "finite coefficient"),
}


@pytest.mark.parametrize("case", sorted(BAD_ALTERNATING))
def test_bad_molecule_alternating(tmp_path: Path, case: str) -> None:
    content, line, fragment = BAD_ALTERNATING[case]
    path = write(tmp_path, f"{case}.txt", content)
    with pytest.raises(InputFormatError, match=fragment) as exc:
        read_molecule_alternating(path)
    assert_located(exc, path, line)


def test_molecule_json(tmp_path: Path) -> None:
    doc = {"paulis": [{"label": "II", "coeff": {"real": 1.5, "imag": 0.0}}, {"label": "XY", "coeff": -0.25}]}
    path = write(tmp_path, "h.txt", json.dumps(doc))
    h = read_molecule_json(path)
    assert h.n_qubits == 2 and h.labels == ("I", "X0 Y1") and h.coeffs.tolist() == [1.5, -0.25]
    assert detect_observable_format(path) == "molecule-json"


def _json_entries(*entries: str) -> str:
    # One entry per line, so that errors can be checked to name the entry's line.
    return '{"paulis": [\n' + ",\n".join(entries) + "\n]}\n"


GOOD_ENTRY = '{"label": "ZZ", "coeff": {"real": 0.5, "imag": 0.0}}'
BAD_JSON = {
    "imaginary_part": (_json_entries(GOOD_ENTRY, '{"label": "XX", "coeff": {"real": 0.5, "imag": 1e-6}}'), 3, "imag"),
    "bad_label": (_json_entries(GOOD_ENTRY, GOOD_ENTRY, '{"label": "XW", "coeff": 1.0}'), 4, r"paulis\[2\]"),
    "label_length": (_json_entries(GOOD_ENTRY, '{"label": "XXX", "coeff": 1.0}'), 3, "has 3 letters"),
    "missing_coeff": (_json_entries('{"label": "XX"}'), 2, "expected"),
    "string_coeff": (_json_entries('{"label": "XX", "coeff": "0.5"}'), 2, "coefficient"),
    "invalid_json": ('{"paulis": [\n{"label": "XX", "coeff": 1.0},\n]}\n', 3, "invalid JSON"),
    "no_paulis_key": ('{"terms": []}', None, "paulis"),
    "empty_list": ('{"paulis": []}', None, "no terms"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_bad_molecule_json(tmp_path: Path, case: str) -> None:
    content, line, fragment = BAD_JSON[case]
    path = write(tmp_path, f"{case}.json", content)
    with pytest.raises(InputFormatError, match=fragment) as exc:
        read_molecule_json(path)
    assert_located(exc, path, line)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "h.txt"
    path.write_bytes(b"X0\n\xff\xfe Z1\n")
    with pytest.raises(InputFormatError, match="not UTF-8") as exc:
        read_observables(path)
    assert_located(exc, path, 2)


def test_detect_and_dispatch(tmp_path: Path) -> None:
    cases = {
        "ref.txt": ("3\n1 X 0\n", "reference"),
        "terms.txt": ("# comment\nXZ\nZX\n", "terms"),
        "terms2.txt": ("0.5 X0\n", "terms"),
        "alt.txt": ("XZ\n(1+0j)\n", "molecule-alternating"),
        "mol.json": ('{"paulis": [{"label": "XZ", "coeff": 1.0}]}', "molecule-json"),
    }
    for name, (content, fmt) in cases.items():
        path = write(tmp_path, name, content)
        assert detect_observable_format(path) == fmt
        assert fmt in OBSERVABLE_FORMATS
        assert read_observables(path).n_qubits >= 1
    with pytest.raises(ShadowlabError, match="unknown observable format"):
        read_observables(tmp_path / "ref.txt", "csv")
    with pytest.raises(InputFormatError, match="empty"):
        detect_observable_format(write(tmp_path, "empty.txt", "# only a comment\n"))


# --- shared molecular Hamiltonians ---------------------------------------------------------

KNOWN = {  # folder: (qubits, terms, lowest eigenvalue from the data README, or None if too large to check)
    "H2_STO3g_4qubits": (4, 15, -1.8572750302),
    "H2_6-31G_8qubits": (8, 185, -1.8608605555),
    "LiH_STO3g_12qubits": (12, 631, None),
}


@needs_molecules
@pytest.mark.parametrize("encoding", ["jw", "parity", "bk"])
def test_every_shared_molecule_file_reads(encoding: str) -> None:
    folders = sorted(p for p in MOLECULES.iterdir() if p.is_dir())
    assert folders
    for folder in folders:
        path = folder / f"{encoding}.txt"
        h = read_observables(path)
        # the folder name ends in "<n>qubits"
        assert h.n_qubits == int(folder.name.rsplit("_", 1)[1].removesuffix("qubits")), path
        assert any(t.weight == 0 for t in h.terms), f"{path}: identity term missing"
        if folder.name in KNOWN:
            assert len(h) == KNOWN[folder.name][1], path


@needs_molecules
@pytest.mark.parametrize("encoding", ["jw", "parity", "bk"])
@pytest.mark.parametrize("folder", [name for name, known in KNOWN.items() if known[2] is not None])
def test_ground_energies_match_readme(folder: str, encoding: str) -> None:
    h = read_observables(MOLECULES / folder / f"{encoding}.txt")
    assert np.linalg.eigvalsh(h.to_matrix())[0] == pytest.approx(KNOWN[folder][2], abs=1e-8)
