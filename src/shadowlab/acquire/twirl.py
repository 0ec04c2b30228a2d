"""Readout-twirl masks for the SDK back ends: validation, and grouping shots into circuits.

A readout-twirled run gives every shot an X-flip mask (``1`` = an ``X`` just before measuring
that qubit). A back end runs one circuit (or task) per distinct (setting, mask) pair, with as
many shots as that pair has, and puts each circuit's outcomes back in the rows of its shots.
:func:`check_twirl_masks` validates the masks where they enter; :func:`group_shots` finds the
distinct pairs. Masks are compared as whole rows (``numpy.unique(..., axis=0)``), never packed
into integers, so any number of qubits works.

Examples
--------
>>> import numpy as np
>>> settings = np.array([[2, 2], [0, 1]], dtype=np.uint8)
>>> masks = check_twirl_masks([[0, 1], [1, 0], [0, 1], [0, 0]], n_shots=4, n_qubits=2)
>>> groups = group_shots(settings, np.array([3, 1]), masks)
>>> groups.settings.tolist(), groups.masks.tolist(), groups.shots.tolist()
([[2, 2], [2, 2], [0, 1]], [[0, 1], [1, 0], [0, 0]], [2, 1, 1])
>>> [r.tolist() for r in groups.rows]
[[0, 2], [1], [3]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shadowlab.errors import ShadowlabError

__all__ = ["ShotGroups", "check_twirl_masks", "group_shots"]


def check_twirl_masks(masks: Any, n_shots: int, n_qubits: int, what: str = "twirl") -> np.ndarray:
    """Validate readout-twirl masks: one 0/1 row per shot, one column per qubit.

    Parameters
    ----------
    masks:
        Array-like of shape ``(n_shots, n_qubits)``, integer or bool, entries 0 or 1 (1 = an ``X``
        on that qubit just before its measurement), qubit 0 first.
    n_shots, n_qubits:
        The expected shape.
    what:
        Name of the argument in error messages (default ``"twirl"``).

    Returns
    -------
    numpy.ndarray
        ``(n_shots, n_qubits)`` C-contiguous uint8 copy (or view) of ``masks``.

    Raises
    ------
    ShadowlabError
        On another shape, a non-integer dtype, or entries other than 0 and 1.

    Examples
    --------
    >>> check_twirl_masks([[True, False]], n_shots=1, n_qubits=2).tolist()
    [[1, 0]]
    """
    m = np.asarray(masks)
    if m.shape != (n_shots, n_qubits):
        raise ShadowlabError(f"{what} must be a ({n_shots}, {n_qubits}) array of 0/1 masks (one row per shot, one "
                             f"column per qubit), got shape {m.shape}")
    if m.size and ((not np.issubdtype(m.dtype, np.integer) and m.dtype != np.bool_) or int(m.min()) < 0
                   or int(m.max()) > 1):
        raise ShadowlabError(f"{what} must hold 0/1 integers (1 = X flip before the measurement), got dtype "
                             f"{m.dtype} with values in [{m.min()}, {m.max()}]")
    return np.ascontiguousarray(m, dtype=np.uint8)


@dataclass(frozen=True)
class ShotGroups:
    """Shots grouped by (setting, twirl mask): one circuit each.

    Attributes
    ----------
    setting_index:
        ``(C,)`` int64: the plan setting (row of ``settings``) of circuit ``c``.
    settings:
        ``(C, n)`` uint8 basis codes of circuit ``c`` (``settings[setting_index]``).
    masks:
        ``(C, n)`` uint8 twirl mask of circuit ``c``; ``None`` without twirling.
    shots:
        ``(C,)`` int64 shot count of circuit ``c`` (sums to the number of shots).
    rows:
        ``C`` int64 arrays: the output rows (shot indices, increasing) that circuit ``c``'s
        outcomes fill, in the circuit's shot order. Together they cover every row once.
    """

    setting_index: np.ndarray
    settings: np.ndarray
    masks: np.ndarray | None
    shots: np.ndarray
    rows: tuple[np.ndarray, ...]


def group_shots(settings: np.ndarray, repeats: np.ndarray, masks: np.ndarray | None) -> ShotGroups:
    """Group the shots of a batch into one circuit per distinct (setting, twirl mask).

    Parameters
    ----------
    settings:
        ``(G, n)`` basis codes (checked by the caller).
    repeats:
        ``(G,)`` positive shot counts; the shots are in output order: all of setting 0, then
        setting 1, ...
    masks:
        ``(repeats.sum(), n)`` 0/1 masks from :func:`check_twirl_masks`, one per shot in output
        order; ``None``: no twirling, one circuit per setting in plan order.

    Returns
    -------
    ShotGroups
        With masks: circuits ordered by (setting index, mask row in lexicographic order), each
        distinct pair once. Distinct rows are found with ``numpy.unique(..., axis=0)`` on the
        ``(setting, mask)`` rows, so there is no limit on the number of qubits.

    Examples
    --------
    >>> g = group_shots(np.array([[0], [2]], dtype=np.uint8), np.array([2, 1]), None)
    >>> g.setting_index.tolist(), [r.tolist() for r in g.rows]
    ([0, 1], [[0, 1], [2]])
    """
    sets = np.asarray(settings)
    reps = np.asarray(repeats, dtype=np.int64)
    if masks is None:
        offsets = np.concatenate([[0], np.cumsum(reps)])
        rows = tuple(np.arange(offsets[g], offsets[g + 1], dtype=np.int64) for g in range(sets.shape[0]))
        index = np.arange(sets.shape[0], dtype=np.int64)
        return ShotGroups(index, sets, None, reps.copy(), rows)
    shot_setting = np.repeat(np.arange(sets.shape[0], dtype=np.int64), reps)
    keys = np.concatenate([shot_setting[:, None], masks.astype(np.int64)], axis=1)
    unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=unique.shape[0]).astype(np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    rows = tuple(order[bounds[j]:bounds[j + 1]].astype(np.int64) for j in range(unique.shape[0]))
    index = unique[:, 0].astype(np.int64)
    return ShotGroups(index, sets[index], np.ascontiguousarray(masks[first], dtype=np.uint8), counts, rows)
