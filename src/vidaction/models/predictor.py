"""One way to open whatever the user points prediction at: a run folder or a `.tflite` file."""

from __future__ import annotations

import os
from pathlib import Path

from vidaction.data.sampling import SamplingConfig
from vidaction.errors import UserError


def load_predictor(path: str | os.PathLike, weights: str | os.PathLike | None = None):
    """A run folder (Keras model), an exported `.tflite` file (LiteRT interpreter), or the
    name of a pretrained classifier (`kinetics600`: a run that needs no training, fetched on
    first use, or taken from `weights`; write ./kinetics600 for a folder of that name).

    All have `.classes`, `.config`, `.predict_logits(clips)` and `.streamer()`.
    """
    from vidaction.models.kinetics import is_pretrained_name, load_pretrained

    if is_pretrained_name(path):
        return load_pretrained(str(path), weights=weights)
    if weights is not None:
        raise UserError(f"--weights is for the pretrained classifiers (see `vidaction "
                        f"models`); {path} holds its own weights")
    path = Path(path)
    if path.suffix.lower() == ".tflite":
        if not path.is_file():
            raise UserError(f"{path}: no such TFLite file")
        from vidaction.models.litert import TFLiteRun  # LiteRT only when asked for

        return TFLiteRun(path)
    import vidaction

    return vidaction.load_run(path)


def check_predictor_path(path: str | os.PathLike) -> None:
    """What load_predictor would refuse about `path` itself (no such .tflite, a folder that
    is not a run), in milliseconds: before a command says it is loading (seconds)."""
    from vidaction.models.kinetics import CLASSIFIERS, is_pretrained_name
    from vidaction.models.run import check_run_folder

    if is_pretrained_name(path):
        return
    path = Path(path)
    if path.suffix.lower() == ".tflite":
        if not path.is_file():
            raise UserError(f"{path}: no such TFLite file")
        return
    check_run_folder(path, names=CLASSIFIERS)  # kinetic600: did you mean kinetics600?


def sampling_config(predictor) -> SamplingConfig:
    """How the run cut its training clips; prediction must cut clips the same way."""
    config = getattr(predictor, "config", None) or {}
    s = dict(config.get("sampling") or {})
    model = config.get("model") or {}
    if not s:  # older or hand-made configs: the model's frames and size, default spacing
        if not model.get("frames") or not model.get("size"):
            raise UserError("the run's config.json has neither 'sampling' nor model "
                            "frames/size: cannot tell how to cut clips")
        s = {"n_frames": model["frames"], "size": model["size"]}
    known = set(SamplingConfig.__dataclass_fields__)
    return SamplingConfig(**{k: v for k, v in s.items() if k in known})


def fixed_frames(predictor) -> int | None:
    """Frames per clip the model insists on (None: any number)."""
    model = getattr(predictor, "model", None)
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 5:
        return shape[1]
    frames = ((getattr(predictor, "config", None) or {}).get("model") or {}).get("frames")
    return int(frames) if frames else None
