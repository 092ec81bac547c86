"""Frozen-backbone feature cache: run the backbone once per (video, temporal sample).

With the backbone frozen and no augmentation, every epoch of the reference recomputes the
same backbone outputs: MoViNet's pooled clip features, or the per-frame ImageNet CNN features
(T, D) of cnn-rnn and frame-baseline (padding frames zero, masked by their heads). We compute
them once for K evenly spaced clips per video, store them on disk (keyed by file, sampling,
backbone weights and K), and train only the head, taking a different one of the K clips per
video each epoch, so the random-start effect of the reference survives.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import tf_keras

from vidaction.data.cache import FORMAT, CacheStore, file_identity
from vidaction.data.sampling import SamplingConfig
from vidaction.data.sources import Clip
from vidaction.progress import bar as progress_bar


def split_model(model) -> tuple | None:
    """(features model, head model) sharing the model's layers, or None when the model has
    no separate backbone (then there is nothing to cache)."""
    from official.projects.movinet.modeling import movinet_layers, movinet_model

    from vidaction.models.frame_cnn import split_frame_model

    names = {ly.name for ly in model.layers}
    if {"frame_cnn", "drop_padding", "head"} <= names:
        return split_frame_model(model)

    classifier = next((m for m in model.layers
                       if isinstance(m, movinet_model.MovinetClassifier)), None)
    if classifier is None:
        return None
    head = next(m for m in classifier.layers if isinstance(m, movinet_layers.ClassifierHead))
    clip = tf_keras.Input(model.input_shape[1:], dtype=model.inputs[0].dtype, name="clip")
    endpoints, _ = classifier.backbone(model.get_layer("to_unit_range")(clip))
    features = tf_keras.Model(clip, endpoints["head"], name="features")
    f_in = tf_keras.Input(endpoints["head"].shape[1:], name="features")
    return features, tf_keras.Model(f_in, head(f_in), name="head")


def weights_fingerprint(model) -> str:
    """Hash of the weights: cached features stay valid only for the same backbone."""
    h = hashlib.sha1()
    for w in model.weights:
        h.update(np.ascontiguousarray(w.numpy()).tobytes())
    return h.hexdigest()[:16]


class FeatureCache:
    """(K, ...) float32 features per video, one checked entry each (see CacheStore): a
    garbled, wrong-shaped or non-finite entry is recomputed, a full disk warns once."""

    def __init__(self, directory: str | os.PathLike, fingerprint: str, cfg: SamplingConfig,
                 samples: int):
        self.dir = Path(directory)
        self.tag = f"{FORMAT}|{fingerprint}|{sorted(cfg.as_dict().items())}|{samples}"
        self.samples = samples
        self.store = CacheStore(self.dir, "feature")
        self.computed = 0
        self.reused = 0

    def _file(self, path: Path) -> Path:
        key = hashlib.sha1(("|".join(map(str, file_identity(path))) + self.tag).encode())
        k = key.hexdigest()
        return self.dir / k[:2] / f"{k}.npy"

    def get(self, path: Path, shape: tuple[int | None, ...] | None = None) -> np.ndarray | None:
        """The features of `path` ((K, *shape) float32, all finite), or None."""
        try:
            f = self._file(path)
        except OSError:  # the video itself is gone: the pipeline reports it
            return None
        spec = None if shape is None else (self.samples, *shape)
        got = self.store.read(f, [(spec, np.float32)], finite=True)
        return None if got is None else got[0]

    def put(self, path: Path, feats: np.ndarray) -> bool:
        """Store; False (warned once) when the cache cannot be written."""
        return self.store.write(self._file(path), [np.asarray(feats, np.float32)])


def forward_fn(features_model):
    """The backbone as one tf.function for any batch size: MoViNet's autograph trace costs
    10-20 s, so the train and validation passes (and a short last batch) must share it."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, *features_model.input_shape[1:]], features_model.inputs[0].dtype)
    return tf.function(lambda x: features_model(x, training=False), input_signature=[spec])


def compute_features(features_model, clips: list[Clip], cfg: SamplingConfig, samples: int,
                     cache: FeatureCache, batch_size: int, clip_cache=None, skips=None,
                     progress: bool = True, forward=None) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, K, ...], ok [N]): K evenly spaced clips per video through the backbone,
    read from the cache where present. ok=False marks videos that could not be read (all
    False, features (N, 0), when none could).
    `forward`: forward_fn(features_model), to reuse one trace across calls."""
    import tensorflow as tf

    from vidaction.data.pipeline import make_dataset

    per_clip = tuple(features_model.output_shape[1:])
    out: list[np.ndarray | None] = [cache.get(c.path, per_clip) for c in clips]
    todo = [i for i, f in enumerate(out) if f is None]
    cache.reused += len(clips) - len(todo)
    if todo:
        ds = make_dataset([clips[i] for i in todo], cfg, training=False, batch_size=batch_size,
                          clips_per_video=samples, with_video_id=True, cache_dir=clip_cache,
                          skips=skips)
        parts: dict[int, dict[int, np.ndarray]] = {}
        bar = progress_bar(total=len(todo) * samples, desc="backbone features", unit="clip",
                           enabled=progress)
        run = forward or forward_fn(features_model)
        for x, _, vid in ds:
            f = run(tf.cast(x, run.input_signature[0].dtype)).numpy()
            for v, feat in zip(vid.numpy(), f, strict=True):
                parts.setdefault(int(v), {})[len(parts.get(int(v), {}))] = feat
            bar.update(len(f))
        bar.close()
        for j, i in enumerate(todo):
            got = parts.get(j)
            if got is None or len(got) != samples:
                continue  # unreadable video: skipped and counted by the pipeline
            feats = np.stack([got[k] for k in range(samples)]).astype(np.float32)
            if np.isfinite(feats).all():  # a non-finite entry would be refused on read
                cache.put(clips[i].path, feats)
            out[i] = feats
            cache.computed += 1
    ok = np.array([f is not None for f in out], bool)
    # no video read: (N, 0) and ok all False, for the caller to name the empty split
    shape = next((f.shape for f in out if f is not None), (0,))
    stacked = np.stack([f if f is not None else np.zeros(shape, np.float32) for f in out])
    return stacked, ok


def feature_dataset(feats: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                    training: bool, epochs: tuple[int, int] = (0, 1)):
    """Training: the epochs `epochs[0]`..`epochs[1] - 1` back to back, each shuffled, video v
    taking its cached clip (epoch + offset_v) mod K, so over K epochs every clip is used once
    (a random pick could repeat one and leave another, computed at a cost, unused). Fit it
    with steps_per_epoch = ceil(N / batch_size). Validation: the middle clip, one pass."""
    import tensorflow as tf

    k = feats.shape[1]
    if not training:
        ds = tf.data.Dataset.from_tensor_slices((feats[:, k // 2], labels.astype(np.int32)))
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    # Which videos, in which order, with which clip: drawn in numpy per (seed, epoch), so a
    # resumed run sees exactly what the uninterrupted one would have.
    n = len(feats)
    offsets = np.random.default_rng(seed).integers(0, k, n)
    order = np.array([np.random.default_rng([seed, e]).permutation(n) for e in range(*epochs)],
                     np.int64).reshape(-1, n)  # (epochs, n); none left: (0, n)
    clip = (np.arange(*epochs)[:, None] + offsets[order]) % k
    feats_t, labels_t = tf.constant(feats), tf.constant(labels.astype(np.int32))
    ds = tf.data.Dataset.from_tensor_slices((order, clip))  # one element per epoch
    ds = ds.flat_map(lambda v, c: tf.data.Dataset.from_tensor_slices((v, c)).batch(batch_size))
    ds = ds.map(lambda v, c: (tf.gather_nd(feats_t, tf.stack([v, c], 1)),
                              tf.gather(labels_t, v)))
    return ds.prefetch(tf.data.AUTOTUNE)
