"""kinetics600: the official Kinetics-600 MoViNet fetched (loopback), verified, cached, run."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest

from conftest import closed_port_url, real_clip, shared_model
from vidaction.errors import UserError
from vidaction.io.download import WeightsError
from vidaction.models import kinetics as kin

MODEL = "movinet_a0_stream_kinetics600_int8.tflite"
LABELS_SHA256 = "8dfca4202520ea8291ce0242ef33b006d0a0772b409663c090a2876bc1978dcf"
SPEC = kin.CLASSIFIERS["kinetics600"]


@pytest.fixture(scope="module")
def tflite() -> bytes:
    return shared_model(MODEL).read_bytes()


def _tar_gz(name: str, body: bytes) -> bytes:
    """The archive Kaggle Models serves: the model as `1.tflite` in a .tar.gz."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_the_600_labels_ship_with_the_package():
    labels = kin.labels()
    assert len(labels) == 600 == len(set(labels))
    assert labels[242] == "jumping jacks"  # line 243, as the shared README says
    text = "".join(c + "\n" for c in labels).encode()
    assert hashlib.sha256(text).hexdigest() == LABELS_SHA256


@pytest.mark.parametrize("form", ["bare", "tar.gz"])
def test_first_use_fetches_verifies_and_caches(form, tflite, loopback_server, tmp_path):
    body = tflite if form == "bare" else _tar_gz("1.tflite", tflite)
    loopback_server.routes["/m"] = [("ok", body)]
    url = loopback_server.url("/m")
    path = kin.fetch_model(SPEC, url=url, cache_dir=tmp_path)
    assert path == tmp_path / "weights" / MODEL
    assert path.read_bytes() == tflite
    assert sorted(p.name for p in path.parent.iterdir()) == [MODEL]  # no .download left
    again = kin.fetch_model(SPEC, url=url, cache_dir=tmp_path)
    assert again == path and loopback_server.hits == ["/m"]  # the second use is offline


def test_a_truncated_download_is_fetched_again(tflite, loopback_server, tmp_path):
    loopback_server.routes["/m"] = [("cut", tflite[: len(tflite) // 3]), ("ok", tflite)]
    with pytest.warns(UserWarning, match="downloading again"):
        path = kin.fetch_model(SPEC, url=loopback_server.url("/m"), cache_dir=tmp_path)
    assert path.read_bytes() == tflite and len(loopback_server.hits) == 2


def test_a_cut_archive_is_fetched_again(tflite, loopback_server, tmp_path):
    archive = _tar_gz("1.tflite", tflite)
    # served whole as announced, but only its first half: gzip ends early
    loopback_server.routes["/m"] = [("ok", archive[: len(archive) // 2]), ("ok", archive)]
    with pytest.warns(UserWarning, match="damaged archive"):
        path = kin.fetch_model(SPEC, url=loopback_server.url("/m"), cache_dir=tmp_path)
    assert path.read_bytes() == tflite


def test_a_wrong_hash_is_refused_naming_url_and_remedy(tflite, loopback_server, tmp_path):
    other = bytearray(tflite)
    other[-1] ^= 0xFF
    loopback_server.routes["/m"] = [("ok", bytes(other))]
    url = loopback_server.url("/m")
    with pytest.warns(UserWarning), pytest.raises(WeightsError) as e:
        kin.fetch_model(SPEC, url=url, cache_dir=tmp_path)
    msg = str(e.value)
    assert url in msg and "--weights PATH" in msg and "sha256" in msg and "\n" not in msg
    assert len(loopback_server.hits) == 2  # tried twice
    assert not (tmp_path / "weights" / MODEL).exists()  # nothing wrong left in the cache


def test_a_damaged_cached_copy_is_fetched_again(tflite, loopback_server, tmp_path):
    cached = tmp_path / "weights" / MODEL
    cached.parent.mkdir(parents=True)
    cached.write_bytes(tflite[:1000])
    loopback_server.routes["/m"] = [("ok", tflite)]
    with pytest.warns(UserWarning, match="not the published"):
        path = kin.fetch_model(SPEC, url=loopback_server.url("/m"), cache_dir=tmp_path)
    assert path.read_bytes() == tflite and loopback_server.hits == ["/m"]


def test_offline_without_a_copy_is_one_line_naming_url_and_remedy(tmp_path):
    url = closed_port_url()
    with pytest.raises(WeightsError) as e:
        kin.fetch_model(SPEC, url=url, cache_dir=tmp_path)
    msg = str(e.value)
    assert url in msg and "--weights PATH" in msg and "\n" not in msg


def test_weights_takes_a_local_copy_bare_or_archived(tflite, tmp_path):
    bare = shared_model(MODEL)
    assert kin.fetch_model(SPEC, weights=bare, url=closed_port_url(),
                           cache_dir=tmp_path) == bare
    archive = tmp_path / "movinet.tar.gz"
    archive.write_bytes(_tar_gz("1.tflite", tflite))
    got = kin.fetch_model(SPEC, weights=archive, url=closed_port_url(), cache_dir=tmp_path)
    assert got.read_bytes() == tflite
    with pytest.raises(WeightsError, match="no such file"):
        kin.fetch_model(SPEC, weights=tmp_path / "nope.tflite", cache_dir=tmp_path)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(WeightsError, match="broken.tar.gz: damaged archive"):
        kin.fetch_model(SPEC, weights=broken, cache_dir=tmp_path)


def test_a_file_that_is_not_the_model_is_one_line(tmp_path):
    movenet = shared_model("movenet_singlepose_lightning_int8_4.tflite")
    with pytest.warns(UserWarning, match="sha256 differs"), \
            pytest.raises(Exception, match="not the kinetics600 model|not a TFLite") as e:
        kin.load_pretrained("kinetics600", weights=movenet)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def classifier():
    return kin.load_pretrained("kinetics600", weights=shared_model(MODEL))


def test_it_is_a_run_that_needs_no_training(classifier):
    from vidaction.models.predictor import fixed_frames, load_predictor, sampling_config

    p = load_predictor("kinetics600", weights=shared_model(MODEL))
    assert p.classes == kin.labels() and p.config["model"]["name"] == "kinetics600"
    cfg = sampling_config(p)
    assert (cfg.fps, cfg.size, cfg.resize) == (5.0, 172, SPEC.resize)  # its training rate
    assert fixed_frames(p) is None  # a stream model takes windows of any length
    assert p.streamer() is not p.streamer()  # fresh state each


def test_weights_is_refused_for_a_run_folder(tmp_path):
    from vidaction.models.predictor import load_predictor

    with pytest.raises(UserError, match="--weights is for the pretrained"):
        load_predictor(tmp_path, weights=shared_model(MODEL))


def test_clip_logits_equal_streaming_its_frames_and_ignore_padding(classifier):
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (6, 172, 172, 3), dtype=np.uint8)
    s = classifier.streamer()
    for frame in clip:
        streamed = s.step(frame)
    padded = np.concatenate([clip, np.zeros((4, 172, 172, 3), np.uint8)])
    got = classifier.predict_logits(np.stack([padded, padded]))
    assert got.shape == (2, 600)
    np.testing.assert_allclose(got[0], streamed, atol=1e-5)
    np.testing.assert_allclose(got[1], streamed, atol=1e-5)  # state reset between clips
    # the padding is what was left out: feeding it changes the answer
    s.reset()
    for frame in padded:
        with_black = s.step(frame)
    assert np.abs(with_black - streamed).max() > 1e-3


def test_frames_are_fed_as_floats_in_0_1(classifier):
    """The official file takes [0, 1] floats: 0..255 would saturate every activation."""
    from vidaction.models.litert import TFLiteStreamer

    clip = np.full((3, 172, 172, 3), 200, np.uint8)
    raw = TFLiteStreamer(classifier.path)  # our exports' convention: 0..255
    for frame in clip:
        unscaled = raw.step(frame)
    scaled = classifier.predict_logits(clip[None])[0]
    assert np.abs(scaled - unscaled).max() > 1.0


def test_flipping_pancake_top1_on_the_real_clip(classifier):
    from vidaction.infer.predict import predict_video
    from vidaction.models.predictor import sampling_config

    video = real_clip("flipping_a_pancake.mkv")
    pred = predict_video(classifier, video, sampling_config(classifier), clips=3)
    top = pred.top(classifier.classes, 5)
    assert top[0][0] == "flipping pancake" and top[0][1] > 0.5, top



def test_a_short_video_is_not_called_padded(classifier):
    """21 frames at 5 fps are 4 samples of a 50-frame clip: the stream model takes those 4
    and leaves the padding out, so there is nothing to warn about."""
    from vidaction.infer.predict import predict_video, short_warning
    from vidaction.models.predictor import sampling_config

    video = real_clip("deadlift_64.mp4")
    pred = predict_video(classifier, video, sampling_config(classifier), clips=3)
    assert pred.frame_count == 21 and pred.short is None and short_warning(pred) is None
