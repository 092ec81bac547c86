import numpy as np

from conftest import make_video
from vidaction.data.augment import (
    AugmentConfig,
    augment_clip,
    crop_and_resize,
    jitter_indices,
    mirror_sensitive,
)
from vidaction.data.pipeline import make_dataset
from vidaction.data.sampling import SamplingConfig


def _clip():
    """8 frames, a white square in the left half: where it goes shows the transform."""
    c = np.full((8, 32, 32, 3), 60, np.uint8)
    c[:, 8:16, 4:12] = 255
    return c


def test_same_transform_on_every_frame():
    import tensorflow as tf

    for s in range(6):
        out = augment_clip(tf.constant(_clip()), tf.constant([s, 1], tf.int64),
                           AugmentConfig()).numpy()
        assert out.shape == (8, 32, 32, 3) and out.dtype == np.uint8
        assert all(np.array_equal(out[0], f) for f in out[1:])


def test_flip_crop_and_colour_vary_with_seed_and_repeat_with_it():
    import tensorflow as tf

    outs = [augment_clip(tf.constant(_clip()), tf.constant([s, 0], tf.int64),
                         AugmentConfig()).numpy() for s in range(12)]
    assert len({o.tobytes() for o in outs}) == 12
    right = [o[0, :, 16:].mean() > o[0, :, :16].mean() for o in outs]
    assert any(right) and not all(right)  # sometimes flipped, sometimes not
    again = augment_clip(tf.constant(_clip()), tf.constant([3, 0], tf.int64),
                         AugmentConfig()).numpy()
    assert np.array_equal(again, outs[3])


def test_crop_and_resize_matches_the_tensorflow_op_exactly():
    """Gathers in place of tf.image.crop_and_resize (no grappler cost model, so it logged
    "Error in PredictCost()" every epoch): the same numbers, bit for bit."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for t, hh, ww, s in [(3, 32, 32, 32), (2, 48, 64, 40), (1, 17, 9, 23), (2, 8, 8, 1),
                         (1, 2, 5, 7)] + [(2, 24, 30, int(rng.integers(2, 40)))] * 20:
        x = tf.constant(rng.random((t, hh, ww, 3), np.float32))
        h, w = tf.constant(rng.uniform(0.3, 1.0, 2) if s != 32 else (1.0, 1.0), tf.float32)
        y0, x0 = tf.constant(rng.random(2), tf.float32) * (1.0 - tf.stack([h, w]))
        # the boxes augment_clip gave the op
        box = tf.stack([[y0, x0, y0 + h, x0 + w]])
        ref = tf.image.crop_and_resize(x, tf.tile(box, [t, 1]), tf.range(t), [s, s])
        got = crop_and_resize(x, y0, x0, h, w, tf.constant(s))
        assert np.array_equal(got.numpy(), ref.numpy()), (t, hh, ww, s)


def test_no_flip_when_disabled():
    import tensorflow as tf

    cfg = AugmentConfig(flip=False, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    for s in range(8):
        o = augment_clip(tf.constant(_clip()), tf.constant([s, 0], tf.int64), cfg).numpy()
        assert o[0, :, :16].mean() > o[0, :, 16:].mean()


def test_mirror_sensitive_class_lists():
    assert mirror_sensitive(["turn_left", "turn_right", "clap"])
    assert not mirror_sensitive(["clap", "wave"])


def test_time_jitter_keeps_order_and_range():
    rng = np.random.default_rng(0)
    idx = np.arange(0, 8 * 15, 15)
    seen = set()
    for _ in range(50):
        j = jitter_indices(idx, 15, 0.25, rng)
        assert j[0] == 0 and np.all(np.diff(j) >= 0)
        assert np.all(np.abs(j - idx) <= 3)
        seen.add(tuple(j))
    assert len(seen) > 10


def test_pipeline_applies_augmentation_only_in_training(tmp_path):
    path = make_video(tmp_path / "v.avi", 60)
    cfg = SamplingConfig(n_frames=4, frame_step=10, size=64)
    plain = make_dataset([(path, 0)], cfg, training=False, batch_size=1)
    aug_eval = make_dataset([(path, 0)], cfg, training=False, batch_size=1,
                            augment=AugmentConfig())
    a = next(iter(plain))[0].numpy()
    assert np.array_equal(a, next(iter(aug_eval))[0].numpy())
    train = make_dataset([(path, 0)] * 6, cfg, training=True, batch_size=6, seed=1,
                         augment=AugmentConfig(time_jitter=0.3))
    x = next(iter(train))[0].numpy()
    assert x.shape == (6, 4, 64, 64, 3) and x.dtype == np.uint8
    assert len({c.tobytes() for c in x}) == 6  # the same video, six different clips
