"""Keypoint windows for the skeleton models: mirror swap, resampling, augmentation, batches."""

from __future__ import annotations

import numpy as np

from vidaction.data.skeleton import (
    HIPS,
    MIRROR_INDEX,
    SkeletonAugment,
    batches,
    mirror,
    resample,
    sample_window,
    window_starts,
    windows,
)


def _person(t: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(100, 300, (t, 17, 2))
    return np.concatenate([xy, rng.uniform(0.3, 1, (t, 17, 1))], -1).astype(np.float32)


def test_mirror_swaps_every_left_joint_with_its_right_twin_and_reflects_x():
    from vidaction.data.pose import JOINTS, MIRROR_PAIRS

    # the skeleton module's own table agrees with the estimator's joint names
    for i, name in enumerate(JOINTS):
        twin = name.replace("left", "@").replace("right", "left").replace("@", "right")
        assert JOINTS[MIRROR_INDEX[i]] == twin
    assert {tuple(sorted(p)) for p in MIRROR_PAIRS} == {
        tuple(sorted((i, int(MIRROR_INDEX[i])))) for i in range(17) if MIRROR_INDEX[i] != i}
    kp = _person()
    m = mirror(kp, width=640)
    left_wrist, right_wrist = JOINTS.index("left_wrist"), JOINTS.index("right_wrist")
    np.testing.assert_allclose(m[:, left_wrist, 0], 639 - kp[:, right_wrist, 0])
    np.testing.assert_allclose(m[:, left_wrist, 1:], kp[:, right_wrist, 1:])
    np.testing.assert_allclose(m[:, 0, 0], 639 - kp[:, 0, 0])  # the nose stays the nose
    np.testing.assert_allclose(mirror(m, width=640), kp, atol=1e-4)


def test_resample_keeps_time_linear_motion_exact_and_same_rate_untouched():
    t = np.arange(50, dtype=np.float32)  # 2 s at 25 fps, x moving 1 px per frame
    kp = np.zeros((50, 17, 3), np.float32)
    kp[..., 0] = t[:, None]
    kp[..., 2] = 1
    out = resample(kp, 25, 10)
    assert len(out) == 20  # samples at 0, 0.1, ... 1.9 s (the last frame is at 1.96 s)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(20) * 2.5, atol=1e-5)
    np.testing.assert_array_equal(resample(kp, 10, 10), kp)
    assert len(resample(kp[:1], 25, 10)) == 1


def test_windows_cover_the_clip_and_short_clips_are_padded_with_their_last_pose():
    assert window_starts(30, 24, 5) == [0, 5, 6]
    assert window_starts(10, 24, 5) == [0]
    kp = _person(10)
    w = windows(kp, 24, 5)
    assert w.shape == (1, 24, 17, 3)
    np.testing.assert_array_equal(w[0, 10:], np.repeat(kp[-1:], 14, 0))
    # the centre window, when no rng is given
    long = _person(40)
    np.testing.assert_array_equal(sample_window(long, 24, None), long[8:32])


def test_augment_turns_and_scales_about_the_hips_and_joint_dropout_holds_the_joint():
    kp = _person(24)
    aug = SkeletonAugment(mirror=False, rotate=30, scale=0.3, jitter=0, dropout=0, tempo=0)
    out = aug(kp, np.random.default_rng(1))
    hips = kp[:, list(HIPS), :2].mean((0, 1))
    np.testing.assert_allclose(out[:, list(HIPS), :2].mean((0, 1)), hips, atol=1e-3)
    d0 = np.linalg.norm(kp[:, :, :2] - hips, axis=-1)
    d1 = np.linalg.norm(out[:, :, :2] - hips, axis=-1)
    ratio = d1 / d0
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-4) and ratio.flat[0] != 1  # one scale
    assert not np.allclose(out, kp)
    drop = SkeletonAugment(mirror=False, rotate=0, scale=0, jitter=0, dropout=0.3, tempo=0)
    out = drop(kp, np.random.default_rng(2))
    lost = out[..., 2] == 0
    assert 0 < lost.mean() < 0.6
    t, j = np.argwhere(lost[1:])[0] + [1, 0]
    np.testing.assert_array_equal(out[t, j, :2], out[t - 1, j, :2])
    np.testing.assert_array_equal(out[~lost][:, :2], kp[~lost][:, :2])


def test_mirror_augmentation_is_off_when_asked():
    kp = _person(24)
    aug = SkeletonAugment(mirror=False, rotate=0, scale=0, jitter=0, dropout=0, tempo=0)
    for seed in range(8):
        np.testing.assert_array_equal(aug(kp, np.random.default_rng(seed)), kp)


def test_batches_draw_new_windows_each_epoch_and_validation_is_fixed():
    clips = [_person(40, s) for s in range(5)]
    labels = np.arange(5)
    tr = batches(clips, labels, 24, 4, seed=0, augment=SkeletonAugment(), training=True)
    a = np.concatenate([x.numpy() for x, _ in tr])
    b = np.concatenate([x.numpy() for x, _ in tr])
    assert a.shape == (5, 24, 17, 3) and not np.allclose(a, b)
    va = batches(clips, labels, 24, 4, seed=0, augment=None, training=False)
    y = np.concatenate([y.numpy() for _, y in va])
    np.testing.assert_array_equal(y, labels)
    first = np.concatenate([x.numpy() for x, _ in va])
    np.testing.assert_array_equal(first, np.concatenate([x.numpy() for x, _ in va]))
    np.testing.assert_array_equal(first[0], clips[0][8:32])
