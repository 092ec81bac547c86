"""Skeleton models: body normalisation inside the model, stream equals window, export."""

from __future__ import annotations

import numpy as np
import pytest

from vidaction.data.skeleton import pad_window, resample


def _standing(t: int, torso: float = 50.0, at=(300.0, 200.0)) -> np.ndarray:
    """A stick person: shoulders `torso` px above the hips, everything else near them."""
    kp = np.zeros((t, 17, 3), np.float32)
    kp[..., 2] = 0.9
    x, y = at
    kp[:, :, 0], kp[:, :, 1] = x, y - torso / 2
    kp[:, 11, :2], kp[:, 12, :2] = (x - 10, y), (x + 10, y)  # hips
    kp[:, 5, :2], kp[:, 6, :2] = (x - 15, y - torso), (x + 15, y - torso)  # shoulders
    kp[:, 15, :2], kp[:, 16, :2] = (x - 10, y + torso), (x + 10, y + torso)  # ankles
    return kp


def _body_frame():
    from vidaction.models.pose_tcn import _layers

    return _layers()[0]()


def test_normalised_to_hips_and_one_torso_whatever_the_place_and_size():
    bf = _body_frame()
    rng = np.random.default_rng(0)
    kp = _standing(24)
    kp[..., :2] += rng.normal(0, 3, kp[..., :2].shape)
    a = bf(kp[None]).numpy()
    moved = kp.copy()
    moved[..., :2] = kp[..., :2] * 2.5 + [80, -40]
    np.testing.assert_allclose(bf(moved[None]).numpy(), a, atol=1e-4)
    joints = a[0, :, :34].reshape(24, 17, 2)
    np.testing.assert_allclose(joints[:, [11, 12]].mean(1), 0, atol=1e-5)  # hips at 0
    shoulders = np.linalg.norm(joints[:, [5, 6]].mean(1), axis=-1)
    assert abs(np.percentile(shoulders, 75) - 1) < 0.1  # torso is the unit


def test_torso_scale_is_one_per_window_not_per_frame():
    """In a squat the torso (seen from the front, leaning) shortens: a per-frame scale
    would make every frame's torso 1 and erase the squat."""
    kp = _standing(24)
    squat = _standing(24, torso=30.0, at=(300.0, 230.0))
    kp[16:] = squat[16:]  # the last third crouched
    out = _body_frame()(kp[None]).numpy()[0, :, :34].reshape(24, 17, 2)
    torso = np.linalg.norm(out[:, [5, 6]].mean(1) - out[:, [11, 12]].mean(1), axis=-1)
    np.testing.assert_allclose(torso[:16], 1.0, atol=1e-4)
    np.testing.assert_allclose(torso[16:], 0.6, atol=1e-4)
    # a frame without a visible torso does not set the scale
    kp[3, [5, 6, 11, 12], 2] = 0.05
    kp[3, [5, 6], 1] -= 500
    out = _body_frame()(kp[None]).numpy()[0, :, :34].reshape(24, 17, 2)
    torso = np.linalg.norm(out[:, [5, 6]].mean(1) - out[:, [11, 12]].mean(1), axis=-1)
    np.testing.assert_allclose(torso[:3], 1.0, atol=1e-4)


def test_window_stats_tell_a_movement_from_its_reverse():
    from vidaction.models.pose_tcn import _layers

    ws = _layers()[1]()
    v = np.linspace(0, 1, 24, dtype=np.float32)[None, :, None]
    fwd, back = ws(v).numpy(), ws(v[:, ::-1]).numpy()
    np.testing.assert_allclose(fwd[:, :5], back[:, :5], atol=1e-6)  # order-free stats agree
    assert fwd[0, 5] > 0.5 and back[0, 5] < -0.5  # the trend does not


@pytest.mark.parametrize("fps", [25.0, 10.0, 7.0])
def test_stream_equals_window(fps):
    """After every frame, the streamer's window and logits are the offline ones: the whole
    video's keypoints resampled, the last window of them."""
    import tf_keras

    from vidaction.models.pose_run import PoseStreamer
    from vidaction.models.pose_tcn import build_pose_model

    tf_keras.utils.set_random_seed(0)
    model = build_pose_model(4, 24, "stats")
    rng = np.random.default_rng(1)
    kp = _standing(70)
    kp[..., :2] += np.cumsum(rng.normal(0, 2, kp[..., :2].shape), 0)
    seen = []

    def predict(windows):
        seen.append(windows[0].copy())
        return model(windows, training=False).numpy()

    s = PoseStreamer(predict, {"model": "movenet", "weights": None, "track": True,
                               "fps": 10.0, "frames": 24})
    s.fps = fps
    for i in range(len(kp)):
        s.push_keypoints(kp[i])
        got = s.logits()
        want = pad_window(resample(kp[:i + 1], fps, 10.0), 24)[-24:]
        np.testing.assert_array_equal(seen[-1], want)
        if i in (5, 40, 69):
            np.testing.assert_allclose(got, model(want[None], training=False).numpy()[0],
                                       atol=1e-5)
    s.reset()
    s.push_keypoints(kp[0])
    s.logits()
    np.testing.assert_array_equal(seen[-1], np.repeat(kp[:1], 24, 0))


def test_pose_models_refuse_pretrained_weights_and_too_short_windows():
    from vidaction.errors import UserError
    from vidaction.models import create_model

    with pytest.raises(UserError, match="from scratch"):
        create_model("pose-stats", 3, pretrained="auto")
    with pytest.raises(UserError, match="--frames 2"):
        create_model("pose-tcn", 3, frames=2)
