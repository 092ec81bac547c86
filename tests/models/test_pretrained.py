"""Pretrained weights: a fake official tarball served from 127.0.0.1, restored, verified."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

FRAMES, SIZE = 4, 64
NAME = "movinet_a0_base"


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """A 600-class a0 with random weights, saved like the official movinet_a0_base.tar.gz."""
    import tensorflow as tf
    import tf_keras

    from vidaction.models import movinet as mv

    tf_keras.utils.set_random_seed(1)
    cfg = mv.MovinetConfig("a0", stream=False)
    backbone = mv.build_backbone(cfg)
    k600 = mv.build_classifier(backbone, cfg, 600, None, None)
    root = tmp_path_factory.mktemp("official")
    # Official layout: movinet_a0_base/{checkpoint, ckpt-1.index, ckpt-1.data-00000-of-00001}
    prefix = tf.train.Checkpoint(model=k600).save(str(root / NAME / "ckpt"))
    assert Path(prefix).name == "ckpt-1"
    files = {f"{NAME}/{p.name}": p.read_bytes() for p in sorted((root / NAME).iterdir())}
    assert set(files) == {f"{NAME}/checkpoint", f"{NAME}/ckpt-1.index",
                          f"{NAME}/ckpt-1.data-00000-of-00001"}
    tarball = root / f"{NAME}.tar.gz"
    tarball.write_bytes(_tar_bytes(files))
    values = {w.name: w.numpy() for w in backbone.weights}
    assert len(values) == len(backbone.weights)
    return {"tarball": tarball, "folder": root / NAME, "prefix": prefix,
            "backbone": values, "bytes": tarball.read_bytes()}


@pytest.fixture
def server(loopback_server):
    return loopback_server


def _backbone_values(model):
    from vidaction.models import backbone_of

    return {w.name: w.numpy() for w in backbone_of(model).weights}


def test_auto_restores_every_backbone_variable_and_puts_a_new_head(official, server, tmp_path):
    from vidaction.models import create_model
    from vidaction.models import pretrained as pt

    server.routes["/w/movinet_a0_base.tar.gz"] = [("ok", official["bytes"])]
    url = server.url("/w/movinet_a0_base.tar.gz")
    model = create_model("movinet-a0", 5, frames=FRAMES, size=SIZE, pretrained="auto",
                         weights_url=url, cache_dir=tmp_path)
    got = _backbone_values(model)
    assert got.keys() == official["backbone"].keys() and len(got) > 100
    for name, value in got.items():
        np.testing.assert_array_equal(value, official["backbone"][name], err_msg=name)
    clip = np.zeros((1, FRAMES, SIZE, SIZE, 3), np.uint8)
    assert model(clip).shape == (1, 5)
    assert [w.shape[-1] for w in model.trainable_weights if "kernel" in w.name][-1] == 5
    assert server.hits == ["/w/movinet_a0_base.tar.gz"]
    # Cached: a second resolve neither downloads nor unpacks again.
    prefix = pt.fetch(url, tmp_path)
    assert Path(prefix + ".index").is_file() and Path(prefix).name == "ckpt-1"
    assert str(tmp_path / "weights") in prefix
    assert server.hits == ["/w/movinet_a0_base.tar.gz"]


def test_local_tarball_restores_the_same_weights(official):
    from vidaction.models import create_model

    model = create_model("movinet-a0", 2, frames=FRAMES, size=SIZE,
                         pretrained=str(official["tarball"]))
    got = _backbone_values(model)
    assert got.keys() == official["backbone"].keys()
    for name, value in got.items():
        np.testing.assert_array_equal(value, official["backbone"][name], err_msg=name)


def test_local_folder_and_prefix_resolve_to_the_checkpoint(official):
    from vidaction.models import pretrained as pt
    from vidaction.models.movinet import MovinetConfig

    cfg = MovinetConfig("a0", False)
    assert pt.resolve(str(official["folder"]), cfg) == official["prefix"]
    assert pt.resolve(official["prefix"], cfg) == official["prefix"]
    with pytest.raises(pt.WeightsError, match="no TensorFlow checkpoint"):
        pt.resolve(str(official["folder"].parent / "nothing-here"), cfg)


def test_truncated_file_in_cache_is_deleted_and_fetched_again(official, server, tmp_path):
    from vidaction.models import pretrained as pt

    server.routes["/movinet_a0_base.tar.gz"] = [("ok", official["bytes"])]
    url = server.url("/movinet_a0_base.tar.gz")
    cached = pt.cache_root(tmp_path) / pt._cache_name(url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(official["bytes"][: len(official["bytes"]) // 2])
    prefix = pt.fetch(url, tmp_path)
    assert Path(prefix + ".index").is_file()
    assert cached.read_bytes() == official["bytes"]
    assert len(server.hits) == 1


@pytest.mark.parametrize("mode", ["short", "cut"])
def test_truncated_download_is_detected_and_fetched_again(official, server, tmp_path, mode):
    from vidaction.models import pretrained as pt

    half = official["bytes"][: len(official["bytes"]) // 2]
    # short: a whole response of a cut file; cut: Content-Length promises more than comes.
    server.routes["/a.tar.gz"] = [(("ok" if mode == "short" else "cut"), half),
                                  ("ok", official["bytes"])]
    prefix = pt.fetch(server.url("/a.tar.gz"), tmp_path)
    assert Path(prefix + ".index").is_file()
    assert len(server.hits) == 2
    assert not list((tmp_path / "weights").glob("*.part-*"))


def test_stalled_download_prints_a_line_and_fetches_again(server, tmp_path, monkeypatch):
    from vidaction.models import pretrained as pt

    tarball = _tar_bytes({f"{NAME}/ckpt-1.index": b"i" * 5000,
                          f"{NAME}/ckpt-1.data-00000-of-00001": bytes(range(256)) * 400})
    server.routes["/s.tar.gz"] = [("stall", tarball), ("ok", tarball)]
    from vidaction.io import download as dl

    monkeypatch.setattr(dl, "TIMEOUT", 2.0)
    url = server.url("/s.tar.gz")
    with pytest.warns(UserWarning) as caught:
        prefix = pt.fetch(url, tmp_path)
    assert Path(prefix + ".index").is_file() and len(server.hits) == 2
    lines = [str(w.message) for w in caught]
    assert len(lines) == 1 and url in lines[0]
    assert "stalled, no data for 2 s" in lines[0] and "downloading again" in lines[0]
    assert not list((tmp_path / "weights").glob("*.part-*"))


def test_always_truncated_gives_up_with_one_line_and_leaves_no_file(official, server, tmp_path):
    from vidaction.models import pretrained as pt

    server.routes["/a.tar.gz"] = [("ok", official["bytes"][:1000])]
    with pytest.raises(pt.WeightsError) as e:
        pt.fetch(server.url("/a.tar.gz"), tmp_path)
    assert "\n" not in str(e.value) and "--pretrained PATH" in str(e.value)
    assert len(server.hits) == 2
    assert not [p for p in (tmp_path / "weights").iterdir() if p.is_file()]


@pytest.mark.parametrize("member", ["../evil.txt", "movinet_a0_base/../../evil.txt",
                                    "/tmp/vidaction-evil.txt"])
def test_tarball_escaping_the_cache_is_refused(server, tmp_path, member):
    from vidaction.models import create_model
    from vidaction.models.pretrained import WeightsError

    server.routes["/evil.tar.gz"] = [("ok", _tar_bytes({"movinet_a0_base/ckpt-1.index": b"x",
                                                        member: b"gotcha"}))]
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="refusing to unpack"):
        create_model("movinet-a0", 3, pretrained="auto", weights_url=server.url("/evil.tar.gz"),
                     cache_dir=cache)
    assert not (tmp_path / "evil.txt").exists() and not (cache / "evil.txt").exists()
    assert not Path("/tmp/vidaction-evil.txt").exists()
    assert not [p for p in (cache / "weights").iterdir() if p.is_dir()]


def test_symlink_member_is_refused(tmp_path):
    from vidaction.models.pretrained import WeightsError, safe_extract

    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("movinet_a0_base/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(WeightsError, match="refusing"):
        safe_extract(archive, tmp_path / "out")


def test_offline_with_empty_cache_is_one_line_naming_the_url(tmp_path):
    from vidaction.errors import VidactionError
    from vidaction.models import create_model

    url = "http://127.0.0.1:1/movinet_a0_stream.tar.gz"
    with pytest.raises(VidactionError) as e:
        create_model("movinet-a0-stream", 3, pretrained="auto", weights_url=url,
                     cache_dir=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and "--pretrained PATH" in msg


def test_default_url_and_cache_folder(monkeypatch, tmp_path):
    from vidaction.models import pretrained as pt
    from vidaction.models.movinet import MovinetConfig

    assert pt.official_url(MovinetConfig("a3", True)) == (
        "https://storage.googleapis.com/tf_model_garden/vision/movinet/movinet_a3_stream.tar.gz")
    monkeypatch.setenv("VIDACTION_CACHE", str(tmp_path))
    assert pt.cache_root() == tmp_path / "weights"
    monkeypatch.delenv("VIDACTION_CACHE")
    assert pt.cache_root() == Path.home() / ".cache" / "vidaction" / "weights"
    # A user URL never shares a cache file with the official one of the same name.
    official = pt._cache_name(pt.official_url(MovinetConfig("a0", False)))
    assert official == "movinet_a0_base.tar.gz"
    assert pt._cache_name("http://example.org/movinet_a0_base.tar.gz") != official


def test_restore_names_variables_missing_from_the_checkpoint(tmp_path):
    import tensorflow as tf
    import tf_keras

    from vidaction.models.pretrained import WeightsError, restore

    def net(widths):
        x = inp = tf_keras.Input((4,))
        for i, w in enumerate(widths):
            x = tf_keras.layers.Dense(w, name=f"d{i}")(x)
        return tf_keras.Model(inp, x, name="toy")

    small = net([3])
    prefix = tf.train.Checkpoint(model=small).save(str(tmp_path / "ckpt"))
    with pytest.raises(WeightsError, match=r"toy have no value in the checkpoint \(d1/"):
        restore(net([3, 2]), prefix)
    with pytest.raises(WeightsError, match="does not fit"):
        restore(net([5]), prefix)
    same = net([3])
    restore(same, prefix)
    np.testing.assert_array_equal(same.weights[0].numpy(), small.weights[0].numpy())
