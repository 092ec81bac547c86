"""TFLite export (float, dynamic-range or int8) and a runner on the LiteRT interpreter.

Clip models (MoViNet base, r2plus1d) export their whole-clip function, batch 1:
    clip float32 (1, frames, size, size, 3), pixels 0..255 -> logits (1, classes)
Stream MoViNets export the frame-by-frame function of the official stream mode, the state
buffers as extra inputs and outputs (official movinet export_saved_model.py, num_frames=1):
    image uint8 (1, 1, size, size, 3), state_* -> logits (1, classes), state_*
Beside PATH go PATH.labels.txt (class names in id order) and PATH.json (the run's config and
what the export is); `vidaction.models.litert.TFLiteRun(PATH)` reads all three and runs
clips or single frames.

int8 calibrates activations on clips of the run's own training split (as TFLite's
post-training quantization asks) and keeps float inputs and outputs; ops without an int8
kernel stay float, and so do the hard-swish stream MoViNets' hard-swish and pooling ops
(KEEP_FLOAT_HARD_SWISH: faster than all-int8 and than float); movinet-a0-relu6-stream
quantizes whole, like the official int8 file. The stream models' pooled states are running
sums: calibrated on short clips, they saturate over long streams, so stream an int8 model
with --reset-every.
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from vidaction.errors import VidactionError
from vidaction.export import ExportError, check_out, export_config
from vidaction.io.writer import write_together
from vidaction.models.litert import config_path, labels_path, quiet_native_stderr
from vidaction.tflogs import tf_logs_wanted

# --------------------------------------------------------------------------- export


def representative_clips(run, count: int = 24, data: str | os.PathLike | None = None,
                         progress: bool = False) -> np.ndarray:
    """Up to `count` clips of the run's training split, taken round-robin over classes
    (unreadable files skipped), as uint8 (n, frames, size, size, 3)."""
    from vidaction.data.sampling import SamplingConfig, sample_clips
    from vidaction.data.sources import load_dataset
    from vidaction.models.run import run_data
    from vidaction.progress import bar as progress_bar

    train = run.config.get("train", {})
    # also found beside a run moved with its data (run_data)
    root = data or run_data(run.path, run.config) or train.get("data") \
        or run.config.get("dataset", {}).get("root")
    if not root or not Path(root).is_dir():
        raise ExportError(f"int8 calibration needs the run's training clips, but its dataset "
                          f"{root or '(none recorded)'} is not there; pass --data DIR or use "
                          "--quantize dynamic")
    ds = load_dataset(root, train.get("val_fraction", 0.2), train.get("test_fraction", 0.2),
                      train.get("seed", 0), write_classes_file=False)
    clips = ds.split("train") or ds.clips
    by_class: dict[int, list] = {}
    for c in clips:
        by_class.setdefault(c.label, []).append(c)
    order = [c for group in _round_robin(list(by_class.values())) for c in group]
    sampling = SamplingConfig(**run.config["sampling"])
    out = []
    with progress_bar(total=min(count, len(order)), desc="calibration clips",
                      enabled=progress) as bar:
        for clip in order:
            if len(out) >= count:
                break
            try:
                got, _ = sample_clips(clip.path, sampling, clips=1)
            except VidactionError:
                continue
            out.append(got[0])
            bar.update(1)
    if not out:
        raise ExportError(f"{root}: no readable training clip for int8 calibration")
    return np.stack(out)


def _round_robin(groups: list[list]) -> list[list]:
    rows = []
    for i in range(max((len(g) for g in groups), default=0)):
        rows.append([g[i] for g in groups if i < len(g)])
    return rows


# int8 of the hard-swish MoViNets: these ops stay float (selective quantization). Their int8
# forms split the graph into ~90 XNNPack partitions (hard-swish, and the squeeze-excitation's
# causal running mean: sum, frame-count division, gate), making int8 slower than float;
# with them in float the convolutions stay int8 and it runs faster than float
# (bench/inference.py). The ReLU6 / no-SE variant quantizes whole, as the official file.
KEEP_FLOAT_HARD_SWISH = ("HARD_SWISH", "MEAN", "SUM", "DIV", "LOGISTIC")


def int8_float_ops(config: dict) -> tuple[str, ...]:
    """The TFLite ops an int8 export of this run keeps in float (none: all int8)."""
    from vidaction.models.movinet import config_for

    try:
        cfg = config_for(str(config.get("model", {}).get("name", "")))
    except ValueError:
        return ()
    return KEEP_FLOAT_HARD_SWISH if cfg.stream and not cfg.relu6 else ()


def _convert(fn, variables: list, quantize: str, representative=None,
             keep_float: tuple[str, ...] = ()) -> bytes:
    import tensorflow as tf

    holder = tf.Module()  # a plain holder: a Keras model here would be Keras-serialized (slow)
    holder.weights = variables
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], holder)
    if quantize in ("dynamic", "int8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                          tf.lite.OpsSet.TFLITE_BUILTINS]
    # The MLIR converter writes "Ignored output_format", "MLIR V1 optimization pass is not
    # enabled" and the like straight to fd 2, past TF_CPP_MIN_LOG_LEVEL; its errors come
    # back as the exception below, so the fd is hidden unless TensorFlow's lines are wanted.
    quiet = nullcontext() if tf_logs_wanted() else quiet_native_stderr()
    try:
        with warnings.catch_warnings(), quiet:  # int8 calibration: tf.lite's own (deprecated)
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            if quantize == "int8" and keep_float:
                # The documented route to selective quantization: calibrate, then quantize
                # all but the denylisted ops.
                debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=conv, debug_dataset=representative,
                    debug_options=tf.lite.experimental.QuantizationDebugOptions(
                        denylisted_ops=list(keep_float)))
                return debugger.get_nondebug_quantized_model()
            return conv.convert()
    except Exception as e:  # the converter raises many types, with pages of MLIR dumps
        lines = [ln.strip() for ln in str(e).splitlines() if "error:" in ln]
        why = lines[0].split("error:", 1)[1].strip() if lines else str(e).splitlines()[0]
        raise ExportError(f"TFLite conversion failed: {why}") from None


def export_tflite(run, out: str | os.PathLike, quantize: str = "none", force: bool = False,
                  data: str | os.PathLike | None = None, progress: bool = True,
                  calibration_clips: int = 24) -> Path:
    """Write OUT (.tflite), OUT.labels.txt and OUT.json; see the module docstring."""
    import tensorflow as tf

    from vidaction.models.stream import is_stream_config, stream_model

    out = Path(out)
    check_out([out, labels_path(out), config_path(out)], force)
    m = run.config["model"]
    frames, size = int(m["frames"]), int(m["size"])
    from vidaction.models.pose_run import is_pose_config

    pose = is_pose_config(run.config)
    if pose and quantize == "int8":  # its calibration would need keypoints, not clips
        raise ExportError(f"{m['name']}: --quantize int8 would calibrate on keypoints, "
                          "not clips; skeleton models export with --quantize none or dynamic")
    clips = representative_clips(run, calibration_clips, data, progress) \
        if quantize == "int8" else None
    if is_stream_config(run.config):
        sm = stream_model(run.model, m["name"], size)
        fn = sm.step_fn
        variables = list(sm.classifier.variables)
        names = sm.state_names

        def representative():
            # Real states: each calibration frame comes with the buffers that the frames
            # before it left, as in use.
            for clip in clips:
                states = sm.init_states()
                for frame in clip:
                    yield {"image": frame[None, None],
                           **{n: s.numpy() for n, s in zip(names, states, strict=True)}}
                    out = sm.step_fn(frame[None, None], *states)
                    states = [out[n] for n in names]

        extra = {"stream": True, "state_names": names,
                 "signature": "image uint8 (1,1,S,S,3) + state_* -> logits + state_*"}
    elif pose:  # keypoint windows in (named clip, so TFLiteRun feeds it as any clip model)
        model = run.model

        @tf.function(input_signature=[tf.TensorSpec([1, frames, 17, 3], tf.float32,
                                                    name="clip")])
        def serve_pose(clip):
            return {"logits": tf.cast(model(clip, training=False), tf.float32)}

        fn = serve_pose.get_concrete_function()
        variables = list(model.variables)
        representative = None
        extra = {"stream": False, "input": "pose keypoints: x, y (source pixels), score",
                 "signature": "clip float32 (1,T,17,3) keypoints -> logits"}
    else:
        model = run.model

        @tf.function(input_signature=[tf.TensorSpec([1, frames, size, size, 3], tf.float32,
                                                    name="clip")])
        def serve(clip):
            return {"logits": tf.cast(model(clip, training=False), tf.float32)}

        fn = serve.get_concrete_function()
        variables = list(model.variables)

        def representative():
            for clip in clips:
                yield {"clip": clip[None].astype(np.float32)}

        extra = {"stream": False, "signature": "clip float32 (1,T,S,S,3) -> logits"}
    keep_float = int8_float_ops(run.config) if quantize == "int8" else ()
    if clips is not None:
        extra["calibration_clips"] = int(len(clips))
        extra["int8_float_ops"] = list(keep_float)
    flat = _convert(fn, variables, quantize, representative if clips is not None else None,
                    keep_float)
    config = export_config(run, "tflite", quantize, **extra)
    # All three are written before any is renamed. An old .tflite (--force) goes first, so
    # it is never beside the new labels; then the config, so that whatever a kill between
    # the renames leaves is recognised as a leftover (check_out); the .tflite last, so a
    # .tflite that exists has its labels and config.
    write_together([(config_path(out), json.dumps(config, indent=2, sort_keys=True) + "\n"),
                    (labels_path(out), "".join(f"{c}\n" for c in run.classes)),
                    (out, flat)], unlink_first=[out])
    return out
