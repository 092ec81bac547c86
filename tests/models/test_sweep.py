"""timm-style sweep: every registered model name is built with a small input, run forward, given
one training step on random data, saved, loaded, and must give the same outputs.

Every name that is not a MoViNet is always swept (a new registration is swept without a test
change). MoViNets take 15-60 s each to build on 2 cores: a0 and a0-stream stand for them in CI,
VIDACTION_SWEEP=all builds all twelve.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

FRAMES, CLASSES = 4, 3
SIZE = 32
# The smallest frames each name takes (InceptionV3, cnn-rnn's default CNN, wants 75 px).
MIN_SIZE = {"cnn-rnn": 75}
MOVINETS_IN_CI = ["movinet-a0", "movinet-a0-stream"]


def _names() -> list[str]:
    from vidaction.models import list_models

    names = [m.name for m in list_models()]
    if os.environ.get("VIDACTION_SWEEP") == "all":
        return names
    return [n for n in names if not n.startswith("movinet-") or n in MOVINETS_IN_CI]


def test_every_name_without_a_movinet_backbone_is_in_the_ci_sweep():
    from vidaction.models import list_models

    others = {m.name for m in list_models() if not m.name.startswith("movinet-")}
    assert {"r2plus1d", "cnn-rnn", "frame-baseline"} <= others
    assert others <= set(_names())


@pytest.mark.parametrize("name", _names())
def test_forward_train_step_save_load(name, tmp_path):
    import tensorflow as tf
    import tf_keras

    from vidaction.models import create_model, load_model, model_info, save_model

    size = MIN_SIZE.get(name, SIZE)
    tf_keras.utils.set_random_seed(0)
    model = create_model(name, CLASSES, frames=FRAMES, size=size)
    rng = np.random.default_rng(0)
    # Non-default input statistics (EfficientNet's Normalization, as ImageNet weights set
    # them) must survive save and load too.
    for layer in model.submodules:
        if type(layer).__name__ == "Normalization":
            layer.adapt_mean.assign(rng.uniform(0.3, 0.6, layer.adapt_mean.shape))
            layer.adapt_variance.assign(rng.uniform(0.04, 0.06, layer.adapt_variance.shape))
            layer.finalize_state()
    keypoints = model_info(name).inputs == "keypoints"
    if keypoints:  # skeleton models: (x, y) pixels and a score per joint, not frames
        clips = np.concatenate([rng.uniform(0, 640, (2, FRAMES, 17, 2)),
                                rng.uniform(0, 1, (2, FRAMES, 17, 1))], -1).astype(np.float32)
    else:
        clips = rng.integers(0, 256, (2, FRAMES, size, size, 3), dtype=np.uint8)
    labels = np.array([0, 2])

    logits = model(clips, training=False).numpy()
    assert logits.shape == (2, CLASSES) and np.isfinite(logits).all()
    if not keypoints:
        # uint8 and float pixel values give the same answer (scaling happens in the model)
        np.testing.assert_allclose(model(clips.astype(np.float32)).numpy(), logits, atol=1e-6)

    head_only = name.startswith("movinet") or model_info(name).frame_backbone
    if head_only:
        # Frozen backbone (MoViNet, or the per-frame ImageNet CNN): only the head trains.
        assert 0 < len(model.trainable_weights) <= 10
        assert all("head" in w.name or "gru" in w.name or "logits" in w.name
                   or "dense" in w.name for w in model.trainable_weights)
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    opt = tf_keras.optimizers.Adam(1e-3)
    before = [w.numpy() for w in model.weights]
    trainable = {id(w) for w in model.trainable_weights}
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(clips, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    opt.apply_gradients(zip(grads, model.trainable_weights, strict=True))
    assert np.isfinite(float(loss))
    # (Loss on 2 random clips need not fall in one step; that the weights moved is the check.)
    for b, w in zip(before, model.weights, strict=True):
        if id(w) in trainable:
            assert not np.array_equal(b, w.numpy()), w.name
        elif head_only:  # a frozen backbone does not move, batch-norm statistics included
            np.testing.assert_array_equal(b, w.numpy(), err_msg=w.name)

    after = model(clips, training=False).numpy()
    save_model(model, tmp_path / "saved")
    again = load_model(tmp_path / "saved")
    np.testing.assert_allclose(again(clips, training=False).numpy(), after, atol=1e-5)
    assert not list(tmp_path.glob("saved.*")), "temporary folders left behind"
