"""Families of ground states with shadows (shadowlab.learn.generate, 'shadowlab learn generate')."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import shadowlab.cli_learn_generate  # noqa: F401  (registers 'learn generate')
from shadowlab.acquire.ground_states import exact_ground_state, tfim_couplings
from shadowlab.cli import app
from shadowlab.data.family import ShadowFamily
from shadowlab.errors import ShadowlabError
from shadowlab.learn.generate import generate_family, generate_instance, parse_grid, resolve_method


def test_grid_family_contents() -> None:
    fam = generate_family("tfim", "chain:6", n_snapshots=50, grid="h=0.5:1.5:3", seed=4)
    assert (fam.n_instances, fam.n_snapshots, fam.n_qubits) == (3, 50, 6)
    np.testing.assert_allclose(fam.parameters[:, 0], [0.5, 1.0, 1.5])
    assert fam.parameter_names == ("h",)
    assert fam.edges.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    assert set(fam.exact) == {"xx", "yy", "zz", "correlations", "energy"}
    assert fam.exact["xx"].shape == (3, 6, 6) and fam.exact["energy"].shape == (3,)
    np.testing.assert_allclose(fam.exact["correlations"],
                               (fam.exact["xx"] + fam.exact["yy"] + fam.exact["zz"]) / 3)
    gs = exact_ground_state(tfim_couplings("chain:6", h=1.0))
    assert fam.exact["energy"][1] == pytest.approx(gs.energy)
    np.testing.assert_allclose(fam.exact["zz"][1], gs.correlations()["zz"], atol=1e-12)
    meta = fam.metadata
    assert (meta["model"], meta["lattice"], meta["seed"], meta["method"], meta["form"]) == (
        "tfim", "chain:6", 4, "exact", "uniform")
    assert len(meta["exact_diagonalization"]["gaps"]) == 3
    assert meta["grid"] == {"h": [0.5, 1.0, 1.5]}


def test_grid_product_and_defaults() -> None:
    fam = generate_family("xxz", "chain:4", n_snapshots=5, grid="J2=0.5,1.5;Delta=0,2", seed=0)
    assert fam.parameter_names == ("J1", "J2", "Delta")
    assert fam.parameters.tolist() == [[1.0, 0.5, 0.0], [1.0, 0.5, 2.0], [1.0, 1.5, 0.0], [1.0, 1.5, 2.0]]


def test_random_heisenberg_couplings_per_edge() -> None:
    fam = generate_family("heisenberg", "grid:2x3", n_snapshots=20, n_random=3, seed=9)
    assert fam.parameter_names == ("J[0-1]", "J[1-2]", "J[3-4]", "J[4-5]", "J[0-3]", "J[1-4]", "J[2-5]")
    assert fam.parameters.shape == (3, 7)
    assert fam.parameters.min() >= 0.0 and fam.parameters.max() <= 2.0
    assert fam.metadata["random_range"] == [0.0, 2.0]
    # SU(2)-symmetric singlets: xx = yy = zz.
    np.testing.assert_allclose(fam.exact["xx"], fam.exact["zz"], atol=1e-8)


def test_seed_reproducibility_independent_of_order_and_grouping() -> None:
    kwargs = {"n_snapshots": 40, "parameters": [[0.3], [1.0], [1.8]], "seed": 21}
    a = generate_family("tfim", "ring:5", **kwargs)
    b = generate_family("tfim", "ring:5", **kwargs)
    np.testing.assert_array_equal(a.bases, b.bases)
    np.testing.assert_array_equal(a.outcomes, b.outcomes)
    # Instance 2 alone (as another worker would make it) equals instance 2 of the family.
    alone = generate_instance("tfim", "ring:5", [1.8], form="uniform", n_snapshots=40, seed=21, index=2)
    np.testing.assert_array_equal(alone.bases, a.bases[2])
    np.testing.assert_array_equal(alone.outcomes, a.outcomes[2])
    # A different seed gives different data.
    c = generate_family("tfim", "ring:5", **{**kwargs, "seed": 22})
    assert not np.array_equal(c.bases, a.bases)


def test_parallel_workers_give_the_same_family() -> None:
    kwargs = {"n_snapshots": 30, "grid": "h=0.5,1.0,1.5", "seed": 5}
    serial = generate_family("tfim", "chain:5", **kwargs)
    done: list[int] = []
    parallel = generate_family("tfim", "chain:5", workers=2, progress=done.append, **kwargs)
    assert done == [1, 1, 1]
    np.testing.assert_array_equal(serial.outcomes, parallel.outcomes)
    np.testing.assert_array_equal(serial.exact["energy"], parallel.exact["energy"])


def test_dmrg_family_records_the_solver() -> None:
    fam = generate_family("tfim", "chain:20", n_snapshots=100, grid="h=1.0", seed=1, method="dmrg", max_bond=24)
    dm = fam.metadata["dmrg"]
    assert fam.metadata["method"] == "dmrg"
    assert dm["max_bond"] == 24 and dm["bond_dims"][0] <= 24 and dm["converged"] == [True]
    assert dm["engine"] == "quimb" and dm["quimb_version"] and dm["truncation_errors"] == [None]
    n = 20  # open critical chain: E0 = 1 - 1/sin(pi / (2 (2n + 1)))
    assert fam.exact["energy"][0] == pytest.approx(1.0 - 1.0 / np.sin(np.pi / (2 * (2 * n + 1))), abs=1e-6)
    assert resolve_method("auto", tfim_couplings("chain:20").lattice) == "dmrg"


def test_dmrg_engines_give_the_same_family_up_to_solver_accuracy() -> None:
    kwargs = {"n_snapshots": 50, "grid": "h=0.6,1.4", "seed": 3, "method": "dmrg", "max_bond": 32}
    runs = {engine: generate_family("tfim", "chain:18", engine=engine, **kwargs) for engine in ("quimb", "numpy")}
    quimb, numpy_ = runs["quimb"], runs["numpy"]
    assert (quimb.metadata["dmrg"]["engine"], numpy_.metadata["dmrg"]["engine"]) == ("quimb", "numpy")
    assert "quimb_version" not in numpy_.metadata["dmrg"]
    assert all(t < 1e-10 for t in numpy_.metadata["dmrg"]["truncation_errors"])
    np.testing.assert_allclose(quimb.exact["energy"], numpy_.exact["energy"], atol=1e-8)
    np.testing.assert_allclose(quimb.exact["correlations"], numpy_.exact["correlations"], atol=1e-5)
    # The measurement bases come from the instance stream alone, whatever the solver.
    np.testing.assert_array_equal(quimb.bases, numpy_.bases)
    # Exact diagonalization ignores the engine.
    assert "dmrg" not in generate_family("tfim", "chain:4", n_snapshots=5, grid="h=1", engine="numpy").metadata


def test_save_load_round_trip(tmp_path: Path) -> None:
    fam = generate_family("xxz", "chain:4", n_snapshots=25, n_random=2, seed=3)
    path = fam.save(tmp_path / "fam.zarr")
    back = ShadowFamily.load(path)
    np.testing.assert_array_equal(back.bases, fam.bases)
    np.testing.assert_array_equal(back.outcomes, fam.outcomes)
    np.testing.assert_array_equal(back.parameters, fam.parameters)
    np.testing.assert_array_equal(back.edges, fam.edges)
    assert back.parameter_names == fam.parameter_names == ("J[0-1]", "J[1-2]", "J[2-3]", "Delta")
    for name, value in fam.exact.items():
        np.testing.assert_array_equal(back.exact[name], value)
    assert back.metadata == fam.metadata


def test_clear_errors() -> None:
    with pytest.raises(ShadowlabError, match=r"exactly one of"):
        generate_family("tfim", "chain:4", n_snapshots=5, grid="h=1", n_random=2)
    with pytest.raises(ShadowlabError, match=r"exactly one of"):
        generate_family("tfim", "chain:4", n_snapshots=5)
    with pytest.raises(ShadowlabError, match=r"no uniform parameter 'J2'.*h"):
        generate_family("tfim", "chain:4", n_snapshots=5, grid="J2=1,2")
    with pytest.raises(ShadowlabError, match=r"fit both"):
        generate_family("xxz", "chain:3", n_snapshots=5, parameters=[[1.0, 1.0, 1.0]])
    with pytest.raises(ShadowlabError, match=r"too many for exact.*dmrg"):
        generate_family("tfim", "chain:24", n_snapshots=5, grid="h=1", method="exact")
    with pytest.raises(ShadowlabError, match=r"ring:30 has 30 qubits, too many for exact.*open chains"):
        generate_family("tfim", "ring:30", n_snapshots=5, grid="h=1")
    with pytest.raises(ShadowlabError, match=r"DMRG here handles open chains .* not ring:8"):
        generate_family("tfim", "ring:8", n_snapshots=5, grid="h=1", method="dmrg")
    with pytest.raises(ShadowlabError, match=r"unknown DMRG engine 'dmrg'; allowed: quimb, numpy"):
        generate_family("tfim", "chain:24", n_snapshots=5, grid="h=1", engine="dmrg")
    with pytest.raises(ShadowlabError, match=r"unknown method"):
        generate_family("tfim", "chain:4", n_snapshots=5, grid="h=1", method="lanczos")
    with pytest.raises(ShadowlabError, match=r"n_snapshots must be a positive integer"):
        generate_family("tfim", "chain:4", n_snapshots=0, grid="h=1")
    with pytest.raises(ShadowlabError, match=r"seed"):
        generate_family("tfim", "chain:4", n_snapshots=5, grid="h=1", seed=-1)
    for bad in ("h", "h=1:2", "h=a,b", "h=1:2:0", "h=1;h=2", ""):
        with pytest.raises(ShadowlabError, match=r"grid"):
            parse_grid(bad)


# ----------------------------------------------------------------------------- CLI


def _invoke(*args: object) -> object:
    return CliRunner().invoke(app, ["learn", "generate", *map(str, args)])


def test_cli_generate_and_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "tfim.zarr"
    args = ("--model", "tfim", "--lattice", "chain:5", "--grid", "h=0.5:1.5:3", "--snapshots", 30, "--seed", 7,
            "--output", out, "--quiet")
    res = _invoke(*args)
    assert res.exit_code == 0, res.output
    fam = ShadowFamily.load(out)
    assert (fam.n_instances, fam.n_snapshots, fam.n_qubits) == (3, 30, 5)
    expected = generate_family("tfim", "chain:5", n_snapshots=30, grid="h=0.5:1.5:3", seed=7)
    np.testing.assert_array_equal(fam.outcomes, expected.outcomes)
    res = _invoke(*args)
    assert res.exit_code == 1 and "already exists" in res.output and "--force" in res.output
    assert _invoke(*args, "--force", "--seed", 8).exit_code == 0
    assert ShadowFamily.load(out).metadata["seed"] == 8


def test_cli_random_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "heis.zarr"
    res = _invoke("--model", "heisenberg", "--lattice", "ring:6", "--random", 2, "--snapshots", 10, "-o", out)
    assert res.exit_code == 0, res.output
    assert ShadowFamily.load(out).parameters.shape == (2, 6)
    bad = tmp_path / "bad.zarr"
    res = _invoke("--model", "potts", "--lattice", "chain:4", "--grid", "h=1", "-o", bad)
    assert res.exit_code == 1 and "allowed: tfim, xxz, heisenberg" in res.output
    res = _invoke("--model", "tfim", "--lattice", "cube:3", "--grid", "h=1", "-o", bad)
    assert res.exit_code == 1 and "grid:LxW" in res.output
    res = _invoke("--model", "tfim", "--lattice", "chain:4", "--grid", "h=1", "--random", 2, "-o", bad)
    assert res.exit_code == 1 and "one of them" in res.output
    res = _invoke("--model", "tfim", "--lattice", "chain:8", "--grid", "h=1", "--engine", "itensor", "-o", bad)
    assert res.exit_code == 1 and "allowed: quimb, numpy" in res.output
    res = _invoke("--model", "tfim", "--lattice", "grid:5x5", "--grid", "h=1", "-o", bad)
    assert res.exit_code == 1 and "too many for exact diagonalization" in res.output
    assert not bad.exists()


def test_cli_dmrg_engine(tmp_path: Path) -> None:
    out = tmp_path / "chain.zarr"
    res = _invoke("--model", "tfim", "--lattice", "chain:8", "--grid", "h=1.2", "--method", "dmrg", "--engine",
                  "numpy", "--snapshots", 20, "-o", out)
    assert res.exit_code == 0, res.output
    assert "dmrg, numpy" in res.output
    assert ShadowFamily.load(out).metadata["dmrg"]["engine"] == "numpy"
    res = _invoke("--model", "tfim", "--lattice", "chain:8", "--grid", "h=1.2", "--method", "dmrg", "--snapshots",
                  20, "-o", out, "--force", "--quiet")
    assert res.exit_code == 0, res.output
    assert ShadowFamily.load(out).metadata["dmrg"]["engine"] == "quimb"  # the default
