"""ImageNet weights of the frame CNNs: a Keras application .h5 served from 127.0.0.1, cached,
verified, re-fetched when damaged, or read from a local file."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

SIZE = 32


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A randomly initialised MobileNetV2 notop saved the way Keras publishes its weights."""
    import tf_keras

    tf_keras.utils.set_random_seed(7)
    net = tf_keras.applications.MobileNetV2(include_top=False, weights=None,
                                            input_shape=(SIZE, SIZE, 3), pooling="avg")
    path = tmp_path_factory.mktemp("h5") / "mobilenet_v2_notop.h5"
    net.save_weights(str(path))
    return {"path": path, "bytes": path.read_bytes(), "values": [w.numpy() for w in net.weights]}


@pytest.fixture
def server():
    routes: dict[str, list[bytes]] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            queue = routes.get(self.path)
            if not queue:
                self.send_error(404)
                return
            body = queue.pop(0) if len(queue) > 1 else queue[0]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield routes, hits, base
    httpd.shutdown()
    httpd.server_close()


def _assert_weights(net, values):
    assert len(net.weights) == len(values) > 100
    for w, v in zip(net.weights, values, strict=True):
        np.testing.assert_array_equal(w.numpy(), v, err_msg=w.name)


def test_auto_downloads_into_the_cache_once_and_loads_every_weight(served, server, tmp_path):
    from vidaction.models import create_model
    from vidaction.models.frame_cnn import fetch_weights, frame_cnn_of

    routes, hits, base = server
    routes["/w/mobilenet_v2_notop.h5"] = [served["bytes"]]
    url = base + "/w/mobilenet_v2_notop.h5"
    model = create_model("cnn-rnn", 4, frames=2, size=SIZE, frame_backbone="mobilenetv2",
                         pretrained="auto", weights_url=url, cache_dir=tmp_path)
    _assert_weights(frame_cnn_of(model), served["values"])
    assert model(np.zeros((1, 2, SIZE, SIZE, 3), np.uint8)).shape == (1, 4)
    assert hits == ["/w/mobilenet_v2_notop.h5"]
    cached = fetch_weights(url, tmp_path)  # second time: from the cache, no request
    assert cached.parent == tmp_path / "weights" and cached.read_bytes() == served["bytes"]
    assert hits == ["/w/mobilenet_v2_notop.h5"]


def test_damaged_cached_file_is_fetched_again(served, server, tmp_path):
    from vidaction.models.frame_cnn import _cache_name, fetch_weights

    routes, hits, base = server
    routes["/a.h5"] = [served["bytes"]]
    cached = tmp_path / "weights" / _cache_name(base + "/a.h5")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(served["bytes"][: len(served["bytes"]) // 2])
    assert fetch_weights(base + "/a.h5", tmp_path) == cached
    assert cached.read_bytes() == served["bytes"] and len(hits) == 1


def test_always_bad_download_gives_up_with_one_line_and_no_file(served, server, tmp_path):
    from vidaction.models.frame_cnn import fetch_weights
    from vidaction.models.pretrained import WeightsError

    routes, hits, base = server
    routes["/short.h5"] = [served["bytes"][:5000]]
    routes["/good.h5"] = [served["bytes"]]
    for path, md5 in (("/short.h5", None), ("/good.h5", "0" * 32)):  # truncated; wrong hash
        with pytest.raises(WeightsError) as e:
            fetch_weights(base + path, tmp_path, md5=md5)
        assert "\n" not in str(e.value) and "--pretrained PATH" in str(e.value)
    assert hits == ["/short.h5"] * 2 + ["/good.h5"] * 2
    assert not [p for p in (tmp_path / "weights").iterdir()]


def test_offline_is_one_line_naming_the_url(tmp_path):
    from vidaction.errors import VidactionError
    from vidaction.models import create_model

    url = "http://127.0.0.1:1/inception_v3_notop.h5"
    with pytest.raises(VidactionError) as e:
        create_model("cnn-rnn", 3, pretrained="auto", weights_url=url, cache_dir=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and "--pretrained PATH" in msg


def test_official_urls_and_cache_names():
    from vidaction.models.frame_cnn import BACKBONES, _cache_name

    urls = {k: b.url for k, b in BACKBONES.items()}
    assert urls["inceptionv3"].endswith(
        "keras-applications/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert _cache_name(urls["efficientnetb0"]) == "efficientnetb0_notop.h5"
    # a user URL never shares a cache file with the official one of the same name
    assert _cache_name("http://example.org/efficientnetb0_notop.h5") != "efficientnetb0_notop.h5"


def test_local_file_loads_and_a_wrong_file_is_refused(served, tmp_path):
    import tf_keras

    from vidaction.errors import UserError
    from vidaction.models.frame_cnn import build_frame_cnn
    from vidaction.models.pretrained import WeightsError

    _assert_weights(build_frame_cnn("mobilenetv2", SIZE, str(served["path"])), served["values"])
    other = tmp_path / "other.h5"
    x = tf_keras.Input((4,))
    tf_keras.Model(x, tf_keras.layers.Dense(2)(x)).save_weights(str(other))
    with pytest.raises(WeightsError, match="not mobilenetv2 notop weights"):
        build_frame_cnn("mobilenetv2", SIZE, str(other))
    with pytest.raises(UserError, match="not a weights file"):
        build_frame_cnn("mobilenetv2", SIZE, str(tmp_path))


def test_efficientnet_imagenet_normalisation_is_fixed_in_the_weights(tmp_path):
    """Keras's EfficientNet file keeps the std where the variance belongs; loading squares it,
    so the one architecture we build (and reload) normalises by the std, as Keras's own
    weights="imagenet" build does with an extra multiply."""
    import tf_keras

    from vidaction.models.frame_cnn import _load_imagenet

    net = tf_keras.applications.EfficientNetB0(include_top=False, weights=None,
                                               input_shape=(SIZE, SIZE, 3), pooling="avg")
    norm = next(ly for ly in net.layers if type(ly).__name__ == "Normalization")
    std = np.array([0.229, 0.224, 0.225], np.float32)
    norm.adapt_mean.assign(np.array([0.485, 0.456, 0.406], np.float32))
    norm.adapt_variance.assign(std)
    net.save_weights(str(tmp_path / "eff.h5"))
    _load_imagenet(net, "efficientnetb0", tmp_path / "eff.h5")
    np.testing.assert_allclose(norm.adapt_variance.numpy(), std ** 2, rtol=1e-6)
    x = np.ones((1, 1, 1, 3), np.float32)  # (x - mean) / std: the ImageNet normalisation
    np.testing.assert_allclose(norm(x).numpy().ravel(),
                               (1 - np.array([0.485, 0.456, 0.406])) / std, rtol=1e-5)
