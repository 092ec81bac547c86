"""movinet_fast: MoViNet base models run as 2-D ops give the official 3-D results, restore the
official checkpoint, train the same and convert to TensorFlow Lite (float and int8)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

FRAMES, SIZE, CLASSES = 8, 48, 3
OTHER_SHAPE = (5, 40, 56)  # frames, height, width: a second clip shape, not square
TOL = 1e-4
SWEEP = os.environ.get("VIDACTION_SWEEP") == "all"


def _randomize(model, seed: int) -> None:
    """Random batch-norm statistics, biases and residual scales: a fresh MoViNet multiplies
    every residual branch by zero (rezero), which would hide most convolutions. Scales stay
    small, as in trained models: at 0.5-1 the deep ids (a4, a5) blow up to 1e5 and turn float
    rounding into differences of whole logits."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        n = w.name
        if n.endswith("/scale:0"):
            w.assign(rng.uniform(0.1, 0.3, w.shape).astype(np.float32))
        elif "moving_variance" in n or "gamma" in n:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
        elif "moving_mean" in n or "beta" in n or "bias" in n:
            w.assign(rng.normal(0.0, 0.1, w.shape).astype(np.float32))


def _parts(model):
    """(backbone, classifier head) of a create_model MoViNet: callable on any clip shape."""
    from official.projects.movinet.modeling import movinet_layers

    from vidaction.models import backbone_of

    classifier = model.layers[-1]
    head = next(m for m in classifier.layers if isinstance(m, movinet_layers.ClassifierHead))
    return backbone_of(model), head


def _logits(model, clips: np.ndarray) -> np.ndarray:
    backbone, head = _parts(model)
    endpoints, _ = backbone(clips.astype(np.float32) / 255.0, training=False)
    return head(endpoints["head"], training=False).numpy()


def _clips(seed: int, shape=(FRAMES, SIZE, SIZE), batch: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape, 3), dtype=np.uint8)


def _official_checkpoint(model_id: str, folder: Path, seed: int):
    """A randomly initialised 600-class base classifier of the official classes, saved the way
    the official movinet_<id>_base tarball holds it. Returns (prefix, backbone)."""
    import tensorflow as tf
    import tf_keras

    from vidaction.models import movinet as mv

    tf_keras.utils.set_random_seed(seed)
    cfg = mv.MovinetConfig(model_id, stream=False)
    backbone = mv.build_backbone(cfg)
    k600 = mv.build_classifier(backbone, cfg, mv.KINETICS600, None, None)
    _randomize(k600, seed)
    prefix = tf.train.Checkpoint(model=k600).save(str(folder / f"movinet_{model_id}_base" / "ckpt"))
    return prefix, backbone


def _compare_builds(model_id: str, tmp: Path, seed: int, prefix=None, ref_backbone=None):
    """Fast create_model build vs the reference (same object switched back, and the separate
    official build when given): logits at two clip shapes, and every variable restored."""
    from vidaction.models import create_model
    from vidaction.models.movinet_fast import conv_impl_of, set_conv_impl

    model = create_model(f"movinet-{model_id}", CLASSES, frames=FRAMES, size=SIZE,
                         pretrained=str(prefix) if prefix else "none")
    assert conv_impl_of(model) == "fast"
    if prefix is None:
        _randomize(model, seed)
    else:
        # every backbone variable carries the checkpoint's value (restore is all or nothing)
        got = {w.name: w.numpy() for w in _parts(model)[0].weights}
        want = {w.name: w.numpy() for w in ref_backbone.weights}
        assert got.keys() == want.keys() and len(got) == len(ref_backbone.weights)
        for name, value in want.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)
    for i, shape in enumerate([(FRAMES, SIZE, SIZE), OTHER_SHAPE]):
        clips = _clips(seed + i, shape)
        fast = _logits(model, clips)
        set_conv_impl(model, "reference")
        try:
            ref = _logits(model, clips)
        finally:
            set_conv_impl(model, "fast")
        np.testing.assert_allclose(fast, ref, atol=TOL, rtol=0)
        if i:
            continue
        # the clips' time order matters, so a wrong temporal tap would show
        assert np.abs(_logits(model, clips[:, ::-1]) - fast).max() > 10 * TOL
        if ref_backbone is not None:  # the independent official build, as shipped
            feats = ref_backbone(clips.astype(np.float32) / 255.0, training=False)[0]["head"]
            fast_feats = _parts(model)[0](clips.astype(np.float32) / 255.0,
                                          training=False)[0]["head"]
            np.testing.assert_allclose(fast_feats.numpy(), feats.numpy(), atol=TOL, rtol=0)
    return model


def _cached_official_checkpoints() -> list[Path]:
    """Official base checkpoints unpacked in the weights cache (none on CI)."""
    from vidaction.models.pretrained import cache_root

    root = cache_root()
    return sorted(p for p in root.glob("*movinet_a?_base*.d") if p.is_dir()) \
        if root.is_dir() else []


# (model id, checkpoint folder): None builds an official-layout checkpoint of random weights.
CASES = [(m, None) for m in (["a0", "a1", "a2", "a3", "a4", "a5"] if SWEEP else ["a0"])]
CASES += [(re.search(r"movinet_(a\d)_base", p.name).group(1), p)
          for p in _cached_official_checkpoints()]
_A0: dict = {}


def _build_case(model_id: str, real, tmp: Path):
    if real is not None:
        return _compare_builds(model_id, tmp, 4, real)
    prefix, backbone = _official_checkpoint(model_id, tmp, seed=1)
    return _compare_builds(model_id, tmp, 2, Path(prefix).parent, backbone)


@pytest.mark.parametrize(("model_id", "real"), CASES,
                         ids=[f"{m}-{'cached' if r else 'random'}" for m, r in CASES])
def test_fast_equals_reference_and_restores_the_official_checkpoint(model_id, real,
                                                                    tmp_path_factory):
    from official.vision.modeling.layers import nn_layers

    from vidaction.models.movinet_fast import FastConv3D

    model = _build_case(model_id, real, tmp_path_factory.mktemp(model_id))
    convs = [m for m in model.submodules if isinstance(m, nn_layers.Conv3D)]
    assert convs and all(type(m) is FastConv3D for m in convs)
    assert json.loads(model.vidaction_config)["conv_impl"] == "fast"
    if (model_id, real) == ("a0", None):
        _A0["model"] = model  # reused below: a0 builds take 20-40 s


@pytest.fixture(scope="module")
def a0(tmp_path_factory):
    """The fast movinet-a0 of the test above (built here when that test did not run)."""
    if "model" not in _A0:
        _A0["model"] = _build_case("a0", None, tmp_path_factory.mktemp("a0"))
    return _A0["model"]


def test_conv_impl_is_checked():
    from vidaction.errors import UserError
    from vidaction.models import create_model

    with pytest.raises(UserError, match="conv_impl"):
        create_model("movinet-a0", CLASSES, conv_impl="fastest")


def test_head_training_step_has_the_reference_gradients(a0):
    import tensorflow as tf
    import tf_keras

    from vidaction.models.movinet_fast import set_conv_impl

    clips = _clips(5, batch=3)
    labels = np.array([0, 2, 1])
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    head_vars = a0.trainable_weights
    assert 0 < len(head_vars) <= 4  # frozen backbone: the head only

    # The fast build, as `fit` runs it: the whole model under the tape.
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, a0(clips, training=True))
    fast = [g.numpy() for g in tape.gradient(loss, head_vars)]
    # The reference: its frozen backbone's features (taping the official XLA convolutions
    # costs a minute of gradient tracing that these variables do not need), then the head.
    backbone, head = _parts(a0)
    set_conv_impl(a0, "reference")
    try:
        features = backbone(clips.astype(np.float32) / 255.0, training=True)[0]["head"]
    finally:
        set_conv_impl(a0, "fast")
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, head(features, training=True))
    ref = [g.numpy() for g in tape.gradient(loss, head_vars)]
    for f, r, w in zip(fast, ref, head_vars, strict=True):
        assert np.abs(r).max() > 1e-3, w.name
        np.testing.assert_allclose(f, r, atol=TOL, rtol=0, err_msg=w.name)
    # and the step itself: the same update from the same optimizer state
    opt = tf_keras.optimizers.SGD(0.1)
    before = [w.numpy() for w in head_vars]
    opt.apply_gradients(zip([tf.constant(g) for g in fast], head_vars, strict=True))
    for b, w, r in zip(before, head_vars, ref, strict=True):
        np.testing.assert_allclose(w.numpy(), b - 0.1 * r, atol=TOL, rtol=0)
        w.assign(b)


# Every convolution and pooling shape a MoViNet uses, plus causal padding (stream-style) and a
# plain grouped case the fast path leaves to the official op.
LAYERS = [
    dict(filters=24, kernel_size=(3, 3, 3), groups=24, padding="same"),
    dict(filters=16, kernel_size=(5, 3, 3), strides=(1, 2, 2), groups=16, padding="same"),
    dict(filters=16, kernel_size=(1, 5, 5), strides=(1, 2, 2), groups=16, padding="same"),
    dict(filters=8, kernel_size=(1, 3, 3), strides=(1, 2, 2), padding="same"),  # stem
    dict(filters=8, kernel_size=(1, 1, 1), padding="same", use_bias=True),  # pointwise
    dict(filters=24, kernel_size=(3, 3, 3), groups=24, padding="causal"),
    dict(filters=12, kernel_size=(3, 1, 1), groups=4, padding="same"),  # not fast: official
]


@pytest.mark.parametrize("kw", LAYERS, ids=lambda kw: f"{kw['kernel_size']}-{kw['padding']}"
                         f"-g{kw.get('groups', 1)}")
def test_each_layer_and_its_gradients_match_the_official_op(kw):
    """Forward and backward (inputs and kernel) of one layer, fast vs official, odd sizes."""
    import tensorflow as tf
    from official.vision.modeling.layers import nn_layers

    from vidaction.models.movinet_fast import FastConv3D

    rng = np.random.default_rng(7)
    cin = kw["groups"] if kw.get("groups", 1) > 1 else 3 * (kw["filters"] // 8 + 1)
    x = tf.constant(rng.normal(size=(2, 6, 11, 13, cin)).astype(np.float32))
    layer = nn_layers.Conv3D(**kw, bias_initializer="glorot_uniform")
    results = []
    for cls in (nn_layers.Conv3D, FastConv3D):
        layer.__class__ = cls
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            weights = np.sin(np.arange(y.shape.num_elements())).reshape(y.shape)
            loss = tf.reduce_sum(y * weights.astype(np.float32))
        results.append([y.numpy(), *(g.numpy() for g in tape.gradient(loss, [x, layer.kernel]))])
    for ref, fast, what in zip(*results, ["output", "d input", "d kernel"], strict=True):
        assert ref.shape == fast.shape, what
        np.testing.assert_allclose(fast, ref, atol=TOL, rtol=0, err_msg=what)


def test_skip_pooling_matches_the_official_op():
    import tensorflow as tf
    import tf_keras

    from vidaction.models.movinet_fast import FastAveragePooling3D

    x = tf.constant(np.random.default_rng(8).normal(size=(2, 5, 11, 12, 4)).astype(np.float32))
    pool = tf_keras.layers.AveragePooling3D((1, 3, 3), (1, 2, 2), padding="same")
    ref = pool(x).numpy()
    pool.__class__ = FastAveragePooling3D
    fast = pool(x).numpy()
    assert ref.shape == fast.shape == (2, 5, 6, 6, 4)
    np.testing.assert_allclose(fast, ref, atol=1e-6, rtol=0)


def _tflite(concrete, int8_samples=None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if int8_samples is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x] for x in int8_samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _run_tflite(flat: bytes, x: np.ndarray) -> tuple[np.ndarray, set, set]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flat)
    ops = {d["op_name"] for d in it._get_ops_details()}
    dtypes = {np.dtype(t["dtype"]).name for t in it.get_tensor_details()}
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]), ops, dtypes


def test_tflite_float_and_int8_of_fast_a0(a0):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec([1, FRAMES, SIZE, SIZE, 3], tf.float32)
    concrete = tf.function(lambda x: a0(x, training=False)).get_concrete_function(spec)
    # Freeze first: handing the model to the converter makes it save a SavedModel (minutes).
    frozen = convert_variables_to_constants_v2(concrete)
    samples = [c[None].astype(np.float32) for c in _clips(6, batch=3)]
    keras = [a0(x, training=False).numpy() for x in samples]

    flat = _tflite(frozen)
    for x, k in zip(samples, keras, strict=True):
        got, ops, _ = _run_tflite(flat, x)
        np.testing.assert_allclose(got, k, atol=TOL, rtol=0)
    assert {"DEPTHWISE_CONV_2D", "CONV_2D"} <= ops
    assert not any("3D" in op or "FLEX" in op.upper() or "CUSTOM" in op for op in ops), ops

    q = _tflite(frozen, int8_samples=samples)
    got, ops, dtypes = _run_tflite(q, samples[0])
    assert "int8" in dtypes and {"DEPTHWISE_CONV_2D", "QUANTIZE"} <= ops
    assert not any("3D" in op or "FLEX" in op.upper() or "CUSTOM" in op for op in ops), ops
    assert len(q) < len(flat) / 2.5  # int8 weights
    # quantised: close, not equal (about 5% of the logit range with random weights)
    assert np.abs(got - keras[0]).max() < 0.25 * np.abs(keras[0]).max()
