#!/usr/bin/env python
"""Benchmark shadowlab's Pauli estimator against PennyLane and tencirpauli on identical data.

What is measured
----------------
Every tool estimates the same ``M`` random Pauli observables from the same random local-Pauli
snapshots with the standard classical-shadow mean estimator (each snapshot contributes
``3^w * sign`` when its bases match the Pauli on its support, 0 otherwise; average over all
snapshots). Data are regenerated from a seed in every process, so all tools see identical
bases, outcomes and observables.

Each (case, tool) pair runs in its own child process (this script with ``--tool``), so that
peak memory is per tool:

* *peak RSS*: the largest resident set of the child over its whole life (imports included),
  from ``getrusage(RUSAGE_SELF).ru_maxrss`` (read before and after the peak counter is reset,
  see below);
* *peak increase*: the largest resident set reached after the common setup (imports and data
  generation), minus the resident set right after that setup. The kernel's peak counter
  (``VmHWM``) is reset at the baseline by writing ``5`` to ``/proc/self/clear_refs``, so a
  transient of the imports does not hide the tool's own allocations. Tool-specific conversions
  of the data (e.g. building the tool's snapshot object) count towards the increase.

Timing: *setup* is the conversion of data and observables into the tool's own input objects;
*time* is the estimation call alone. shadowlab is warmed up on tiny data first (numba kernels
are compiled or loaded from numba's on-disk cache; like the imports, this one-time cost comes
before the memory baseline), then timed as the best of ``--repeats`` calls; its first
full-size call is reported too. A peer is run once if a run takes more than
10 s, else up to ``--repeats`` times (best reported). Numba compile time is measured once
with an empty cache directory ("cold") and once with that cache filled ("cached"); the
children use their own numba cache directory, never the repository's.

Peers
-----
* PennyLane: ``qml.ClassicalShadow(bits, recipes).expval([obs_1, ..., obs_M], k=1)``. A list
  is the fastest way to pass many observables: all Pauli words go to one vectorized
  ``pauli_expval`` call. That call builds ``(snapshots, M, n_qubits)`` temporaries (about
  19 bytes per element), so it runs out of memory at large sizes. ``pennylane-batched``
  calls ``expval`` on slices of the observable list sized to about ``--pl-batch-mb`` of
  temporaries per call.
* tencirpauli: ``Snapshots.from_pauli_measurements(bases + 1, outcomes).estimate_many(words)``
  with ``PauliWord.batch_from_codes``. Its conventions: basis codes 1/2/3 = X/Y/Z (shadowlab:
  0/1/2, hence ``+ 1``); Pauli codes 0/1/2/3 = I/X/Y/Z per qubit in ``q0_first`` order (qubit 0
  is column 0, as in shadowlab); outcome bit 0 = eigenvalue +1 (same as shadowlab and
  PennyLane); with ``repeats = 1`` and ``blocks = 1`` its estimate is the same
  ``3^w * sign`` mean, so no normalization conversion is needed.

Children get an address-space limit (``--mem-limit-gb``, RLIMIT_AS) and a wall-clock limit
(``--timeout``); running out of either is reported as "out of memory" / "timeout".

Usage
-----
``python benchmarks/bench_pauli.py`` runs all cases and tools and prints Markdown;
``--quick`` runs tiny versions in seconds (used by ``tests/test_benchmarks.py``);
``--json PATH`` also writes the results machine-readably.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata, util
from pathlib import Path
from typing import Any

import numpy as np
from _measure import launch as _launch
from _measure import reset_peak_rss
from _measure import status_mb as _status_mb

LETTERS = "XYZ"
TOOLS = ("shadowlab", "pennylane", "pennylane-batched", "tencirpauli")
# The importable module each tool needs; a tool whose module is missing is skipped.
TOOL_MODULE = {"shadowlab": "shadowlab", "pennylane": "pennylane", "pennylane-batched": "pennylane",
               "tencirpauli": "tencirpauli"}
# Peers whose single run takes longer than this are not repeated.
SLOW_RUN_S = 10.0
# Approximate bytes of temporaries per (snapshot, observable, qubit) element in PennyLane's
# pauli_expval: three bool arrays (1 byte each) and two int64 arrays alive at once (8 each).
PL_BYTES_PER_ELEMENT = 19
EXIT_OOM = 3


@dataclass(frozen=True)
class Case:
    """One benchmark size: random data and ``n_observables`` random Paulis of weight in
    ``[min_weight, max_weight]`` (uniform) on distinct uniformly random qubits."""

    name: str
    n_snapshots: int
    n_qubits: int
    n_observables: int
    min_weight: int
    max_weight: int
    purpose: str

    @property
    def weights_text(self) -> str:
        """Weight range for display, e.g. ``'2'`` or ``'1-4'``."""
        if self.min_weight == self.max_weight:
            return str(self.min_weight)
        return f"{self.min_weight}-{self.max_weight}"


FULL_CASES = {
    "A": Case("A", 100_000, 100, 10_000, 2, 2, "scale: shadowlab <= 0.3 s and <= 300 MB peak"),
    "B": Case("B", 100_000, 50, 1_000, 2, 2, "speed: shadowlab >= 100x faster than tencirpauli"),
    "C": Case("C", 10_000, 20, 1_000, 1, 4, "agreement: every peer fits"),
}
QUICK_CASES = {
    "A": Case("A", 3_000, 12, 60, 2, 2, "quick smoke version of A"),
    "B": Case("B", 2_000, 8, 30, 2, 2, "quick smoke version of B"),
    "C": Case("C", 2_000, 6, 40, 1, 4, "quick smoke version of C"),
}


# ---------------------------------------------------------------------------------------------
# Shared data generation (identical in every child)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchData:
    """Snapshots and observables of one case.

    ``bases``/``outcomes`` are ``(S, n)`` uint8 (shadowlab codes: 0/1/2 = X/Y/Z; outcome 0 =
    eigenvalue +1). Observable ``m`` acts on ``qubits[m, :weights[m]]`` (distinct, unsorted)
    with letters ``letters[m, :weights[m]]`` (0/1/2 = X/Y/Z).
    """

    bases: np.ndarray
    outcomes: np.ndarray
    qubits: np.ndarray
    letters: np.ndarray
    weights: np.ndarray

    def observable(self, m: int) -> list[tuple[int, int]]:
        """``(qubit, letter)`` pairs of observable ``m``, sorted by qubit."""
        w = int(self.weights[m])
        return sorted(zip(self.qubits[m, :w].tolist(), self.letters[m, :w].tolist(), strict=True))


def make_data(case: Case, seed: int) -> BenchData:
    """Seeded uniform random bases, outcomes and observables of ``case``."""
    rng = np.random.default_rng(seed)
    s, n, m = case.n_snapshots, case.n_qubits, case.n_observables
    bases = rng.integers(0, 3, size=(s, n), dtype=np.uint8)
    outcomes = rng.integers(0, 2, size=(s, n), dtype=np.uint8)
    weights = rng.integers(case.min_weight, case.max_weight + 1, size=m)
    # The first w entries of a uniformly random permutation are w distinct uniform qubits.
    qubits = np.argsort(rng.random((m, n)), axis=1)[:, : case.max_weight]
    letters = rng.integers(0, 3, size=(m, case.max_weight))
    return BenchData(bases, outcomes, qubits, letters, weights)


# ---------------------------------------------------------------------------------------------
# Memory probes (Linux)
# ---------------------------------------------------------------------------------------------


def maxrss_mb() -> float:
    """Peak resident set of this process in MB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def limit_address_space(gigabytes: float) -> None:
    """Cap this process's virtual address space so that a runaway allocation fails with a
    MemoryError instead of exhausting the machine."""
    limit = int(gigabytes * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# ---------------------------------------------------------------------------------------------
# Tool runners (executed inside a child process)
# ---------------------------------------------------------------------------------------------

Runner = Callable[[BenchData, argparse.Namespace], tuple[np.ndarray, dict[str, Any]]]


def _best_of(call: Callable[[], np.ndarray], repeats: int, always_repeat: bool) -> tuple[np.ndarray, list[float]]:
    """Run ``call`` and time it: ``repeats`` times, or once only if slow and not ``always_repeat``."""
    times: list[float] = []
    result = np.empty(0)
    while len(times) < max(repeats, 1):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
        if not always_repeat and sum(times) > SLOW_RUN_S:
            break
    return result, times


def _shadowlab_labels(data: BenchData) -> list[str]:
    """Sparse shadowlab labels of the observables, e.g. ``'X3 Z17'``."""
    return [" ".join(f"{LETTERS[c]}{q}" for q, c in data.observable(m)) for m in range(len(data.weights))]


def _shadowlab_estimate(d: Any, obs: Any) -> np.ndarray:
    """``estimate_paulis(d, obs, estimator='mean')`` as a plain ``(M,)`` array in input order.

    ``on_unmatched='omit'`` instead of raising on a never-matched observable: its mean estimate
    is 0, as the peers report; the rows are then put back in input order by label.
    """
    from shadowlab.estimate.pauli import estimate_paulis

    r = estimate_paulis(d, obs, estimator="mean", on_unmatched="omit")
    if not r.omitted:
        return np.asarray(r.estimate, dtype=np.float64)
    by_label = dict(zip(r.labels, r.estimate.tolist(), strict=True))
    return np.array([by_label.get(lab, 0.0) for lab in obs.labels])


def warm_up_shadowlab(data: BenchData) -> float:
    """Estimate a few observables on 64 snapshots with the same array types as the timed calls:
    compiles the numba kernels, or loads them from numba's cache. Returns the seconds taken.

    Run before the memory baseline, like the imports: it is a one-time cost per process.
    """
    from shadowlab.data.dataset import ShadowData
    from shadowlab.paulis import PauliSum

    tiny = ShadowData(data.bases[:64], data.outcomes[:64])
    labels = _shadowlab_labels(data)[:8]
    t0 = time.perf_counter()
    _shadowlab_estimate(tiny, PauliSum.from_labels(labels, n_qubits=data.bases.shape[1]))
    return time.perf_counter() - t0


def run_shadowlab(data: BenchData, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """``estimate_paulis(ShadowData, PauliSum, estimator='mean')`` after warm-up, best of N."""
    from shadowlab.data.dataset import ShadowData
    from shadowlab.paulis import PauliSum

    t0 = time.perf_counter()
    shadow = ShadowData(data.bases, data.outcomes)
    observables = PauliSum.from_labels(_shadowlab_labels(data), n_qubits=data.bases.shape[1])
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    _shadowlab_estimate(shadow, observables)
    first_s = time.perf_counter() - t0
    result, times = _best_of(lambda: _shadowlab_estimate(shadow, observables), args.repeats, always_repeat=True)
    return result, {"setup_s": setup_s, "time_s": min(times), "times_s": times, "first_call_s": first_s,
                    "notes": f"best of {len(times)}; first full-size call {first_s:.3f} s"}


def _pennylane_observables(data: BenchData) -> list[Any]:
    """The observables as PennyLane operators (``X(0) @ Z(5)``; a bare ``X(0)`` at weight 1)."""
    import pennylane as qml

    ctor = (qml.X, qml.Y, qml.Z)
    ops: list[Any] = []
    for m in range(len(data.weights)):
        factors = [ctor[c](q) for q, c in data.observable(m)]
        op = factors[0]
        for f in factors[1:]:
            op = op @ f
        ops.append(op)
    return ops


def run_pennylane(data: BenchData, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """``ClassicalShadow(bits, recipes).expval(list_of_observables, k=1)`` in one call."""
    import pennylane as qml

    t0 = time.perf_counter()
    ops = _pennylane_observables(data)
    shadow = qml.ClassicalShadow(data.outcomes, data.bases)
    setup_s = time.perf_counter() - t0

    def estimate() -> np.ndarray:
        return np.asarray(shadow.expval(ops, k=1), dtype=np.float64).reshape(-1)

    result, times = _best_of(estimate, args.repeats, always_repeat=False)
    return result, {"setup_s": setup_s, "time_s": min(times), "times_s": times,
                    "notes": f"one expval call with a list of {len(ops)} observables; "
                             f"best of {len(times)}"}


def run_pennylane_batched(data: BenchData, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """As :func:`run_pennylane`, but ``expval`` on slices of the list that bound temporaries."""
    import pennylane as qml

    t0 = time.perf_counter()
    ops = _pennylane_observables(data)
    shadow = qml.ClassicalShadow(data.outcomes, data.bases)
    setup_s = time.perf_counter() - t0
    s, n = data.bases.shape
    batch = max(1, int(args.pl_batch_mb * 2**20 // (PL_BYTES_PER_ELEMENT * s * n)))

    def estimate() -> np.ndarray:
        parts = [np.asarray(shadow.expval(ops[i:i + batch], k=1), dtype=np.float64).reshape(-1)
                 for i in range(0, len(ops), batch)]
        return np.concatenate(parts)

    result, times = _best_of(estimate, args.repeats, always_repeat=False)
    n_calls = math.ceil(len(ops) / batch)
    return result, {"setup_s": setup_s, "time_s": min(times), "times_s": times,
                    "notes": f"{n_calls} expval calls of <= {batch} observables "
                             f"(~{args.pl_batch_mb:g} MB temporaries each); best of {len(times)}"}


def run_tencirpauli(data: BenchData, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """``Snapshots.from_pauli_measurements(...).estimate_many(words)``."""
    from tencirpauli.pauli import PauliWord
    from tencirpauli.shadows import Snapshots

    s, n = data.bases.shape
    t0 = time.perf_counter()
    # tencirpauli basis codes are 1/2/3 = X/Y/Z; a flat (settings, n) outcome array means one
    # outcome per setting (repeats = 1). Outcome 0 = eigenvalue +1, qubit 0 = column 0, as here.
    snapshots = Snapshots.from_pauli_measurements(data.bases + np.uint8(1), data.outcomes)
    # Dense per-qubit codes 0/1/2/3 = I/X/Y/Z, qubit 0 first.
    codes = np.zeros((len(data.weights), n), dtype=np.int64)
    for m in range(len(data.weights)):
        for q, c in data.observable(m):
            codes[m, q] = c + 1
    words = PauliWord.batch_from_codes(n, codes.tolist())
    setup_s = time.perf_counter() - t0
    if snapshots.nsettings != s or snapshots.repeats != 1:
        raise RuntimeError(f"unexpected tencirpauli layout: {snapshots.nsettings} settings x "
                           f"{snapshots.repeats} repeats, expected {s} x 1")

    def estimate() -> np.ndarray:
        return np.asarray(snapshots.estimate_many(words), dtype=np.float64)

    result, times = _best_of(estimate, args.repeats, always_repeat=False)
    return result, {"setup_s": setup_s, "time_s": min(times), "times_s": times,
                    "notes": f"one estimate_many call; best of {len(times)}"}


RUNNERS: dict[str, Runner] = {
    "shadowlab": run_shadowlab,
    "pennylane": run_pennylane,
    "pennylane-batched": run_pennylane_batched,
    "tencirpauli": run_tencirpauli,
}


def run_child(args: argparse.Namespace) -> int:
    """Child mode: run one tool on one case; write ``<case>_<tool>.json`` (and ``.npy``)."""
    limit_address_space(args.mem_limit_gb)
    case = (QUICK_CASES if args.quick else FULL_CASES)[args.case.upper()]
    out_dir = Path(args.out_dir) if args.out_dir else None
    record: dict[str, Any] = {"case": case.name, "tool": args.tool, "status": "error"}
    code = 1
    reset_ok = False
    try:
        t0 = time.perf_counter()
        __import__(TOOL_MODULE[args.tool])
        if args.tool == "shadowlab":
            import shadowlab.estimate.pauli  # noqa: F401  (numba and the kernels module)
        record["import_s"] = time.perf_counter() - t0
        data = make_data(case, args.seed)
        if args.tool == "shadowlab":
            record["warmup_s"] = warm_up_shadowlab(data)
        # Baseline after imports and data generation; then restart the peak counter.
        record["baseline_mb"] = _status_mb("VmRSS")
        record["peak_before_reset_mb"] = maxrss_mb()
        reset_ok = reset_peak_rss()
        result, info = RUNNERS[args.tool](data, args)
        record.update(info)
        if "warmup_s" in record:
            record["notes"] += f"; warm-up (kernel load, before baseline) {record['warmup_s']:.2f} s"
        record["status"] = "ok"
        code = 0
        if out_dir is not None:
            np.save(out_dir / f"{case.name}_{args.tool}.npy", result)
        record["n_results"] = int(result.size)
    except MemoryError as exc:
        record["status"] = "out of memory"
        record["notes"] = f"MemoryError: {str(exc)[:160]}"
        code = EXIT_OOM
    except Exception as exc:
        record["status"] = "error"
        record["notes"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    # Peak since the reset (ru_maxrss and VmHWM follow the reset counter), and over the life.
    peak_after = maxrss_mb()
    hwm = _status_mb("VmHWM")
    record["peak_rss_mb"] = max(peak_after, record.get("peak_before_reset_mb", 0.0))
    base = record.get("baseline_mb")
    if base is not None and "peak_before_reset_mb" in record:
        if reset_ok:
            record["peak_increase_mb"] = max((hwm if hwm is not None else peak_after) - base, 0.0)
        else:
            # Without the reset, only a high-water mark over the baseline's one is available.
            record["peak_increase_mb"] = max(peak_after - record["peak_before_reset_mb"], 0.0)
    text = json.dumps(record, indent=1)
    if out_dir is not None:
        (out_dir / f"{case.name}_{args.tool}.json").write_text(text)
    else:
        print(text)
    return code


def run_probe() -> int:
    """Child mode: time the shadowlab import and a tiny first estimate (kernel compile/load)."""
    t0 = time.perf_counter()
    from shadowlab.data.dataset import ShadowData
    from shadowlab.estimate.pauli import estimate_paulis
    from shadowlab.paulis import PauliSum

    import_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    d = ShadowData(rng.integers(0, 3, (64, 4), dtype=np.uint8), rng.integers(0, 2, (64, 4), dtype=np.uint8))
    t0 = time.perf_counter()
    estimate_paulis(d, PauliSum.from_labels(["Z0 X1", "Y2"], n_qubits=4), on_unmatched="omit")
    print(json.dumps({"import_s": import_s, "first_call_s": time.perf_counter() - t0}))
    return 0


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def _child_env(cache_dir: Path) -> dict[str, str]:
    """Environment of the children: a private numba cache, and no GPU/JAX surprises."""
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_case_tool(case: Case, tool: str, args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one (case, tool) child and return its record (status filled in on failures)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--tool", tool, "--case", case.name,
           "--out-dir", str(work), "--seed", str(args.seed), "--repeats", str(args.repeats),
           "--mem-limit-gb", str(args.mem_limit_gb), "--pl-batch-mb", str(args.pl_batch_mb)]
    if args.quick:
        cmd.append("--quick")
    print(f"[bench] case {case.name}: {tool} ...", file=sys.stderr, flush=True)
    state, rc, _out, err, wall = _launch(cmd, env, args.timeout)
    json_path = work / f"{case.name}_{tool}.json"
    record: dict[str, Any] = {"case": case.name, "tool": tool}
    if json_path.exists():
        record = json.loads(json_path.read_text())
    if state == "timeout":
        record.update(status="timeout", notes=f"killed after {args.timeout:g} s")
        record["time_s"] = None
    elif rc is not None and rc < 0:
        name = signal.Signals(-rc).name
        hint = " (likely out of memory)" if -rc in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV) else ""
        record.update(status="out of memory" if hint else "crashed", notes=f"killed by {name}{hint}")
    elif not json_path.exists():
        tail = err.strip().splitlines()[-1] if err.strip() else f"exit code {rc}"
        record.update(status="error", notes=tail[:300])
    record["wall_s"] = wall
    print(f"[bench]   -> {record.get('status')} ({wall:.1f} s)", file=sys.stderr, flush=True)
    return record


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "—"
    return f"{t:.3g}" if t < 10 else f"{t:.1f}"


def _fmt_mb(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}"


def _git_line() -> list[str]:
    """The repository commit the benchmark ran on (plus '+ local changes' if dirty), if known."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return []
    return [f"- shadowlab commit {head}{' + local changes' if dirty else ''}"]


def machine_description() -> list[str]:
    """CPU model, cores, memory, OS and package versions (read without importing the peers)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 2**20
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    pkgs = ", ".join(f"{p} {version(p)}" for p in ("shadowlab", "numpy", "numba", "pennylane", "tencirpauli"))
    return [*_git_line(),
        f"- CPU: {cpu}; {os.cpu_count()} logical cores ({usable} usable)",
        f"- Memory: {mem_gb:.1f} GiB" if mem_gb is not None else "- Memory: unknown",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}; {pkgs}",
    ]


def build_report(args: argparse.Namespace, cases: list[Case], records: list[dict[str, Any]],
                 probes: dict[str, Any]) -> str:
    """The Markdown report: machine, command, cases, results table, target checks."""
    lines = ["# shadowlab Pauli-estimation benchmark", "", "## Machine", "", *machine_description()]
    if probes:
        cold = probes.get("cold", {})
        warm = probes.get("cached", {})
        lines.append(
            f"- shadowlab import {cold.get('import_s', float('nan')):.2f} s; numba kernels on first call: "
            f"{cold.get('first_call_s', float('nan')):.2f} s compiling (empty cache), "
            f"{warm.get('first_call_s', float('nan')):.2f} s loading from cache")
    lines += ["", "## Command", "", "```", shlex.join(sys.orig_argv), "```", "", "## Cases", "",
              "| case | snapshots | qubits | observables | weight | seed | purpose |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for c in cases:
        lines.append(f"| {c.name} | {c.n_snapshots:,} | {c.n_qubits} | {c.n_observables:,} | {c.weights_text} | "
                     f"{args.seed} | {c.purpose} |")
    lines += ["", "## Results", "",
              "Time: the estimation call (best of repeats); setup: conversion of data and observables into the "
              "tool's inputs. Peak RSS: whole child process; peak increase: over the RSS after imports and data "
              "generation. Speed-up: tool time / shadowlab time.", "",
              "| case | tool | status | setup s | time s | peak RSS MB | peak increase MB | "
              "max abs diff vs shadowlab | shadowlab speed-up | notes |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        diff = r.get("max_abs_diff")
        diff_txt = "(reference)" if r["tool"] == "shadowlab" and r.get("status") == "ok" else (
            "—" if diff is None else f"{diff:.1e}")
        sp = r.get("speedup")
        if sp is None:
            sp_txt = "—"
        else:
            prefix = "> " if r.get("status") == "timeout" else ""
            sp_txt = f"{prefix}{sp:.0f}×" if sp >= 10 else f"{prefix}{sp:.1f}×"
        lines.append(
            f"| {r['case']} | {r['tool']} | {r.get('status', '?')} | {_fmt_time(r.get('setup_s'))} | "
            f"{_fmt_time(r.get('time_s'))} | {_fmt_mb(r.get('peak_rss_mb'))} | {_fmt_mb(r.get('peak_increase_mb'))} | "
            f"{diff_txt} | {sp_txt} | {str(r.get('notes', '')).replace('|', '/')} |")
    checks = target_checks(records, args.quick)
    if checks:
        lines += ["", "## Targets", "", *checks]
    return "\n".join(lines)


def target_checks(records: list[dict[str, Any]], quick: bool) -> list[str]:
    """PASS/FAIL lines for the performance targets of cases A and B (full sizes only)."""
    if quick:
        return []

    def find(case: str, tool: str) -> dict[str, Any] | None:
        return next((r for r in records if r["case"] == case and r["tool"] == tool), None)

    out = []
    a = find("A", "shadowlab")
    if a and a.get("status") == "ok":
        t, peak = a["time_s"], a.get("peak_rss_mb") or float("inf")
        out.append(f"- A: shadowlab time {t:.3f} s <= 0.3 s: {'PASS' if t <= 0.3 else 'FAIL'}")
        out.append(f"- A: shadowlab peak RSS {peak:.0f} MB (whole process) <= 300 MB: "
                   f"{'PASS' if peak <= 300 else 'FAIL'}")
    b = find("B", "tencirpauli")
    if b and b.get("speedup") is not None:
        sp = b["speedup"]
        out.append(f"- B: shadowlab speed-up over tencirpauli {sp:.0f}× >= 100×: {'PASS' if sp >= 100 else 'FAIL'}")
    return out


def run_driver(args: argparse.Namespace) -> int:
    """Driver mode: run every selected (case, tool) child, compare results, print Markdown."""
    table = QUICK_CASES if args.quick else FULL_CASES
    cases = [table[c.strip().upper()] for c in args.cases.split(",") if c.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for t in tools:
        if t not in TOOLS:
            raise SystemExit(f"unknown tool {t!r}; expected some of {', '.join(TOOLS)}")
    if "shadowlab" in tools:
        tools = ["shadowlab", *[t for t in tools if t != "shadowlab"]]  # the reference runs first
    records: list[dict[str, Any]] = []
    probes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="shadowlab-bench-") as tmp:
        work = Path(tmp)
        env = _child_env(work / "numba-cache")
        if "shadowlab" in tools:
            # Kernel compile time with an empty numba cache, then load time from the filled cache.
            for label in ("cold", "cached"):
                state, rc, out, _err, _ = _launch([sys.executable, str(Path(__file__).resolve()), "--probe"],
                                                  env, args.timeout)
                if state == "done" and rc == 0:
                    probes[label] = json.loads(out.strip().splitlines()[-1])
        for case in cases:
            ref: np.ndarray | None = None
            ref_time: float | None = None
            for tool in tools:
                if util.find_spec(TOOL_MODULE[tool]) is None:
                    records.append({"case": case.name, "tool": tool, "status": "not installed",
                                    "notes": f"module {TOOL_MODULE[tool]!r} not found; skipped"})
                    continue
                rec = run_case_tool(case, tool, args, work, env)
                npy = work / f"{case.name}_{tool}.npy"
                if rec.get("status") == "ok" and npy.exists():
                    res = np.load(npy)
                    if tool == "shadowlab":
                        ref, ref_time = res, rec.get("time_s")
                    elif ref is not None:
                        rec["max_abs_diff"] = (float(np.max(np.abs(res - ref))) if res.shape == ref.shape
                                               else float("inf"))
                if tool != "shadowlab" and ref_time:
                    if rec.get("status") == "ok" and rec.get("time_s"):
                        rec["speedup"] = rec["time_s"] / ref_time
                    elif rec.get("status") == "timeout":
                        rec["speedup"] = args.timeout / ref_time  # a lower bound
                records.append(rec)
    print(build_report(args, cases, records, probes))
    if args.json:
        payload = {"command": sys.orig_argv, "quick": args.quick, "seed": args.seed, "probes": probes,
                   "cases": [asdict(c) for c in cases], "rows": records}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    ok = all(r.get("status") == "ok" for r in records if r["tool"] == "shadowlab")
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the driver and of the child modes."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cases", default="A,B,C", help="comma-separated cases to run (A, B, C)")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools to run")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of a few seconds")
    p.add_argument("--seed", type=int, default=20240601, help="seed of the random data and observables")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (best reported)")
    p.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit per child, seconds")
    p.add_argument("--mem-limit-gb", type=float, default=16.0, help="address-space limit per child, GiB")
    p.add_argument("--pl-batch-mb", type=float, default=1024.0,
                   help="pennylane-batched: approximate temporaries per expval call, MB")
    p.add_argument("--json", help="also write the results as JSON to this path")
    # Child modes (used by the driver; can be run by hand to inspect one tool).
    p.add_argument("--tool", choices=TOOLS, help="child mode: run this tool only and print/write its record")
    p.add_argument("--case", default="C", help="child mode: the case to run")
    p.add_argument("--out-dir", help="child mode: directory for the record (.json) and results (.npy)")
    p.add_argument("--probe", action="store_true", help="child mode: time shadowlab's import and kernel load")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        return run_probe()
    if args.tool:
        return run_child(args)
    return run_driver(args)


if __name__ == "__main__":
    sys.exit(main())
