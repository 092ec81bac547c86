"""The reference's (2+1)D ResNet, trained from scratch (SPEC.md, Models 2).

Every 3-D convolution is factored into a spatial (1 x k x k) and a temporal (k x 1 x 1)
one; residual blocks of two such convolutions with layer normalisation and ReLU, a dense
projection (with layer normalisation) on the skip path when the width changes, widths
16-128, frames halved in size between blocks, global average pooling and a dense head.
Built only from stock Keras layers, so a saved model loads with no custom objects. The
tutorial's einops resize becomes a 1x2x2 average pooling: the same halving, and it keeps
the model serialisable.
"""

from __future__ import annotations

import vidaction  # noqa: F401  (tf-keras before TensorFlow)

WIDTHS = (16, 32, 64, 128)


def _conv2plus1d(x, filters: int, kernel: tuple[int, int, int], name: str):
    t, h, w = kernel
    x = _keras().layers.Conv3D(filters, (1, h, w), padding="same", name=f"{name}_spatial")(x)
    return _keras().layers.Conv3D(filters, (t, 1, 1), padding="same", name=f"{name}_temporal")(x)


def _keras():
    import tf_keras

    return tf_keras


def _residual_block(x, filters: int, kernel: tuple[int, int, int], name: str):
    layers = _keras().layers
    skip = x
    y = _conv2plus1d(x, filters, kernel, f"{name}_a")
    y = layers.LayerNormalization(name=f"{name}_ln_a")(y)
    y = layers.ReLU(name=f"{name}_relu")(y)
    y = _conv2plus1d(y, filters, kernel, f"{name}_b")
    y = layers.LayerNormalization(name=f"{name}_ln_b")(y)
    if skip.shape[-1] != filters:
        skip = layers.Dense(filters, name=f"{name}_project")(skip)
        skip = layers.LayerNormalization(name=f"{name}_project_ln")(skip)
    return layers.Add(name=f"{name}_add")([skip, y])


def build_r2plus1d(num_classes: int, frames: int = 10, size: int = 224,
                   dropout_rate: float = 0.0):
    """Input: (batch, frames, size, size, 3) RGB 0..255, uint8 or float; output: logits."""
    keras = _keras()
    layers = keras.layers
    if size < 16:
        raise ValueError(f"r2plus1d needs frames of at least 16x16, got {size}")
    clip = keras.Input((frames, size, size, 3), name="clip")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit_range")(clip)
    x = _conv2plus1d(x, WIDTHS[0], (3, 7, 7), "stem")
    # A short memory (Keras defaults to 0.99): the inference statistics of the one batch-norm
    # layer settle within the few hundred steps a small from-scratch run has.
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, width in enumerate(WIDTHS):
        x = layers.AveragePooling3D((1, 2, 2), padding="same", name=f"halve_{i}")(x)
        x = _residual_block(x, width, (3, 3, 3), f"block{i}")
    x = layers.GlobalAveragePooling3D(name="pool")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(clip, logits, name="r2plus1d")


def r2plus1d_factory(num_classes: int, frames: int, size: int, pretrained: str,
                     weights_url: str | None, cache_dir, freeze_backbone: bool,
                     dropout_rate: float):
    from vidaction.errors import UserError

    if pretrained != "none":
        raise UserError("r2plus1d trains from scratch: no pretrained weights exist for it "
                        "(use --pretrained none)")
    return build_r2plus1d(num_classes, frames, size, dropout_rate)
