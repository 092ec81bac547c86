"""The reference's CNN-RNN (SPEC.md, Models 3): ImageNet CNN features of each frame, then
GRU(16, sequences) -> GRU(8) -> dropout 0.4 -> dense 8 relu -> logits, padding frames masked.

The CNN is frozen (the reference precomputes its features); with --train-backbone it trains
too. Its features are cached per video by vidaction.train.features, so training the GRUs
costs almost nothing after the first pass.
"""

from __future__ import annotations

import vidaction  # noqa: F401  (tf-keras before TensorFlow)
from vidaction.models import frame_cnn

DEFAULT_BACKBONE = "inceptionv3"


def build_head(num_classes: int, frames: int, dim: int, dropout_rate: float = 0.4):
    """(B, T, D) features, zero rows for padding -> logits."""
    import tf_keras

    layers = tf_keras.layers
    f = tf_keras.Input((frames, dim), name="features")
    x = layers.Masking(0.0, name="mask_padding")(f)
    # RNN(GRUCell) is the GRU layer's maths (reset_after) without its cuDNN-or-not function
    # selection, which costs seconds per build on a CPU.
    x = layers.RNN(layers.GRUCell(16), return_sequences=True, name="gru16")(x)
    x = layers.RNN(layers.GRUCell(8), name="gru8")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Dense(8, activation="relu", name="dense8")(x)
    return tf_keras.Model(f, layers.Dense(num_classes, name="logits")(x), name="head")


def cnn_rnn_factory(num_classes: int, frames: int, size: int, pretrained: str,
                    weights_url: str | None, cache_dir, freeze_backbone: bool,
                    dropout_rate: float, frame_backbone: str | None = None):
    return frame_cnn.build_frame_model(
        frame_backbone or DEFAULT_BACKBONE, frames, size, pretrained, weights_url, cache_dir,
        not freeze_backbone, lambda dim: build_head(num_classes, frames, dim,
                                                    dropout_rate or 0.4), "cnn_rnn")
