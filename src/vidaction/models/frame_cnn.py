"""Per-frame ImageNet CNNs (Keras applications) for the cnn-rnn and frame-baseline models.

A frame model is one Keras model in two parts, so that a frozen CNN can run once per video and
its output be cached (vidaction.train.features):

    clip (B, T, S, S, 3), 0..255  ->  layer "drop_padding": (B, T, D)  ->  model "head"  ->  logits

The first part scales the pixels the way the application was trained, runs the CNN (global
average pooled, named "frame_cnn") on every frame and zeroes the features of padding frames.
The sampler pads clips shorter than --frames with all-black frames, so padding is read off
the pixels: every model keeps one input (the clip), and the head masks the zero rows
(Masking(0.0)).

ImageNet weights are the Keras application `*_notop.h5` files, fetched into the same cache as
the MoViNet checkpoints with the same download code (size check, re-fetch of a damaged file,
one-line offline message), or read from a local file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import vidaction  # noqa: F401  (tf-keras before TensorFlow)
from vidaction.errors import UserError
from vidaction.io.download import download
from vidaction.models import pretrained as pt

KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class FrameBackbone:
    application: str  # the tf_keras.applications constructor
    dim: int  # pooled feature size
    min_size: int  # smallest frame side the application accepts
    scale: tuple[float, float] | None  # Rescaling(scale, offset) to its input range; None: built in
    url: str  # the notop ImageNet weights Keras publishes
    md5: str | None  # the hash Keras checks them with (None where Keras publishes none)


BACKBONES = {
    "inceptionv3": FrameBackbone(
        "InceptionV3", 2048, 75, (1 / 127.5, -1.0),
        KERAS_APPS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63"),
    "mobilenetv2": FrameBackbone(
        "MobileNetV2", 1280, 32, (1 / 127.5, -1.0),
        KERAS_APPS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224"
                     "_no_top.h5",
        None),
    "efficientnetb0": FrameBackbone(
        "EfficientNetB0", 1280, 32, None,
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
        "50bc09e76180e00e4465e1a485ddc09d"),
}

# EfficientNet's ImageNet file stores the RGB standard deviation where Keras's Normalization
# layer expects the variance (tensorflow/tensorflow#49930); Keras patches that with an extra
# multiply that only exists when built with weights="imagenet". We build one architecture
# whatever the weights and square the variance instead, so a saved model reloads the same.
_EFFICIENTNET_STD = (0.229, 0.224, 0.225)


def backbone_spec(name: str, size: int) -> FrameBackbone:
    if name not in BACKBONES:
        raise UserError(f"unknown --frame-backbone {name!r}; choose from {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    if size < spec.min_size:
        raise UserError(f"--frame-backbone {name} needs frames of at least "
                        f"{spec.min_size}x{spec.min_size}, got --size {size}")
    return spec


def _cache_name(url: str) -> str:
    name = Path(url.split("?", 1)[0]).name or "weights.h5"
    if not any(url == b.url for b in BACKBONES.values()):
        # A user URL may reuse an official file name for other weights: keep them apart.
        name = hashlib.sha256(url.encode()).hexdigest()[:10] + "-" + name
    return name


def _verify_h5(path: Path, md5: str | None) -> None:
    """The published hash where known, then a full read of every array: a truncated or
    damaged HDF5 file fails here rather than half-way through loading."""
    import h5py

    if md5:
        h = hashlib.md5()  # noqa: S324 - the hash Keras publishes for these files
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(pt.CHUNK), b""):
                h.update(block)
        if h.hexdigest() != md5:
            raise pt._Corrupt(f"{path}: md5 {h.hexdigest()} is not the published {md5}")
    try:
        with h5py.File(path, "r") as f:
            arrays = []
            f.visititems(lambda _, obj: arrays.append(obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise pt._Corrupt(f"{path}: not a readable HDF5 weights file ({e})") from e
    if not arrays:
        raise pt._Corrupt(f"{path}: HDF5 file holds no weights")


def fetch_weights(url: str, cache_dir: str | Path | None = None,
                  md5: str | None = None) -> Path:
    """Download `url` once into the weights cache and verify it; a damaged copy (in the cache
    or just downloaded) is deleted and fetched again once."""
    path = pt.cache_root(cache_dir) / _cache_name(url)
    for attempt in (1, 2):
        try:
            if not path.is_file():
                download(url, path, remedy="--pretrained PATH")
            _verify_h5(path, md5)
            return path
        except pt._Corrupt as e:
            path.unlink(missing_ok=True)
            if attempt == 2:
                raise pt.WeightsError(f"{e}; download it elsewhere and pass the file with "
                                      "--pretrained PATH") from None
    raise AssertionError("unreachable")


def _load_imagenet(net, name: str, path: Path) -> None:
    try:
        net.load_weights(str(path))
    except (ValueError, OSError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise pt.WeightsError(f"{path}: not {name} notop weights ({first[:200]})") from None
    if name == "efficientnetb0":
        import numpy as np

        norm = next(ly for ly in net.layers if ly.__class__.__name__ == "Normalization")
        if np.allclose(norm.adapt_variance.numpy().ravel(), _EFFICIENTNET_STD, atol=1e-4):
            norm.adapt_variance.assign(norm.adapt_variance ** 2)
            norm.finalize_state()  # the layer computes with tensors derived from the variable


def build_frame_cnn(name: str, size: int, pretrained: str = "none",
                    weights_url: str | None = None, cache_dir=None):
    """The pooled application (size x size x 3 -> D), random or with ImageNet weights."""
    import tf_keras

    spec = backbone_spec(name, size)
    path = None
    if pretrained == "auto":  # fetch before the build, so a bad URL fails at once
        url = weights_url or spec.url
        path = fetch_weights(url, cache_dir, spec.md5 if url == spec.url else None)
    elif pretrained != "none":
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise UserError(f"--pretrained: {path} is not a weights file (.h5) for {name}")
    net = getattr(tf_keras.applications, spec.application)(
        include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    net._name = "frame_cnn"
    if path is not None:
        _load_imagenet(net, name, path)
    return net


def build_frame_model(backbone: str, frames: int, size: int, pretrained: str,
                      weights_url: str | None, cache_dir, trainable: bool, build_head,
                      name: str):
    """clip (B, T, S, S, 3) 0..255 -> per-frame features (B, T, D), zero for padding frames
    (the output of layer "drop_padding") -> `build_head(dim)` (a model named "head")."""
    import tensorflow as tf
    import tf_keras

    layers = tf_keras.layers
    spec = backbone_spec(backbone, size)
    net = build_frame_cnn(backbone, size, pretrained, weights_url, cache_dir)
    net.trainable = trainable
    if trainable and pretrained == "none":
        # From scratch: the applications' batch norm remembers 0.99-0.999 of its statistics
        # per step, far too long for a short run; its inference statistics would lag behind.
        for layer in net.layers:
            if isinstance(layer, tf_keras.layers.BatchNormalization):
                layer.momentum = 0.9
    clip = tf_keras.Input((frames, size, size, 3), name="clip")
    x = clip
    if spec.scale is not None:
        x = layers.Rescaling(spec.scale[0], offset=spec.scale[1], name="to_cnn_range")(x)
    # Frames folded into the batch (TimeDistributed would also run the whole CNN graph again
    # to work out a mask, which costs more than the build). Frozen: training=False always,
    # so batch norm keeps its ImageNet statistics, EfficientNet's stochastic depth stays off,
    # and cached features equal what the model computes.
    x = tf.reshape(x, (-1, size, size, 3))
    f = net(x, training=None if trainable else False)
    f = tf.reshape(f, (-1, frames, f.shape[-1]))
    real = tf.cast(tf.reduce_max(clip, axis=[2, 3, 4]) > 0, f.dtype)
    f = layers.Multiply(name="drop_padding")([f, layers.Reshape((frames, 1))(real)])
    head = build_head(int(f.shape[-1]))
    return tf_keras.Model(clip, head(f), name=name)


def split_frame_model(model):
    """(features model, head model) sharing the model's layers: what the feature cache runs
    once per video, and what then trains on the cached features."""
    import tf_keras

    features = tf_keras.Model(model.inputs[0], model.get_layer("drop_padding").output,
                              name="features")
    return features, model.get_layer("head")


def frame_cnn_of(model):
    """The per-frame application inside a cnn-rnn / frame-baseline model."""
    return model.get_layer("frame_cnn")
