"""The stream-mode twin of a `*-stream` MoViNet run: one frame per call, state carried.

A `*-stream` run's model takes whole clips. The official MoViNet code builds the same network
in stream mode too (`use_external_states=True`, `output_states=True`): each call takes one
frame plus the buffers of the causal temporal convolutions and the running sums of the
pooling layers, and returns the logits for everything seen since the last reset together with
the new buffers. The run's trained weights are copied into that network, so after T frames
the logits equal the clip model's on those T frames. Below infer/ and export/: `stream` runs
it, `export` writes its step function to TFLite.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidaction.errors import UserError


def is_stream_config(config: dict) -> bool:
    """Whether a run (or export) config describes a causal stream MoViNet."""
    return str(config.get("model", {}).get("name", "")).endswith("-stream")


@dataclass
class StreamModel:
    """The stream-mode classifier with the run's weights and a fixed-shape step function."""

    classifier: object  # official MovinetClassifier, external states, output_states=True
    size: int
    state_specs: dict  # name -> tf.TensorSpec, batch 1, one frame
    # (image uint8 [1,1,S,S,3], *states in state_names order) -> {"logits", state_*}; one
    # concrete function serves the Keras streamer and the TFLite export (which keeps the
    # names of its inputs and outputs as the signature's).
    step_fn: Callable = field(repr=False)

    @property
    def state_names(self) -> list[str]:
        return sorted(self.state_specs)

    def init_states(self) -> list:
        import tensorflow as tf

        return [tf.zeros(self.state_specs[n].shape, self.state_specs[n].dtype)
                for n in self.state_names]


_BUILT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def movinet_classifier_of(model):
    """The official MovinetClassifier inside a `create_model` MoViNet."""
    from official.projects.movinet.modeling import movinet_model

    for layer in model.layers:
        if isinstance(layer, movinet_model.MovinetClassifier):
            return layer
    raise UserError(f"{model.name} holds no MoViNet classifier")


def stream_model(model, name: str, size: int) -> StreamModel:
    """The stream-mode twin of a `*-stream` clip model, built once per model (15-30 s)."""
    if model in _BUILT:
        return _BUILT[model]
    import tensorflow as tf
    import tf_keras
    from official.projects.movinet.modeling import movinet, movinet_model

    from vidaction.models import movinet as mv

    if not name.startswith("movinet-") or not name.endswith("-stream"):
        raise UserError(f"{name} is not a stream model; streaming needs a movinet-*-stream run")
    cfg = mv.config_for(name)  # movinet-a0-relu6-stream: the ReLU6, no-SE variant
    source = movinet_classifier_of(model)
    backbone = movinet.Movinet(**cfg.backbone_kwargs, use_external_states=True)
    spec = tf_keras.layers.InputSpec(shape=[1, 1, size, size, 3])
    classifier = movinet_model.MovinetClassifier(
        backbone, num_classes=source._num_classes, input_specs={"image": spec},
        activation=cfg.classifier_activation, output_states=True)
    # Copy through the checkpoint object graph: variable order differs between a frozen
    # backbone and a fresh one, the object paths do not.
    with tempfile.TemporaryDirectory(prefix="vidaction-stream-") as tmp:
        prefix = tf.train.Checkpoint(model=source).write(str(Path(tmp) / "weights"))
        status = tf.train.Checkpoint(model=classifier).read(prefix)
        status.assert_existing_objects_matched()
    specs = {n: tf.TensorSpec(s.shape, s.dtype, name=n)
             for n, s in classifier.initial_state_specs([1, 1, size, size, 3]).items()}
    names = sorted(specs)

    def step(image, *states):
        logits, new = classifier(
            {**dict(zip(names, states, strict=True)),
             "image": tf.cast(image, tf.float32) / 255.0}, training=False)
        return {"logits": logits, **new}

    # Flat positional arguments: a concrete function called with 40-odd tensors in a dict
    # spends more Python time per frame than the arithmetic on small inputs.
    fn = tf.function(step).get_concrete_function(
        tf.TensorSpec([1, 1, size, size, 3], tf.uint8, name="image"),
        *[specs[n] for n in names])
    built = StreamModel(classifier, size, specs, fn)
    _BUILT[model] = built
    return built


class KerasStreamer:
    """Feeds frames one at a time; `step` returns the logits for all frames since `reset`."""

    def __init__(self, model: StreamModel):
        self.model = model
        self._names = model.state_names
        self.reset()

    def reset(self) -> None:
        self._states = self.model.init_states()

    def step(self, frame: np.ndarray) -> np.ndarray:
        s = self.model.size
        frame = np.asarray(frame)
        if frame.shape != (s, s, 3):
            raise ValueError(f"stream frames must be ({s}, {s}, 3) uint8, got {frame.shape}")
        out = self.model.step_fn(np.asarray(frame, np.uint8)[None, None], *self._states)
        self._states = [out[n] for n in self._names]
        return out["logits"].numpy()[0]


def run_streamer(run) -> KerasStreamer | None:
    """`Run.streamer()`: a streamer for `*-stream` MoViNet runs, None for clip-only models."""
    from vidaction.models.pose_run import (
        PoseStreamer,
        is_pose_config,
        keras_logits,
        pose_settings,
    )

    if is_pose_config(run.config):  # skeleton runs: the pose per frame, the last window
        return PoseStreamer(keras_logits(run.model), pose_settings(run.config))
    if not is_stream_config(run.config):
        return None
    m = run.config["model"]
    return KerasStreamer(stream_model(run.model, m["name"], int(m["size"])))


