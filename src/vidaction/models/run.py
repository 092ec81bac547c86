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
from collections.abc import Iterable
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
    check_run_folder(path)
    if not (path / "model").is_dir():
        raise RunError(f"{path}: no saved model (training did not finish; try --resume)")
    config = read_json(path / "config.json")
    classes = run_classes(path, config)
    return Run(path, load_model(path / "model"), classes, config)


def check_run_folder(path: str | os.PathLike, names: Iterable[str] = ()) -> None:
    """A folder with a config.json, else one line saying what it is instead: a folder
    holding runs (`demo-output` holds its run in demo-output/run) names them. `names`:
    what the command also takes in place of a run (predict's `kinetics600`); a bare name
    that is no folder but near one of them (kinetic600, Kinetics600) is told that one."""
    path = Path(path)
    if not path.is_dir():
        hint = ""
        if len(path.parts) == 1:  # a bare name (runs/x is a path: no name to suggest)
            from vidaction.names import did_you_mean

            hint = did_you_mean(str(path), names)
        raise RunError(f"{path}: no such run folder{hint}")
    if (path / "config.json").is_file():
        return
    runs = _runs_inside(path)
    if runs:
        where = ", ".join(str(r) for r in runs[:3]) + (" ..." if len(runs) > 3 else "")
        what = "a run" if len(runs) == 1 else "runs"
        raise RunError(f"{path} is not a run folder; it holds {what} at {where}")
    if (path / "classes.txt").is_file() or (path / "train").is_dir() \
            or (path / "train.csv").is_file():
        raise RunError(f"{path} is a dataset folder, not a run; pass the folder `vidaction "
                       "train --out` wrote")
    raise RunError(f"{path} is not a run folder (no config.json); pass the folder `vidaction "
                   "train --out` wrote")


def _runs_inside(path: Path, depth: int = 2) -> list[Path]:
    """Run folders (config.json and model/) at most `depth` levels below `path`."""
    found: list[Path] = []
    level = [path]
    for _ in range(depth):
        below = []
        for d in level:
            try:
                subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            for p in subs:
                if (p / "config.json").is_file() and (p / "model").is_dir():
                    found.append(p)
                else:
                    below.append(p)
        level = below[:200]  # a huge tree is not searched: this is only a hint
    return found


def run_data(path: str | os.PathLike, config: dict) -> Path | None:
    """The dataset folder a run trained on, wherever the command runs from: where it lay
    relative to the run when it trained, if that is there (run and data moved or copied
    together: `mv demo-output demo-old` then a new demo must not lend demo-old/run the new
    demo's data), else the absolute path recorded (the run moved alone), else (older
    runs: a path relative to where train ran) as it reads from here."""
    train = config.get("train") or {}
    rel = train.get("data_from_run")
    if rel:
        beside = Path(os.path.normpath(Path(path).absolute() / rel))
        if beside.is_dir():
            return beside
    recorded = train.get("data") or (config.get("dataset") or {}).get("root")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    return None


def data_from_run(run: str | os.PathLike, data: str | os.PathLike) -> str:
    """`data` relative to the run folder, what run_data looks for once both have moved."""
    return os.path.relpath(os.path.abspath(data), os.path.abspath(run))


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
