"""RGB-difference network: a fast from-scratch baseline that sees motion and its order.

The differences of consecutive frames (TSN's "RGB diff" modality) cancel a static
background, so the few clips a from-scratch run has are spent on the moving body. They are
stacked along the channel axis in time order, with the middle frame for appearance, and a
small 2-D CNN (batch norm with a short memory, so inference statistics settle within a few
epochs of a small dataset) reads the stack. Order survives the stacking, so a movement and
its reverse (sit down / stand up) are told apart. Built from stock Keras layers only.
"""

from __future__ import annotations

import vidaction  # noqa: F401  (tf-keras before TensorFlow)

WIDTHS = (32, 64, 96)


def build_rgb_diff(num_classes: int, frames: int = 8, size: int = 48,
                   dropout_rate: float = 0.3):
    """Input (batch, frames, size, size, 3) RGB 0..255; output logits."""
    import tf_keras

    layers = tf_keras.layers
    if frames < 2:
        raise ValueError(f"rgb-diff needs at least 2 frames, got {frames}")
    if size < 16:
        raise ValueError(f"rgb-diff needs frames of at least 16x16, got {size}")
    clip = tf_keras.Input((frames, size, size, 3), name="clip")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit_range")(clip)
    later = layers.Cropping3D(((1, 0), (0, 0), (0, 0)), name="later")(x)
    earlier = layers.Cropping3D(((0, 1), (0, 0), (0, 0)), name="earlier")(x)
    diff = layers.Subtract(name="motion")([later, earlier])  # (T-1, S, S, 3)
    diff = layers.Permute((2, 3, 1, 4), name="time_last")(diff)
    diff = layers.Reshape((size, size, (frames - 1) * 3), name="stack")(diff)
    mid = frames // 2
    middle = layers.Cropping3D(((mid, frames - mid - 1), (0, 0), (0, 0)), name="middle")(x)
    middle = layers.Reshape((size, size, 3), name="appearance")(middle)
    y = layers.Concatenate(name="motion_and_appearance")([diff, middle])
    for i, width in enumerate(WIDTHS):
        for j in range(2):
            y = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{i}_{j}")(y)
            y = layers.BatchNormalization(momentum=0.8, name=f"bn{i}_{j}")(y)
            y = layers.ReLU(name=f"relu{i}_{j}")(y)
        y = layers.MaxPooling2D(name=f"pool{i}")(y)
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    if dropout_rate:
        y = layers.Dropout(dropout_rate, name="dropout")(y)
    logits = layers.Dense(num_classes, name="logits")(y)
    return tf_keras.Model(clip, logits, name="rgb_diff")


def rgb_diff_factory(num_classes: int, frames: int, size: int, pretrained: str,
                     weights_url: str | None, cache_dir, freeze_backbone: bool,
                     dropout_rate: float):
    from vidaction.errors import UserError

    if pretrained != "none":
        raise UserError("rgb-diff trains from scratch: no pretrained weights exist for it "
                        "(use --pretrained none)")
    return build_rgb_diff(num_classes, frames, size, dropout_rate or 0.3)
