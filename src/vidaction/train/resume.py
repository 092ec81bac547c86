"""`train --resume`: the run folder is the truth, not today's flags or dataset.

The run's config.json fixes the model, its clip sampling, the splits and the recipe; flags
given again must agree with it, except the few that may change between sessions
(`CHANGEABLE`), which are applied and recorded. The run's classes decide the label ids; a
dataset listing the same classes in another order is mapped by name, any other difference is
refused. Checkpoints are checked whole before use: a damaged one is passed over for the one
before it, with one line, and nothing intact is ever deleted.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Collection
from pathlib import Path

from vidaction.data.sources import Dataset
from vidaction.io.writer import write_atomic
from vidaction.models.integrity import checkpoint_damage, numbered_checkpoints
from vidaction.models.run import RunError, read_json, run_classes, run_data

# Settings a resumed run may change: how long and how patiently it trains, how big its
# batches are, where its data and caches live. Everything else shapes the model, the clips
# it sees, its splits or its checkpoint, and stays as the run was started.
CHANGEABLE = frozenset({"epochs", "patience", "batch_size", "data", "clip_cache",
                        "feature_cache"})

_FLAG_OF = {"freeze_backbone": "--train-backbone"}


def warn(line: str) -> None:
    print(f"vidaction: warning: {line}", file=sys.stderr, flush=True)


def given_fields(cfg) -> set[str]:
    """For callers that cannot say which settings they chose: those off the defaults."""
    default = type(cfg)(data="", out="")
    return {f.name for f in dataclasses.fields(cfg)
            if f.name != "out" and getattr(cfg, f.name) != getattr(default, f.name)}


def resume_config(cfg, given: Collection[str]):
    """(the run's TrainConfig with the given changeable settings applied, its config.json,
    {changed setting: new value}); a given setting that contradicts the run is refused."""
    out = Path(cfg.out)
    if not (out / "config.json").exists():
        raise RunError(f"{out}: nothing to resume (no config.json)")
    config = read_json(out / "config.json")
    saved = config.get("train") if isinstance(config, dict) else None
    if not isinstance(saved, dict):
        raise RunError(f"{out / 'config.json'}: holds no 'train' settings to resume from")
    known = {f.name for f in dataclasses.fields(cfg)}
    try:
        base = type(cfg)(**{k: v for k, v in saved.items() if k in known})
    except TypeError as e:
        raise RunError(f"{out / 'config.json'}: unusable 'train' settings ({e})") from None
    if "data" not in given:  # run and data moved together: the data beside the run
        found = run_data(out, config)
        if found is not None:
            base = dataclasses.replace(base, data=str(found.absolute()))
    changes, clashes = {}, []
    for name in sorted(set(given) - {"out"}):
        new, old = getattr(cfg, name), getattr(base, name)
        if name == "data":
            if new and Path(new).resolve() != Path(old).resolve():
                changes[name] = os.path.abspath(new)
        elif name in CHANGEABLE:
            if new != old:
                changes[name] = new
        else:
            was = _resolved(name, old, config)
            if _resolved(name, new, config) != was:
                clashes.append(f"{_flag(name, new)} (the run has {name} {was})")
    if clashes:
        raise RunError(f"{out}: {'; '.join(clashes)}: --resume continues a run with the "
                       "model, clip sampling, splits and recipe it was started with; only "
                       f"{', '.join('--' + c.replace('_', '-') for c in sorted(CHANGEABLE))} "
                       "may change (--force starts a new run)")
    return dataclasses.replace(base, out=str(out), **changes), config, changes


def _resolved(name: str, value, config: dict):
    """What a setting left at None meant for this run (the model's default, as recorded)."""
    model = config.get("model") or {}
    if value is not None:
        return value
    if name in ("frames", "size", "pretrained", "frame_backbone"):
        return model.get(name)
    if name == "resize":
        return (config.get("sampling") or {}).get("resize")
    if name == "short":  # --short: absent from the sampling of runs that padded
        return (config.get("sampling") or {}).get("short", "pad")
    if name == "lr" and model.get("name"):
        from vidaction.models import model_info

        return model_info(model["name"]).lr
    return value


def _flag(name: str, value) -> str:
    if name in _FLAG_OF:
        return _FLAG_OF[name]
    flag = "--" + name.replace("_", "-")
    return flag if value is True else f"{flag} {value}"


def run_dataset(ds: Dataset, out: Path, config: dict) -> Dataset:
    """`ds` with the run's class ids: the same classes in another order are mapped by name;
    added, missing or renamed classes are refused (the model has one output per class)."""
    classes = run_classes(out, config)
    if ds.classes == classes:
        return ds
    have, want = set(ds.classes), set(classes)
    if have != want:
        parts = []
        if have - want:
            parts.append("not in the run: " + ", ".join(sorted(have - want)))
        if want - have:
            parts.append("missing: " + ", ".join(sorted(want - have)))
        raise RunError(f"{ds.root}: its classes differ from the run's in "
                       f"{out / 'config.json'} ({'; '.join(parts)}); --resume trains the "
                       "classes the run started with (--force starts a new run)")
    index = {c: i for i, c in enumerate(classes)}
    clips = [dataclasses.replace(c, label=index[ds.classes[c.label]]) for c in ds.clips]
    print(f"{ds.root} lists the run's classes in another order; labels mapped by name")
    return dataclasses.replace(ds, classes=list(classes), clips=clips)


def pick_checkpoint(folder: Path) -> str | None:
    """The newest intact `ckpt-N` in `folder` (None if there is none yet). Damaged ones are
    passed over with one line each; if every one is damaged the resume is refused."""
    found = numbered_checkpoints(folder)
    damaged = []
    for _, prefix in found:
        damage = checkpoint_damage(prefix)
        if damage is None:
            if damaged:
                warn(f"{damaged[0][0]}: damaged ({damaged[0][1]}); resuming from "
                     f"{Path(prefix).name} instead")
            return prefix
        damaged.append((prefix, damage))
    if damaged:
        raise RunError(f"{folder}: no intact checkpoint to resume from ("
                       + "; ".join(f"{Path(p).name}: {d}" for p, d in damaged)
                       + "); --force starts the run over")
    return None


def state_problem(folder: Path) -> str | None:
    """Why the `checkpoint` state file in `folder` cannot be used; None if it is fine."""
    import tensorflow as tf

    state = folder / "checkpoint"
    if not state.exists():
        return None
    try:  # TensorFlow logs a parse error and answers None
        st = tf.train.get_checkpoint_state(str(folder))
    except Exception as e:  # noqa: BLE001 - whatever else a damaged file raises
        st, why = None, str(e).splitlines()[0][:120] if str(e) else type(e).__name__
    else:
        why = "cannot be parsed"
    if st is None:
        return why
    latest = Path(st.model_checkpoint_path)  # TensorFlow has joined it to `folder`
    if not Path(f"{latest}.index").is_file():
        return f"names {latest.name}, which is not there"
    return None


def write_state(folder: Path, keep: list[str]) -> None:
    """Point the `checkpoint` state file at `keep` (oldest first), by names relative to
    `folder`, as CheckpointManager writes it: with save times later than the preserved
    mark, so the manager goes on rotating them (keeping the newest two). Files not listed
    are left alone."""
    if not keep:  # nothing intact to point at: no state file (the files stay)
        (folder / "checkpoint").unlink(missing_ok=True)
        return
    names = [Path(p).name for p in keep]
    times = [Path(f"{p}.index").stat().st_mtime for p in keep]
    write_atomic(folder / "checkpoint", "".join([
        f'model_checkpoint_path: "{names[-1]}"\n',
        *(f'all_model_checkpoint_paths: "{n}"\n' for n in names),
        *(f"all_model_checkpoint_timestamps: {t!r}\n" for t in times),
        f"last_preserved_timestamp: {min(times) - 1!r}\n"]))


def intact_up_to(folder: Path, epoch: int) -> list[str]:
    """The intact checkpoints numbered at most `epoch`, oldest first."""
    return [prefix for n, prefix in numbered_checkpoints(folder)[::-1]
            if n <= epoch and checkpoint_damage(prefix) is None]
