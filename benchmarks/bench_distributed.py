#!/usr/bin/env python
"""Out-of-core and distributed estimation: throughput, peak memory per worker, speed-up with workers.

Two studies, each configuration in a fresh child process (so that peak memory is its own):

1. ``scaling``: every Pauli string of weight 1..3 on 60 qubits (940,050 observables) on 10^6
   snapshots of the 60-qubit cluster state, read out of core from a Zarr store, estimated

   * in one process (the compiled kernels' own threads on both cores),
   * on a local Dask cluster of 1 worker process x 1 thread,
   * on a local Dask cluster of 2 worker processes x 1 thread,

   with the results of all three required to be bit-identical. Throughput is observable x
   snapshot evaluations per second. Peer, in the same run and on the same 2-worker cluster: what
   a Dask user writes without shadowlab, ``dask.array.from_zarr`` and a numpy ``map_blocks`` of
   the same estimator over the store's chunks, on the first ``--peer-observables`` observables
   (all of them would take hours); its estimates must equal shadowlab's to 1e-12.
2. ``large``: ``--observables`` random Paulis (weight 1..4) on a store of 2 x 10^8 snapshots of 100
   qubits, out of core in one process under a 512 MB chunk bound: wall time, throughput and the
   process's peak RSS (the acceptance bound is 1 GB); and equality with an in-memory run on a
   prefix of ``--prefix`` snapshots (the out-of-core run on that prefix must give the same numbers).

Usage::

    python benchmarks/bench_distributed.py scaling [--store PATH] [--snapshots N] [--json PATH]
    python benchmarks/bench_distributed.py make-large --store PATH --snapshots 200000000
    python benchmarks/bench_distributed.py large --store PATH [--observables M] [--prefix N]

``scaling`` makes its store (with the distributed simulator on 2 workers) when ``--store`` does not
exist. Prints Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import launch, status_mb

SCALING_QUBITS = 60
SCALING_WEIGHT = 3
LARGE_STATE = "cluster:100"
CONFIGS = {"process": None, "1 worker": 1, "2 workers": 2}


def _digest(result: Any) -> str:
    h = hashlib.sha256()
    for field in ("estimate", "stderr", "ci_low", "ci_high", "n_matched"):
        h.update(np.ascontiguousarray(getattr(result, field)).tobytes())
    return h.hexdigest()[:16]


def _peak_mb() -> float:
    """This process's peak RSS (VmHWM) in MB; self-contained so that Dask ships it to workers by value."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024.0 for line in fh if line.startswith("VmHWM:"))


def _worker_peaks(client: Any) -> list[float]:
    return sorted(client.run(_peak_mb).values())


def child_scaling(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration of the scaling study (runs in its own process)."""
    from shadowlab.data.store import ShadowStore
    from shadowlab.estimate.pauli import estimate_paulis
    from shadowlab.execution import Execution, connect
    from shadowlab.paulis import PauliArrays

    store = ShadowStore.open(args.store)
    obs = PauliArrays.up_to_weight(store.n_qubits, SCALING_WEIGHT)
    workers = CONFIGS[args.config]
    execution = Execution(workers=workers) if workers else Execution()
    with connect(execution) as client:
        # Load the compiled kernels (from numba's cache) where they will run, before timing.
        _warm_up() if client is None else client.run(_warm_up)
        t0 = time.perf_counter()
        result = estimate_paulis(store, obs, execution=execution)
        seconds = time.perf_counter() - t0
        peaks = _worker_peaks(client) if client is not None else []
    return {"config": args.config, "seconds": seconds, "evaluations": len(obs) * store.n_snapshots,
            "observables": len(obs), "snapshots": store.n_snapshots, "digest": _digest(result),
            "process_peak_mb": status_mb("VmHWM"), "worker_peaks_mb": peaks,
            "first": result.estimate[: args.peer_observables].tolist()}


def _warm_up() -> None:
    from shadowlab import kernels

    rng = np.random.default_rng(0)
    planes = kernels.pack(rng.integers(0, 3, (128, 4), dtype=np.uint8), rng.integers(0, 2, (128, 4), dtype=np.uint8))
    m = np.zeros((1, 1), dtype=np.int64)
    kernels.pauli_block_counts(planes, np.array([0]), np.array([128]), np.zeros((1, 1), np.int64),
                               np.zeros((1, 1), np.int64), np.ones(1, np.int64), m, m.copy())


def _peer_block(bases: np.ndarray, outcomes: np.ndarray, qubits: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per-observable sums of ``3^w sign`` over one chunk, in plain numpy (the peer's map_blocks body)."""
    out = np.zeros((1, len(qubits)))
    for i, (qs, cs) in enumerate(zip(qubits, codes, strict=True)):
        hit = np.all(bases[:, qs] == cs, axis=1)
        sign = 1 - 2 * (outcomes[hit][:, qs].sum(axis=1, dtype=np.int64) % 2)
        out[0, i] = 3.0 ** len(qs) * sign.sum()
    return out


def _random_paulis(n_qubits: int, count: int, seed: int) -> Any:
    """``count`` random Pauli strings of weight uniform in 1..4 on random supports (seeded)."""
    from shadowlab.paulis import PauliString

    rng = np.random.default_rng(seed)
    out = []
    for w in rng.integers(1, 5, size=count):
        support = np.sort(rng.choice(n_qubits, size=int(w), replace=False))
        out.append(PauliString(tuple(int(q) for q in support), tuple(int(c) for c in rng.integers(0, 3, size=w))))
    return out


def child_large(args: argparse.Namespace) -> dict[str, Any]:
    """The large study's out-of-core run over the whole store, in one process under a 512 MB chunk bound."""
    from shadowlab.acquire.clifford_states import builtin_clifford, stabilizer_expectations
    from shadowlab.data.store import ShadowStore
    from shadowlab.estimate.pauli import estimate_paulis
    from shadowlab.execution import Execution

    store = ShadowStore.open(args.store)
    obs = _random_paulis(store.n_qubits, args.observables, seed=7)
    _warm_up()
    t0 = time.perf_counter()
    result = estimate_paulis(store, obs, execution=Execution(memory=args.memory))
    seconds = time.perf_counter() - t0
    # The stabilizer state's exact values (stim) check the estimates themselves.
    exact = stabilizer_expectations(builtin_clifford(store.metadata["provenance"]["state"]), obs,
                                    n_qubits=store.n_qubits)
    z = np.abs(result.estimate - exact) / result.stderr
    return {"config": "out of core, whole store", "seconds": seconds, "snapshots": store.n_snapshots,
            "max_abs_z": float(z.max()), "within_5se": int(np.sum(z <= 5)), "nonzero_exact": int(np.sum(exact != 0)),
            "observables": len(obs), "evaluations": len(obs) * store.n_snapshots, "digest": _digest(result),
            "process_peak_mb": status_mb("VmHWM"), "disk_gb": store.disk_bytes() / 1e9, "n_qubits": store.n_qubits,
            "memory": args.memory,
            "max_abs_estimate": float(np.max(np.abs(result.estimate))), "max_stderr": float(result.stderr.max())}


def child_prefix(args: argparse.Namespace) -> dict[str, Any]:
    """The same observables on the first ``--prefix`` snapshots: in memory, then out of core."""
    from shadowlab.data.store import ShadowStore
    from shadowlab.estimate.pauli import estimate_paulis
    from shadowlab.execution import Execution

    store = ShadowStore.open(args.store)
    obs = _random_paulis(store.n_qubits, args.observables, seed=7)
    t0 = time.perf_counter()
    data = store.read(0, args.prefix)
    in_memory = estimate_paulis(data, obs)
    t_mem = time.perf_counter() - t0
    t0 = time.perf_counter()
    out_of_core = estimate_paulis(store.head(args.prefix), obs, execution=Execution(memory=args.memory))
    t_ooc = time.perf_counter() - t0
    return {"prefix": args.prefix, "in_memory_digest": _digest(in_memory), "out_of_core_digest": _digest(out_of_core),
            "in_memory_seconds": t_mem, "out_of_core_seconds": t_ooc, "process_peak_mb": status_mb("VmHWM"),
            "max_abs_diff": float(np.max(np.abs(in_memory.estimate - out_of_core.estimate)))}


def large(args: argparse.Namespace) -> dict[str, Any]:
    run = run_child("large", args, observables=str(args.observables), memory=args.memory)
    if run["process_peak_mb"] >= 1000:
        raise SystemExit(f"peak RSS {run['process_peak_mb']:.0f} MB is not under 1 GB")
    prefix = run_child("prefix", args, observables=str(args.observables), memory=args.memory,
                       prefix=str(args.prefix))
    if prefix["in_memory_digest"] != prefix["out_of_core_digest"]:
        raise SystemExit(f"out-of-core and in-memory results differ on the prefix: {prefix}")
    costs = run_child("costs", args, observables=str(args.observables))
    return {"run": run, "prefix": prefix, "costs": costs}


def print_large(res: dict[str, Any]) -> None:
    r, p = res["run"], res["prefix"]
    print(f"{r['observables']:,} random Paulis (weight 1..4) on {r['snapshots']:,} snapshots of {r['n_qubits']} "
          f"qubits ({r['disk_gb']:.1f} GB on disk), out of core in one process, chunk bound {r['memory']}:\n")
    print("| wall s | evaluations / s | peak RSS MB | largest |estimate| | largest s.e. |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {r['seconds']:.0f} | {r['evaluations'] / r['seconds']:.3g} | {r['process_peak_mb']:.0f} | "
          f"{r['max_abs_estimate']:.2e} | {r['max_stderr']:.2e} |")
    print(f"\nAgainst the exact values of the state (stim; {r['nonzero_exact']} observable(s) +-1, the rest "
          f"0): {r['within_5se']:,} of {r['observables']:,} estimates within 5 standard errors, largest |z| = "
          f"{r['max_abs_z']:.2f}.")
    print(f"\nPrefix of {p['prefix']:,} snapshots: in memory ({p['in_memory_seconds']:.1f} s, the whole prefix "
          f"loaded) and out of core ({p['out_of_core_seconds']:.1f} s) give identical results (max |diff| = "
          f"{p['max_abs_diff']:.1e}); that child's peak RSS {p['process_peak_mb']:.0f} MB.")
    c = res["costs"]
    print(f"\nPer chunk of {c['chunk_snapshots']:,} snapshots x {c['n_qubits']} qubits on one core (mean of 12 "
          f"chunks): read and decode {c['read_s'] * 1e3:.0f} ms ({c['chunk_disk_mb']:.1f} MB on disk), pack "
          f"{c['pack_s'] * 1e3:.0f} ms (planes {c['planes_mb']:.1f} MB), count {c['observables']:,} Paulis (mean "
          f"weight {c['mean_weight']:.1f}) {c['count_s'] * 1e3:.0f} ms; result {c['result_mb']:.2f} MB.")


def child_costs(args: argparse.Namespace) -> dict[str, Any]:
    """Per-chunk costs on one core (the numbers a cluster or GPU plan scales): reading and decoding a
    store chunk, packing it into bit planes, and counting ``--observables`` Paulis on it."""
    import numba

    from shadowlab import kernels
    from shadowlab.data.store import ShadowStore
    from shadowlab.paulis import PauliArrays

    numba.set_num_threads(1)
    store = ShadowStore.open(args.store)
    arrays = PauliArrays.from_paulis(_random_paulis(store.n_qubits, args.observables, seed=7))
    _warm_up()
    step, n_chunks = store.chunk_snapshots, 12
    read = pack = count = 0.0
    for c in range(n_chunks):
        t0 = time.perf_counter()
        chunk = store.read(c * step, (c + 1) * step)
        t1 = time.perf_counter()
        planes = kernels.pack(chunk.bases, chunk.outcomes)
        t2 = time.perf_counter()
        match = np.zeros((len(arrays), 1), dtype=np.int64)
        kernels.pauli_block_counts(planes, np.array([0]), np.array([chunk.n_snapshots]), arrays.qubits, arrays.codes,
                                   arrays.weights, match, match.copy())
        t3 = time.perf_counter()
        read, pack, count = read + t1 - t0, pack + t2 - t1, count + t3 - t2
    disk = store.disk_bytes() / store.n_snapshots * step
    return {"chunk_snapshots": step, "n_qubits": store.n_qubits, "observables": len(arrays),
            "read_s": read / n_chunks, "pack_s": pack / n_chunks, "count_s": count / n_chunks,
            "chunk_disk_mb": disk / 1e6, "result_mb": 2 * 8 * len(arrays) / 1e6,
            "planes_mb": planes.nbytes / 1e6, "mean_weight": float(arrays.weights.mean())}


def child_peer(args: argparse.Namespace) -> dict[str, Any]:
    """The peer: dask.array over the Zarr store's chunks with a numpy estimator, on 2 workers."""
    import dask.array as da
    import zarr
    from distributed import Client, LocalCluster

    from shadowlab.paulis import PauliArrays

    obs = PauliArrays.up_to_weight(SCALING_QUBITS, SCALING_WEIGHT)
    m = args.peer_observables
    qubits = [obs.qubits[i, : obs.weights[i]] for i in range(m)]
    codes = [obs.codes[i, : obs.weights[i]] for i in range(m)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit=0) as cluster, Client(cluster) as client:
        n = int(zarr.open_group(str(args.store), mode="r").attrs["shadowlab"]["n_snapshots"])
        bases, outcomes = (da.from_array(arr, chunks=arr.chunks)[:n] for arr in
                           (zarr.open_array(str(Path(args.store) / name), mode="r") for name in ("bases", "outcomes")))
        t0 = time.perf_counter()
        partial = da.map_blocks(_peer_block, bases, outcomes, qubits=qubits, codes=codes, dtype=float,
                                chunks=((1,) * bases.numblocks[0], (m,)))
        estimate = partial.sum(axis=0).compute() / bases.shape[0]
        seconds = time.perf_counter() - t0
        peaks = _worker_peaks(client)
    return {"config": "peer", "seconds": seconds, "evaluations": m * int(bases.shape[0]), "observables": m,
            "snapshots": int(bases.shape[0]), "worker_peaks_mb": peaks, "process_peak_mb": status_mb("VmHWM"),
            "first": estimate.tolist()}


def make_store(state: str, path: Path, snapshots: int) -> float:
    """Simulate ``snapshots`` of ``state`` into a new store with the distributed simulator on 2 local
    workers; returns the wall time in seconds."""
    from shadowlab.acquire.distributed import simulate_to_store
    from shadowlab.execution import Execution

    t0 = time.perf_counter()
    simulate_to_store(state, path, snapshots, seed=2026, execution=Execution(workers=2))
    return time.perf_counter() - t0


def run_child(kind: str, args: argparse.Namespace, **extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "_child", kind, "--store", str(args.store),
           "--peer-observables", str(args.peer_observables)]
    for k, v in extra.items():
        cmd += [f"--{k}", v]
    state, code, out, err, _ = launch(cmd, dict(os.environ), args.timeout)
    if state != "done" or code != 0:
        raise RuntimeError(f"{kind} {extra}: {state}, exit {code}\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    store = Path(args.store)
    made = None if store.exists() else make_store(f"cluster:{SCALING_QUBITS}", store, args.snapshots)
    # Each configuration's result is kept next to the store, so that a re-run measures only what is missing.
    cache_file = store.with_suffix(".results.json")
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    for name in CONFIGS:
        if name not in cache:
            cache[name] = run_child("scaling", args, config=name)
            cache_file.write_text(json.dumps(cache))
    rows = [cache[name] for name in CONFIGS]
    digests = {r["digest"] for r in rows}
    if len(digests) != 1:
        raise SystemExit(f"results differ between configurations: {[(r['config'], r['digest']) for r in rows]}")
    peer = run_child("peer", args)
    diff = float(np.max(np.abs(np.array(peer["first"]) - np.array(rows[0]["first"]))))
    if diff > 1e-12:
        raise SystemExit(f"peer disagrees with shadowlab by {diff}")
    return {"rows": rows, "peer": peer, "peer_max_abs_diff": diff, "store_seconds": made}


def print_scaling(res: dict[str, Any]) -> None:
    rows, peer = res["rows"], res["peer"]
    one = next(r for r in rows if r["config"] == "1 worker")
    print(f"All Paulis of weight <= {SCALING_WEIGHT} on {SCALING_QUBITS} qubits: {rows[0]['observables']:,} "
          f"observables x {rows[0]['snapshots']:,} snapshots; results of every configuration identical "
          f"(digest {rows[0]['digest']}).\n")
    print("| configuration | wall s | evaluations / s | speed-up vs 1 worker | peak RSS per worker MB | "
          "client peak RSS MB |")
    print("|---|---:|---:|---:|---|---:|")
    for r in [*rows, peer]:
        name = (r["config"] if r["config"] != "peer"
                else f"peer: dask.array + numpy, 2 workers ({peer['observables']:,} obs.)")
        workers = ", ".join(f"{p:.0f}" for p in r["worker_peaks_mb"]) or "—"
        speed = f"{one['seconds'] / r['seconds']:.2f}x" if r["config"] != "peer" else "—"
        print(f"| {name} | {r['seconds']:.1f} | {r['evaluations'] / r['seconds']:.3g} | {speed} | {workers} | "
              f"{r['process_peak_mb']:.0f} |")
    two = next(r for r in rows if r["config"] == "2 workers")
    print(f"\nPeer vs shadowlab on the same observables: max |diff| = {res['peer_max_abs_diff']:.1e}; shadowlab on "
          f"2 workers is {two['evaluations'] / two['seconds'] / (peer['evaluations'] / peer['seconds']):,.0f}x the "
          "peer's evaluations per second.")
    if res["store_seconds"] is not None:
        print(f"\nStore made by the distributed simulator (2 workers) in {res['store_seconds']:.0f} s.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", choices=["scaling", "large", "make-large", "_child"])
    ap.add_argument("kind", nargs="?", default=None)
    ap.add_argument("--store", type=Path, default=Path("/tmp/shadowlab-bench/cluster60.zarr"))
    ap.add_argument("--snapshots", type=int, default=1_000_000)
    ap.add_argument("--peer-observables", type=int, default=2000)
    ap.add_argument("--config", default="process")
    ap.add_argument("--observables", type=int, default=10_000)
    ap.add_argument("--prefix", type=int, default=10_000_000)
    ap.add_argument("--memory", default="512MB")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.study == "_child":
        fn = {"scaling": child_scaling, "peer": child_peer, "large": child_large, "prefix": child_prefix,
              "costs": child_costs}[args.kind]
        print(json.dumps(fn(args)))
        return
    if args.study == "make-large":
        seconds = make_store(LARGE_STATE, args.store, args.snapshots)
        print(json.dumps({"store": str(args.store), "snapshots": args.snapshots, "seconds": seconds}))
        return
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}\n")
    res = scaling(args) if args.study == "scaling" else large(args)
    (print_scaling if args.study == "scaling" else print_large)(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
