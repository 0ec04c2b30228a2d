"""Generate families of ground states with classical shadows: the training data of the learn stage.

A family is one model on one lattice at many parameter vectors (a grid across a phase diagram,
or random couplings). For each instance the ground state is found (exact diagonalization up
to 20 qubits, DMRG on longer open chains: quimb's ``DMRG2`` by default, or shadowlab's numpy
DMRG), ``n_snapshots`` local random-Pauli snapshots are drawn from it exactly, and its exact
two-point functions and energy are recorded to test predictions against.

Reproducibility
---------------
Every random draw of instance ``k`` comes from ``numpy.random.SeedSequence(seed,
spawn_key=(1, k))`` (its measurement bases and outcomes; a child of it seeds the DMRG start
state), and random parameters from ``SeedSequence(seed, spawn_key=(0,))``. So an instance's data
depend only on ``(seed, k)`` and its parameters: not on how many workers run, in which order
instances finish, or which other instances are generated alongside.

Models, lattices, edge order and parameter forms are those of
:mod:`shadowlab.acquire.ground_states`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadowlab.acquire.ground_states import (
    MAX_EXACT_QUBITS,
    Lattice,
    check_form,
    check_model,
    couplings_from_parameters,
    default_uniform_parameters,
    exact_ground_state,
    exact_pair_correlations,
    parameter_names,
    parse_lattice,
    single_threaded_blas,
)
from shadowlab.acquire.mps import DEFAULT_CUTOFF, DEFAULT_MAX_BOND, DMRG_ENGINES
from shadowlab.data.family import ShadowFamily
from shadowlab.errors import ShadowlabError

__all__ = [
    "AUTO_EXACT_MAX_QUBITS",
    "HAMILTONIANS",
    "METHODS",
    "InstanceResult",
    "generate_family",
    "generate_instance",
    "parse_grid",
    "resolve_method",
]

#: Ground-state methods: ``exact`` (sparse diagonalization), ``dmrg`` (open chains), ``auto``.
METHODS = ("exact", "dmrg", "auto")

#: ``method="auto"`` diagonalizes exactly up to this many qubits, and on every lattice that is
#: not an open chain; longer open chains go to DMRG (a 20-qubit chain takes ~30 s exactly and
#: well under a second by DMRG).
AUTO_EXACT_MAX_QUBITS = 16

#: The Hamiltonian of each model (Pauli operators), as recorded in family metadata.
HAMILTONIANS = {
    "tfim": "H = -sum_<ij> J_ij Z_i Z_j - sum_i h_i X_i (J = 1)",
    "xxz": "H = sum_<ij> J_ij (X_i X_j + Y_i Y_j + Delta Z_i Z_j); uniform form: J alternates J1, J2 along the "
           "edge order",
    "heisenberg": "H = sum_<ij> J_ij (X_i X_j + Y_i Y_j + Z_i Z_j)",
}

# SeedSequence spawn keys: stream 0 draws random parameters, stream (1, k) is instance k.
_PARAMETER_STREAM = 0
_INSTANCE_STREAM = 1


# ----------------------------------------------------------------------------- parameters


_GRID_ITEM = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$")


def parse_grid(spec: str) -> dict[str, np.ndarray]:
    """Parse a grid spec: ``name=start:stop:num`` (inclusive ``linspace``) or ``name=v1,v2,...``.

    Several parameters are separated by ``;`` and combined as a Cartesian product by
    :func:`generate_family`.

    Examples
    --------
    >>> parse_grid("h=0.5:1.5:3")["h"].tolist()
    [0.5, 1.0, 1.5]
    >>> {k: v.tolist() for k, v in parse_grid("J2=0.5,1; Delta=2").items()}
    {'J2': [0.5, 1.0], 'Delta': [2.0]}
    """
    out: dict[str, np.ndarray] = {}
    items = [s for s in str(spec).split(";") if s.strip()]
    if not items:
        raise ShadowlabError(f"empty grid spec {spec!r}; expected e.g. h=0.2:2.0:10 or J2=0.5,1.0,1.5")
    for item in items:
        m = _GRID_ITEM.match(item)
        if m is None:
            raise ShadowlabError(f"grid spec {item.strip()!r}: expected name=start:stop:num or name=v1,v2,...")
        name, body = m.group(1), m.group(2)
        try:
            if ":" in body:
                parts = body.split(":")
                if len(parts) != 3:
                    raise ValueError("need start:stop:num")
                start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
                if num < 1:
                    raise ValueError("num must be >= 1")
                values = np.linspace(start, stop, num)
            else:
                values = np.array([float(v) for v in body.split(",")])
        except ValueError as exc:
            raise ShadowlabError(f"grid spec {item.strip()!r}: {exc}; expected name=start:stop:num (e.g. "
                                 "h=0.2:2.0:10) or name=v1,v2,...") from None
        if not np.all(np.isfinite(values)):
            raise ShadowlabError(f"grid spec {item.strip()!r}: values must be finite")
        if name in out:
            raise ShadowlabError(f"grid spec {spec!r}: parameter {name!r} given twice")
        out[name] = values
    return out


def _grid_parameters(model: str, grid: str | Mapping[str, Any]) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Cartesian product of the grid values over the uniform-form parameters (others at defaults)."""
    values = parse_grid(grid) if isinstance(grid, str) else {k: np.atleast_1d(np.asarray(v, dtype=np.float64))
                                                             for k, v in grid.items()}
    defaults = default_uniform_parameters(model)
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ShadowlabError(f"grid: {model} has no uniform parameter {', '.join(map(repr, unknown))}; "
                             f"its parameters are {', '.join(defaults)}")
    for k, v in values.items():
        if v.ndim != 1 or v.size < 1 or not np.all(np.isfinite(v)):
            raise ShadowlabError(f"grid: parameter {k!r} needs a non-empty list of finite values")
    axes = [values.get(name, np.array([default])) for name, default in defaults.items()]
    mesh = np.meshgrid(*axes, indexing="ij")  # the first parameter varies slowest
    return np.stack([m.ravel() for m in mesh], axis=1), {k: v.tolist() for k, v in values.items()}


def _infer_form(model: str, lattice: Lattice, n_columns: int) -> str:
    sizes = {form: len(parameter_names(model, lattice, form)) for form in ("uniform", "local")}
    matches = [form for form, size in sizes.items() if size == n_columns]
    if not matches:
        raise ShadowlabError(f"{model} on {lattice.spec} takes {sizes['uniform']} parameters (uniform form: "
                             f"{', '.join(parameter_names(model, lattice, 'uniform'))}) or {sizes['local']} "
                             f"(local form, per site/edge); got {n_columns} columns")
    if len(matches) > 1:
        raise ShadowlabError(f"{model} on {lattice.spec}: {n_columns} parameters fit both the uniform and the "
                             "local form; pass form='uniform' or form='local'")
    return matches[0]


def resolve_method(method: str, lattice: Lattice) -> str:
    """``exact`` or ``dmrg`` for a requested method on a lattice; raise if impossible."""
    m = str(method).strip().lower()
    if m not in METHODS:
        raise ShadowlabError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
    n = lattice.n_qubits
    if m == "auto":
        m = "exact" if n <= AUTO_EXACT_MAX_QUBITS or not lattice.is_open_chain else "dmrg"
    if m == "exact" and n > MAX_EXACT_QUBITS:
        hint = ("use method='dmrg'" if lattice.is_open_chain
                else "DMRG here handles open chains (chain:N) only")
        raise ShadowlabError(f"{lattice.spec} has {n} qubits, too many for exact diagonalization (at most "
                             f"{MAX_EXACT_QUBITS}); {hint}")
    if m == "dmrg" and not lattice.is_open_chain:
        raise ShadowlabError(f"DMRG here handles open chains (chain:N) only, not {lattice.spec}; use "
                             f"method='exact' (up to {MAX_EXACT_QUBITS} qubits)")
    return m


# ----------------------------------------------------------------------------- one instance


@dataclass(frozen=True)
class InstanceResult:
    """Snapshots and exact properties of one instance (see :func:`generate_instance`).

    ``bases``/``outcomes``: ``(S, n)`` uint8; ``xx``, ``yy``, ``zz``: ``(n, n)``; ``energy``:
    ``<H>`` of the sampled state (units of the couplings); ``info``: JSON-friendly solver facts
    (``gap`` and ``degenerate`` for exact diagonalization; bond dimension, truncation and
    convergence for DMRG).
    """

    bases: np.ndarray
    outcomes: np.ndarray
    xx: np.ndarray
    yy: np.ndarray
    zz: np.ndarray
    energy: float
    info: dict[str, Any] = field(default_factory=dict)


def generate_instance(
    model: str,
    lattice: str | Lattice,
    parameters: Sequence[float] | np.ndarray,
    *,
    form: str,
    n_snapshots: int,
    seed: int,
    index: int,
    method: str = "auto",
    max_bond: int = DEFAULT_MAX_BOND,
    cutoff: float = DEFAULT_CUTOFF,
    engine: str = DMRG_ENGINES[0],
) -> InstanceResult:
    """Ground state, ``n_snapshots`` random-Pauli snapshots and exact properties of one instance.

    Randomness comes only from ``SeedSequence(seed, spawn_key=(1, index))``: the same
    ``(seed, index, parameters)`` always give the same snapshots (and, for DMRG, the same start
    state; the engine, ``"quimb"`` or ``"numpy"``, is only used by DMRG).
    """
    from shadowlab.acquire.statevector import sample_statevector

    model = check_model(model)
    lat = parse_lattice(lattice)
    couplings = couplings_from_parameters(model, lat, parameters, form)
    how = resolve_method(method, lat)
    stream = np.random.SeedSequence(int(seed), spawn_key=(_INSTANCE_STREAM, int(index)))
    sample_seq, solver_seq = stream.spawn(2)
    rng = np.random.default_rng(sample_seq)
    n = lat.n_qubits
    # Fully random local-Pauli measurements: every snapshot is its own setting.
    settings = rng.integers(0, 3, size=(int(n_snapshots), n), dtype=np.uint8)
    if how == "exact":
        gs = exact_ground_state(couplings)
        with single_threaded_blas():  # see its docstring: BLAS threads only slow these vector operations
            data = sample_statevector(gs.state, settings, 1, rng)
        corr = exact_pair_correlations(gs.state)
        energy = gs.energy
        info: dict[str, Any] = {"gap": gs.gap, "degenerate": gs.degenerate}
    else:
        from shadowlab.acquire.mps import dmrg_ground_state, mps_correlations, sample_mps

        solver_seed = int(solver_seq.generate_state(1)[0])
        mps = dmrg_ground_state(couplings, max_bond=max_bond, cutoff=cutoff, seed=solver_seed, engine=engine)
        data = sample_mps(mps.arrays, settings, rng, canonical=True)
        corr = mps_correlations(mps.arrays, canonical=True)
        # <H> of the state actually sampled (equals the DMRG energy to its convergence).
        energy = couplings.energy(corr["xx"], corr["yy"], corr["zz"], corr["single"][0])
        info = mps.info()
    return InstanceResult(data.bases, data.outcomes, corr["xx"], corr["yy"], corr["zz"], float(energy),
                          {"method": how, **info})


def _instance_task(kwargs: dict[str, Any]) -> tuple[int, InstanceResult]:
    """Worker entry point (module level so that process pools can pickle it)."""
    return int(kwargs["index"]), generate_instance(**kwargs)


# ----------------------------------------------------------------------------- family


def generate_family(
    model: str,
    lattice: str | Lattice,
    *,
    n_snapshots: int,
    parameters: Sequence[Sequence[float]] | np.ndarray | None = None,
    grid: str | Mapping[str, Any] | None = None,
    n_random: int | None = None,
    form: str | None = None,
    random_range: tuple[float, float] = (0.0, 2.0),
    seed: int = 0,
    method: str = "auto",
    max_bond: int = DEFAULT_MAX_BOND,
    cutoff: float = DEFAULT_CUTOFF,
    engine: str = DMRG_ENGINES[0],
    workers: int = 1,
    progress: Callable[[int], object] | None = None,
) -> ShadowFamily:
    """Ground states of one model at many parameter vectors, with shadows and exact properties.

    Parameters
    ----------
    model:
        ``"tfim"``, ``"xxz"`` or ``"heisenberg"`` (see :mod:`shadowlab.acquire.ground_states`).
    lattice:
        ``"chain:N"``, ``"ring:N"``, ``"grid:LxW"`` or a :class:`Lattice`.
    n_snapshots:
        Snapshots per instance (each with its own uniformly random bases).
    parameters, grid, n_random:
        Exactly one: explicit parameter vectors ``(I, P)``; a grid over uniform-form parameters
        (``"h=0.2:2.0:10"``, ``"J2=0.5:1.5:5;Delta=0,1"`` or ``{"h": [...]}``; parameters not on
        the grid keep their defaults, ``h = 1``, ``J1 = J2 = Delta = 1``, ``J = 1``); or a number of
        random instances, each parameter of the form drawn uniformly in ``random_range``.
    form:
        ``"uniform"`` or ``"local"``. Default: uniform for grids, local for random instances
        (per-edge couplings / per-site fields), inferred from the column count for explicit
        parameters.
    random_range:
        ``(low, high)`` of the uniform draws (default ``(0, 2)``, as for the random Heisenberg
        couplings of Huang et al. 2022).
    seed:
        Non-negative integer seed of everything random (see the module docstring).
    method:
        ``"exact"``, ``"dmrg"`` (open chains) or ``"auto"`` (exact up to
        :data:`AUTO_EXACT_MAX_QUBITS` qubits and on rings and grids, DMRG on longer chains).
    max_bond, cutoff:
        DMRG bond-dimension cap and truncation (discarded weight per update).
    engine:
        DMRG engine, ``"quimb"`` (default; quimb's ``DMRG2``) or ``"numpy"`` (shadowlab's own,
        no extra dependency); see :func:`shadowlab.acquire.mps.dmrg_ground_state`. Unused by
        exact diagonalization.
    workers:
        Processes generating instances in parallel (1 = in this process). Results do not depend
        on it.
    progress:
        Optional callable, called with ``1`` each time an instance is finished.

    Returns
    -------
    ShadowFamily
        ``parameters``/``parameter_names`` in the chosen form, ``edges`` = the lattice's edges
        in edge order, ``exact`` = ``{"xx", "yy", "zz", "correlations", "energy"}`` (``(I, n,
        n)`` and ``(I,)``; ``correlations = (xx + yy + zz) / 3``) and ``metadata`` with the model,
        lattice, seed, method, Hamiltonian and per-instance solver facts (gaps and degeneracy
        flags for exact diagonalization; bond dimension, truncation and convergence for DMRG).
    """
    model = check_model(model)
    lat = parse_lattice(lattice)
    how = resolve_method(method, lat)
    engine = str(engine).strip().lower()
    if engine not in DMRG_ENGINES:
        raise ShadowlabError(f"unknown DMRG engine {engine!r}; allowed: {', '.join(DMRG_ENGINES)}")
    n_snapshots = _positive_int(n_snapshots, "n_snapshots")
    workers = _positive_int(workers, "workers")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ShadowlabError(f"seed must be a non-negative integer, got {seed!r}")
    given = [name for name, v in (("parameters", parameters), ("grid", grid), ("n_random", n_random))
             if v is not None]
    if len(given) != 1:
        raise ShadowlabError("give exactly one of parameters (explicit vectors), grid (e.g. 'h=0.2:2.0:10') or "
                             f"n_random (random instances); got {', '.join(given) or 'none'}")
    extra: dict[str, Any] = {}
    if grid is not None:
        form = check_form(form or "uniform")
        if form != "uniform":
            raise ShadowlabError("grids are over the uniform-form parameters; use parameters=... for local ones")
        params, extra["grid"] = _grid_parameters(model, grid)
    elif n_random is not None:
        count = _positive_int(n_random, "n_random")
        form = check_form(form or "local")
        low, high = (float(x) for x in random_range)
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ShadowlabError(f"random_range must be (low, high) with low <= high, got {random_range!r}")
        width = len(parameter_names(model, lat, form))
        prng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_PARAMETER_STREAM,)))
        params = prng.uniform(low, high, size=(count, width))
        extra["random_range"] = [low, high]
    else:
        params = np.asarray(parameters, dtype=np.float64)
        if params.ndim == 1:
            params = params[:, None]
        if params.ndim != 2 or params.shape[0] < 1:
            raise ShadowlabError(f"parameters must be a (instances, parameters) array, got shape {params.shape}")
        form = check_form(form) if form is not None else _infer_form(model, lat, params.shape[1])
    names = parameter_names(model, lat, form)
    if params.shape[1] != len(names):
        raise ShadowlabError(f"{model} on {lat.spec} in the {form!r} form takes {len(names)} parameters, "
                             f"got {params.shape[1]} columns")
    for row in params:  # validate every instance before spending minutes on the first ones
        couplings_from_parameters(model, lat, row, form)

    tasks = [{"model": model, "lattice": lat, "parameters": row, "form": form, "n_snapshots": n_snapshots,
              "seed": int(seed), "index": k, "method": how, "max_bond": int(max_bond), "cutoff": float(cutoff),
              "engine": engine}
             for k, row in enumerate(params)]
    results: dict[int, InstanceResult] = {}
    if workers == 1 or len(tasks) == 1:
        for task in tasks:
            k, res = _instance_task(task)
            results[k] = res
            if progress is not None:
                progress(1)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # "spawn": forking a process that holds BLAS/OpenMP thread pools can deadlock.
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_instance_task, task) for task in tasks]
            for fut in as_completed(futures):
                k, res = fut.result()
                results[k] = res
                if progress is not None:
                    progress(1)
    ordered = [results[k] for k in range(len(tasks))]
    xx = np.stack([r.xx for r in ordered])
    yy = np.stack([r.yy for r in ordered])
    zz = np.stack([r.zz for r in ordered])
    exact = {"xx": xx, "yy": yy, "zz": zz, "correlations": (xx + yy + zz) / 3.0,
             "energy": np.array([r.energy for r in ordered])}
    metadata: dict[str, Any] = {
        "source": "generate", "model": model, "lattice": lat.spec, "n_qubits": lat.n_qubits,
        "hamiltonian": HAMILTONIANS[model], "form": form, "seed": int(seed), "method": how,
        "requested_method": str(method), "n_snapshots": n_snapshots,
        "edge_order": "see shadowlab.acquire.ground_states (chain order; ring adds (0, N-1); grid: horizontal "
                      "edges row by row, then vertical)",
        **extra,
    }
    if how == "exact":
        gaps = [float(r.info["gap"]) for r in ordered]
        degenerate = [bool(r.info["degenerate"]) for r in ordered]
        metadata["exact_diagonalization"] = {"gaps": gaps, "degenerate": degenerate,
                                             "n_degenerate": int(sum(degenerate))}
    else:
        metadata["dmrg"] = {
            "engine": str(ordered[0].info["engine"]),
            **({"quimb_version": ordered[0].info["quimb_version"]} if "quimb_version" in ordered[0].info else {}),
            "max_bond": int(max_bond), "cutoff": float(cutoff),
            "bond_dims": [int(r.info["bond_dim"]) for r in ordered],
            # Largest discarded weight of the last sweep (numpy engine; None: quimb does not report it).
            "truncation_errors": [_float_or_none(r.info["truncation_error"]) for r in ordered],
            "schmidt_tails_at_cap": [_float_or_none(r.info["schmidt_tail_at_cap"]) for r in ordered],
            "converged": [bool(r.info["converged"]) for r in ordered],
            "sweeps": [int(r.info["sweeps"]) for r in ordered],
            "energies_dmrg": [float(r.info["energy_dmrg"]) for r in ordered],
            # DMRG finds one low-entanglement state; a (quasi-)degenerate ground space, e.g. the
            # ordered TFIM phase, is not detected (it gives one symmetry-broken vector).
            "degeneracy_checked": False,
        }
    return ShadowFamily(
        bases=np.stack([r.bases for r in ordered]),
        outcomes=np.stack([r.outcomes for r in ordered]),
        parameters=params,
        parameter_names=names,
        edges=lat.edges,
        exact=exact,
        metadata=metadata,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise ShadowlabError(f"{what} must be a positive integer, got {value!r}")
    return int(value)
