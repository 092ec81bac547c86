import json

import numpy as np
import pytest

from vidaction.data.builtin import render_dataset
from vidaction.data.sampling import DEFAULT_SHORT, SamplingConfig, sample_clips

TINY = dict(classes=["clap", "kick"], clips_per_class=4, size=48, seconds=0.6, fps=25, seed=5,
            splits=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return render_dataset(tmp_path_factory.mktemp("d") / "tiny", progress=False, **TINY)


def _cfg(data, out, cache, **kw):
    from vidaction.train import TrainConfig

    return TrainConfig(**{**dict(data=str(data), out=str(out), model="movinet-a0-stream",
                                 pretrained="none", epochs=2, batch_size=2, frames=4,
                                 frame_step=3, size=48, cache_samples=2,
                                 feature_cache=str(cache)), **kw})


def test_head_on_cached_features_matches_the_model_end_to_end(data, tmp_path, capsys):
    from vidaction.train import train
    from vidaction.train.features import FeatureCache, split_model, weights_fingerprint

    cache = tmp_path / "features"
    run = train(_cfg(data, tmp_path / "run", cache), progress=False)
    out = capsys.readouterr().out
    assert "6 videos computed, 0 reused" in out  # 4 train + 2 val
    assert len(json.loads((run / "history.json").read_text())["epochs"]) == 2

    from vidaction.train import load_run

    model = load_run(run).model
    features, head = split_model(model)
    cfg = SamplingConfig(4, 3, 48, short=DEFAULT_SHORT)  # as the run cut its clips
    fc = FeatureCache(cache, weights_fingerprint(features), cfg, 2)
    clip_path = next((data / "train").rglob("*.mp4"))
    cached = fc.get(clip_path)
    assert cached is not None and cached.shape[0] == 2
    clips, _ = sample_clips(clip_path, cfg, clips=2)
    end_to_end = model(clips, training=False).numpy()
    from_cache = head(cached, training=False).numpy()
    np.testing.assert_allclose(from_cache, end_to_end, atol=1e-4)

    # a second run with the same backbone and sampling computes nothing new
    train(_cfg(data, tmp_path / "run2", cache), progress=False)
    assert "0 videos computed, 6 reused" in capsys.readouterr().out


def test_feature_cache_only_for_a_frozen_backbone_without_augmentation(tmp_path):
    from vidaction.models import create_model
    from vidaction.train.features import split_model

    cfg = _cfg("d", "o", "c")
    assert cfg.uses_feature_cache
    assert not _cfg("d", "o", "c", augment=True).uses_feature_cache
    assert not _cfg("d", "o", "c", freeze_backbone=False).uses_feature_cache
    assert not _cfg("d", "o", "c", cache_samples=0).uses_feature_cache
    # models without a separate backbone have nothing to cache
    assert split_model(create_model("r2plus1d", 2, frames=2, size=16)) is None


def test_frame_cnn_features_are_cached_per_frame_and_the_head_trains_on_them(data, tmp_path,
                                                                             capsys):
    from vidaction.train import load_run, train
    from vidaction.train.features import FeatureCache, split_model, weights_fingerprint

    cache = tmp_path / "features"
    run = train(_cfg(data, tmp_path / "run", cache, model="frame-baseline",
                     frame_backbone="mobilenetv2"), progress=False)
    assert "6 videos computed, 0 reused" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["frame_backbone"] == "mobilenetv2"
    assert config["sampling"]["resize"] == "letterbox"

    model = load_run(run).model
    features, head = split_model(model)
    cfg = SamplingConfig(4, 3, 48, short=DEFAULT_SHORT)  # as the run cut its clips
    cached = FeatureCache(cache, weights_fingerprint(features), cfg, 2).get(
        next((data / "train").rglob("*.mp4")))
    assert cached is not None and cached.shape == (2, 4, 1280)  # K clips x T frames x D
    clips, _ = sample_clips(next((data / "train").rglob("*.mp4")), cfg, clips=2)
    np.testing.assert_allclose(head(cached).numpy(), model(clips).numpy(), atol=1e-5)


def test_training_cycles_through_each_videos_clips_and_resumes_where_it_stopped():
    from vidaction.train.features import feature_dataset

    n, k = 5, 3
    feats = np.array([[[10 * v + c] for c in range(k)] for v in range(n)], np.float32)
    labels = np.arange(n)

    def epochs(first, last):
        ds = feature_dataset(feats, labels, 2, seed=7, training=True, epochs=(first, last))
        batches = [(f.numpy()[:, 0].astype(int), y.numpy()) for f, y in ds]
        assert len(batches) == 3 * (last - first)  # ceil(5 / 2) batches per epoch
        return [np.concatenate([f for f, _ in batches[i:i + 3]]) for i in range(0, len(batches), 3)]

    seen = epochs(0, k)
    for got in seen:  # every video once per epoch, its label with it
        assert sorted(got // 10) == list(range(n))
    for v in range(n):  # over K epochs, each of a video's K clips exactly once
        assert sorted(c % 10 for e in seen for c in e if c // 10 == v) == list(range(k))
    # a resumed run (epoch 2 onwards) sees what the uninterrupted one saw
    np.testing.assert_array_equal(epochs(2, k)[0], seen[2])
    # validation: each video's middle clip, once
    val = feature_dataset(feats, labels, 2, seed=7, training=False)
    assert sorted(int(x) for f, _ in val for x in f.numpy()[:, 0]) == [10 * v + 1 for v in range(n)]


def _tiny_backbone(frames=4, size=48):
    """A cheap stand-in for a frozen backbone: per-channel means, (3,) per clip."""
    import tf_keras

    x = tf_keras.Input((frames, size, size, 3), dtype="float32", name="clip")
    return tf_keras.Model(x, tf_keras.layers.GlobalAveragePooling3D()(x), name="features")


def _compute(data, cache_dir, clips=None):
    from vidaction.data.sources import load_dataset
    from vidaction.train.features import FeatureCache, compute_features

    clips = clips or load_dataset(data, write_classes_file=False).split("train")
    cfg = SamplingConfig(4, 3, 48, short=DEFAULT_SHORT)  # as the run cut its clips
    cache = FeatureCache(cache_dir, "tiny", cfg, 2)
    feats, ok = compute_features(_tiny_backbone(), clips, cfg, 2, cache, batch_size=4,
                                 progress=False)
    return feats, ok, cache


def test_garbled_nan_or_wrong_shaped_feature_entries_are_recomputed_with_one_warning(
        data, tmp_path):
    import warnings

    from vidaction.data.cache import encode_entry

    first, ok, cache = _compute(data, tmp_path / "f")
    assert ok.all() and cache.computed == len(first) == 4
    entries = sorted((tmp_path / "f").rglob("*.npy"))
    assert len(entries) == 4
    bad = [np.full((2, 3), np.nan, np.float32), np.zeros((2, 5), np.float32)]
    entries[0].write_bytes(encode_entry([bad[0]]))  # well-formed, but NaN
    entries[1].write_bytes(encode_entry([bad[1]]))  # well-formed, wrong shape
    raw = bytearray(entries[2].read_bytes())
    raw[-30:-8] = bytes(22)  # the values zeroed
    entries[2].write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again, ok, cache = _compute(data, tmp_path / "f")
    msgs = [str(w.message) for w in caught if "cache" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("feature cache: ") and "damaged" in msgs[0]
    assert ok.all() and (cache.computed, cache.reused) == (3, 1)
    np.testing.assert_allclose(again, first, rtol=1e-6)
    assert np.isfinite(again).all()


def test_feature_cache_on_a_full_disk_warns_once_and_keeps_every_video(data, tmp_path,
                                                                       monkeypatch):
    import builtins
    import errno
    import warnings

    from vidaction.data import cache as cache_module

    def full_open(path, mode="r", *a, **k):
        if "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return builtins.open(path, mode, *a, **k)

    monkeypatch.setattr(cache_module, "open", full_open, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feats, ok, cache = _compute(data, tmp_path / "f")
    assert ok.all() and np.isfinite(feats).all()
    msgs = [str(w.message) for w in caught if "cache" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("feature cache: ")
    assert "no space left on device" in msgs[0] and str(tmp_path / "f") in msgs[0]
    assert "requested and" not in msgs[0]
