"""TFLite export (float, dynamic-range or int8) and a runner on the LiteRT interpreter.

Clip models (MoViNet base, r2plus1d) export their whole-clip function, batch 1:
    clip float32 (1, frames, size, size, 3), pixels 0..255 -> logits (1, classes)
Stream MoViNets export the frame-by-frame function of the official stream mode, the state
buffers as extra inputs and outputs (official movinet export_saved_model.py, num_frames=1):
    image uint8 (1, 1, size, size, 3), state_* -> logits (1, classes), state_*
Beside PATH go PATH.labels.txt (class names in id order) and PATH.json (the run's config and
what the export is); `TFLiteRun(PATH)` reads all three and runs clips or single frames.

int8 calibrates activations on clips of the run's own training split (as TFLite's
post-training quantization asks) and keeps float inputs and outputs; ops without an int8
kernel stay float. The stream models' pooled states are running sums: calibrated on short
clips, they saturate over long streams, so stream an int8 model with --reset-every.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vidaction.errors import VidactionError
from vidaction.export import ExportError, check_out, export_config
from vidaction.io.writer import write_together


def labels_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".labels.txt")


def config_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


# --------------------------------------------------------------------------- export


def representative_clips(run, count: int = 24, data: str | os.PathLike | None = None,
                         progress: bool = False) -> np.ndarray:
    """Up to `count` clips of the run's training split, taken round-robin over classes
    (unreadable files skipped), as uint8 (n, frames, size, size, 3)."""
    from tqdm import tqdm

    from vidaction.data.sampling import SamplingConfig, sample_clips
    from vidaction.data.sources import load_dataset

    train = run.config.get("train", {})
    root = data or train.get("data") or run.config.get("dataset", {}).get("root")
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
    with tqdm(total=min(count, len(order)), desc="calibration clips", disable=not progress,
              file=sys.stderr, leave=False) as bar:
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


def _convert(fn, variables: list, quantize: str, representative=None) -> bytes:
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
    try:
        with warnings.catch_warnings():  # int8 calibration uses tf.lite's own (deprecated)
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
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

    from vidaction.infer.stream import is_stream_config, stream_model

    out = Path(out)
    check_out([out, labels_path(out), config_path(out)], force)
    m = run.config["model"]
    frames, size = int(m["frames"]), int(m["size"])
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
    if clips is not None:
        extra["calibration_clips"] = int(len(clips))
    flat = _convert(fn, variables, quantize, representative if clips is not None else None)
    config = export_config(run, "tflite", quantize, **extra)
    # All three are written before any is renamed. An old .tflite (--force) goes first, so
    # it is never beside the new labels; then the config, so that whatever a kill between
    # the renames leaves is recognised as a leftover (check_out); the .tflite last, so a
    # .tflite that exists has its labels and config.
    write_together([(config_path(out), json.dumps(config, indent=2, sort_keys=True) + "\n"),
                    (labels_path(out), "".join(f"{c}\n" for c in run.classes)),
                    (out, flat)], unlink_first=[out])
    return out


# --------------------------------------------------------------------------- running


@contextmanager
def _quiet_native_stderr():
    """LiteRT's C++ logger prints "INFO: Created TensorFlow Lite XNNPACK delegate" on every
    interpreter; keep it off the CLI's stderr (errors still arrive as Python exceptions)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (captured, closed): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _interpreter(path: Path, threads: int | None):
    from ai_edge_litert.interpreter import Interpreter

    try:
        with _quiet_native_stderr():
            it = Interpreter(model_path=str(path),
                             num_threads=threads or min(4, os.cpu_count() or 1))
            runner = it.get_signature_runner()
            inputs = {k: v["index"] for k, v in runner.get_input_details().items()}
            outputs = {k: v["index"] for k, v in runner.get_output_details().items()}
            del runner  # it holds views of the tensors; allocate_tensors refuses meanwhile
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise VidactionError(f"{path}: not a TFLite model ({str(e).splitlines()[0]})") from None
    return it, inputs, outputs


class TFLiteRun:
    """An exported .tflite used like a run: `.classes`, `.config`, `.predict_logits(clips)`,
    `.streamer()` (frame by frame for stream exports, None for clip exports)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise VidactionError(f"{self.path}: no such file")
        cfg = config_path(self.path)
        try:
            self.config = json.loads(cfg.read_text())
        except FileNotFoundError:
            raise VidactionError(f"{cfg}: missing (an exported .tflite keeps its config and "
                                 "labels beside it; re-export with `vidaction export`)") from None
        except ValueError as e:
            raise VidactionError(f"{cfg}: not valid JSON ({e})") from None
        labels = labels_path(self.path)
        if labels.is_file():
            self.classes = [c for c in labels.read_text().splitlines() if c]
        else:
            self.classes = list(self.config.get("classes", []))
        self.threads = threads
        self.interpreter, self.inputs, self.outputs = _interpreter(self.path, threads)
        self.stream = "image" in self.inputs
        n_out = self.interpreter.get_tensor(self.outputs["logits"]).shape[-1]
        if len(self.classes) != n_out:
            raise VidactionError(f"{labels}: {len(self.classes)} labels for a model with "
                                 f"{n_out} outputs")

    def streamer(self) -> TFLiteStreamer | None:
        """A fresh interpreter with its own state (streamers never share buffers)."""
        return TFLiteStreamer(self.path, self.threads) if self.stream else None

    def predict_logits(self, clips: np.ndarray) -> np.ndarray:
        """Logits (batch, classes) for uint8 clips (batch, frames, size, size, 3)."""
        clips = np.asarray(clips)
        out = []
        if self.stream:
            s = TFLiteStreamer(self.path, self.threads)
            for clip in clips:
                s.reset()
                for frame in clip:
                    logits = s.step(frame)
                out.append(logits)
            return np.stack(out)
        details = {d["index"]: d for d in self.interpreter.get_input_details()}[
            self.inputs["clip"]]
        want, self._dtype = tuple(details["shape"][1:]), details["dtype"]
        it = self.interpreter
        for clip in clips:
            if clip.shape != want:
                raise ValueError(f"{self.path} takes clips of shape {want}, got {clip.shape}")
            it.set_tensor(self.inputs["clip"], clip[None].astype(self._dtype))
            it.invoke()
            out.append(it.get_tensor(self.outputs["logits"])[0].copy())
        return np.stack(out)


class TFLiteStreamer:
    """One frame per `step`; the state outputs are copied back into the state inputs."""

    def __init__(self, path: Path, threads: int | None = None):
        self.interpreter, inputs, outputs = _interpreter(path, threads)
        self._image = inputs["image"]
        self._logits = outputs["logits"]
        details = {d["index"]: d for d in self.interpreter.get_input_details()}
        self.size = int(details[self._image]["shape"][2])
        self._dtype = details[self._image]["dtype"]  # uint8 (float32 in older exports)
        self._pairs = [(inputs[n], outputs[n],
                        np.zeros(details[inputs[n]]["shape"], details[inputs[n]]["dtype"]))
                       for n in sorted(inputs) if n != "image"]
        self.reset()

    def reset(self) -> None:
        for i, _, zeros in self._pairs:
            self.interpreter.set_tensor(i, zeros)

    def step(self, frame: np.ndarray) -> np.ndarray:
        s = self.size
        frame = np.asarray(frame)
        if frame.shape != (s, s, 3):
            raise ValueError(f"stream frames must be ({s}, {s}, 3) uint8, got {frame.shape}")
        it = self.interpreter
        it.set_tensor(self._image, frame[None, None].astype(self._dtype, copy=False))
        it.invoke()
        logits = it.get_tensor(self._logits)[0].copy()
        # 2.7 MB of state for a0 at 172 px: copied once, output view into input view
        # (get_tensor + set_tensor copy it twice; bench/inference.py times both). The views
        # die here, before the next invoke, as the interpreter requires.
        for i, o, _ in self._pairs:
            np.copyto(it.tensor(i)(), it.tensor(o)())
        return logits
