"""Skeleton models: a window of keypoints (frames, 17, (x, y, score)) -> action logits.

Why statistics: trained on rendered figures, a model that reads the trajectory frame by
frame (a conv or GRU over time) learns the cartoon's exact rhythm and posture and sends
real people elsewhere; what transfers is what the window holds regardless of its frame
order: each joint's mean, spread, extremes and speed, relative to the body. So:

- `BodyFrame` normalises inside the model (a saved or exported model takes raw keypoints in
  source pixels): each frame's joints relative to its hip centre, all divided by one torso
  length for the whole window (its 75th percentile: the torso shortens in a squat and when
  the person leans, so a per-frame scale would erase exactly the movement), plus the hip
  centre's own path about its window mean.
- `WindowStats` pools each coordinate over time: mean, std, min, max, mean absolute speed,
  and one coarse order cue (mean of the last third minus the first third), without which a
  movement and its reverse (sit_down / stand_up) would be the same window.
- pose-stats: those statistics -> MLP. pose-tcn: a small temporal conv whose outputs are
  pooled the same way (mean, max) beside them; it can fit local rhythm the statistics miss,
  and the cartoon's quirks with it (bench/pose.py measures both).

Scores are used only to ignore frames without a torso when the scale is taken; the
cartoon's scores differ from real people's, so they are not features.
"""

from __future__ import annotations

import vidaction  # noqa: F401  (tf-keras before TensorFlow)

N_JOINTS = 17
HIPS, SHOULDERS = (11, 12), (5, 6)
MIN_TORSO_SCORE = 0.2


def _layers():
    import tensorflow as tf
    import tf_keras

    class BodyFrame(tf_keras.layers.Layer):
        """(B, T, 17, 3) pixels -> (B, T, 36): 17 joints' (x, y) about the hips and the hip
        path about its mean, in torso lengths (one per window)."""

        def call(self, x):
            xy, score = x[..., :2], x[..., 2]
            hip = tf.reduce_mean(tf.gather(xy, HIPS, axis=2), axis=2, keepdims=True)
            sh = tf.reduce_mean(tf.gather(xy, SHOULDERS, axis=2), axis=2, keepdims=True)
            torso = tf.norm(sh - hip + 1e-9, axis=-1)[:, :, 0]  # (B, T)
            seen = tf.reduce_min(tf.gather(score, HIPS + SHOULDERS, axis=2), axis=2)
            seen = tf.cast(seen >= MIN_TORSO_SCORE, x.dtype)
            # frames without a torso count as the window's median torso, not as zero
            med = _percentile(torso, 0.5)
            torso = seen * torso + (1 - seen) * med[:, None]
            scale = tf.maximum(_percentile(torso, 0.75), 1e-3)[:, None, None, None]
            joints = (xy - hip) / scale
            path = (hip - tf.reduce_mean(hip, axis=1, keepdims=True)) / scale
            t = tf.shape(x)[1]
            return tf.concat([tf.reshape(joints, (-1, t, N_JOINTS * 2)),
                              tf.reshape(path, (-1, t, 2))], axis=-1)

    class WindowStats(tf_keras.layers.Layer):
        """(B, T, C) -> (B, 6C): mean, std, min, max, mean |speed|, last third - first."""

        def call(self, v):
            mean = tf.reduce_mean(v, axis=1)
            std = tf.sqrt(tf.reduce_mean(tf.square(v - mean[:, None]), axis=1) + 1e-6)
            speed = tf.reduce_mean(tf.abs(v[:, 1:] - v[:, :-1]), axis=1)
            third = max(1, v.shape[1] // 3)
            trend = tf.reduce_mean(v[:, -third:], axis=1) - tf.reduce_mean(v[:, :third], axis=1)
            return tf.concat([mean, std, tf.reduce_min(v, axis=1), tf.reduce_max(v, axis=1),
                              speed, trend], axis=-1)

    def _percentile(v, q: float):
        """q-quantile over axis 1 of (B, T), by sorting (T is static and small)."""
        n = v.shape[1]
        k = int(round(q * (n - 1)))
        return tf.sort(v, axis=1)[:, k]

    return BodyFrame, WindowStats


def build_pose_model(num_classes: int, frames: int = 24, kind: str = "stats",
                     dropout_rate: float = 0.3, width: int = 128):
    """Input (batch, frames, 17, 3) keypoints (x, y in pixels, score); output logits."""
    import tf_keras

    if frames < 3:
        raise ValueError(f"skeleton models need at least 3 frames, got {frames}")
    layers = tf_keras.layers
    BodyFrame, WindowStats = _layers()
    kp = tf_keras.Input((frames, N_JOINTS, 3), name="keypoints")
    body = BodyFrame(name="body_frame")(kp)
    feats = [WindowStats(name="window_stats")(body)]
    if kind == "tcn":
        y = body
        for i, d in enumerate((1, 2)):
            y = layers.Conv1D(64, 5, dilation_rate=d, padding="same", name=f"tconv{i}")(y)
            y = layers.ReLU(name=f"trelu{i}")(y)
        feats += [layers.GlobalAveragePooling1D(name="tcn_mean")(y),
                  layers.GlobalMaxPooling1D(name="tcn_max")(y)]
    x = layers.Concatenate(name="features")(feats) if len(feats) > 1 else feats[0]
    x = layers.BatchNormalization(name="feature_norm")(x)
    x = layers.Dense(width, activation="relu", name="dense")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return tf_keras.Model(kp, logits, name=f"pose_{kind}")


def pose_factory(kind: str):
    def factory(num_classes: int, frames: int, size: int, pretrained: str,
                weights_url: str | None, cache_dir, freeze_backbone: bool,
                dropout_rate: float):
        from vidaction.errors import UserError

        if pretrained != "none":
            raise UserError(f"pose-{kind} trains from scratch on keypoints: no pretrained "
                            "weights exist for it (use --pretrained none)")
        return build_pose_model(num_classes, frames, kind, dropout_rate or 0.3)

    return factory
