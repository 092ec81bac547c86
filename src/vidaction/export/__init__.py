"""Export a run for serving: a TensorFlow SavedModel or a TFLite file (float, dynamic or int8).

Every export carries its class names and the run's config beside it, so `vidaction predict`
and `vidaction stream` take it in place of the run folder.
"""

from __future__ import annotations

import os
import shutil
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
    """Refuse to overwrite any of `paths` without --force."""
    taken = [p for p in paths if p.exists() or p.is_symlink()]
    if taken and not force:
        raise ExportError(f"{taken[0]} already exists (--force replaces it)")


def replace_tree(tmp: Path, out: Path) -> None:
    """Move a finished folder onto `out`, the old one (if any) set aside until then."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.is_dir() and not out.is_symlink():
        os.replace(out, old)
    elif out.exists() or out.is_symlink():
        out.unlink()
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def export_run(run, fmt: str, out: str | os.PathLike, quantize: str = "none",
               force: bool = False, data: str | None = None, progress: bool = True) -> Path:
    """Export a run (a loaded `Run` or its folder) to `out`; returns the written path.

    Flags and the output path are checked before a run folder is loaded (seconds)."""
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
        from vidaction.export.tflite import config_path, labels_path

        check_out([out, labels_path(out), config_path(out)], force)
    else:
        check_out([out], force)
    if isinstance(run, str | os.PathLike):
        if Path(run).suffix.lower() == ".tflite":
            raise UserError(f"{run}: already an export; export takes a run folder")
        import vidaction

        run = vidaction.load_run(run)
    if fmt == "savedmodel":
        from vidaction.export.savedmodel import export_savedmodel

        return export_savedmodel(run, out, force=force)
    from vidaction.export.tflite import export_tflite

    return export_tflite(run, out, quantize=quantize, force=force, data=data,
                         progress=progress)
