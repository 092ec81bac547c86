"""The clip model as a TensorFlow SavedModel, for TF Serving or any TensorFlow program.

Saved from a `tf.Module` that holds only the variables and one traced function, not through
Keras serialization: the official MoViNet layers do not survive Keras's SavedModel format
(SPEC.md), and tracing every layer's call for it takes minutes.

    OUT/                 saved_model.pb, variables/ (signature "serving_default":
                         clip float32 (batch, frames, size, size, 3), pixels 0..255
                         -> logits, probabilities)
    OUT/labels.txt       class names in id order
    OUT/vidaction.json   the run's config and what the export is
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vidaction.export import check_out, export_config
from vidaction.io.writer import atomic_folder, is_write_failure, write_atomic, write_error


def export_savedmodel(run, out: str | os.PathLike, force: bool = False) -> Path:
    import tensorflow as tf

    out = Path(out)
    check_out([out], force)
    model = run.model
    m = run.config["model"]
    frames, size = int(m["frames"]), int(m["size"])

    @tf.function(input_signature=[tf.TensorSpec([None, frames, size, size, 3], tf.float32,
                                                name="clip")])
    def serve(clip):
        logits = tf.cast(model(clip, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    module = tf.Module()
    module.weights = list(model.variables)
    module.serve = serve
    with atomic_folder(out) as tmp:
        try:
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": serve})
        except Exception as e:
            if not is_write_failure(e):
                raise
            raise write_error(e, out) from None
        write_atomic(tmp / "labels.txt", "".join(f"{c}\n" for c in run.classes))
        config = export_config(run, "savedmodel", "none", signature="serving_default")
        write_atomic(tmp / "vidaction.json", json.dumps(config, indent=2, sort_keys=True)
                     + "\n")
    return out
