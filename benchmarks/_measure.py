"""Process measurement shared by the benchmark scripts: memory from /proc, children with a timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import time


def status_mb(field: str, pid: int | str = "self") -> float | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in MB; None if unavailable.

    Peaks are read from ``VmHWM``, not ``ru_maxrss``: the latter survives fork and exec, so a
    child would report its parent's peak if that is higher.
    """
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (``VmHWM``) of this process; False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def launch(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[str, int | None, str, str, float]:
    """Run a child in its own process group; kill that group on timeout.

    Returns (state, return code, stdout, stderr, wall seconds); state is 'done' or 'timeout'.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return "done", proc.returncode, out, err, time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return "timeout", None, out, err, time.perf_counter() - t0
