#!/usr/bin/env python
"""Benchmark shadowlab's derandomized classical shadows, optionally against the authors' code.

What is measured
----------------
``shadowlab.plan.derandomize.derandomize(observables, hits=N)`` (eta = 0.9, weights 1) on:

* **A** -- 20 qubits, the observables ``Y_i Y_i+1 X_j X_j+1`` (``j`` not in ``{i-1, i, i+1}``),
  ``X_i X_i+1 Z_j Z_j'`` (``j, j'`` not in ``{i, i+1}``, ``j != j'``, ordered pairs, so each
  string appears twice and both copies count) and ``X_i X_i+1 Z_j`` (``j`` not in ``{i, i+1}``),
  ``i = 0..18``: 6,462 observables, 100 hits each. Target: under 2 s.
* **B** -- 100 qubits, 100,000 random observables (weight uniform in 1..4, distinct uniformly
  random qubits, uniform letters, seeded), 100 hits each. Target: under 60 s.
* **A10** -- the family of A on 10 qubits (632 observables), 100 hits: a reduced A on which
  the authors' pure-Python implementation runs in seconds.

Per run: time of the ``derandomize`` call (numba kernels already compiled or loaded: a tiny
warm-up run comes first), settings produced, whether every target is met and the stop is
exact (the settings minus the last one miss some target), the naive count
``sum_l floor(w_l N)`` (one observable per setting), peak memory, and for peers how many of
their settings equal shadowlab's (the longest common prefix; the rule is the same, so runs
agree until a choice that exact arithmetic ties and rounding breaks differently).

Each (case, tool) runs in its own child process. *Peak RSS* is the child's whole-life peak;
*peak increase* is the peak after imports, observable construction and warm-up minus the RSS
at that point (the kernel's peak counter is reset there through ``/proc/self/clear_refs``).
Peaks are ``VmHWM`` of ``/proc/<pid>/status``; for the C++ peer that of the compiled program,
polled every 5 ms while it runs. Numba compile
time is measured once with an empty cache directory (cold) and once from that cache (cached).

Peers (not part of shadowlab; never committed to it)
-----------------------------------------------------
The reference implementation by H.-Y. Huang, repository hsinyuan-huang/predicting-quantum-
properties, ``data_acquisition_shadow.py`` (``derandomized_classical_shadow``) and
``data_acquisition_shadow.cpp``. Download them yourself and pass ``--peer PATH`` (the Python
file; imported, its function called with the observables as ``[("X", q), ...]`` lists) and/or
``--peer-cpp PATH`` (the C++ file; compiled with ``g++ -O2``, run as
``prog -d N observables.txt``; its time includes reading the file and printing the settings,
with its per-setting status lines sent to /dev/null). Both use eta = 0.9 and the same greedy
rule. The C++ reader adds an identity observable from the rest of the first line; it is hit
by every setting and does not change the choices.

Usage
-----
``python benchmarks/bench_derandomize.py [--peer FILE.py] [--peer-cpp FILE.cpp]`` runs A, B and
A10; ``--quick`` runs tiny versions of A and B in seconds; ``--json PATH`` also writes the
results. The pure-Python peer takes several minutes on the full A (``--skip-py-peer-on-a``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from _measure import launch as _launch
from _measure import reset_peak_rss
from _measure import status_mb as _status_mb

LETTERS = "XYZ"
TOOLS = ("shadowlab", "peer-cpp", "peer-py")


@dataclass(frozen=True)
class Case:
    """One benchmark instance: ``family`` ``"chain"`` (the A family on ``n_qubits``) or ``"random"``."""

    name: str
    family: str
    n_qubits: int
    hits: int
    n_random: int = 0
    max_weight: int = 4
    purpose: str = ""


FULL_CASES = {
    "A": Case("A", "chain", 20, 100, purpose="speed: shadowlab < 2 s"),
    "B": Case("B", "random", 100, 100, n_random=100_000, purpose="scale: shadowlab < 60 s"),
    "A10": Case("A10", "chain", 10, 100, purpose="reduced A, sized for the pure-Python peer"),
}
QUICK_CASES = {
    "A": Case("A", "chain", 8, 20, purpose="quick smoke version of A"),
    "B": Case("B", "random", 30, 20, n_random=3_000, purpose="quick smoke version of B"),
    "A10": Case("A10", "chain", 6, 10, purpose="quick smoke version of A10"),
}
# Which tools run on which case by default (the pure-Python peer is slow: minutes on A).
DEFAULT_TOOLS = {"A": ("shadowlab", "peer-cpp", "peer-py"), "B": ("shadowlab", "peer-cpp"),
                 "A10": ("shadowlab", "peer-cpp", "peer-py")}


# ---------------------------------------------------------------------------------------------
# Observables (identical in every child)
# ---------------------------------------------------------------------------------------------


def chain_observables(n: int) -> list[list[tuple[int, int]]]:
    """The A family on ``n`` qubits as ``(qubit, code)`` lists, in a fixed order (duplicates kept)."""
    x, y, z = 0, 1, 2
    out: list[list[tuple[int, int]]] = []
    for i in range(n - 1):
        for j in range(n - 1):
            if j not in (i - 1, i, i + 1):
                out.append([(i, y), (i + 1, y), (j, x), (j + 1, x)])
    for i in range(n - 1):
        for j in range(n):
            for jp in range(n):
                if j not in (i, i + 1) and jp not in (i, i + 1) and j != jp:
                    out.append([(i, x), (i + 1, x), (j, z), (jp, z)])
    for i in range(n - 1):
        for j in range(n):
            if j not in (i, i + 1):
                out.append([(i, x), (i + 1, x), (j, z)])
    return [sorted(o) for o in out]


def random_observables(n: int, m: int, max_weight: int, seed: int) -> list[list[tuple[int, int]]]:
    """``m`` seeded random Paulis: weight uniform in ``1..max_weight``, distinct qubits, uniform letters."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, max_weight + 1, size=m)
    qubits = np.argsort(rng.random((m, n)), axis=1)[:, :max_weight]
    codes = rng.integers(0, 3, size=(m, max_weight))
    return [sorted(zip(qubits[i, : weights[i]].tolist(), codes[i, : weights[i]].tolist(), strict=True))
            for i in range(m)]


def make_observables(case: Case, seed: int) -> list[list[tuple[int, int]]]:
    if case.family == "chain":
        return chain_observables(case.n_qubits)
    return random_observables(case.n_qubits, case.n_random, case.max_weight, seed)


def to_pauli_sum(case: Case, obs: list[list[tuple[int, int]]]) -> Any:
    from shadowlab.paulis import PauliString, PauliSum

    terms = tuple(PauliString(tuple(q for q, _ in o), tuple(c for _, c in o)) for o in obs)
    return PauliSum(case.n_qubits, terms, np.ones(len(terms)))


# ---------------------------------------------------------------------------------------------
# Memory probes (Linux)
# ---------------------------------------------------------------------------------------------



# ---------------------------------------------------------------------------------------------
# Tool runners (child processes)
# ---------------------------------------------------------------------------------------------


def run_shadowlab(case: Case, obs: list[list[tuple[int, int]]], args: argparse.Namespace,
                  record: dict[str, Any]) -> np.ndarray:
    from shadowlab.paulis import PauliSum
    from shadowlab.plan.derandomize import derandomize

    pauli_sum = to_pauli_sum(case, obs)
    t0 = time.perf_counter()
    derandomize(PauliSum.from_labels(["XX", "ZZ"]), hits=2)  # compile or load the kernel
    record["warmup_s"] = time.perf_counter() - t0
    _baseline(record)
    times = []
    settings = np.empty((0, case.n_qubits), dtype=np.uint8)
    while len(times) < max(args.repeats, 1):
        t0 = time.perf_counter()
        scheme = derandomize(pauli_sum, hits=case.hits)
        times.append(time.perf_counter() - t0)
        settings = scheme.settings
        if sum(times) > 10.0:
            break
    record["time_s"] = min(times)
    record["times_s"] = times
    record["notes"] = f"best of {len(times)}; kernel warm-up {record['warmup_s']:.2f} s (before baseline)"
    return settings


def run_peer_py(case: Case, obs: list[list[tuple[int, int]]], args: argparse.Namespace,
                record: dict[str, Any]) -> np.ndarray:
    spec = importlib.util.spec_from_file_location("peer_derandomize", args.peer)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {args.peer}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    peer_obs = [[(LETTERS[c], q) for q, c in o] for o in obs]
    _baseline(record)
    t0 = time.perf_counter()
    rounds = module.derandomized_classical_shadow(peer_obs, case.hits, case.n_qubits)
    record["time_s"] = time.perf_counter() - t0
    record["notes"] = f"{Path(args.peer).name}: derandomized_classical_shadow, run once"
    return np.array([[LETTERS.index(ch) for ch in r] for r in rounds], dtype=np.uint8).reshape(-1, case.n_qubits)


def run_peer_cpp(case: Case, obs: list[list[tuple[int, int]]], args: argparse.Namespace,
                 record: dict[str, Any]) -> np.ndarray:
    prog = Path(args.out_dir) / "peer_cpp"
    obs_file = Path(args.out_dir) / f"{case.name}_observables.txt"
    lines = [str(case.n_qubits)] + [" ".join([str(len(o)), *(f"{LETTERS[c]} {q}" for q, c in o)]) for o in obs]
    obs_file.write_text("\n".join(lines) + "\n")
    _baseline(record)
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(prog), "-d", str(case.hits), str(obs_file)], stdout=out,
                                stderr=subprocess.DEVNULL)
        # The program's own peak: its VmHWM, polled (ru_maxrss of a child would include this
        # Python process's peak, inherited through fork and exec).
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _status_mb("VmHWM", proc.pid) or 0.0)
            time.sleep(0.005)
        record["time_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"the C++ peer exited with code {proc.returncode}")
        out.seek(0)
        text = out.read()
    record["peer_peak_rss_mb"] = peak
    record["notes"] = (f"{Path(args.peer_cpp).name} compiled with g++ -O2; run once; time includes reading the "
                       "observable file and printing; peak RSS: the program's VmHWM, polled every 5 ms")
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return np.array([[LETTERS.index(ch) for ch in r] for r in rows], dtype=np.uint8).reshape(-1, case.n_qubits)


RUNNERS = {"shadowlab": run_shadowlab, "peer-py": run_peer_py, "peer-cpp": run_peer_cpp}


def _peak(record: dict[str, Any]) -> None:
    """Whole-life peak RSS, and the peak since the baseline minus the baseline."""
    hwm = _status_mb("VmHWM")
    record["peak_rss_mb"] = max(hwm or 0.0, record.get("peak_before_reset_mb") or 0.0) or None
    if record.get("baseline_mb") is not None and record.get("reset_ok") and hwm is not None:
        record["peak_increase_mb"] = max(hwm - record["baseline_mb"], 0.0)


def _baseline(record: dict[str, Any]) -> None:
    record["baseline_mb"] = _status_mb("VmRSS")
    record["peak_before_reset_mb"] = _status_mb("VmHWM")
    record["reset_ok"] = reset_peak_rss()


def run_child(args: argparse.Namespace) -> int:
    """Child mode: run one tool on one case; write ``<case>_<tool>.json`` and ``.npy`` (settings)."""
    case = (QUICK_CASES if args.quick else FULL_CASES)[args.case]
    out_dir = Path(args.out_dir)
    record: dict[str, Any] = {"case": case.name, "tool": args.tool, "status": "error"}
    code = 1
    try:
        import shadowlab.plan.derandomize  # noqa: F401  (numba, the kernels and hit_counts for every tool)

        obs = make_observables(case, args.seed)
        record["n_observables"] = len(obs)
        settings = RUNNERS[args.tool](case, obs, args, record)
        _peak(record)  # before the checks below, which load other kernels
        record.update(_check_settings(case, obs, settings))
        np.save(out_dir / f"{case.name}_{args.tool}.npy", settings)
        record["status"] = "ok"
        code = 0
    except Exception as exc:
        record["notes"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if "peak_rss_mb" not in record:
        _peak(record)
    if "peer_peak_rss_mb" in record:  # the C++ program's own peak
        record["peak_rss_mb"] = record["peer_peak_rss_mb"]
        record["peak_increase_mb"] = None
    (out_dir / f"{case.name}_{args.tool}.json").write_text(json.dumps(record, indent=1))
    return code


def _check_settings(case: Case, obs: list[list[tuple[int, int]]], settings: np.ndarray) -> dict[str, Any]:
    """Targets met, exact stop, and the naive one-observable-per-setting count (hit_counts from shadowlab)."""
    from shadowlab.plan.derandomize import hit_counts

    pauli_sum = to_pauli_sum(case, obs)
    counts = hit_counts(settings, pauli_sum)
    before = hit_counts(settings[:-1], pauli_sum)
    return {"n_settings": int(settings.shape[0]), "naive_settings": len(obs) * case.hits,
            "targets_met": bool(np.all(counts >= case.hits)),
            "exact_stop": bool(np.any(before < case.hits)),
            "min_hits": int(counts.min()), "mean_hits": float(counts.mean())}


def run_probe() -> int:
    """Child mode: time the import and a first tiny derandomize call (kernel compile or cache load)."""
    t0 = time.perf_counter()
    from shadowlab.paulis import PauliSum
    from shadowlab.plan.derandomize import derandomize

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    derandomize(PauliSum.from_labels(["XX", "ZZ"]), hits=2)
    print(json.dumps({"import_s": import_s, "first_call_s": time.perf_counter() - t0}))
    return 0


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def run_case_tool(case: Case, tool: str, args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--tool", tool, "--case", case.name, "--out-dir", str(work),
           "--seed", str(args.seed), "--repeats", str(args.repeats)]
    if args.peer:
        cmd += ["--peer", args.peer]
    if args.peer_cpp:
        cmd += ["--peer-cpp", args.peer_cpp]
    if args.quick:
        cmd.append("--quick")
    timeout = args.peer_timeout if tool.startswith("peer") else args.timeout
    print(f"[bench] case {case.name}: {tool} ...", file=sys.stderr, flush=True)
    state, rc, _out, err, wall = _launch(cmd, env, timeout)
    path = work / f"{case.name}_{tool}.json"
    record: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"case": case.name, "tool": tool}
    if state == "timeout":
        record.update(status="timeout", time_s=None, notes=f"killed after {timeout:g} s")
    elif not path.exists():
        tail = err.strip().splitlines()[-1] if err.strip() else f"exit code {rc}"
        record.update(status="error", notes=tail[:300])
    record["wall_s"] = wall
    print(f"[bench]   -> {record.get('status')} ({wall:.1f} s)", file=sys.stderr, flush=True)
    return record


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    same = np.all(a[:n] == b[:n], axis=1)
    return n if bool(same.all()) else int(np.argmin(same))


def first_difference(case: Case, obs: list[list[tuple[int, int]]], ours: np.ndarray, theirs: np.ndarray,
                     eta: float = 0.9) -> str:
    """Where a peer's settings first differ from shadowlab's, and whether exact arithmetic ties there.

    At the first differing qubit both runs have the same history, so the rule's costs of the two
    letters are compared exactly (Decimal, 40 digits) over the observables touching that qubit
    (the others add the same amount to both). A relative gap near 1e-40 is an exact tie, which
    the rule breaks in X, Y, Z order.
    """
    from decimal import Decimal, localcontext

    from shadowlab.plan.derandomize import hit_counts

    s = _common_prefix(ours, theirs)
    if s >= min(len(ours), len(theirs)):
        return "none" if len(ours) == len(theirs) else "same prefix, different length"
    q = int(np.argmin(ours[s] == theirs[s]))
    h = hit_counts(ours[:s], to_pauli_sum(case, obs))
    with localcontext() as ctx:
        ctx.prec = 40
        half = Decimal(eta) / 2
        nu = 1 - (-half).exp()
        costs = []
        for letter in (int(ours[s, q]), int(theirs[s, q])):
            total = Decimal(0)
            for i, o in enumerate(obs):
                d = dict(o)
                if h[i] >= case.hits or q not in d:
                    continue
                conflict = d[q] != letter or any(d[p] != ours[s, p] for p in d if p < q)
                m = sum(1 for p in d if p > q)
                log_term = Decimal(0) if conflict else (1 - nu / Decimal(3) ** m).ln()
                total += (-half * int(h[i]) + log_term).exp()
            costs.append(total)
        gap = float(abs(costs[0] - costs[1]) / max(costs))
    kind = "exact tie" if gap < 1e-30 else ("shadowlab lower" if costs[0] < costs[1] else "peer lower")
    return (f"setting {s}, qubit {q}: {LETTERS[ours[s, q]]} (shadowlab) vs {LETTERS[theirs[s, q]]}; "
            f"{kind} (relative gap {gap:.0e})")


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}g}" if x < 10 else f"{x:.1f}"


def machine_description() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"; {int(line.split()[1]) / 2**20:.1f} GiB memory"
    except OSError:
        pass

    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    lines = []
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
        lines.append(f"- shadowlab commit {head}{' + local changes' if dirty else ''}")
    except (OSError, subprocess.SubprocessError):
        pass
    gxx = shutil.which("g++")
    gxx_version = ""
    if gxx:
        try:
            gxx_version = subprocess.run([gxx, "--version"], capture_output=True, text=True,
                                         timeout=10).stdout.splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            gxx_version = "g++"
    lines += [f"- CPU: {cpu}; {os.cpu_count()} logical cores{mem}", f"- OS: {platform.platform()}",
              f"- Python {platform.python_version()}; numpy {version('numpy')}, numba {version('numba')}"
              + (f"; {gxx_version}" if gxx_version else "")]
    return lines


def build_report(args: argparse.Namespace, cases: list[Case], records: list[dict[str, Any]],
                 probes: dict[str, Any], cpp_compile: dict[str, Any] | None) -> str:
    lines = ["# shadowlab derandomization benchmark", "", "## Machine", "", *machine_description()]
    if probes:
        cold, warm = probes.get("cold", {}), probes.get("cached", {})
        lines.append(f"- shadowlab import {cold.get('import_s', float('nan')):.2f} s; derandomize kernel on first "
                     f"call: {cold.get('first_call_s', float('nan')):.2f} s compiling (empty numba cache), "
                     f"{warm.get('first_call_s', float('nan')):.2f} s loading from cache (neither is in the times; "
                     "--quick skips the second)")
    if cpp_compile:
        lines.append(f"- C++ peer: {cpp_compile['command']} ({cpp_compile['status']}, {cpp_compile['time_s']:.1f} s)")
    peers = []
    if args.peer:
        peers.append(f"`--peer {args.peer}`")
    if args.peer_cpp:
        peers.append(f"`--peer-cpp {args.peer_cpp}`")
    lines.append("- Peers: " + (", ".join(peers) + " (H.-Y. Huang's reference code, a local copy outside the "
                                "repository; not part of shadowlab)" if peers else "none given"))
    lines += ["", "## Command", "", "```", shlex.join(sys.orig_argv), "```", "", "## Cases", "",
              "| case | qubits | observables | hits | purpose |", "|---|---:|---:|---:|---|"]
    counts = {r["case"]: r.get("n_observables") for r in records if r.get("n_observables")}
    for c in cases:
        what = f"{counts.get(c.name, '?'):,}" if isinstance(counts.get(c.name), int) else "?"
        if c.family == "random":
            what += f" (random, weight 1-{c.max_weight}, seed {args.seed})"
        lines.append(f"| {c.name} | {c.n_qubits} | {what} | {c.hits} | {c.purpose} |")
    lines += ["", "## Results", "",
              "Time: the derandomization call (shadowlab: best of repeats, kernels compiled). Naive: observables × "
              "hits (one observable per setting). Same as shadowlab: leading settings identical to shadowlab's; "
              "first difference: the first differing choice, with the exact (40-digit) costs of the two letters "
              "compared (an exact tie is broken X, Y, Z by the rule, by rounding in the peers).", "",
              "| case | tool | status | time s | settings | naive settings | ratio | targets met | exact stop | "
              "same as shadowlab | first difference | peak RSS MB | peak increase MB | notes |",
              "|---|---|---|---:|---:|---:|---:|---|---|---:|---|---:|---:|---|"]
    for r in records:
        ratio = (f"{r['naive_settings'] / r['n_settings']:.0f}×" if r.get("n_settings") and r.get("naive_settings")
                 else "—")
        same = r.get("same_prefix")
        same_txt = "(reference)" if r["tool"] == "shadowlab" and r.get("status") == "ok" else (
            "—" if same is None else f"{same:,} of {r.get('n_settings', 0):,}")

        def yes(key: str, rec: dict[str, Any] = r) -> str:
            return "—" if key not in rec else ("yes" if rec[key] else "NO")

        settings_txt = f"{r['n_settings']:,}" if r.get("n_settings") is not None else "—"
        naive_txt = f"{r['naive_settings']:,}" if r.get("naive_settings") is not None else "—"
        lines.append(
            f"| {r['case']} | {r['tool']} | {r.get('status', '?')} | {_fmt(r.get('time_s'))} | {settings_txt} | "
            f"{naive_txt} | {ratio} | {yes('targets_met')} | {yes('exact_stop')} | {same_txt} | "
            f"{r.get('first_difference', '—')} | "
            f"{_fmt(r.get('peak_rss_mb'), 4)} | {_fmt(r.get('peak_increase_mb'), 3)} | "
            f"{str(r.get('notes', '')).replace('|', '/')} |")
    checks = target_checks(records) if not args.quick else []
    if checks:
        lines += ["", "## Targets", "", *checks]
    return "\n".join(lines)


def target_checks(records: list[dict[str, Any]]) -> list[str]:
    out = []
    for case, limit in (("A", 2.0), ("B", 60.0)):
        r = next((x for x in records if x["case"] == case and x["tool"] == "shadowlab"), None)
        if r and r.get("status") == "ok":
            ok = r["time_s"] < limit and r.get("targets_met") and r.get("exact_stop")
            out.append(f"- {case}: shadowlab {r['time_s']:.2f} s < {limit:g} s, {r['n_settings']:,} settings "
                       f"(naive {r['naive_settings']:,}), every target met and exact stop: {'PASS' if ok else 'FAIL'}")
    return out


def compile_cpp(source: str, work: Path) -> dict[str, Any]:
    gxx = shutil.which("g++")
    prog = work / "peer_cpp"
    cmd = [gxx or "g++", "-O2", "-o", str(prog), source]
    info = {"command": shlex.join(["g++", "-O2", "-o", "peer_cpp", source]), "status": "ok", "time_s": 0.0}
    if gxx is None:
        return {**info, "status": "g++ not found"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    info["time_s"] = time.perf_counter() - t0
    if proc.returncode != 0:
        info["status"] = "compile error: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
    return info


def run_driver(args: argparse.Namespace) -> int:
    table = QUICK_CASES if args.quick else FULL_CASES
    names = args.cases or ("A,B" if args.quick else "A,B,A10")
    cases = [table[c.strip().upper()] for c in names.split(",") if c.strip()]
    records: list[dict[str, Any]] = []
    probes: dict[str, Any] = {}
    cpp_info: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="shadowlab-bench-derand-") as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        env["NUMBA_CACHE_DIR"] = str(work / "numba-cache")
        for label in ("cold",) if args.quick else ("cold", "cached"):
            state, rc, out, _err, _ = _launch([sys.executable, str(Path(__file__).resolve()), "--probe"], env,
                                              args.timeout)
            if state == "done" and rc == 0:
                probes[label] = json.loads(out.strip().splitlines()[-1])
        if args.peer_cpp:
            cpp_info = compile_cpp(args.peer_cpp, work)
        for case in cases:
            ref: np.ndarray | None = None
            for tool in DEFAULT_TOOLS[case.name]:
                if tool == "peer-py" and not args.peer:
                    records.append({"case": case.name, "tool": tool, "status": "not given",
                                    "notes": "pass --peer PATH to data_acquisition_shadow.py"})
                    continue
                if tool == "peer-cpp" and not (cpp_info and cpp_info["status"] == "ok"):
                    records.append({"case": case.name, "tool": tool, "status": "not given" if not cpp_info else
                                    "unavailable", "notes": "pass --peer-cpp PATH to data_acquisition_shadow.cpp"
                                    if not cpp_info else cpp_info["status"]})
                    continue
                if tool == "peer-py" and case.name == "A" and args.skip_py_peer_on_a and not args.quick:
                    records.append({"case": case.name, "tool": tool, "status": "skipped",
                                    "notes": "--skip-py-peer-on-a (see A10 for the reduced case)"})
                    continue
                rec = run_case_tool(case, tool, args, work, env)
                npy = work / f"{case.name}_{tool}.npy"
                if rec.get("status") == "ok" and npy.exists():
                    settings = np.load(npy)
                    if tool == "shadowlab":
                        ref = settings
                    elif ref is not None:
                        rec["same_prefix"] = _common_prefix(settings, ref)
                        rec["first_difference"] = first_difference(case, make_observables(case, args.seed), ref,
                                                                   settings)
                records.append(rec)
    report = build_report(args, cases, records, probes, cpp_info)
    print(report)
    if args.json:
        payload = {"command": sys.orig_argv, "quick": args.quick, "seed": args.seed, "probes": probes,
                   "cpp_compile": cpp_info, "cases": [asdict(c) for c in cases], "rows": records}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    ok = all(r.get("status") == "ok" for r in records if r["tool"] == "shadowlab")
    return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cases", help="comma-separated cases to run (A, B, A10); default A,B,A10 (--quick: A,B)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of a few seconds")
    p.add_argument("--seed", type=int, default=20240611, help="seed of the random observables of case B")
    p.add_argument("--repeats", type=int, default=3, help="timed shadowlab repeats (best reported; fewer if slow)")
    p.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit per shadowlab child, seconds")
    p.add_argument("--peer", help="path to the authors' data_acquisition_shadow.py (pure Python)")
    p.add_argument("--peer-cpp", help="path to the authors' data_acquisition_shadow.cpp (compiled with g++ -O2)")
    p.add_argument("--peer-timeout", type=float, default=1200.0, help="wall-clock limit per peer child, seconds")
    p.add_argument("--skip-py-peer-on-a", action="store_true",
                   help="do not run the pure-Python peer on the full case A (it takes minutes)")
    p.add_argument("--json", help="also write the results as JSON to this path")
    p.add_argument("--tool", choices=TOOLS, help="child mode: run this tool on --case")
    p.add_argument("--case", default="A", help="child mode: the case")
    p.add_argument("--out-dir", help="child mode: directory for the record and settings")
    p.add_argument("--probe", action="store_true", help="child mode: time the import and kernel compile/load")
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
