"""The built-in rendered dataset: determinism, layout, actor splits, joints, motion."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from vidaction.data.builtin import (
    BUILTIN_CLASSES,
    JOINT_NAMES,
    _plan,
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
    """Same seed: the same files, byte for byte, videos included (the writer zeroes the row
    padding libx264 reads; left uninitialised it changed about one render in three)."""
    kw = dict(SMALL, classes=["clap", "sit_down"], clips_per_class=3)
    roots = [render_dataset(tmp_path / n, seed=s, **kw) for n, s in (("a", 11), ("b", 11),
                                                                       ("c", 12))]
    a, b, c = (_hashes(r) for r in roots)
    videos = [k for k in a if k.endswith(".mp4")]
    assert len(videos) == 6 and a == b
    assert set(videos) <= set(c)  # same names (actor, index), different pictures
    assert all(a[k] != c[k] for k in videos)
    assert a["manifest.json"] != c["manifest.json"]


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
    # the same sweep of facings in opposite orders...
    np.testing.assert_allclose(jl[0], jr[-1], atol=1e-3)
    np.testing.assert_allclose(jl[-1], jr[0], atol=1e-3)
    # ...so the feet end up pointing to opposite sides of the screen: a left turn (seen from
    # the front) ends with the toes towards screen right, the figure's own left
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


def test_preview_carries_on_past_a_bad_file_naming_it(tmp_path, capsys):
    import cv2

    from conftest import make_video
    from vidaction.cli import main

    data = tmp_path / "data"
    for cls in ("a", "b"):
        for i in range(2):
            make_video(data / cls / f"{i}.mp4", 12)
    bad = data / "a" / "0.mp4"
    bad.write_bytes(b"not a video")
    sheet = tmp_path / "sheet.png"
    assert main(["data", "preview", str(data), "--out", str(sheet), "--clips-per-class",
                 "1"]) == 1
    cap = capsys.readouterr()
    (warning,) = [ln for ln in cap.err.splitlines() if "warning" in ln]
    assert str(bad) in warning and "left out of the contact sheet" in warning
    assert "1 unreadable file(s) left out" in cap.out
    img = cv2.imread(str(sheet))  # written all the same, the next clip of "a" in its place
    assert img is not None and img[:, img.shape[1] // 2:].std() > 10
    # the overwrite rule of every command: refused without --force
    assert main(["data", "preview", str(data), "--out", str(sheet)]) == 1
    assert f"{sheet} already exists; --force replaces it" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Class balance and split sizes


def test_every_class_gets_the_same_clips_per_split(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    per = Counter((c["split"], c["class"]) for c in m["clips"])
    # 5 clips per class at 0.6 / 0.2 / 0.2
    assert per == {(split, cls): k for cls in BUILTIN_CLASSES
                   for split, k in (("train", 3), ("val", 1), ("test", 1))}
    on_disk = Counter((p.parts[-3], p.parent.name) for p in dataset.rglob("*.mp4"))
    assert on_disk == per
    assert len(list(dataset.rglob("*.joints.npy"))) == len(m["clips"])


@pytest.mark.parametrize(("n", "fractions", "expected"), [
    (5, (0.6, 0.2, 0.2), (3, 1, 1)),
    (10, (0.6, 0.2, 0.2), (6, 2, 2)),
    (10, (0.5, 0.3, 0.2), (5, 3, 2)),
    (30, (0.8, 0.1, 0.1), (24, 3, 3)),
    (30, (3.0, 1.0, 1.0), (18, 6, 6)),  # fractions need not sum to one
    (7, (1.0, 0.0, 0.0), (7, 0, 0)),
    (2, (0.9, 0.05, 0.05), (1, 1, 0)),  # too few clips for all three splits
])
def test_split_sizes_follow_the_requested_fractions(n, fractions, expected):
    classes = ["bow", "sit_down", "stand_up"]
    settings = {"classes": classes, "clips_per_class": n, "seed": 0, "splits": list(fractions)}
    actors, jobs = _plan(settings)
    per = Counter((j["split"], j["class"]) for j in jobs)
    for cls in classes:
        assert tuple(per[split, cls] for split in ("train", "val", "test")) == expected, cls
    share = np.asarray(fractions) / sum(fractions)
    assert np.abs(np.array(expected) - share * n).max() < 1 or n < 3
    # actors are split in the same proportions, and each split with clips has actors
    n_actors = sum(len(a) for a in actors.values())
    for split, f in zip(("train", "val", "test"), share, strict=True):
        assert abs(len(actors[split]) - f * n_actors) < 1
        assert all(j["actor"] in actors[split] for j in jobs if j["split"] == split)
    assert len({j["seed"] for j in jobs}) == len(jobs)


def test_joints_of_the_written_clips_stay_inside_the_frame(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    size = SMALL["size"]
    inside = []
    for c in m["clips"]:
        j = np.load(dataset / c["joints"])
        assert np.isfinite(j).all()
        # zoomed in on a figure standing low in the picture, the toes may touch the bottom edge
        assert j.min() >= -2 and j.max() <= size + 2, c["joints"]
        inside.append(((j >= 0) & (j < size)).all(axis=2).mean())
    assert min(inside) > 0.9 and np.mean(inside) > 0.99


# ---------------------------------------------------------------------------------------------
# One frame cannot tell the direction of a pair; the joint sequence can.
#
# Every pose of sit_down also occurs in stand_up (and the same for the other pairs), so a
# classifier that sees one frame at a time should be at chance, while one that sees the order
# of the frames should be near perfect. A fair single-frame test also needs the same pose
# *distribution* in both classes: clips hold the start pose before the movement (t_start) and
# the end pose after it (1 - t_end), and these two waits differ on average (about 24% vs 28% of
# the frames), so a clip of sit_down shows "seated" a little more often than one of stand_up.
# The single-frame tests therefore use only the frames within a window that is symmetric around
# the movement (as long before it as after it); the movement itself (smoothstep) is symmetric
# in time, so within that window a pair is the same bag of poses.

PAIRS = [("sit_down", "stand_up"), ("raise_arms", "lower_arms"), ("turn_left", "turn_right")]
SEP_SIZE, SEP_FRAMES, SEP_TRAIN, SEP_TEST = 64, 20, 40, 30
_PELVIS = JOINT_NAMES.index("pelvis")


@cache
def _pair_clips(a: str, b: str) -> dict[str, tuple]:
    """Train and test clips of a pair, rendered in memory; train and test share no actor.
    Clip i of `a` and clip i of `b` get the same seed (same actor, camera, background, timing):
    a paired design, so that what differs between the classes is only what the class changes,
    and chance is not blurred by which random backgrounds happened to land in which class.
    Per split: normalised joints (N, T, 17, 2), 16x16 grey frames (N, T, 256), a mask of the
    frames in the symmetric window (N, T), the pose progress of each frame (N, T) and labels."""
    import cv2

    out = {}
    for split, n, actor_ids, seed0 in (("train", SEP_TRAIN, range(0, 8), 1000),
                                       ("test", SEP_TEST, range(8, 12), 5000)):
        J, G, M, S, y = [], [], [], [], []
        for label, cls in enumerate((a, b)):
            for i in range(n):
                actor = sample_actor(2024, actor_ids[i % len(actor_ids)])
                p = sample_params(cls, seed0 + i, actor)
                frames, joints = render_clip(cls, p, SEP_SIZE, SEP_FRAMES)
                # pelvis-centred, in body heights (the figure's height in pixels)
                unit = p.scale * p.actor.height * SEP_SIZE
                J.append((joints - joints[:, _PELVIS:_PELVIS + 1]) / unit)
                grey = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (16, 16),
                                   interpolation=cv2.INTER_AREA) for f in frames]
                G.append(np.stack(grey).reshape(SEP_FRAMES, -1) / np.float32(255))
                u = np.arange(SEP_FRAMES) / SEP_FRAMES
                margin = min(p.t_start, u[-1] - p.t_end)
                M.append((u >= p.t_start - margin - 1e-9) & (u <= p.t_end + margin + 1e-9))
                # progress of the movement towards the class's end pose (0 start, 1 end)
                s = np.clip((u - p.t_start) / max(p.t_end - p.t_start, 1e-3), 0, 1)
                S.append(s)
                y.append(label)
        out[split] = (np.stack(J), np.stack(G), np.stack(M), np.stack(S), np.array(y))
    return out


def _accuracy(x_train, y_train, x_test, y_test, c: float = 0.1) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    clf.fit(x_train, y_train)
    return float(clf.score(x_test, y_test))


def _single_frames(data: dict, split: str, kind: str, target: str = "class"):
    """One sample per frame of the symmetric window, labelled by the clip's class (or, as a
    control, by whether the frame is in the first or second half of the movement)."""
    joints, grey, mask, progress, y = data[split]
    x = joints.reshape(*joints.shape[:2], -1) if kind == "joints" else grey
    if target == "class":
        labels = np.broadcast_to(y[:, None], mask.shape)
    else:  # seen pose nearer the start pose of sit_down (etc.) or nearer its end pose
        towards = np.where(y[:, None] == 0, progress, 1 - progress)
        labels = towards > 0.5
    return x[mask], labels[mask].astype(int)


def single_frame_accuracy(a: str, b: str, kind: str, target: str = "class") -> float:
    data = _pair_clips(a, b)
    return _accuracy(*_single_frames(data, "train", kind, target),
                     *_single_frames(data, "test", kind, target))


def sequence_accuracy(a: str, b: str) -> float:
    data = _pair_clips(a, b)
    (jtr, *_, ytr), (jte, *_, yte) = data["train"], data["test"]
    return _accuracy(jtr.reshape(len(jtr), -1), ytr, jte.reshape(len(jte), -1), yte)


@pytest.mark.parametrize("pair", PAIRS[:2], ids="/".join)
def test_single_frame_features_do_see_the_pose(pair):
    # control for the test below: the same frames and features tell poses near the start of
    # the movement from poses near its end, so chance there is not a broken pipeline
    acc = single_frame_accuracy(*pair, "joints", target="pose")
    assert acc >= 0.9, f"{pair}: start vs end pose from single frames: {acc:.2f}"


@pytest.mark.parametrize("pair", PAIRS, ids="/".join)
def test_single_frame_joints_cannot_tell_the_direction(pair):
    acc = single_frame_accuracy(*pair, "joints")
    assert acc <= 0.6, f"{pair}: single frames of joints give {acc:.2f}"


@pytest.mark.parametrize("pair", PAIRS, ids="/".join)
def test_single_frame_pixels_cannot_tell_the_direction(pair):
    acc = single_frame_accuracy(*pair, "pixels")
    assert acc <= 0.6, f"{pair}: single 16x16 grey frames give {acc:.2f}"


@pytest.mark.parametrize("pair", PAIRS, ids="/".join)
def test_joint_sequence_tells_the_direction(pair):
    acc = sequence_accuracy(*pair)
    assert acc >= 0.9, f"{pair}: joint sequences give {acc:.2f}"


def test_low_variation_drops_the_nuisances_but_keeps_the_action():
    from vidaction.data.builtin import render_clip, sample_params

    for seed in range(20):
        full = sample_params("squats", seed)
        low = sample_params("squats", seed, variation="low")
        assert (low.distractor, low.occluder, low.shake, low.blur, low.noise) == (
            "none", False, 0.0, 0.0, 0.0)
        assert low.background in ("flat", "gradient") and low.scale == 0.7
        assert (low.actor, low.reps, low.view_yaw, low.t_start) == (
            full.actor, full.reps, full.view_yaw, full.t_start)
    frames, joints = render_clip("squats", sample_params("squats", 3, variation="low"), 48, 10)
    assert frames.shape == (10, 48, 48, 3) and joints.shape[0] == 10


def test_every_class_is_one_registered_action_function():
    from vidaction.data.builtin import ACTIONS, actions

    assert sorted(ACTIONS) == BUILTIN_CLASSES
    for name, act in ACTIONS.items():
        assert act.pose is getattr(actions, name) and act.reps[0] <= act.reps[1]


def test_pose_variation_keeps_the_full_draws_and_adds_what_real_people_do():
    from dataclasses import asdict

    from vidaction.data.builtin.scene import ARM_STYLES

    changed = {"scale", "ground_y", "center_x", "occluder", "arm_style", "hold", "reps"}
    styles, holds = set(), []
    for seed in range(40):
        full = asdict(sample_params("squats", seed, sample_actor(0, 1)))
        pose = asdict(sample_params("squats", seed, sample_actor(0, 1), "pose"))
        assert {k: v for k, v in full.items() if k not in changed} == \
            {k: v for k, v in pose.items() if k not in changed}
        assert not pose["occluder"] and pose["scale"] >= 0.68
        styles.add(pose["arm_style"])
        holds.append(pose["hold"])
    assert styles == set(ARM_STYLES)
    assert 0.3 < np.mean(np.array(holds) > 0) < 0.9
    # a held pause: the figure stands still for several frames at the top of a rep
    p = replace(sample_params("jumping_jacks", 3, sample_actor(0, 2), "pose"), hold=0.4,
                reps=2, tempo_wobble=0.0, shake=0.0, zoom_start=1.0, zoom_end=1.0)
    _, joints = render_clip("jumping_jacks", p, 96, 50)
    still = np.abs(np.diff(joints, axis=0)).max(axis=(1, 2)) < 1e-3
    assert still.sum() >= 10
    q = replace(p, hold=0.0)
    _, joints = render_clip("jumping_jacks", q, 96, 50)
    assert (np.abs(np.diff(joints, axis=0)).max(axis=(1, 2)) < 1e-3).sum() < 4
