"""The model registry, and the architectures of r2plus1d, cnn-rnn and frame-baseline."""

from __future__ import annotations

import numpy as np
import pytest

from vidaction.errors import UserError

# The forward / train step / save / load sweep over every name is in test_sweep.py.


def test_registry_lists_every_movinet_with_native_size_and_official_stream_config():
    from vidaction.models import MODELS, list_models, model_info
    from vidaction.models.movinet import MovinetConfig

    names = [m.name for m in list_models()]
    assert set(names) == set(MODELS)
    for i, res in zip(range(6), (172, 172, 224, 256, 290, 320), strict=True):
        for suffix in ("", "-stream"):
            info = model_info(f"movinet-a{i}{suffix}")
            assert (info.size, info.frames, info.pretrained) == (res, 8, True)
    assert model_info("r2plus1d").pretrained is False
    base = MovinetConfig("a0", stream=False).backbone_kwargs
    assert (base["causal"], base["conv_type"], base["se_type"]) == (False, "3d", "3d")
    for mid, pos in (("a0", False), ("a2", False), ("a3", True), ("a5", True)):
        kw = MovinetConfig(mid, stream=True).backbone_kwargs
        assert kw == dict(model_id=mid, causal=True, conv_type="2plus1d", se_type="2plus3d",
                          activation="hard_swish", gating_activation="hard_sigmoid",
                          use_positional_encoding=pos)


def test_unknown_name_and_bad_pretrained_are_user_errors(tmp_path):
    from vidaction.models import create_model

    with pytest.raises(UserError, match="unknown model 'movinet-a9'"):
        create_model("movinet-a9", 3)
    with pytest.raises(UserError, match="neither"):
        create_model("movinet-a0", 3, pretrained=str(tmp_path / "missing.tar.gz"))


def test_model_table_lists_names_sizes_and_pretrained(monkeypatch):
    from vidaction.models import factory

    # Parameter counts build every model (minutes); the table layout is what is checked here.
    monkeypatch.setattr(factory, "count_params", lambda name: 1_234_567)
    table = factory.format_model_table()
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["name", "input", "frames", "params", "pretrained"]
    trainable = lines[:lines.index("")]  # then the pretrained classifiers, apart
    assert len(trainable) == 1 + len(factory.list_models())
    assert any(ln.startswith("kinetics600 ") for ln in lines[len(trainable):])
    row = next(ln for ln in lines if ln.startswith("movinet-a2-stream "))
    assert "224x224" in row and "1.23M" in row and "k600" in row
    assert " no " in next(ln for ln in lines if ln.startswith("r2plus1d "))


def test_parameter_count_of_a0_base_and_stream():
    from vidaction.models import count_params

    # With the 600-class head (the checkpoint's model), BN statistics included; the figures
    # of tf-models-official 2.20 (the paper's 3.1M for A0 counts the same way).
    assert count_params("movinet-a0") == 3_126_071
    assert count_params("movinet-a0-stream") == 3_765_983


# --- r2plus1d (SPEC.md, Models 2) ---------------------------------------------------------


def test_r2plus1d_is_the_reference_architecture():
    import tf_keras

    from vidaction.models import create_model, model_info

    info = model_info("r2plus1d")
    assert (info.frames, info.size, info.pretrained) == (10, 224, False)
    model = create_model("r2plus1d", 5)
    assert model.input_shape == (None, 10, 224, 224, 3)
    convs = {ly.name: ly for ly in model.layers if isinstance(ly, tf_keras.layers.Conv3D)}
    assert convs["stem_spatial"].kernel_size == (1, 7, 7)
    assert convs["stem_temporal"].kernel_size == (3, 1, 1)
    for i, width in enumerate((16, 32, 64, 128)):
        for part in ("a", "b"):  # each convolution factored into spatial then temporal
            assert convs[f"block{i}_{part}_spatial"].kernel_size == (1, 3, 3)
            assert convs[f"block{i}_{part}_temporal"].kernel_size == (3, 1, 1)
            assert convs[f"block{i}_{part}_temporal"].filters == width
        names = {ly.name for ly in model.layers}
        assert {f"block{i}_ln_a", f"block{i}_ln_b", f"block{i}_add"} <= names
        # projection (dense + layer norm) on the skip path only where the width changes
        assert (f"block{i}_project" in names) == (i > 0)
        assert (f"block{i}_project_ln" in names) == (i > 0)
        # frames halved in size before every block: 224 -> 112 -> 56 -> 28 -> 14
        assert model.get_layer(f"halve_{i}").output_shape[1:4] == (10, 224 >> (i + 1),
                                                                   224 >> (i + 1))
    assert isinstance(model.get_layer("pool"), tf_keras.layers.GlobalAveragePooling3D)
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize("size", [64, 112])
def test_r2plus1d_small_sizes_run_and_save_as_plain_keras(size, tmp_path):
    from vidaction.models import create_model, load_model

    model = create_model("r2plus1d", 4, size=size)
    clip = np.random.default_rng(size).integers(0, 256, (1, 10, size, size, 3), np.uint8)
    logits = model(clip, training=False).numpy()
    assert logits.shape == (1, 4) and np.isfinite(logits).all()
    if size == 64:
        # stock layers only: a .keras file loads without custom objects (tf_keras.models.
        # load_model inside load_model)
        model.save(tmp_path / "m.keras")
        np.testing.assert_allclose(load_model(tmp_path / "m.keras")(clip).numpy(), logits,
                                   atol=1e-5)


# --- cnn-rnn and frame-baseline (SPEC.md, Models 3 and 4) ---------------------------------

T, S, D = 4, 32, 1280  # mobilenetv2: the lightest frame CNN


@pytest.fixture(scope="module")
def cnn_rnn():
    import tf_keras

    from vidaction.models import create_model

    tf_keras.utils.set_random_seed(2)
    return create_model("cnn-rnn", 3, frames=T, size=S, frame_backbone="mobilenetv2")


def test_model_defaults_of_the_frame_models():
    from vidaction.models import model_info

    rnn, base = model_info("cnn-rnn"), model_info("frame-baseline")
    assert (rnn.frames, rnn.size, rnn.resize, rnn.frame_backbone) == (20, 224, "crop",
                                                                      "inceptionv3")
    assert (base.frames, base.size, base.frame_backbone) == (10, 224, "efficientnetb0")
    assert base.patience == 2 and rnn.patience == 3 and model_info("r2plus1d").patience == 3
    assert rnn.pretrained and base.pretrained and rnn.weights == "imagenet"


def test_cnn_rnn_layers_are_the_reference_recipe(cnn_rnn):
    import tf_keras

    from vidaction.models.frame_cnn import frame_cnn_of

    cnn = frame_cnn_of(cnn_rnn)
    assert any(ly.name == "block_16_project" for ly in cnn.layers)  # MobileNetV2's last block
    assert not cnn.trainable
    assert cnn.output_shape == (None, D)  # globally average pooled
    head = cnn_rnn.get_layer("head")
    kinds = [(type(ly).__name__, getattr(ly, "units", None) or getattr(ly, "rate", None))
             for ly in head.layers[1:]]
    assert kinds == [("Masking", None), ("RNN", None), ("RNN", None), ("Dropout", 0.4),
                     ("Dense", 8), ("Dense", 3)]
    assert head.get_layer("gru16").cell.units == 16 and head.get_layer("gru16").return_sequences
    assert head.get_layer("gru8").cell.units == 8
    assert isinstance(head.get_layer("gru8").cell, tf_keras.layers.GRUCell)
    assert head.get_layer("dense8").activation.__name__ == "relu"


def test_padding_frames_are_masked_and_order_matters_for_the_gru(cnn_rnn):
    from vidaction.models.cnn_rnn import build_head
    from vidaction.train.features import split_model

    features, head = split_model(cnn_rnn)
    clip = np.random.default_rng(0).integers(1, 256, (2, T, S, S, 3), np.uint8)
    clip[0, 2:] = 0  # the sampler pads a short video with black frames
    f = features(clip).numpy()
    assert f.shape == (2, T, D)
    assert not f[0, 2:].any() and (np.abs(f[0, :2]).sum(axis=1) > 0).all()
    assert (np.abs(f[1]).sum(axis=1) > 0).all()
    np.testing.assert_allclose(head(f).numpy(), cnn_rnn(clip).numpy(), atol=1e-5)
    # the padded clip scores as its two real frames alone: a two-step head, same weights
    short = build_head(3, 2, D)
    short.set_weights(head.get_weights())
    np.testing.assert_allclose(head(f[:1]).numpy(), short(f[:1, :2]).numpy(), atol=1e-5)
    # a GRU reads order: the frames reversed give another answer
    g = np.random.default_rng(1).normal(size=(1, T, D)).astype(np.float32)
    assert np.abs(head(g[:, ::-1]).numpy() - head(g).numpy()).max() > 1e-4


def test_frame_baseline_averages_a_dense_layer_over_real_frames_in_any_order():
    from vidaction.models.frame_baseline import build_head

    rng = np.random.default_rng(1)
    head = build_head(3, T, 8)
    f = rng.normal(size=(2, T, 8)).astype(np.float32)
    f[0, 3:] = 0  # padding
    kernel, bias = head.get_layer("per_frame_logits").get_weights()
    want = np.stack([(f[0, :3] @ kernel + bias).mean(0), (f[1] @ kernel + bias).mean(0)])
    np.testing.assert_allclose(head(f).numpy(), want, atol=1e-5)
    # a bag of frames: order does not matter (what the direction pairs expose)
    np.testing.assert_allclose(head(f[1:, ::-1]).numpy(), want[1:], atol=1e-5)


def test_frame_model_mistakes_are_one_line_user_errors():
    from vidaction.models import create_model

    with pytest.raises(UserError, match="at least 75x75"):
        create_model("cnn-rnn", 3, frames=2, size=64)
    with pytest.raises(UserError, match="unknown --frame-backbone 'resnet'"):
        create_model("cnn-rnn", 3, frames=2, size=64, frame_backbone="resnet")
    with pytest.raises(UserError, match="not r2plus1d"):
        create_model("r2plus1d", 3, frame_backbone="mobilenetv2")


def test_cli_frame_backbone_mistakes_are_one_line_before_any_run_folder(tmp_path, capsys):
    from vidaction.cli import main

    (tmp_path / "data" / "clap").mkdir(parents=True)  # flags are checked before the videos
    for argv, reason in (
            (["--model", "cnn-rnn", "--size", "64"], "needs frames of at least 75x75"),
            (["--model", "r2plus1d", "--frame-backbone", "mobilenetv2"], "not r2plus1d")):
        out = tmp_path / "run"
        assert main(["train", "--data", str(tmp_path / "data"), "--out", str(out), *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("vidaction: error: ") and reason in err and "\n" not in err
        assert not out.exists()
