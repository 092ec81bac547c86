"""A run folder: everything needed to rebuild, resume and use a trained model.

    RUN/config.json     the TrainConfig, plus the resolved frames/size/classes
    RUN/classes.txt     class names in id order
    RUN/history.json    per-epoch metrics (train and validation), files skipped
    RUN/log.csv         the same numbers, one row per epoch
    RUN/tensorboard/    TensorBoard event files
    RUN/checkpoints/    last/ (model + optimizer + epoch, for --resume), best/ (weights)
    RUN/model/          the final model (best validation weights): model.json + weights
    RUN/eval/           what `vidaction evaluate` writes (eval/<split>/)
    RUN/.vidaction.lock the one-writer lock (see vidaction.models.runlock)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from vidaction.errors import VidactionError
from vidaction.io.writer import write_atomic


class RunError(VidactionError):
    """A run folder that is missing, incomplete or in the way."""


def write_json(path: Path, data) -> None:
    """Atomically: a reader (or a crash) never sees half a file."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except ValueError as e:
        raise RunError(f"{path}: not valid JSON ({e})") from None


@dataclass
class Run:
    """A trained run, loaded back: the model, its classes and how it was made."""

    path: Path
    model: object
    classes: list[str]
    config: dict

    def predict_logits(self, clips):
        """Logits for a batch of uint8 clips (batch, frames, size, size, 3)."""
        return self.model(clips, training=False).numpy()

    def streamer(self):
        """Frame-by-frame inference with the causal state carried between calls, for
        `*-stream` MoViNets; None for models that only take whole clips."""
        from vidaction.models.stream import run_streamer

        return run_streamer(self)


def load_run(path: str | os.PathLike) -> Run:
    """The model saved at the end of training, with its classes and config."""
    from vidaction.models import load_model

    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run folder")
    if not (path / "model").is_dir():
        raise RunError(f"{path}: no saved model (training did not finish; try --resume)")
    config = read_json(path / "config.json")
    classes = run_classes(path, config)
    return Run(path, load_model(path / "model"), classes, config)


def run_classes(path: Path, config: dict) -> list[str]:
    """The run's class names in id order. config.json decides (it records what the model
    was trained on); a classes.txt edited by hand to disagree is refused, never obeyed."""
    txt = Path(path) / "classes.txt"
    classes = config.get("classes")
    if classes is None:  # configs older than the classes key: classes.txt is all there is
        return [c for c in txt.read_text().splitlines() if c]
    n = (config.get("model") or {}).get("num_classes")
    if n is not None and n != len(classes):
        raise RunError(f"{Path(path) / 'config.json'}: lists {len(classes)} classes but its "
                       f"model has {n} outputs")
    try:
        listed = [c.strip() for c in txt.read_text().splitlines() if c.strip()]
    except OSError as e:
        raise RunError(f"{txt}: cannot be read ({e.strerror or e})") from None
    if listed != classes:
        shown = ", ".join(classes) if len(classes) <= 12 else ", ".join(classes[:12]) + ", ..."
        raise RunError(f"{txt}: disagrees with the {len(classes)} classes in config.json, "
                       f"which the model was trained on and which decide; put back, in "
                       f"this order: {shown}")
    return classes
