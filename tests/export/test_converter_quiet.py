"""The TFLite converter's own lines ("Ignored output_format", "MLIR V1 optimization pass is
not enabled") stay off the terminal, like TensorFlow's other logs, unless asked for."""

import os
import subprocess
import sys

CODE = """
import vidaction
import tensorflow as tf
from vidaction.export.tflite import _convert
v = tf.Variable([2.0])
@tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
def f(x):
    return {"y": x * v}
flat = _convert(f.get_concrete_function(), [v], "none")
print(len(flat) > 0)
"""


def _convert_stderr(**env) -> str:
    base = {k: v for k, v in os.environ.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "VIDACTION_TF_LOGS")}
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                       timeout=300, env={**base, **env})
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr[-2000:]
    return r.stderr


def test_converter_lines_are_silenced_unless_asked():
    assert _convert_stderr() == ""
    loud = _convert_stderr(VIDACTION_TF_LOGS="1")
    assert "output_format" in loud or "MLIR" in loud, loud[-2000:]
