"""SOI tasks from full-tree masks: clicks on the centreline, the truth along the path."""

from __future__ import annotations

import numpy as np
from PIL import Image
from training.segmenter.real_tasks import make_tasks, prune_spurs, skeleton_of


def _mask(real_seg_dir, n=1):
    return np.asarray(Image.open(real_seg_dir / "masks" / f"{n}.png")) > 0


def test_tasks_follow_the_tree_and_are_deterministic(real_seg_dir) -> None:
    mask = _mask(real_seg_dir)
    tasks = make_tasks(mask, "1", n_tasks=6, seed=0)
    assert len(tasks) == 6
    skel = skeleton_of(mask)
    for t in tasks:
        assert 40.0 <= t.length_px <= 200.0
        iu, iv = t.path[:, 0].astype(int), t.path[:, 1].astype(int)
        assert skel[iv, iu].all()  # the path runs on the centreline
        np.testing.assert_array_equal(t.start, t.path[0])
        np.testing.assert_array_equal(t.end, t.path[-1])
        assert (t.truth <= mask).all() and t.truth.sum() > 0
        assert t.truth[iv, iu].all()
        # The truth is the piece along the path: far from it nothing is truth.
        far = np.ones_like(mask)
        far[np.clip(iv, 0, 299), np.clip(iu, 0, 299)] = False
        from scipy import ndimage

        dist = ndimage.distance_transform_edt(far)
        assert dist[t.truth].max() < 8.0
    again = make_tasks(mask, "1", n_tasks=6, seed=0)
    assert all(np.array_equal(a.truth, b.truth) for a, b in zip(tasks, again, strict=True))
    # The benchmark's tasks are the first ones of a longer draw.
    longer = make_tasks(mask, "1", n_tasks=10, seed=0)
    assert all(np.array_equal(a.path, b.path) for a, b in zip(tasks, longer, strict=False))


def test_some_tasks_pass_a_bifurcation(real_seg_dir) -> None:
    mask = _mask(real_seg_dir)
    tasks = make_tasks(mask, "1", n_tasks=10, seed=0)
    # The trunk is horizontal at v = 150; a task that leaves it passed a junction.
    assert any(np.ptp(t.path[:, 1]) > 20 and np.abs(t.path[:, 1] - 150).min() < 2 for t in tasks)


def test_short_spurs_are_pruned_and_long_branches_kept() -> None:
    skel = np.zeros((40, 60), dtype=bool)
    skel[20, 5:55] = True  # the vessel
    skel[14:20, 30] = True  # a 6 px spur
    skel[2:20, 15] = True  # an 18 px branch
    pruned = prune_spurs(skel, spur_px=8)
    assert not pruned[14:20, 30].any()
    assert pruned[2:20, 15].all() and pruned[20, 5:55].all()


def test_an_empty_mask_gives_no_task() -> None:
    assert make_tasks(np.zeros((100, 100), bool), "x") == []
