"""`vidaction pose`: keypoint files, JSON summaries, the skeleton overlay, bad inputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_video, real_clip, shared_model
from vidaction.cli import main


@pytest.fixture(scope="module")
def weights():
    return str(shared_model("movenet_singlepose_lightning_int8_4.tflite"))


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    """A rendered person squatting, 192 px, 10 frames."""
    from vidaction.data.builtin import render_clip, sample_params
    from vidaction.io import write_video

    frames, joints = render_clip("squats", sample_params("squats", 2, variation="low"),
                                 size=192, n_frames=10)
    return write_video(tmp_path_factory.mktemp("fig") / "squats.mp4", frames, fps=10)


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "zero.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("not a video at all\n" * 30)
    full = make_video(d / "full.mp4", 40).read_bytes()
    (d / "truncated.mp4").write_bytes(full[: len(full) // 2])
    (d / "full.mp4").unlink()
    return {"missing: no such file": d / "missing.mp4", "empty: file has 0 bytes": d / "zero.mp4",
            "not a video": d / "text.mp4", "truncated": d / "truncated.mp4"}


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("vidaction: error:")]


def test_keypoint_files_and_text_summary(figure, weights, tmp_path, capsys):
    from vidaction.data.pose import JOINTS, Keypoints

    out = tmp_path / "kp"
    assert main(["pose", str(figure), "--weights", weights, "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "squats.mp4  (10 frames, 1.00 s, 192x192; movenet)" in text
    assert "mean score" in text and "squats.keypoints.json" in text
    j = json.loads((out / "squats.keypoints.json").read_text())
    assert j["joints"] == list(JOINTS) and j["frames"] == 10 and j["model"] == "movenet"
    assert (j["width"], j["height"], j["fps"], j["tracked"]) == (192, 192, 10.0, True)
    kp = np.asarray(j["keypoints"])
    assert kp.shape == (10, 17, 3)
    assert ((kp[..., 2] >= 0) & (kp[..., 2] <= 1)).all()
    z = Keypoints.load(out / "squats.keypoints.npz")
    np.testing.assert_allclose(z.points, kp, atol=0.006)
    # a person in the picture: nose above the hips above the ankles
    assert (kp[:, 0, 1] < kp[:, 11:13, 1].mean(1)).all()
    assert (kp[:, 11:13, 1].mean(1) < kp[:, 15:17, 1].mean(1)).all()


def test_each_bad_input_is_one_line_and_the_rest_are_done(figure, bad, weights, tmp_path,
                                                          capsys):
    out = tmp_path / "kp"
    rc = main(["pose", *map(str, bad.values()), str(figure), "--weights", weights,
               "--out", str(out), "--json", "--no-progress"])
    o, err = capsys.readouterr()
    assert rc == 1
    lines = _errors(err)
    assert len(lines) == len(bad)
    for (reason, path), line in zip(bad.items(), lines, strict=True):
        assert str(path) in line and reason in line, line
    recs = [json.loads(ln) for ln in o.splitlines()]
    assert [r.get("error", "") != "" for r in recs] == [True] * len(bad) + [False]
    good = recs[-1]
    assert good["frames"] == 10 and 0 < good["mean_score"] <= 1 and len(good["joints"]) == 17
    assert [Path(f).name for f in good["files"]] == ["squats.keypoints.json",
                                                    "squats.keypoints.npz"]
    assert sorted(p.name for p in out.iterdir()) == ["squats.keypoints.json",
                                                    "squats.keypoints.npz"]


def test_wrong_flags_and_weights_are_one_line(figure, weights, tmp_path, capsys):
    v = str(figure)
    cases = [
        (["pose", v, "--weights", weights, "--overlay", str(tmp_path / "o.txt")], ".mp4 or .gif"),
        (["pose", v, "--weights", str(tmp_path / "nope.tflite")], "no such file"),
        (["pose", v, "--weights", weights, "--out", v], "--out must be a folder"),
        (["pose", v, "--model", "blazepose", "--weights", weights], "blazepose needs"),
    ]
    for argv, msg in cases:
        assert main(argv) == 1
        (line,) = _errors(capsys.readouterr().err)
        assert msg in line, line


def test_same_names_from_two_folders_do_not_overwrite_each_other(figure, weights, tmp_path,
                                                                 capsys):
    other = tmp_path / "b" / figure.name
    other.parent.mkdir()
    other.write_bytes(figure.read_bytes())
    out = tmp_path / "kp"
    assert main(["pose", str(figure), str(other), "--weights", weights, "--out", str(out),
                 "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "squats.keypoints.json", "squats.keypoints.npz", "squats_2.keypoints.json",
        "squats_2.keypoints.npz"]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_overlay_has_every_frame_and_draws_the_skeleton(figure, weights, tmp_path, capsys,
                                                        suffix):
    from vidaction.io import read_frames

    dest = tmp_path / f"o{suffix}"
    assert main(["pose", str(figure), "--weights", weights, "--out", str(tmp_path),
                 "--overlay", str(dest), "--no-progress"]) == 0
    assert f"overlay: {dest} (10 frames)" in capsys.readouterr().out
    src, got = read_frames(figure), read_frames(dest)
    if suffix == ".gif":  # Pillow merges identical consecutive frames (a held pose)
        assert got.shape[1:] == src.shape[1:] and 1 <= len(got) <= len(src)
    else:
        assert got.shape == src.shape
    kp = json.loads((tmp_path / "squats.keypoints.json").read_text())["keypoints"]
    f = 0  # the first frame is never merged away
    x, y, s = kp[f][11]  # left hip: confidently found, so drawn, in red and white
    assert s >= 0.3
    near = got[f, int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3].astype(int)
    before = src[f, int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3].astype(int)
    assert np.abs(near - before).max() > 60


def test_low_score_joints_and_their_edges_are_left_out():
    from vidaction.data.pose import EDGES, JOINTS
    from vidaction.infer.pose import draw_skeleton

    frame = np.full((200, 200, 3), 40, np.uint8)
    pts = np.zeros((17, 3), np.float32)
    pts[:, :2] = [[20 + 10 * (i % 5), 20 + 10 * (i // 5)] for i in range(17)]
    pts[5] = (50, 100, 0.9)   # left shoulder
    pts[7] = (50, 160, 0.9)   # left elbow: shoulder-elbow drawn
    pts[9] = (150, 160, 0.1)  # left wrist: too unsure, and so is its edge to the elbow
    img = draw_skeleton(frame, pts, JOINTS, EDGES)
    changed = np.abs(img.astype(int) - frame).max(axis=2) > 30
    assert changed[100, 50] and changed[160, 50] and changed[130, 50]  # joints and edge
    assert not changed[160, 150] and not changed[160, 100]  # wrist and elbow-wrist edge
    assert changed.sum() < 0.1 * changed.size  # only those two joints and their edge


def test_no_track_flag_reaches_the_estimator(weights, tmp_path, capsys):
    path = real_clip("jumping_jacks.mp4")
    scores = {}
    for flag in ([], ["--no-track"]):
        assert main(["pose", str(path), "--weights", weights, "--out", str(tmp_path), "--json",
                     "--no-progress", "--force", *flag]) == 0
        rec = json.loads(capsys.readouterr().out)
        scores[rec["tracked"]] = rec["mean_score"]
    assert scores[True] > scores[False] + 0.15, scores


def test_blazepose_from_the_command_line(figure, tmp_path, capsys):
    from vidaction.data.pose import BLAZEPOSE_JOINTS

    det = shared_model("blazepose/pose_detection.tflite")
    lm = shared_model("blazepose/pose_landmark_lite.tflite")
    out = tmp_path / "kp"
    assert main(["pose", str(figure), "--model", "blazepose", "--weights", str(det),
                 "--weights", str(lm), "--out", str(out), "--json", "--no-progress",
                 "--overlay", str(tmp_path / "b.gif")]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["model"] == "blazepose" and list(rec["joints"]) == list(BLAZEPOSE_JOINTS)
    assert rec["mean_score"] > 0.5
    j = json.loads((out / "squats.keypoints.json").read_text())
    assert np.asarray(j["keypoints"]).shape == (10, 33, 3)
    assert (tmp_path / "b.gif").is_file()


def test_odd_but_valid_inputs_get_keypoints(weights, tmp_path, capsys):
    from conftest import id_frame
    from vidaction.io import write_gif, write_video

    d = tmp_path / "odd"
    d.mkdir()
    make_video(d / "tiny16.mp4", 6, 16, 16)
    make_video(d / "uhd.mp4", 2, 3840, 2160)
    make_video(d / "portrait.mp4", 6, 36, 64)
    write_gif(d / "one_frame.gif", [id_frame(0)])
    write_video(d / "gray.mkv", [np.full((48, 64), 20 * i, np.uint8) for i in range(6)],
                codec="ffv1", pix_fmt="gray")
    rc = main(["pose", str(d), "--weights", weights, "--out", str(tmp_path / "kp"), "--json",
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and len(out.splitlines()) == 5
    for name, frames, size in (("tiny16", 6, (16, 16)), ("uhd", 2, (3840, 2160)),
                               ("portrait", 6, (36, 64)), ("one_frame", 1, (64, 48)),
                               ("gray", 6, (64, 48))):
        j = json.loads((tmp_path / "kp" / f"{name}.keypoints.json").read_text())
        assert j["frames"] == frames and (j["width"], j["height"]) == size, name
        pts = np.asarray(j["keypoints"])
        assert pts.shape == (frames, 17, 3) and np.isfinite(pts).all()


def test_existing_outputs_are_refused_before_the_model_loads_unless_forced(
        figure, weights, tmp_path, capsys, monkeypatch):
    from vidaction.infer import pose as ip

    out = tmp_path / "kp"
    out.mkdir()
    (out / "squats.keypoints.npz").write_bytes(b"old")
    loaded = []
    real = ip.PoseTracker
    monkeypatch.setattr(ip, "PoseTracker", lambda *a, **k: loaded.append(1) or real(*a, **k))
    assert main(["pose", str(figure), "--weights", weights, "--out", str(out)]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert "squats.keypoints.npz already exists" in line and "--force" in line
    assert not loaded and (out / "squats.keypoints.npz").read_bytes() == b"old"
    overlay = tmp_path / "o.gif"
    overlay.write_bytes(b"old")
    assert main(["pose", str(figure), "--weights", weights, "--out", str(tmp_path / "new"),
                 "--overlay", str(overlay)]) == 1
    assert "o.gif already exists" in _errors(capsys.readouterr().err)[0]
    assert main(["pose", str(figure), "--weights", weights, "--out", str(out), "--force",
                 "--overlay", str(overlay), "--no-progress"]) == 0
    assert (out / "squats.keypoints.npz").read_bytes()[:2] == b"PK" and loaded
    assert overlay.read_bytes()[:3] == b"GIF"
