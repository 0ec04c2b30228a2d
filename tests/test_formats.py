"""Snapshot file formats: bit-exact round trips, PennyLane interop, and a catalogue of bad inputs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shadowlab.data import formats
from shadowlab.data.dataset import ShadowData
from shadowlab.data.formats import (
    SNAPSHOT_FORMATS,
    detect_format,
    read_huang_text,
    read_npz,
    read_pennylane,
    read_snapshots,
    write_huang_text,
    write_npz,
    write_pennylane,
    write_snapshots,
)
from shadowlab.errors import InputFormatError, ShadowlabError

# A few lines of the reference implementation's example measurement file, trailing spaces included.
HUANG_EXAMPLE = "10\nZ 1 Z -1 Y 1 Z 1 Z 1 Z -1 Y 1 Y -1 Z -1 X 1 \nY -1 X -1 Y 1 Y -1 Y -1 Y 1 Y 1 Z -1 Y 1 X -1 \n"


def random_data(rng: np.random.Generator, t: int, n: int, *, repeats: int = 1) -> ShadowData:
    """``t`` snapshots on ``n`` qubits; with ``repeats > 1`` settings are shared by consecutive rows."""
    g = -(-t // repeats)
    reps = np.full(g, repeats)
    reps[-1] = t - repeats * (g - 1)
    return ShadowData.from_settings(
        rng.integers(0, 3, (g, n)), reps, rng.integers(0, 2, (t, n)), metadata={"seed": 1, "state": "random"}
    )


def assert_located(exc: pytest.ExceptionInfo[InputFormatError], path: Path, line: int | None = None) -> None:
    """The error names the file and, for text formats, the 1-based line."""
    message = str(exc.value)
    assert path.name in message
    assert exc.value.path == str(path)
    if line is not None:
        assert exc.value.line == line
        assert f"{path.name}:{line}:" in message


shapes = st.tuples(st.integers(1, 40), st.integers(1, 150))


# --- round trips ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), fmt=st.sampled_from(SNAPSHOT_FORMATS))
def test_round_trip_is_bit_exact(shape: tuple[int, int], seed: int, fmt: str) -> None:
    t, n = shape
    data = random_data(np.random.default_rng(seed), t, n, repeats=1 + seed % 3)
    suffix = {"pennylane": ".npz", "huang": ".txt", "npz": ".npz"}[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        write_snapshots(data, path, fmt)
        assert detect_format(path) == fmt
        back = read_snapshots(path)
    assert np.array_equal(back.bases, data.bases)
    assert np.array_equal(back.outcomes, data.outcomes)
    assert back.bases.dtype == np.uint8 and back.outcomes.dtype == np.uint8
    assert back.metadata["source_format"] == fmt
    assert back.metadata["source_path"] == str(path.resolve())
    if fmt == "npz":
        # shadowlab's own format also keeps settings and metadata
        assert back.equals(data)
        assert back.metadata["seed"] == 1 and back.metadata["state"] == "random"
    else:
        assert np.array_equal(back.settings, np.arange(t))


@pytest.mark.parametrize("n", [1, 300])
def test_extreme_qubit_counts(tmp_path: Path, n: int) -> None:
    data = random_data(np.random.default_rng(n), 7, n)
    for fmt, name in [("pennylane", "p.npz"), ("huang", "h.txt"), ("npz", "s.npz")]:
        write_snapshots(data, tmp_path / name, fmt)
        back = read_snapshots(tmp_path / name)
        assert np.array_equal(back.bases, data.bases) and np.array_equal(back.outcomes, data.outcomes)


def test_pennylane_pair_and_stacked_round_trip(tmp_path: Path) -> None:
    data = random_data(np.random.default_rng(3), 25, 6)
    pair = (tmp_path / "bits.npy", tmp_path / "recipes.npy")
    write_snapshots(data, pair)
    assert detect_format(pair) == "pennylane"
    assert np.load(pair[0]).dtype == np.int8  # PennyLane's own dtype
    back = read_pennylane(pair)
    assert np.array_equal(back.bases, data.bases) and np.array_equal(back.outcomes, data.outcomes)
    assert back.metadata["source_path"] == [str(p.resolve()) for p in pair]

    stacked = tmp_path / "shadow.npy"
    write_pennylane(data, stacked)
    assert np.load(stacked).shape == (2, 25, 6)
    back = read_snapshots(stacked)
    assert np.array_equal(back.bases, data.bases) and np.array_equal(back.outcomes, data.outcomes)


def test_huang_text_layout(tmp_path: Path) -> None:
    data = ShadowData(np.array([[2, 2, 1], [0, 1, 2]]), np.array([[0, 1, 0], [1, 1, 0]]))
    path = tmp_path / "m.txt"
    write_huang_text(data, path)
    assert path.read_text() == "3\nZ 1 Z -1 Y 1\nX -1 Y -1 Z 1\n"


def test_huang_reference_example(tmp_path: Path) -> None:
    path = tmp_path / "measurement.txt"
    path.write_text(HUANG_EXAMPLE)
    data = read_huang_text(path)
    assert data.n_qubits == 10 and data.n_snapshots == 2
    assert "".join("XYZ"[c] for c in data.bases[0]) == "ZZYZZZYYZX"
    assert data.outcomes[0].tolist() == [0, 1, 0, 0, 0, 1, 0, 1, 1, 0]


def test_huang_accepts_blank_lines_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes(b"\xef\xbb\xbf\r\n2\r\n\r\nX 1 Y -1\r\n\t\nZ -1   X 1\t\r\n\r\n")
    data = read_huang_text(path)
    assert data.bases.tolist() == [[0, 1], [2, 0]]
    assert data.outcomes.tolist() == [[0, 1], [1, 0]]


def test_huang_blocks_keep_line_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny blocks force the reader and writer through many chunks; results and line numbers
    # must not depend on where the blocks are cut.
    monkeypatch.setattr(formats, "_CHUNK_BYTES", 37)
    monkeypatch.setattr(formats, "_WRITE_ROWS", 3)
    data = random_data(np.random.default_rng(5), 50, 4)
    path = tmp_path / "m.txt"
    write_huang_text(data, path)
    assert read_huang_text(path).equals(data)
    lines = path.read_text().splitlines()
    lines[40] = lines[40].replace("1", "7", 1)  # the 41st line: snapshot 40
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match="expected 1 or -1, found '7'") as exc:
        read_huang_text(path)
    assert_located(exc, path, 41)


def test_huang_large_file_is_fast(tmp_path: Path) -> None:
    data = random_data(np.random.default_rng(9), 20_000, 100)
    path = tmp_path / "big.txt"
    write_huang_text(data, path)
    assert read_huang_text(path).equals(data)


# --- PennyLane cross-check -----------------------------------------------------------------


def test_pennylane_classical_shadow_interop(tmp_path: Path) -> None:
    qml = pytest.importorskip("pennylane")
    dev = qml.device("default.qubit", wires=3, seed=11)

    @qml.set_shots(300)
    @qml.qnode(dev)
    def circuit():  # type: ignore[no-untyped-def]
        qml.PauliX(wires=1)  # qubit 1 in |1>: Z = -1
        qml.Hadamard(wires=2)  # qubit 2 in |+>: X = +1
        return qml.classical_shadow(wires=[0, 1, 2], seed=7)

    bits, recipes = circuit()
    np.savez(tmp_path / "shadow.npz", bits=bits, recipes=recipes)
    np.save(tmp_path / "bits.npy", bits)
    np.save(tmp_path / "recipes.npy", recipes)
    np.save(tmp_path / "stacked.npy", np.stack([bits, recipes]))
    sources = [tmp_path / "shadow.npz", (tmp_path / "bits.npy", tmp_path / "recipes.npy"), tmp_path / "stacked.npy"]
    for source in sources:
        data = read_snapshots(source)
        assert np.array_equal(data.outcomes, bits) and np.array_equal(data.bases, recipes)

    # The conventions agree with PennyLane's physics: column q is wire q, recipe 2 is Z, recipe 0
    # is X, and bit 1 means eigenvalue -1.
    z = data.bases == 2
    x = data.bases == 0
    assert z[:, 0].any() and np.all(data.outcomes[z[:, 0], 0] == 0)
    assert z[:, 1].any() and np.all(data.outcomes[z[:, 1], 1] == 1)
    assert x[:, 2].any() and np.all(data.outcomes[x[:, 2], 2] == 0)

    # What we write, PennyLane reads back to the same estimates.
    write_pennylane(data, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z_file:
        ours = qml.ClassicalShadow(z_file["bits"], z_file["recipes"])
    theirs = qml.ClassicalShadow(bits, recipes)
    obs = qml.PauliZ(1) @ qml.PauliX(2)
    assert ours.expval(obs, k=1) == pytest.approx(theirs.expval(obs, k=1))


# --- bad text inputs -----------------------------------------------------------------------

BAD_HUANG = {
    "unknown_letter": ("3\nZ 1 W 1 X -1\n", 2, "expected X, Y or Z, found 'W'"),
    "lowercase_letter": ("2\nZ 1 x -1\n", 2, "found 'x'"),
    "two_letter_basis": ("2\nZ 1 XY -1\n", 2, "found 'XY'"),
    "outcome_two": ("2\nZ 1 X 2\n", 2, "expected 1 or -1, found '2'"),
    "outcome_zero": ("2\nZ 0 X 1\n", 2, "found '0'"),
    "outcome_plus_one": ("2\nZ +1 X 1\n", 2, "found '+1'"),
    "outcome_minus_two": ("2\nZ -2 X 1\n", 2, "found '-2'"),
    "outcome_dash_dash": ("2\nZ 1 X --\n", 2, "found '--'"),
    "too_few_tokens": ("3\nZ 1 Z -1 Y 1\nZ 1 Z -1\n", 3, "expected 6 tokens"),
    "too_many_tokens": ("2\nZ 1 Z -1 Y 1\n", 2, "found 6"),
    "odd_token_count": ("2\nZ 1 Z\n", 2, "found 3"),
    "header_n_mismatch": ("4\nZ 1 Z -1 Y 1\n", 2, "n = 4"),
    "error_after_blank_lines": ("1\n\nZ 1\n\n\nQ 1\n", 6, "found 'Q'"),
    "missing_header": ("Z 1 Z -1\n", 1, "missing header"),
    "header_not_integer": ("two\nZ 1 Z -1\n", 1, "missing header"),
    "header_zero": ("0\nZ 1\n", 1, "positive integer"),
    "header_two_numbers": ("2 2\nZ 1 Z -1\n", 1, "missing header"),
    "header_after_blank": ("\n\nX 1\n", 3, "missing header"),
}


@pytest.mark.parametrize("case", sorted(BAD_HUANG))
def test_bad_huang_text(tmp_path: Path, case: str) -> None:
    content, line, fragment = BAD_HUANG[case]
    path = tmp_path / f"{case}.txt"
    path.write_text(content)
    with pytest.raises(InputFormatError, match=fragment.replace("+", r"\+")) as exc:
        read_huang_text(path)
    assert_located(exc, path, line)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_huang_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(InputFormatError, match="empty") as exc:
        read_huang_text(path)
    assert_located(exc, path)


def test_huang_header_without_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "header_only.txt"
    path.write_text("5\n\n")
    with pytest.raises(InputFormatError, match="no snapshots") as exc:
        read_huang_text(path)
    assert_located(exc, path)


# --- bad array inputs ----------------------------------------------------------------------

GOOD_BITS = np.array([[0, 1], [1, 0]], dtype=np.int8)
GOOD_RECIPES = np.array([[2, 0], [1, 2]], dtype=np.int8)

BAD_PENNYLANE = {
    "bit_value_two": ({"bits": np.array([[0, 2], [1, 0]]), "recipes": GOOD_RECIPES}, r"bits\[0, 1\] = 2"),
    "negative_bit": ({"bits": np.array([[0, 0], [-1, 0]]), "recipes": GOOD_RECIPES}, r"bits\[1, 0\] = -1"),
    "recipe_value_three": ({"bits": GOOD_BITS, "recipes": np.array([[2, 0], [3, 2]])}, r"recipes\[1, 0\] = 3"),
    "float_bits": ({"bits": GOOD_BITS.astype(float), "recipes": GOOD_RECIPES}, "integer array, found dtype float64"),
    "float_recipes": ({"bits": GOOD_BITS, "recipes": GOOD_RECIPES.astype(np.float32)}, "dtype float32"),
    "shape_mismatch": ({"bits": GOOD_BITS, "recipes": GOOD_RECIPES[:, :1]}, r"does not match recipes shape \(2, 1\)"),
    "one_dimensional": ({"bits": GOOD_BITS[0], "recipes": GOOD_RECIPES[0]}, "2-D"),
    "no_snapshots": ({"bits": GOOD_BITS[:0], "recipes": GOOD_RECIPES[:0]}, "no snapshots"),
    "no_qubits": ({"bits": GOOD_BITS[:, :0], "recipes": GOOD_RECIPES[:, :0]}, "at least one qubit"),
    "missing_recipes": ({"bits": GOOD_BITS}, r"missing array\(s\) \['recipes'\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_PENNYLANE))
def test_bad_pennylane_npz(tmp_path: Path, case: str) -> None:
    arrays, fragment = BAD_PENNYLANE[case]
    path = tmp_path / f"{case}.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputFormatError, match=fragment) as exc:
        read_pennylane(path)
    assert_located(exc, path)


def test_bad_pennylane_pair_names_the_offending_file(tmp_path: Path) -> None:
    bits, recipes = tmp_path / "bits.npy", tmp_path / "recipes.npy"
    np.save(bits, GOOD_BITS)
    np.save(recipes, np.array([[2, 0], [1, 5]]))
    with pytest.raises(InputFormatError, match=r"recipes\[1, 1\] = 5") as exc:
        read_pennylane((bits, recipes))
    assert_located(exc, recipes)


def test_bad_pennylane_stacked_shape(tmp_path: Path) -> None:
    path = tmp_path / "stacked.npy"
    np.save(path, np.zeros((3, 4, 2), dtype=np.int8))
    with pytest.raises(InputFormatError, match=r"\(2, T, n\)") as exc:
        read_pennylane(path)
    assert_located(exc, path)


def test_pennylane_from_text_file(tmp_path: Path) -> None:
    path = tmp_path / "not_numpy.npz"
    path.write_text("2\nZ 1 Z 1\n")
    with pytest.raises(InputFormatError, match=r"not a readable \.npz") as exc:
        read_pennylane(path)
    assert_located(exc, path)


BAD_NPZ = {
    "missing_outcomes": ({"bases": GOOD_RECIPES}, r"missing array\(s\) \['outcomes'\]"),
    "pennylane_keys": ({"bits": GOOD_BITS, "recipes": GOOD_RECIPES}, "missing array"),
    "outcome_value": ({"bases": GOOD_RECIPES, "outcomes": np.array([[0, 1], [1, 4]])}, r"outcomes\[1, 1\] = 4"),
    "float_bases": ({"bases": GOOD_RECIPES.astype(float), "outcomes": GOOD_BITS}, "dtype float64"),
    "shape_mismatch": ({"bases": GOOD_RECIPES, "outcomes": GOOD_BITS[:1]}, "does not match bases shape"),
    "settings_shape": ({"bases": GOOD_RECIPES, "outcomes": GOOD_BITS, "settings": np.arange(3)}, "one entry per"),
    "settings_negative": ({"bases": GOOD_RECIPES, "outcomes": GOOD_BITS, "settings": np.array([0, -1])}, ">= 0"),
    "settings_float": ({"bases": GOOD_RECIPES, "outcomes": GOOD_BITS, "settings": np.zeros(2)}, "settings must be"),
    "metadata_not_json": ({"bases": GOOD_RECIPES, "outcomes": GOOD_BITS, "metadata": np.array("{oops")}, "JSON"),
    "metadata_not_object": ({"bases": GOOD_RECIPES, "outcomes": GOOD_BITS, "metadata": np.array("[1]")}, "object"),
    "no_snapshots": ({"bases": GOOD_RECIPES[:0], "outcomes": GOOD_BITS[:0]}, "no snapshots"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz(tmp_path: Path, case: str) -> None:
    arrays, fragment = BAD_NPZ[case]
    path = tmp_path / f"{case}.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputFormatError, match=fragment) as exc:
        read_npz(path)
    assert_located(exc, path)


def test_npz_rejects_pickled_arrays(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, bases=np.array([[0]], dtype=object), outcomes=GOOD_BITS)
    with pytest.raises(InputFormatError) as exc:
        read_npz(path)
    assert_located(exc, path)


# --- writers -------------------------------------------------------------------------------

WRITERS = {
    "pennylane": (write_pennylane, "out.npz"),
    "pennylane_npy": (write_pennylane, "out.npy"),
    "huang": (write_huang_text, "out.txt"),
    "npz": (write_npz, "out.npz"),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_writers_refuse_to_overwrite(tmp_path: Path, name: str) -> None:
    writer, filename = WRITERS[name]
    path = tmp_path / filename
    path.write_text("precious")
    data = random_data(np.random.default_rng(0), 4, 3)
    with pytest.raises(ShadowlabError, match="already exists"):
        writer(data, path)
    assert path.read_text() == "precious"
    writer(data, path, force=True)
    back = read_snapshots(path)
    assert np.array_equal(back.bases, data.bases) and np.array_equal(back.outcomes, data.outcomes)


def test_pair_writer_checks_both_targets_first(tmp_path: Path) -> None:
    bits, recipes = tmp_path / "bits.npy", tmp_path / "recipes.npy"
    recipes.write_text("precious")
    with pytest.raises(ShadowlabError, match="already exists"):
        write_pennylane(random_data(np.random.default_rng(0), 4, 3), (bits, recipes))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipes.npy"]


def test_failed_text_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A pair table too short for the data makes formatting fail after the header was written.
    monkeypatch.setattr(formats, "_PAIR_TEXT", formats._PAIR_TEXT[:2])
    monkeypatch.setattr(formats, "_WRITE_ROWS", 1)
    data = ShadowData(np.array([[0], [2]]), np.array([[0], [1]]))
    with pytest.raises(IndexError):
        write_huang_text(data, tmp_path / "out.txt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["pennylane", "npz"])
def test_failed_npz_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    def boom(file: object, **arrays: object) -> None:
        file.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        write_snapshots(random_data(np.random.default_rng(0), 4, 3), tmp_path / "out.npz", fmt)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_writers_refuse_empty_data(tmp_path: Path, name: str) -> None:
    writer, filename = WRITERS[name]
    empty = ShadowData(np.zeros((0, 3), dtype=np.uint8), np.zeros((0, 3), dtype=np.uint8))
    with pytest.raises(ShadowlabError, match="empty"):
        writer(empty, tmp_path / filename)
    assert list(tmp_path.iterdir()) == []


def test_metadata_that_is_not_json_is_stringified(tmp_path: Path) -> None:
    data = ShadowData(GOOD_RECIPES, GOOD_BITS, metadata={"seed": np.int64(5), "path": Path("x")})
    write_npz(data, tmp_path / "d.npz")
    assert read_npz(tmp_path / "d.npz").metadata["seed"] == "5"


# --- detection and dispatch ----------------------------------------------------------------


def test_detect_format(tmp_path: Path) -> None:
    data = random_data(np.random.default_rng(0), 3, 2)
    write_snapshots(data, tmp_path / "a.npz")
    write_snapshots(data, tmp_path / "b.npz", "pennylane")
    write_snapshots(data, tmp_path / "c.txt")
    write_snapshots(data, tmp_path / "d.npy")
    (tmp_path / "e.dat").write_text(HUANG_EXAMPLE)
    (tmp_path / "store.zarr").mkdir()
    (tmp_path / "store.zarr" / "zarr.json").write_text("{}")
    expected = {"a.npz": "npz", "b.npz": "pennylane", "c.txt": "huang", "d.npy": "pennylane", "e.dat": "huang"}
    for name, fmt in expected.items():
        assert detect_format(tmp_path / name) == fmt
    assert detect_format(tmp_path / "store.zarr") == "zarr"


def test_detect_format_failures(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputFormatError, match="not a Zarr store"):
        detect_format(tmp_path / "plain")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(InputFormatError, match="cannot tell the format") as exc:
        detect_format(tmp_path / "notes.txt")
    assert_located(exc, tmp_path / "notes.txt")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(InputFormatError, match=r"\['x'\]"):
        detect_format(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "missing.txt")


def test_dispatch_errors(tmp_path: Path) -> None:
    data = random_data(np.random.default_rng(0), 3, 2)
    with pytest.raises(ShadowlabError, match="extension"):
        write_snapshots(data, tmp_path / "out.bin")
    with pytest.raises(ShadowlabError, match="unknown snapshot format"):
        write_snapshots(data, tmp_path / "out.txt", "csv")
    with pytest.raises(ShadowlabError, match=r"shadowlab\.data\.store"):
        write_snapshots(data, tmp_path / "out.zarr")
    with pytest.raises(ShadowlabError, match="pair of paths"):
        write_snapshots(data, (tmp_path / "a.npy", tmp_path / "b.npy"), "huang")
    assert list(tmp_path.iterdir()) == []
    write_snapshots(data, tmp_path / "out.txt")
    with pytest.raises(ShadowlabError, match="unknown snapshot format"):
        read_snapshots(tmp_path / "out.txt", "csv")
