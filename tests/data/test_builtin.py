"""The built-in rendered dataset: determinism, layout, actor splits, joints, motion."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vidaction.data.builtin import (
    BUILTIN_CLASSES,
    JOINT_NAMES,
    preview_dataset,
    render_clip,
    render_dataset,
    sample_actor,
    sample_params,
)
from vidaction.io import probe

SMALL = {"clips_per_class": 5, "size": 64, "seconds": 0.6, "fps": 25, "progress": False}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return render_dataset(tmp_path_factory.mktemp("builtin") / "ds", seed=7, **SMALL)


def _quiet(class_name: str, seed: int = 3):
    """Params without camera motion, distractors or timing jitter: for comparing motions."""
    p = sample_params(class_name, seed, sample_actor(0, 1))
    return replace(p, shake=0.0, zoom_start=1.0, zoom_end=1.0, t_start=0.2, t_end=0.8,
                   distractor="none", occluder=False, noise=0.0, blur=0.0)


def test_same_seed_gives_identical_bytes_other_seed_differs(tmp_path):
    kw = dict(SMALL, classes=["clap", "sit_down"], clips_per_class=3)
    a = _hashes(render_dataset(tmp_path / "a", seed=11, **kw))
    b = _hashes(render_dataset(tmp_path / "b", seed=11, **kw))
    c = _hashes(render_dataset(tmp_path / "c", seed=12, **kw))
    videos = [k for k in a if k.endswith(".mp4")]
    assert len(videos) == 6
    assert a == b
    assert set(videos) <= set(c)  # same names (actor, index), different pictures
    assert all(a[k] != c[k] for k in videos)


def test_classes_txt_sorted_and_complete(dataset):
    names = (dataset / "classes.txt").read_text().split()
    assert names == sorted(BUILTIN_CLASSES)
    assert len(names) >= 10
    for pair in (("sit_down", "stand_up"), ("raise_arms", "lower_arms"),
                 ("turn_left", "turn_right")):
        assert set(pair) <= set(names)
    on_disk = {p.name for split in ("train", "val", "test") for p in (dataset / split).iterdir()}
    assert on_disk == set(names)


def test_no_actor_in_two_splits(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    actors = {split: set(ids) for split, ids in m["actors"].items()}
    assert actors["train"] and actors["val"] and actors["test"]
    assert not actors["train"] & actors["val"]
    assert not actors["train"] & actors["test"]
    assert not actors["val"] & actors["test"]
    used: dict[int, set[str]] = {}
    for c in m["clips"]:
        assert c["actor"] in actors[c["split"]]
        assert c["path"].startswith(f"{c['split']}/{c['class']}/")
        used.setdefault(c["actor"], set()).add(c["split"])
    assert all(len(s) == 1 for s in used.values())
    assert {c["split"] for c in m["clips"]} == {"train", "val", "test"}


def test_manifest_records_every_clip_with_its_variation(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    assert len(m["clips"]) == len(BUILTIN_CLASSES) * SMALL["clips_per_class"]
    assert m["joint_names"] == JOINT_NAMES
    c = m["clips"][0]
    for key in ("split", "class", "actor", "seed", "path", "joints", "frames", "params"):
        assert key in c
    for key in ("view_yaw", "scale", "background", "reps", "noise", "crf", "occluder"):
        assert key in c["params"]
    assert len({c["seed"] for c in m["clips"]}) == len(m["clips"])


def test_every_video_decodes_with_expected_frames_and_size(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    n = round(SMALL["seconds"] * SMALL["fps"])
    for c in m["clips"]:
        info = probe(dataset / c["path"])
        assert (info.frame_count, info.width, info.height) == (n, 64, 64), c["path"]
        assert c["frames"] == n
        joints = np.load(dataset / c["joints"])
        assert joints.shape == (n, len(JOINT_NAMES), 2) and joints.dtype == np.float32


@pytest.mark.parametrize("class_name", BUILTIN_CLASSES)
def test_render_clip_shapes_joints_in_frame_and_motion(class_name):
    p = sample_params(class_name, 5, sample_actor(0, 2))
    frames, joints = render_clip(class_name, p, size=64, n_frames=40)
    assert frames.shape == (40, 64, 64, 3) and frames.dtype == np.uint8
    assert joints.shape == (40, len(JOINT_NAMES), 2)
    inside = (joints >= 0) & (joints < 64)
    assert inside.all(axis=2).mean() > 0.95
    # the figure moves: joints travel several pixels over the clip
    travel = np.abs(np.diff(joints, axis=0)).sum(axis=0).max()
    assert travel > 5, f"{class_name}: joints barely move ({travel:.1f} px)"


def test_direction_pairs_are_time_reverses():
    n = 51
    for a, b in (("sit_down", "stand_up"), ("raise_arms", "lower_arms")):
        p = _quiet(a)
        _, ja = render_clip(a, p, size=96, n_frames=n)
        _, jb = render_clip(b, p, size=96, n_frames=n)
        forward = np.abs(ja - jb).mean()
        reverse = np.abs(ja[::-1] - jb).mean()
        assert forward > 2.0 and np.abs(ja - jb).max() > 10, f"{a}/{b} barely differ"
        assert reverse < 0.25 * forward, f"{b} is not {a} played backwards"


def test_turns_go_opposite_ways():
    p = replace(_quiet("turn_left"), view_yaw=0.0, elevation=10.0, amount=0.0)  # a 90° turn
    _, jl = render_clip("turn_left", p, size=96, n_frames=30)
    _, jr = render_clip("turn_right", p, size=96, n_frames=30)
    np.testing.assert_allclose(jl[0], jr[0], atol=1e-3)  # same start...
    # ...then the feet point to opposite sides of the screen: a left turn (seen from the
    # front) ends with the toes towards screen right, the figure's own left
    toe, ankle = JOINT_NAMES.index("l_toe"), JOINT_NAMES.index("l_ankle")
    assert jl[-1, toe, 0] - jl[-1, ankle, 0] > 1.0
    assert jr[-1, toe, 0] - jr[-1, ankle, 0] < -1.0


def test_frames_change_with_seed_and_class():
    p = sample_params("clap", 1, sample_actor(0, 0))
    f1, _ = render_clip("clap", p, size=64, n_frames=10)
    f2, _ = render_clip("clap", p, size=64, n_frames=10)
    f3, _ = render_clip("clap", sample_params("clap", 2, sample_actor(0, 0)), 64, 10)
    assert np.array_equal(f1, f2)
    assert not np.array_equal(f1, f3)
    with pytest.raises(ValueError, match="unknown"):
        render_clip("moonwalk", p, size=64, n_frames=5)


def test_reuses_same_render_and_refuses_different_without_force(tmp_path):
    kw = dict(SMALL, classes=["bow", "kick"], clips_per_class=3)
    out = render_dataset(tmp_path / "ds", seed=1, **kw)
    video = next(out.rglob("*.mp4"))
    stamp = video.stat().st_mtime_ns
    assert render_dataset(out, seed=1, **kw) == out
    assert video.stat().st_mtime_ns == stamp  # reused, not re-rendered
    with pytest.raises(ValueError, match="force"):
        render_dataset(out, seed=2, **kw)
    assert video.stat().st_mtime_ns == stamp  # the refusal touched nothing
    render_dataset(out, seed=2, force=True, **kw)
    m = json.loads((out / "manifest.json").read_text())
    assert m["settings"]["seed"] == 2
    assert len(list(out.rglob("*.mp4"))) == 6

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        render_dataset(stranger, seed=1, **kw)
    with pytest.raises(ValueError, match="unknown"):
        render_dataset(tmp_path / "x", classes=["moonwalk"], **SMALL)


def test_resumes_an_interrupted_render(tmp_path):
    kw = dict(SMALL, classes=["clap"], clips_per_class=3)
    out = render_dataset(tmp_path / "ds", seed=4, **kw)
    before = _hashes(out)
    victim, *kept = sorted(out.rglob("*.mp4"))
    stamps = [p.stat().st_mtime_ns for p in kept]
    victim.unlink()
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    (out / "manifest.json").unlink()
    (out / ".render.json").write_text(json.dumps(settings))  # as left by a killed render
    render_dataset(out, seed=4, **kw)
    assert _hashes(out) == before
    assert [p.stat().st_mtime_ns for p in kept] == stamps  # only the missing clip was redone
    assert not (out / ".render.json").exists()


def test_preview_writes_a_labelled_png(dataset, tmp_path):
    import cv2

    png = preview_dataset(dataset, tmp_path / "sheet.png", clips_per_class=2, frames_per_clip=3)
    img = cv2.imread(str(png))
    assert img is not None
    h, w = img.shape[:2]
    assert h >= len(BUILTIN_CLASSES) * 96  # one row per class
    assert w >= 2 * 3 * 96
    assert img.std() > 10  # not a blank sheet
    assert not list(tmp_path.glob(".*tmp*"))
