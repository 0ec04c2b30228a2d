"""Read the 2D random-Heisenberg shadow data set of Huang et al. (Science 377, eabk3333 (2022)).

Files ``heisenberg_{L}x5_id{k}_{what}.txt`` (see the data set's README):

* ``couplings``: one coupling ``J`` per line, in the edge order of :func:`grid_edges`;
* ``samples``: one snapshot per line, ``n`` tab-separated codes ``v`` in 0..5 with basis
  ``v // 2`` and outcome bit ``v % 2``. The source does not say which letter each basis index
  is; we read 0, 1, 2 as X, Y, Z. The learning targets are SU(2)-symmetric, so they do not
  depend on that choice;
* ``XX``, ``YY``, ``ZZ``: exact ``n x n`` correlation matrices; ``E``: the ground-state energy.

Qubit ``q = 5 i + j`` sits at row ``i``, column ``j`` of the ``L x 5`` open grid.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from shadowlab.data.family import ShadowFamily
from shadowlab.errors import InputFormatError, ShadowlabError

HEISENBERG_COLUMNS = 5
HEISENBERG_ROWS = (4, 5, 6, 7, 8, 9)


def grid_edges(rows: int, columns: int) -> np.ndarray:
    """Nearest-neighbour edges of an open ``rows x columns`` grid in the data set's order.

    Sites ``(i, j)`` are visited row-major (qubit ``columns * i + j``); at each site the vertical
    edge to ``(i + 1, j)`` comes first (if ``i < rows - 1``), then the horizontal edge to
    ``(i, j + 1)`` (if ``j < columns - 1``). Returns ``(n_edges, 2)`` int64 with the smaller
    qubit first.

    >>> grid_edges(2, 2).tolist()
    [[0, 2], [0, 1], [1, 3], [2, 3]]
    """
    if rows < 1 or columns < 1:
        raise ShadowlabError(f"a grid needs rows, columns >= 1, got {rows} x {columns}")
    edges = []
    for i in range(rows):
        for j in range(columns):
            q = columns * i + j
            if i < rows - 1:
                edges.append((q, q + columns))
            if j < columns - 1:
                edges.append((q, q + 1))
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


def _read_numbers(path: Path, *, width: int, rows: int | None, what: str, integer: bool = False) -> np.ndarray:
    """``(rows, width)`` numbers of a tab/space separated text file (``rows=None``: any count).

    Errors name the file and, where one line is at fault, the line.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputFormatError(f"missing {what} file", path=path) from None
    dtype = np.int64 if integer else np.float64
    kind = "integers" if integer else "numbers"
    lines = text.splitlines()
    for k, ln in enumerate(lines, start=1):
        if ln.strip() and len(ln.split()) != width:
            raise InputFormatError(f"expected {width} {kind} per line ({what}), found {len(ln.split())}", path=path,
                                   line=k)
    try:
        values = np.array(text.split(), dtype=dtype)
    except ValueError:
        for k, ln in enumerate(lines, start=1):
            try:
                np.array(ln.split(), dtype=dtype)
            except ValueError:
                raise InputFormatError(f"expected {kind} ({what}), got {ln.strip()[:60]!r}", path=path,
                                       line=k) from None
        raise
    values = values.reshape(-1, width)
    if rows is not None and values.shape[0] != rows:
        raise InputFormatError(f"expected {rows} lines ({what}), found {values.shape[0]}", path=path)
    if not integer and not np.all(np.isfinite(values)):
        raise InputFormatError(f"non-finite value in a {what} file", path=path)
    return values


def heisenberg_instance_ids(root: str | os.PathLike[str], rows: int) -> list[int]:
    """The instance ids present for an ``rows x 5`` grid, sorted (ids are not contiguous)."""
    pattern = re.compile(rf"heisenberg_{rows}x{HEISENBERG_COLUMNS}_id(\d+)_couplings\.txt$")
    return sorted(int(m.group(1)) for p in Path(root).iterdir() if (m := pattern.match(p.name)))


def load_heisenberg_2d(root: str | os.PathLike[str], rows: int, *, max_instances: int | None = None
                       ) -> ShadowFamily:
    """Load every ``rows x 5`` instance of the data set under ``root`` as a :class:`ShadowFamily`.

    Parameters
    ----------
    root:
        The folder holding the ``heisenberg_*`` files.
    rows:
        ``L``, the number of grid rows (4 to 9 in the published set); ``n = 5 L`` qubits.
    max_instances:
        Read only the first (lowest-id) instances, for quick looks.

    Returns
    -------
    ShadowFamily
        ``parameters``: the couplings in :func:`grid_edges` order (names ``"J[a-b]"``);
        ``edges``: the same edges; ``exact``: ``"xx"``, ``"yy"``, ``"zz"`` (the files),
        ``"correlations"`` = ``(xx + yy + zz) / 3``, ``"energy"`` = ``<H>`` and
        ``"energy_source"`` (the source's ``E``, which is ``<H> / 2``); ``instance_ids``: the
        file ids.
    """
    base = Path(root)
    if not base.is_dir():
        raise ShadowlabError(f"{base}: not a folder; expected the heisenberg-2d data folder")
    if rows not in HEISENBERG_ROWS:
        raise ShadowlabError(f"unknown lattice {rows}x{HEISENBERG_COLUMNS}: the data set has grids of "
                             f"{', '.join(f'{r}x5' for r in HEISENBERG_ROWS)}")
    ids = heisenberg_instance_ids(base, rows)
    if not ids:
        raise ShadowlabError(f"{base}: no heisenberg_{rows}x5_id*_couplings.txt files")
    if max_instances is not None:
        if max_instances < 1:
            raise ShadowlabError(f"max_instances must be >= 1, got {max_instances}")
        ids = ids[:max_instances]
    n = rows * HEISENBERG_COLUMNS
    edges = grid_edges(rows, HEISENBERG_COLUMNS)
    couplings, bases, outcomes, exact = [], [], [], {"xx": [], "yy": [], "zz": [], "energy": []}
    n_snap = None
    for k in ids:
        stem = f"heisenberg_{rows}x{HEISENBERG_COLUMNS}_id{k}_"
        couplings.append(_read_numbers(base / f"{stem}couplings.txt", width=1, rows=len(edges),
                                       what="couplings")[:, 0])
        path = base / f"{stem}samples.txt"
        codes = _read_numbers(path, width=n, rows=None, what="samples: one code per qubit", integer=True)
        if codes.shape[0] < 1:
            raise InputFormatError("no snapshots", path=path)
        if codes.min() < 0 or codes.max() > 5:
            bad = int(np.argwhere((codes < 0) | (codes > 5))[0, 0]) + 1
            raise InputFormatError("snapshot codes must be 0..5 (basis = code // 2, bit = code % 2)", path=path,
                                   line=bad)
        if n_snap is None:
            n_snap = codes.shape[0]
        elif codes.shape[0] != n_snap:
            raise InputFormatError(f"{codes.shape[0]} snapshots, but earlier instances have {n_snap}", path=path)
        bases.append((codes // 2).astype(np.uint8))
        outcomes.append((codes % 2).astype(np.uint8))
        for name in ("xx", "yy", "zz"):
            exact[name].append(_read_numbers(base / f"{stem}{name.upper()}.txt", width=n, rows=n, what=name.upper()))
        exact["energy"].append(_read_numbers(base / f"{stem}E.txt", width=1, rows=1, what="energy")[0, 0])
    arrays = {name: np.array(v) for name, v in exact.items()}
    arrays["correlations"] = (arrays["xx"] + arrays["yy"] + arrays["zz"]) / 3.0
    # The source's E is (1/2) <H> for H = sum_edges J (XX + YY + ZZ) (checked on every instance);
    # "energy" is <H> here, as for generated families, and the source's number is kept beside it.
    arrays["energy_source"] = arrays.pop("energy")
    arrays["energy"] = 2.0 * arrays["energy_source"]
    return ShadowFamily(
        np.stack(bases), np.stack(outcomes), np.array(couplings),
        tuple(f"J[{a}-{b}]" for a, b in edges), edges, arrays, np.array(ids),
        {"model": "heisenberg", "lattice": f"grid:{rows}x{HEISENBERG_COLUMNS}",
         "source": f"Huang et al., Science 377, eabk3333 (2022): {base}",
         "hamiltonian": "sum over edges of J (XX + YY + ZZ); J uniform in [0, 2]",
         "energy_convention": "energy = <H>; energy_source = the source's E = <H> / 2",
         "edge_order": "site-major: sites row by row, at each site the vertical edge (i,j)-(i+1,j) first, then "
                       "the horizontal edge (i,j)-(i,j+1)",
         "basis_letters": "basis index 0/1/2 read as X/Y/Z (undocumented in the source)"},
    )
