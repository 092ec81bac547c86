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
import shutil
from pathlib import Path

from vidaction.export import check_out, export_config, replace_tree


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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": serve})
        (tmp / "labels.txt").write_text("".join(f"{c}\n" for c in run.classes))
        config = export_config(run, "savedmodel", "none", signature="serving_default")
        (tmp / "vidaction.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        replace_tree(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
