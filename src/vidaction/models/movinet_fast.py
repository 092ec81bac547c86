"""MoViNet base models without 3-D convolutions: the same layers, the same variables, 2-D ops.

The official base models run every convolution as a grouped `Conv3D` compiled with XLA,
about 3 s per 8x224x224 clip on 2 CPU cores, and TensorFlow Lite cannot convert them. Each
of those convolutions has an exact 2-D form:

- a depthwise k_t x k_h x k_w convolution is the sum over its k_t temporal taps of depthwise
  2-D convolutions of time-shifted frames (zero frames padded in front and behind for
  'same', in front only for 'causal');
- a full convolution (the 1x3x3 stem) likewise, with regular 2-D convolutions;
- a 1x1x1 (pointwise) convolution is a matrix product over the channels;
- the 1x3x3 average pooling on the skip path is a 2-D pooling of each frame.

`set_conv_impl(model, "fast")` switches the official layers of a built model to these forms by
changing their class to a subclass that only overrides `call`: the layers keep their
kernels, names and checkpoint keys, so official checkpoints restore unchanged and the
results agree with the reference to float rounding.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras
from official.vision.modeling.layers import nn_layers

from vidaction.models.factory import CONV_IMPLS


def _fold(x: tf.Tensor) -> tf.Tensor:
    """(B, T, H, W, C) -> (B*T, H, W, C): frames become images."""
    s = tf.shape(x)
    return tf.reshape(x, [s[0] * s[1], s[2], s[3], x.shape[-1]])


def _unfold(y: tf.Tensor, batch, frames) -> tf.Tensor:
    s = tf.shape(y)
    return tf.reshape(y, [batch, frames, s[1], s[2], y.shape[-1]])


@tf_keras.utils.register_keras_serializable(package="vidaction")
class FastConv3D(nn_layers.Conv3D):
    """The official (causal-capable, grouped) Conv3D computed with 2-D ops."""

    def _fast_supported(self) -> bool:
        cin = self.kernel.shape[-2] * self.groups
        return (self.strides[0] == 1 and tuple(self.dilation_rate) == (1, 1, 1)
                and self.padding in ("same", "causal", "valid")
                and self.data_format == "channels_last"
                and (self.groups == 1 or self.groups == cin == self.filters))

    def call(self, inputs):
        if not self._fast_supported():
            return super().call(inputs)
        kt, kh, kw = self.kernel_size
        kernel = self.kernel
        x = inputs
        if (kt, kh, kw) == (1, 1, 1) and self.groups == 1:
            # Pointwise: a matrix product over channels (strided frames sampled first).
            if tuple(self.strides[1:]) != (1, 1):
                x = x[:, :, ::self.strides[1], ::self.strides[2]]
            shape = tf.shape(x)
            y = tf.matmul(tf.reshape(x, [-1, kernel.shape[-2]]),
                          tf.reshape(kernel, kernel.shape[-2:]))
            y = tf.reshape(y, [shape[0], shape[1], shape[2], shape[3], self.filters])
        else:
            batch, frames = tf.shape(x)[0], tf.shape(x)[1]
            if kt > 1 and self.padding != "valid":
                if self.padding == "causal":
                    front = 0 if self._use_buffered_input else kt - 1
                    back = 0
                else:  # same, temporal stride 1
                    front, back = (kt - 1) // 2, kt - 1 - (kt - 1) // 2
                if front or back:
                    x = tf.pad(x, [[0, 0], [front, back], [0, 0], [0, 0], [0, 0]])
            out_frames = tf.shape(x)[1] - (kt - 1)
            pad2d = "VALID" if self.padding == "valid" else "SAME"
            strides = [1, self.strides[1], self.strides[2], 1]
            taps = []
            for i in range(kt):
                xi = _fold(x[:, i:i + out_frames] if kt > 1 else x)
                if self.groups == 1:
                    taps.append(tf.nn.conv2d(xi, kernel[i], strides, pad2d))
                else:  # depthwise: (kh, kw, 1, C) -> (kh, kw, C, 1)
                    dw = tf.transpose(kernel[i], [0, 1, 3, 2])
                    taps.append(tf.nn.depthwise_conv2d(xi, dw, strides, pad2d))
            y = taps[0] if kt == 1 else tf.add_n(taps)
            y = _unfold(y, batch, out_frames if kt > 1 else frames)
            static_t = inputs.shape[1]
            if static_t is not None and self.padding != "valid" and not (
                    self.padding == "causal" and self._use_buffered_input):
                y.set_shape([None, static_t, None, None, self.filters])
        if self.use_bias:
            y = y + self.bias
        if self.activation is not None:
            y = self.activation(y)
        return y


@tf_keras.utils.register_keras_serializable(package="vidaction")
class FastAveragePooling3D(tf_keras.layers.AveragePooling3D):
    """A 1 x k x k average pooling (MoViNet's skip path) as a 2-D pooling of each frame."""

    def call(self, inputs):
        if (self.pool_size[0], self.strides[0]) != (1, 1) or \
                self.data_format != "channels_last":
            return super().call(inputs)
        batch, frames = tf.shape(inputs)[0], tf.shape(inputs)[1]
        y = tf.nn.avg_pool2d(_fold(inputs), self.pool_size[1:], self.strides[1:],
                             self.padding.upper())
        return _unfold(y, batch, frames)


_FAST = {nn_layers.Conv3D: FastConv3D, tf_keras.layers.AveragePooling3D: FastAveragePooling3D}
_REFERENCE = {fast: ref for ref, fast in _FAST.items()}


def set_conv_impl(model, conv_impl: str) -> int:
    """Run the official Conv3D / AveragePooling3D layers inside the built `model` as 2-D ops
    ("fast") or as the official 3-D ops ("reference"), in place; returns how many layers
    changed. Only the class of each layer changes: variables, names and checkpoint keys stay."""
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {conv_impl!r}")
    swap = _FAST if conv_impl == "fast" else _REFERENCE
    changed = 0
    for layer in model.submodules:
        cls = swap.get(type(layer))
        if cls is not None:
            layer.__class__ = cls
            changed += 1
    return changed


def conv_impl_of(model) -> str:
    """'reference' while an official Conv3D is left in `model`, else 'fast'."""
    return "reference" if any(type(m) is nn_layers.Conv3D for m in model.submodules) \
        else "fast"
