"""A `.tflite` used like a run, on the LiteRT interpreter: exported runs and official models.

It lives below train/, evaluate/, infer/ and export/ because all of them open one: export
writes the file, infer and evaluate run it, exactly as they run a trained Keras run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from vidaction.errors import VidactionError
from vidaction.tflogs import quiet_native_stderr


def labels_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".labels.txt")


def config_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")




def open_interpreter(path: Path, threads: int | None):
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet_native_stderr():
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
        self.interpreter, self.inputs, self.outputs = open_interpreter(self.path, threads)
        self.stream = "image" in self.inputs
        n_out = self.interpreter.get_tensor(self.outputs["logits"]).shape[-1]
        if len(self.classes) != n_out:
            raise VidactionError(f"{labels}: {len(self.classes)} labels for a model with "
                                 f"{n_out} outputs")

    def streamer(self) -> TFLiteStreamer | None:
        """A fresh interpreter with its own state (streamers never share buffers)."""
        from vidaction.models.pose_run import PoseStreamer, is_pose_config, pose_settings

        if is_pose_config(self.config):  # skeleton export: the pose runs per frame
            return PoseStreamer(self.predict_logits, pose_settings(self.config))
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
    """One frame per `step`; the state outputs are copied back into the state inputs.

    `input_scale` multiplies the uint8 frame before it is fed: 1 for our own exports (they
    take 0..255), 1/255 for models that take floats in [0, 1] (the official MoViNet files).
    """

    def __init__(self, path: Path, threads: int | None = None, input_scale: float = 1.0):
        self.input_scale = float(input_scale)
        self.interpreter, inputs, outputs = open_interpreter(path, threads)
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
        x = frame[None, None]
        if self.input_scale != 1.0:
            x = x.astype(np.float32) * np.float32(self.input_scale)
        it.set_tensor(self._image, x.astype(self._dtype, copy=False))
        it.invoke()
        logits = it.get_tensor(self._logits)[0].copy()
        # 2.7 MB of state for a0 at 172 px: copied once, output view into input view
        # (get_tensor + set_tensor copy it twice; bench/inference.py times both). The views
        # die here, before the next invoke, as the interpreter requires.
        for i, o, _ in self._pairs:
            np.copyto(it.tensor(i)(), it.tensor(o)())
        return logits
