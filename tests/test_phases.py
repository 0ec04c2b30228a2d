"""Phase classification: circuit generator, kernel PCA, a small seeded study and the CLI command."""

import json

import numpy as np
import pytest
import stim
from typer.testing import CliRunner

import shadowlab.cli_learn_phases  # noqa: F401  (registers 'learn phases')
from shadowlab.acquire.clifford_states import (
    stabilizer_expectation,
    stabilizer_expectations,
    toric_code_circuit,
    toric_code_stabilizers,
)
from shadowlab.acquire.phases import (
    TOPOLOGICAL,
    TRIVIAL,
    _symplectic_representatives,
    medial_matching,
    phase_states,
    random_local_clifford_layers,
)
from shadowlab.cli import app
from shadowlab.errors import ShadowlabError
from shadowlab.learn.phases import kernel_pca, phase_classification_study


def _position(q, size):
    """Midpoint of edge qubit q on the torus (row, column)."""
    cell, vertical = divmod(q, 2)
    r, c = divmod(cell, size)
    return (r + 0.5, c) if vertical else (r, c + 0.5)


def _torus_distance(p, q, size):
    d = [abs(a - b) % size for a, b in zip(p, q, strict=True)]
    return float(np.hypot(*[min(x, size - x) for x in d]))


def test_clifford_classes_and_matchings():
    assert len(_symplectic_representatives(1)) == 6
    assert len(_symplectic_representatives(2)) == 720
    for size in (2, 3, 5):
        for direction in range(4):
            pairs = medial_matching(size, direction)
            assert sorted(pairs.ravel().tolist()) == list(range(2 * size * size))  # a perfect matching
            for a, b in pairs.tolist():
                assert _torus_distance(_position(a, size), _position(b, size), size) == pytest.approx(0.5 ** 0.5)


@pytest.mark.parametrize("depth", [0, 1, 3, 4])
def test_circuit_depth_and_locality(depth):
    size = 4
    circuit = random_local_clifford_layers(size, depth, np.random.default_rng(depth))
    layers = [[]]
    for inst in circuit:
        if inst.name == "TICK":
            layers.append([])
        else:
            layers[-1].append(inst)
    assert len(layers) == depth + 1 and not layers[-1]  # depth layers, each closed by TICK
    for layer in layers[:-1]:
        used = []
        for inst in layer:
            qs = [t.value for t in inst.targets_copy()]
            if stim.gate_data(inst.name).is_two_qubit_gate:
                for a, b in zip(qs[::2], qs[1::2], strict=True):
                    assert _torus_distance(_position(a, size), _position(b, size), size) == pytest.approx(0.5 ** 0.5)
                    used.append(frozenset((a, b)))
        assert len(set(used)) <= size * size  # gates of one layer act on the pairs of one matching
    again = random_local_clifford_layers(size, depth, np.random.default_rng(depth))
    assert str(again) == str(circuit)  # seeded


def test_phase_states_labels_and_toric_stabilizers():
    size = 3
    states = phase_states(size, 0, 5, np.random.default_rng(0))
    assert [label for _, label in states] == [TOPOLOGICAL] * 3 + [TRIVIAL] * 2
    assert all(c.num_qubits == 18 for c, _ in states)
    stabilizers = toric_code_stabilizers(size)
    assert np.all(stabilizer_expectations(states[0][0], stabilizers) == 1.0)
    plus = phase_states(size, 0, 2, np.random.default_rng(0), trivial="plus")[1][0]
    assert stabilizer_expectation(plus, "X0", 18) == 1.0 and stabilizer_expectation(plus, "X17", 18) == 1.0


def test_depth_one_state_keeps_local_stabilizers():
    # The depth-1 layer U maps the star A_v to U A_v U^dag, supported on A_v's qubits and their
    # partners in the layer's matching, and that operator stabilizes the dressed state.
    size = 3
    layer = random_local_clifford_layers(size, 1, np.random.default_rng(5))
    state = toric_code_circuit(size) + layer
    partner = {}
    for a, b in medial_matching(size, 0).tolist():
        partner[a], partner[b] = b, a
    tableau = layer.to_tableau()
    for star in list(toric_code_stabilizers(size).terms)[: size * size]:
        image = tableau(_dense(star, 18))
        support = {q for q in range(18) if image[q]}
        allowed = set(star.qubits) | {partner[q] for q in star.qubits}
        assert support <= allowed and len(support) <= 8
        sim = stim.TableauSimulator()
        sim.do_circuit(state)
        assert sim.peek_observable_expectation(image) == 1


def _dense(term, n):
    p = stim.PauliString(n)
    for q, code in zip(term.qubits, term.codes, strict=True):
        p[q] = code + 1
    return p


def test_phase_states_bad_inputs():
    size = 3
    with pytest.raises(ShadowlabError):
        phase_states(size, -1, 2, np.random.default_rng(0))
    with pytest.raises(ShadowlabError):
        phase_states(size, 0, 2, np.random.default_rng(0), trivial="minus")


def test_kernel_pca_matches_sklearn():
    from sklearn.decomposition import KernelPCA

    rng = np.random.default_rng(0)
    x = rng.normal(size=(15, 4))
    gram = np.exp(-0.3 * ((x[:, None] - x[None]) ** 2).sum(-1))
    ours = kernel_pca(gram, 3)
    ref = KernelPCA(n_components=3, kernel="precomputed").fit_transform(gram)
    for c in range(3):
        assert np.allclose(ours[:, c], ref[:, c], atol=1e-9) or np.allclose(ours[:, c], -ref[:, c], atol=1e-9)
    with pytest.raises(ShadowlabError):
        kernel_pca(np.ones((2, 3)))
    with pytest.raises(ShadowlabError):
        kernel_pca(np.array([[1.0, 0.5], [0.1, 1.0]]))
    with pytest.raises(ShadowlabError):
        kernel_pca(gram, 16)


def test_small_study_separates_phases():
    study = phase_classification_study(size=4, depths=(0, 2), n_states=20, n_snapshots=200, seed=2022)
    assert study.n_qubits == 32 and study.depths == [0, 2]
    for r in study.results:
        assert r.auc == 1.0
        assert r.embedding.shape == (20, 2) and r.labels.sum() == 10
        assert r.kernel_seconds >= 0.0  # recorded; timing limits belong to the benchmark, not unit tests
    assert json.loads(json.dumps(study.to_dict()))["results"][1]["depth"] == 2


def test_study_kernel_finite_at_max_gamma():
    # The study's kernels go through the log domain (see test_shadow_kernel for the overflow
    # regression itself): finite, unit diagonal, at the largest allowed gamma.
    for tau in (30.0, None):
        study = phase_classification_study(size=2, depths=(0,), n_states=4, n_snapshots=400, gamma=140.0, tau=tau,
                                           seed=1)
        r = study.results[0]
        assert np.isfinite(r.kernel).all() and np.isfinite(r.embedding).all()
        assert np.array_equal(np.diag(r.kernel), np.ones(4))


def test_cli_phases(tmp_path):
    runner = CliRunner()
    js, png = tmp_path / "phases.json", tmp_path / "phases.png"
    args = ["learn", "phases", "--size", "3", "--depths", "0,1", "--states", "6", "--snapshots", "60",
            "--json", str(js), "--plot", str(png), "--quiet"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "AUC" in res.output
    doc = json.loads(js.read_text())
    assert [r["depth"] for r in doc["results"]] == [0, 1] and doc["n_qubits"] == 18
    assert png.stat().st_size > 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(app, ["learn", "phases", "--depths", "a,b", "--quiet"])
    assert bad.exit_code == 1 and "--depths" in bad.output


@pytest.mark.slow
def test_acceptance_200_qubits():
    study = phase_classification_study(size=10, depths=(0, 1, 2, 3, 4), n_states=20, n_snapshots=500, seed=2022)
    for r in study.results:
        assert r.auc == 1.0
        assert r.kernel_seconds < 60.0
