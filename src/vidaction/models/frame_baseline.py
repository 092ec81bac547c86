"""The reference's frame baseline (SPEC.md, Models 4): a frozen ImageNet CNN on every frame
(the reference's TimeDistributed; here the frames are folded into the batch, the same
computation), one dense layer, and the average over time and space.

The reference applies Dense(classes) to the CNN's spatial map and then averages over
(time, height, width); a dense layer commutes with averaging, so pooling each frame's map
first (what the cached features hold) gives the same logits for a fraction of the memory.
Padding frames are left out of the time average. It sees the frames as a bag: no order,
which is what makes it a baseline for the direction pairs (sit_down / stand_up, ...).
"""

from __future__ import annotations

import vidaction  # noqa: F401  (tf-keras before TensorFlow)
from vidaction.models import frame_cnn

DEFAULT_BACKBONE = "efficientnetb0"
PATIENCE = 2  # the reference's early stopping


def build_head(num_classes: int, frames: int, dim: int, dropout_rate: float = 0.0):
    """(B, T, D) features, zero rows for padding -> logits averaged over the real frames."""
    import tf_keras

    layers = tf_keras.layers
    f = tf_keras.Input((frames, dim), name="features")
    x = layers.Masking(0.0, name="mask_padding")(f)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Dense(num_classes, name="per_frame_logits")(x)
    logits = layers.GlobalAveragePooling1D(name="average_over_time")(x)
    return tf_keras.Model(f, logits, name="head")


def frame_baseline_factory(num_classes: int, frames: int, size: int, pretrained: str,
                           weights_url: str | None, cache_dir, freeze_backbone: bool,
                           dropout_rate: float, frame_backbone: str | None = None):
    return frame_cnn.build_frame_model(
        frame_backbone or DEFAULT_BACKBONE, frames, size, pretrained, weights_url, cache_dir,
        not freeze_backbone, lambda dim: build_head(num_classes, frames, dim, dropout_rate),
        "frame_baseline")
