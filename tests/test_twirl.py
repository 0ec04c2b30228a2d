"""Readout-twirl masks: checking them and grouping shots by (setting, mask), at any qubit count."""

from __future__ import annotations

import numpy as np
import pytest

from shadowlab.errors import ShadowlabError


def _brute_force_groups(settings: np.ndarray, repeats: np.ndarray, masks: np.ndarray) -> dict:
    """(setting index, mask as a 0/1 string) -> output rows, by a plain loop (the reference)."""
    shot_setting = np.repeat(np.arange(settings.shape[0]), repeats)
    groups: dict = {}
    for row, (g, mask) in enumerate(zip(shot_setting, masks, strict=True)):
        groups.setdefault((int(g), "".join(map(str, mask))), []).append(row)
    return groups


@pytest.mark.parametrize("n", [1, 5, 63, 64, 100])
def test_group_shots_matches_brute_force_for_any_qubit_count(n: int) -> None:
    from shadowlab.acquire.twirl import check_twirl_masks, group_shots

    rng = np.random.default_rng(n)
    settings = rng.integers(0, 3, size=(4, n), dtype=np.uint8)
    repeats = np.array([30, 1, 50, 19])
    masks = rng.integers(0, 2, size=(repeats.sum(), n), dtype=np.uint8)
    # Masks differing only in the highest qubits (packed into int64 they would collide).
    high = min(n, 3)
    masks[:10, :-high] = 0
    masks[:10, -high:] = rng.integers(0, 2, size=(10, high))
    masks = check_twirl_masks(masks, int(repeats.sum()), n)
    groups = group_shots(settings, repeats, masks)
    expected = _brute_force_groups(settings, repeats, masks)
    got = {(int(g), "".join(map(str, m))): r.tolist()
           for g, m, r in zip(groups.setting_index, groups.masks, groups.rows, strict=True)}
    assert got == expected
    assert np.array_equal(groups.settings, settings[groups.setting_index])
    assert groups.shots.tolist() == [len(r) for r in groups.rows] and groups.shots.sum() == repeats.sum()
    assert np.array_equal(np.sort(np.concatenate(groups.rows)), np.arange(repeats.sum()))
    # Without masks: one group per setting, in plan order.
    plain = group_shots(settings, repeats, None)
    assert plain.masks is None and plain.setting_index.tolist() == [0, 1, 2, 3]
    assert [r.tolist() for r in plain.rows][1] == [30]


def test_check_twirl_masks_errors() -> None:
    from shadowlab.acquire.twirl import check_twirl_masks

    out = check_twirl_masks(np.array([[True, False]]), 1, 2)
    assert out.dtype == np.uint8 and out.tolist() == [[1, 0]]
    with pytest.raises(ShadowlabError, match=r"masks must be a \(3, 2\) array.*got shape \(2, 2\)"):
        check_twirl_masks(np.zeros((2, 2)), 3, 2, "masks")
    with pytest.raises(ShadowlabError, match="0/1 integers"):
        check_twirl_masks(np.full((1, 2), 2), 1, 2)
    with pytest.raises(ShadowlabError, match="0/1 integers"):
        check_twirl_masks(np.full((1, 2), 0.5), 1, 2)
