"""Export a run for serving: a TensorFlow SavedModel or a TFLite file (float, dynamic or int8).

Every export carries its class names and the run's config beside it, so `vidaction predict`
and `vidaction stream` take it in place of the run folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from vidaction.errors import VidactionError

FORMATS = ("savedmodel", "tflite")
QUANTIZE = ("none", "dynamic", "int8")


class ExportError(VidactionError):
    """An export that cannot be written or converted; the message says why."""


def export_config(run, fmt: str, quantize: str, **extra) -> dict:
    """The run's config plus what the export is: what a TFLiteRun hands out as `.config`."""
    import vidaction

    return {**run.config, "classes": list(run.classes),
            "export": {"format": fmt, "quantize": quantize, "source_run": str(run.path),
                       "input": "RGB pixels 0..255", "vidaction": vidaction.__version__,
                       **extra}}


def check_out(paths: list[Path], force: bool) -> None:
    """Refuse to overwrite any of `paths` without --force. What a killed export left beside
    them (temporaries, and a .tflite's labels and config without the .tflite, which only
    an interrupted export leaves) is cleaned first: it never blocks the next export."""
    from vidaction.io.writer import clean_stale

    for p in paths:
        clean_stale(p)
    leftovers = _tflite_leftovers(paths)
    taken = [p for p in paths if (p.exists() or p.is_symlink()) and p not in leftovers]
    if taken and not force:
        raise ExportError(f"{taken[0]} already exists (--force replaces it)")


def _tflite_leftovers(paths: list[Path]) -> set[Path]:
    """[OUT.tflite, OUT.labels.txt, OUT.json]: the two side files when OUT.tflite is
    missing and OUT.json is an export config (the .tflite is renamed into place last)."""
    if len(paths) != 3 or paths[0].exists() or not paths[2].is_file():
        return set()
    import json

    try:
        config = json.loads(paths[2].read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(config, dict) or not isinstance(config.get("export"), dict):
        return set()
    return {paths[1], paths[2]}


def export_run(run, fmt: str, out: str | os.PathLike, quantize: str = "none",
               force: bool = False, data: str | None = None, progress: bool = True) -> Path:
    """Export a run (a loaded `Run` or its folder) to `out`; returns the written path.

    Flags and the output path are checked before a run folder is loaded (seconds). An
    `out` inside the run is written under the run's lock (not while `train` writes it);
    one that is the run, or holds it, is refused: --force would replace the run."""
    from vidaction.models.runlock import writing_into

    folder = getattr(run, "path", run)
    with writing_into(folder, out, "vidaction export"):
        return _export_run(run, fmt, out, quantize, force, data, progress)


def _export_run(run, fmt: str, out: str | os.PathLike, quantize: str, force: bool,
                data: str | None, progress: bool) -> Path:
    from vidaction.errors import UserError

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if quantize not in QUANTIZE:
        raise UserError(f"--quantize must be one of {', '.join(QUANTIZE)}, not {quantize!r}")
    out = Path(out)
    if fmt == "savedmodel" and quantize != "none":
        raise UserError("--quantize applies to --format tflite only")
    if fmt == "tflite":
        if out.suffix.lower() != ".tflite":
            raise UserError(f"{out}: a TFLite export must end in .tflite")
        from vidaction.models.litert import config_path, labels_path

        check_out([out, labels_path(out), config_path(out)], force)
    else:
        check_out([out], force)
    if isinstance(run, str | os.PathLike):
        if Path(run).suffix.lower() == ".tflite":
            raise UserError(f"{run}: already an export; export takes a run folder")
        import vidaction

        run = vidaction.load_run(run)
    from vidaction.models.scoring import model_location, nonfinite_weight

    weight = nonfinite_weight(run)
    if weight:  # a model that can only answer NaN is not worth serving
        raise ExportError(f"{model_location(run)}: the weights hold NaN or inf ({weight}); "
                          "the training that made it diverged, retrain it (a lower --lr)")
    if fmt == "savedmodel":
        from vidaction.export.savedmodel import export_savedmodel

        return export_savedmodel(run, out, force=force)
    from vidaction.export.tflite import export_tflite

    return export_tflite(run, out, quantize=quantize, force=force, data=data,
                         progress=progress)
