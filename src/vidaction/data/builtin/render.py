"""The dataset on disk: which actor plays which clip in which split, rendering in worker
processes, the manifest, and a contact sheet to eyeball it."""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from vidaction.data.builtin.actions import ACTIONS
from vidaction.data.builtin.actors import sample_actor
from vidaction.data.builtin.body import JOINT_NAMES
from vidaction.data.builtin.draw import render_clip
from vidaction.data.builtin.scene import VARIATIONS, sample_params
from vidaction.io.writer import write_atomic

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
N_ACTORS = 24  # split between train/val/test in the split proportions
BUILTIN_CLASSES: list[str] = sorted(ACTIONS)


def _split_counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Largest-remainder rounding; every split with a share gets at least one when n allows."""
    f = np.asarray(fractions, float) / sum(fractions)
    counts = np.floor(f * n).astype(int)
    for i in np.argsort(-(f * n - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    for i in np.flatnonzero((counts == 0) & (f > 0)):
        donor = int(np.argmax(counts))
        if counts[donor] > 1:
            counts[donor] -= 1
            counts[i] += 1
    return [int(c) for c in counts]


def _clip_seed(seed: int, class_name: str, split: int, index: int) -> int:
    ss = np.random.SeedSequence([seed, zlib.crc32(class_name.encode()), split, index])
    return int(ss.generate_state(1)[0])


def _plan(settings: dict) -> tuple[dict[str, list[int]], list[dict]]:
    """Actors per split and one job per clip, all derived from the settings alone."""
    fractions = tuple(settings["splits"])
    n_actors = max(N_ACTORS, sum(1 for f in fractions if f > 0))
    actor_counts = _split_counts(n_actors, fractions)
    actors, start = {}, 0
    for split, k in zip(SPLITS, actor_counts, strict=True):
        actors[split] = list(range(start, start + k))
        start += k
    clip_counts = _split_counts(settings["clips_per_class"], fractions)
    jobs = []
    for ci, cls in enumerate(settings["classes"]):
        for si, (split, k) in enumerate(zip(SPLITS, clip_counts, strict=True)):
            for i in range(k):
                actor = actors[split][(i + ci) % len(actors[split])]
                seed = _clip_seed(settings["seed"], cls, si, i)
                stem = f"{cls}_a{actor:02d}_{i:03d}"
                jobs.append({"split": split, "class": cls, "actor": actor, "seed": seed,
                             "path": f"{split}/{cls}/{stem}.mp4",
                             "joints": f"{split}/{cls}/{stem}.joints.npy"})
    return actors, jobs


def _render_job(job: dict, settings: dict, root: str) -> dict:
    from vidaction.io import write_video

    root_p = Path(root)
    actor = sample_actor(settings["seed"], job["actor"])
    params = sample_params(job["class"], job["seed"], actor,
                           settings.get("variation", "full"))
    n_frames = max(1, round(settings["seconds"] * settings["fps"]))
    video, joints_path = root_p / job["path"], root_p / job["joints"]
    if not (video.exists() and joints_path.exists()):
        frames, joints = render_clip(job["class"], params, settings["size"], n_frames)
        video.parent.mkdir(parents=True, exist_ok=True)
        tmp = joints_path.with_name(f".{joints_path.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, joints)
        os.replace(tmp, joints_path)
        write_video(video, frames, fps=settings["fps"],
                    options={"crf": str(params.crf), "threads": "1", "preset": "veryfast"})
    record = dict(job, frames=n_frames, params=asdict(params))
    record["params"]["actor"] = job["actor"]
    return record


def _clear(out: Path) -> None:
    for name in (*SPLITS, "classes.txt", "manifest.json", ".render.json"):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def render_dataset(out: Path, classes: list[str] | None = None, clips_per_class: int = 30,
                   size: int = 128, seconds: float = 3.0, fps: int = 25, seed: int = 0,
                   splits: tuple[float, float, float] = (0.6, 0.2, 0.2), progress: bool = True,
                   force: bool = False, workers: int = 1, variation: str = "full") -> Path:
    """Render the built-in dataset into `out`; an existing render of the same settings is
    reused (or finished, if it was interrupted), a different one is only replaced with force."""
    out = Path(out)
    classes = sorted(set(classes or BUILTIN_CLASSES))
    unknown = [c for c in classes if c not in ACTIONS]
    if unknown:
        raise ValueError(f"unknown built-in classes {unknown}; known: {BUILTIN_CLASSES}")
    if len(splits) != 3 or min(splits) < 0 or not sum(splits) > 0:
        raise ValueError(f"splits must be three non-negative fractions (train, val, test), "
                         f"got {splits}")
    settings = {"format": FORMAT_VERSION, "classes": classes,
                "clips_per_class": int(clips_per_class), "size": int(size),
                "seconds": float(seconds), "fps": int(fps), "seed": int(seed),
                "splits": [float(s) for s in splits]}
    if variation not in VARIATIONS:
        raise ValueError(f"variation must be one of {', '.join(VARIATIONS)}, got {variation!r}")
    if variation != "full":  # absent for full, so earlier renders stay valid
        settings["variation"] = variation
    manifest_path, marker = out / "manifest.json", out / ".render.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}
        if old.get("settings") == settings and all(
                (out / c["path"]).exists() and (out / c["joints"]).exists()
                for c in old.get("clips", [])):
            return out
        if not force:
            raise ValueError(
                f"{out} already holds a different built-in dataset (settings "
                f"{old.get('settings')}); choose another folder or pass force=True to replace it")
        _clear(out)
    elif marker.exists():
        try:
            old_settings = json.loads(marker.read_text())
        except ValueError:
            old_settings = None
        if old_settings != settings:
            if not force:
                raise ValueError(f"{out} holds an unfinished render with other settings "
                                 f"({old_settings}); pass force=True to replace it")
            _clear(out)
    elif out.exists() and any(out.iterdir()):
        if not force:
            raise ValueError(f"{out} is not empty and holds no built-in dataset; "
                             f"choose an empty folder or pass force=True")
        _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(marker, json.dumps(settings).encode())

    actors, jobs = _plan(settings)
    from vidaction.progress import bar as progress_bar

    bar = progress_bar(total=len(jobs), desc="rendering clips", unit="clip", enabled=progress)
    records: list[dict] = []
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for rec in pool.map(_render_job, jobs, [settings] * len(jobs), [str(out)] * len(jobs),
                                chunksize=4):
                records.append(rec)
                bar.update()
    else:
        for job in jobs:
            records.append(_render_job(job, settings, str(out)))
            bar.update()
    bar.close()

    write_atomic(out / "classes.txt", ("\n".join(classes) + "\n").encode())
    manifest = {
        "settings": settings,
        "joint_names": JOINT_NAMES,
        "joints_format": "float32 (frames, joints, 2), pixel (x, y) in the video frame",
        "actors": actors,
        "actor_params": [asdict(sample_actor(seed, i)) for ids in actors.values() for i in ids],
        "clips": records,
    }
    write_atomic(manifest_path, json.dumps(manifest, indent=1).encode())
    marker.unlink(missing_ok=True)
    return out


def _clips_by_class(root: Path) -> dict[str, list[Path]]:
    manifest = root / "manifest.json"
    by_class: dict[str, list[Path]] = {}
    if manifest.exists():
        for c in json.loads(manifest.read_text())["clips"]:
            by_class.setdefault(c["class"], []).append(root / c["path"])
    else:
        from vidaction.io import VIDEO_EXTENSIONS

        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in VIDEO_EXTENSIONS:
                by_class.setdefault(p.parent.name, []).append(p)
    return dict(sorted(by_class.items()))


def preview_dataset(root: Path, out: Path, clips_per_class: int = 3,
                    frames_per_clip: int = 4, tile: int = 96,
                    skipped: list[tuple[Path, str]] | None = None) -> Path:
    """A contact sheet (PNG): one row per class, a few frames of a few clips, to eyeball a
    dataset before training on it. A file that cannot be read is left out with a warning
    naming it (and added to `skipped` as (path, reason)); the next clip of its class takes
    its place."""
    import warnings

    from vidaction.io import VideoReadError, probe, read_frames

    def frames_of(path: Path) -> list | None:
        try:
            n = probe(path).frame_count
            if n < 1:
                raise VideoReadError(path, "no frames")
            idx = np.linspace(0, n - 1, frames_per_clip).round().astype(int).tolist()
            return read_frames(path, idx)
        except (VideoReadError, OSError) as e:
            reason = e.reason if isinstance(e, VideoReadError) else (e.strerror or str(e))
            warnings.warn(f"{path}: {reason}; left out of the contact sheet", stacklevel=3)
            if skipped is not None:
                skipped.append((path, reason))
            return None

    root, out = Path(root), Path(out)
    by_class = _clips_by_class(root)
    if not by_class:
        raise ValueError(f"{root}: no videos found")
    label_w, gap = 8 * max(len(c) for c in by_class) + 16, 4
    width = label_w + clips_per_class * (frames_per_clip * tile + gap)
    sheet = np.full((len(by_class) * (tile + gap) + gap, width, 3), 255, np.uint8)
    for r, (cls, paths) in enumerate(by_class.items()):
        y = gap + r * (tile + gap)
        cv2.putText(sheet, cls, (6, y + tile // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
        step = max(1, len(paths) // clips_per_class)
        spread = paths[::step]  # spread over the class, then the rest as stand-ins
        chosen = set(spread)
        candidates = iter(spread + [p for p in paths if p not in chosen])
        for k in range(clips_per_class):
            frames = None
            for path in candidates:
                frames = frames_of(path)
                if frames is not None:
                    break
            if frames is None:
                break  # no readable clip left in this class
            for j, f in enumerate(frames):
                x = label_w + k * (frames_per_clip * tile + gap) + j * tile
                sheet[y:y + tile, x:x + tile] = cv2.resize(f, (tile, tile),
                                                           interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"could not encode {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, png.tobytes())
    return out
