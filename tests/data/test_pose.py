"""Pose keypoints: joint tables, the crop geometry, MoveNet on a rendered figure with known
joints, tracking on a real clip, the keypoint cache, and fetching the weights over HTTP."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from conftest import real_clip, shared_model

MOVENET = "movenet_singlepose_lightning_int8_4.tflite"


def movenet_path():
    return shared_model(MOVENET)


# ---- tables ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["movenet", "blazepose"])
def test_mirror_pairs_swap_left_and_right_names_and_edges_stay_in_range(model):
    from vidaction.data.pose import edges, joint_names, mirror_pairs

    names = joint_names(model)
    assert len(names) == {"movenet": 17, "blazepose": 33}[model] == len(set(names))
    paired = set()
    for a, b in mirror_pairs(model):
        assert names[a].startswith("left") or "left" in names[a], names[a]
        assert names[b] == names[a].replace("left", "right"), (names[a], names[b])
        paired |= {a, b}
    # every sided joint has its twin; the middle ones (nose) stay
    assert {i for i, n in enumerate(names) if "left" in n or "right" in n} == paired
    assert all(0 <= a < len(names) and 0 <= b < len(names) and a != b for a, b in edges(model))


def test_blazepose_maps_onto_the_coco_joints():
    from vidaction.data.pose import BLAZEPOSE_JOINTS, JOINTS, to_coco17

    pts = np.arange(33 * 3, dtype=np.float32).reshape(1, 33, 3)
    got = to_coco17(pts, "blazepose")
    assert got.shape == (1, 17, 3)
    for i, name in enumerate(JOINTS):
        assert got[0, i, 0] == pts[0, BLAZEPOSE_JOINTS.index(name), 0]


def test_unknown_model_is_a_user_error():
    from vidaction.data.pose import joint_names
    from vidaction.errors import UserError

    with pytest.raises(UserError, match="unknown pose model 'openpose'"):
        joint_names("openpose")


# ---- crop geometry (no model) -------------------------------------------------------------

def test_crop_maps_back_to_source_pixels_exactly():
    """A bright dot found in the crop lands on its source pixel through the returned map,
    also for a region that reaches outside the frame."""
    from vidaction.data.pose.movenet import Region, crop

    frame = np.zeros((240, 320, 3), np.uint8)
    frame[100:104, 200:204] = 255  # centre at (201.5, 101.5) in centre-based pixels
    for region in (Region(150, 50, 120), Region(-40, -60, 400), Region(190.3, 90.7, 30.5)):
        img, m = crop(frame, region, 192)
        assert img.shape == (192, 192, 3)
        ys, xs = np.nonzero(img[..., 0] > 100)
        w = img[ys, xs, 0].astype(float)
        # centre-based crop pixel -> edge-based continuous -> source edge-based -> centre
        cx = m[0, 0] * (np.average(xs, weights=w) + 0.5) + m[0, 1] - 0.5
        cy = m[1, 0] * (np.average(ys, weights=w) + 0.5) + m[1, 1] - 0.5
        assert abs(cx - 201.5) < 0.6 and abs(cy - 101.5) < 0.6, (region, cx, cy)


def test_crop_region_follows_the_torso_and_falls_back_to_the_whole_frame():
    from vidaction.data.pose import JOINTS
    from vidaction.data.pose.movenet import determine_crop_region, full_region

    w, h = 640, 480
    full = full_region(w, h)
    assert (full.x0, full.y0, full.side) == (0, -80, 640)  # letterbox: square, centred
    pts = np.zeros((17, 3), np.float32)
    assert determine_crop_region(pts, w, h) == full  # nothing seen: the whole frame
    # a small person at the right: hips at (500, 300), shoulders 40 px above
    for name, x, y in (("left_hip", 505, 300), ("right_hip", 495, 300),
                       ("left_shoulder", 508, 260), ("right_shoulder", 492, 260),
                       ("left_ankle", 505, 370), ("right_ankle", 495, 370)):
        pts[JOINTS.index(name)] = (x, y, 0.9)
    r = determine_crop_region(pts, w, h)
    assert abs(r.x0 + r.side / 2 - 500) < 1e-3 and abs(r.y0 + r.side / 2 - 300) < 1e-3
    assert r.side == pytest.approx(2 * max(40 * 1.9, 70 * 1.2))  # torso or body, larger
    pts[JOINTS.index("left_hip"), 2] = pts[JOINTS.index("right_hip"), 2] = 0.1
    assert determine_crop_region(pts, w, h) == full  # torso not visible: start over


# ---- MoveNet on a figure with known joints -------------------------------------------------

# Renderer joint -> MoveNet joint ("r_" is the figure's own right, as COCO's "right_").
_PAIRS = [(f"{s[0]}_{j}", f"{s}_{j}") for s in ("left", "right")
          for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]


def _figure_errors(points, truth, names, swap=False):
    """Distance of each estimated joint to the renderer's, in torso lengths (T, 12)."""
    from vidaction.data.pose import JOINTS

    def mn(n):
        if swap:
            n = n.replace("left", "L").replace("right", "left").replace("L", "right")
        return JOINTS.index(n)

    ri = [names.index(a) for a, _ in _PAIRS]
    mi = [mn(b) for _, b in _PAIRS]
    torso = np.linalg.norm(truth[:, names.index("neck")] - truth[:, names.index("pelvis")],
                           axis=1)
    return np.linalg.norm(points[:, mi, :2] - truth[:, ri], axis=2) / torso[:, None]


def test_movenet_finds_the_rendered_figure_joints_within_the_measured_tolerance():
    """Measured (256 px, low variation, 4 classes x 3 actors, 20 frames): median error 0.11
    torso lengths, 88% of joints within half a torso, wrists worst. Checked with margin, and
    against the same keypoints with left/right swapped, which must be clearly worse."""
    from vidaction.data.builtin import JOINT_NAMES, render_clip, sample_params
    from vidaction.data.pose import PoseTracker

    tracker = PoseTracker("movenet", movenet_path())
    errs, swapped, scores = [], [], []
    for cls, seed in (("jumping_jacks", 0), ("clap", 1)):
        frames, truth = render_clip(cls, sample_params(cls, seed, variation="low"), size=256,
                                    n_frames=16)
        tracker.reset()
        pts = np.stack([tracker.step(f) for f in frames])
        assert pts.shape == (16, 17, 3) and pts.dtype == np.float32
        errs.append(_figure_errors(pts, truth, JOINT_NAMES))
        swapped.append(_figure_errors(pts, truth, JOINT_NAMES, swap=True))
        scores.append(pts[..., 2].mean())
    e, s = np.concatenate(errs), np.concatenate(swapped)
    assert np.median(e) < 0.25, np.median(e)
    assert (e < 0.5).mean() > 0.8, (e < 0.5).mean()
    legs = e[:, [3, 4, 5, 9, 10, 11]]  # hips, knees, ankles
    assert (legs < 0.5).mean() > 0.9
    assert np.median(s) > 2 * np.median(e)  # sides are the person's own
    assert min(scores) > 0.4


def test_tracking_raises_the_scores_on_a_real_clip_with_a_small_person():
    """jumping_jacks.mp4: the person fills the top half of a 794x710 frame. Measured mean
    score 0.48 on whole frames, 0.77 with tracking (all 64 frames)."""
    from vidaction.data.pose import estimate_video

    path = real_clip("jumping_jacks.mp4")
    tracked = estimate_video(path, weights=movenet_path(), track=True)
    whole = estimate_video(path, weights=movenet_path(), track=False)
    assert tracked.frames == whole.frames == 64
    assert (tracked.width, tracked.height, tracked.fps) == (794, 710, 10)
    assert tracked.mean_score() > whole.mean_score() + 0.15, (tracked.mean_score(),
                                                                whole.mean_score())
    nose, ankle = tracked.points[:, 0, 1], tracked.points[:, 15:17, 1].mean(1)
    assert (nose < ankle).all() and (ankle < 400).mean() > 0.9  # in the top 390 rows


def test_frames_of_other_shapes_are_refused_and_a_size_change_starts_over():
    from vidaction.data.pose import PoseTracker

    t = PoseTracker("movenet", movenet_path())
    with pytest.raises(ValueError, match="RGB uint8"):
        t.step(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        t.step(np.zeros((64, 64, 3), np.float32))
    a = t.step(np.zeros((64, 96, 3), np.uint8))
    b = t.step(np.zeros((128, 64, 3), np.uint8))
    assert a.shape == b.shape == (17, 3) and np.isfinite(b).all()


def test_a_file_that_is_not_movenet_is_one_line(tmp_path):
    from vidaction.data.pose import PoseModelError, PoseTracker

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.warns(UserWarning, match="not the published"), \
            pytest.raises(PoseModelError, match=r"x\.tflite: not a TFLite model"):
        PoseTracker("movenet", bad)
    other = shared_model("movinet_a0_stream_kinetics600_int8.tflite")
    with pytest.warns(UserWarning, match="not the published"), \
            pytest.raises(PoseModelError, match="not MoveNet SinglePose Lightning"):
        PoseTracker("movenet", other)
    with pytest.raises(PoseModelError, match="no such file"):
        PoseTracker("movenet", tmp_path / "missing.tflite")


# ---- the keypoint cache ---------------------------------------------------------------------

@pytest.fixture
def figure_video(tmp_path):
    from vidaction.data.builtin import render_clip, sample_params
    from vidaction.io import write_video

    frames, _ = render_clip("squats", sample_params("squats", 2, variation="low"), size=192,
                            n_frames=12)
    return write_video(tmp_path / "squats.mp4", frames, fps=12)


def test_second_call_reads_the_cache_and_changes_make_new_keys(figure_video, tmp_path,
                                                               monkeypatch):
    from vidaction.data.pose import cache as kc
    from vidaction.data.pose import cached_keypoints

    calls = []
    real = kc.estimate_video

    def counting(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(kc, "estimate_video", counting)
    d = tmp_path / "kpcache"
    first = cached_keypoints(figure_video, weights=movenet_path(), cache_dir=d)
    again = cached_keypoints(figure_video, weights=movenet_path(), cache_dir=d)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.points, again.points)
    assert (again.fps, again.width, again.height, again.model, again.joints) == \
        (first.fps, first.width, first.height, "movenet", first.joints)
    cached_keypoints(figure_video, weights=movenet_path(), cache_dir=d, track=False)
    assert len(calls) == 2  # the tracking flag is part of the key
    st = os.stat(figure_video)
    os.utime(figure_video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    cached_keypoints(figure_video, weights=movenet_path(), cache_dir=d)
    assert len(calls) == 3  # a changed file is computed again


def test_a_damaged_entry_is_recomputed_with_one_warning(figure_video, tmp_path):
    from vidaction.data.pose import cached_keypoints

    d = tmp_path / "kpcache"
    good = cached_keypoints(figure_video, weights=movenet_path(), cache_dir=d)
    (entry,) = d.rglob("*.kp")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = cached_keypoints(figure_video, weights=movenet_path(), cache_dir=d)
    msgs = [str(w.message) for w in caught]
    assert any("damaged entry" in m and "checksum" in m for m in msgs), msgs
    np.testing.assert_array_equal(good.points, again.points)
    assert entry.is_file()  # written again


def test_a_cache_that_cannot_be_written_warns_and_goes_on(figure_video, tmp_path):
    from vidaction.data.pose import cached_keypoints

    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kp = cached_keypoints(figure_video, weights=movenet_path(), cache_dir=blocker / "kp")
        cached_keypoints(figure_video, weights=movenet_path(), cache_dir=blocker / "kp")
    assert kp.frames == 12
    msgs = [str(w.message) for w in caught if "keypoint cache" in str(w.message)]
    assert len(msgs) == 1 and "cannot write" in msgs[0], msgs


def test_keypoint_files_read_back(figure_video, tmp_path):
    from vidaction.data.pose import Keypoints, estimate_video

    kp = estimate_video(figure_video, weights=movenet_path())
    (tmp_path / "a.npz").write_bytes(kp.to_npz())
    (tmp_path / "a.json").write_text(kp.to_json())
    z, j = Keypoints.load(tmp_path / "a.npz"), Keypoints.load(tmp_path / "a.json")
    np.testing.assert_array_equal(z.points, kp.points)
    np.testing.assert_allclose(j.points, kp.points, atol=0.006)
    for got in (z, j):
        assert (got.joints, got.fps, got.width, got.height, got.model, got.tracked) == \
            (kp.joints, kp.fps, kp.width, kp.height, kp.model, kp.tracked)


# ---- weights over HTTP ------------------------------------------------------------------------

@pytest.fixture
def server(loopback_server):
    return loopback_server


@pytest.fixture
def movenet_at(monkeypatch):
    """Point the MoveNet download at a URL of the test's choosing."""
    from dataclasses import replace

    from vidaction.data.pose import weights as pw

    def point(url: str) -> None:
        spec = pw.WEIGHTS["movenet"][0]
        monkeypatch.setitem(pw.WEIGHTS, "movenet", (replace(spec, url=url),))
        pw._resolved.clear()

    yield point
    pw._resolved.clear()


def test_weights_are_fetched_once_checked_and_cached(server, movenet_at, tmp_path):
    from vidaction.data.pose import resolve_weights

    body = movenet_path().read_bytes()
    server.routes["/m.tflite"] = ("ok", body)
    movenet_at(server.url("/m.tflite"))
    files = resolve_weights("movenet", cache_dir=tmp_path)
    assert files["model"] == tmp_path / "weights" / "pose" / MOVENET
    assert files["model"].read_bytes() == body
    from vidaction.data.pose import weights as pw

    pw._resolved.clear()
    assert resolve_weights("movenet", cache_dir=tmp_path) == files
    assert server.hits == ["/m.tflite"]  # the second call used the cached copy


@pytest.mark.parametrize("mode", ["cut", "wrong"])
def test_a_truncated_or_wrong_download_is_refused_naming_the_url_and_the_remedy(
        server, movenet_at, tmp_path, mode):
    from vidaction.data.pose import resolve_weights
    from vidaction.errors import VidactionError

    body = movenet_path().read_bytes()
    server.routes["/m.tflite"] = (mode, body[: len(body) // 2] if mode == "cut"
                                  else body[:-1] + b"x")
    movenet_at(server.url("/m.tflite"))
    with warnings.catch_warnings(record=True), pytest.raises(VidactionError) as e:
        warnings.simplefilter("always")
        resolve_weights("movenet", cache_dir=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "--weights PATH" in msg and "/m.tflite" in msg, msg
    assert len(server.hits) == 2  # fetched again once
    assert not list((tmp_path / "weights" / "pose").glob("*.tflite"))  # nothing half kept


def test_offline_is_one_line_naming_the_url_and_the_remedy(movenet_at, tmp_path):
    import socket

    from vidaction.data.pose import PoseTracker
    from vidaction.errors import VidactionError

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    url = f"http://127.0.0.1:{port}/m.tflite"
    movenet_at(url)
    with pytest.raises(VidactionError) as e:
        PoseTracker("movenet", cache_dir=tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"could not reach {url}") and "--weights PATH" in msg, msg
    assert "\n" not in msg


def test_the_official_urls_are_the_publishers():
    from vidaction.data.pose import WEIGHTS

    assert WEIGHTS["movenet"][0].url.startswith(
        "https://tfhub.dev/google/lite-model/movenet/singlepose/lightning/tflite/int8/4")
    for model in ("blazepose", "blazepose-full"):
        for spec in WEIGHTS[model]:
            assert spec.url == f"https://storage.googleapis.com/mediapipe-assets/{spec.filename}"
    shas = {s.sha256 for specs in WEIGHTS.values() for s in specs}
    assert len(shas) == 4 and all(len(s) == 64 for s in shas)


def test_a_local_copy_that_differs_is_used_with_a_warning(tmp_path):
    from vidaction.data.pose import resolve_weights

    copy = tmp_path / "mine.tflite"
    copy.write_bytes(movenet_path().read_bytes() + b"\0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = resolve_weights("movenet", copy)
    assert files == {"model": copy}
    assert any("not the published" in str(w.message) for w in caught)


# ---- BlazePose ----------------------------------------------------------------------------------

def blazepose_dir():
    shared_model("blazepose/pose_detection.tflite")
    return shared_model("blazepose/pose_landmark_lite.tflite").parent


def test_ssd_anchors_match_the_detector_layout():
    from vidaction.data.pose.blazepose import ssd_anchors

    a = ssd_anchors()
    assert a.shape == (2254, 2)  # 28x28x2 + 14x14x2 + 7x7x6
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], a[0])  # two anchors per cell at stride 8
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert (a[1568 + 392:1568 + 392 + 6] == a[1568 + 392]).all()  # six at stride 32


def test_region_stands_the_body_upright():
    from vidaction.data.pose.blazepose import roi_from

    c, side, rot = roi_from(np.array([100.0, 200.0]), np.array([100.0, 100.0]))  # upright
    assert side == pytest.approx(250.0) and rot == pytest.approx(0.0)
    _, _, rot = roi_from(np.array([100.0, 200.0]), np.array([200.0, 200.0]))  # lying, head right
    assert rot == pytest.approx(np.pi / 2)


def test_blazepose_finds_the_rendered_figure_joints_within_the_measured_tolerance():
    """Measured (256 px, low variation, 4 clips, 16 frames): median error 0.09 torso
    lengths, 96% of joints within half a torso, legs 98%."""
    from vidaction.data.builtin import JOINT_NAMES, render_clip, sample_params
    from vidaction.data.pose import PoseTracker, to_coco17

    tracker = PoseTracker("blazepose", blazepose_dir())
    assert len(tracker.joints) == 33
    errs = []
    for cls, seed in (("jumping_jacks", 0), ("clap", 1)):
        frames, truth = render_clip(cls, sample_params(cls, seed, variation="low"), size=256,
                                    n_frames=12)
        tracker.reset()
        pts = np.stack([tracker.step(f) for f in frames])
        assert pts.shape == (12, 33, 3) and np.isfinite(pts).all()
        errs.append(_figure_errors(to_coco17(pts, "blazepose"), truth, JOINT_NAMES))
    e = np.concatenate(errs)
    assert np.median(e) < 0.2 and (e < 0.5).mean() > 0.9, (np.median(e), (e < 0.5).mean())


def test_blazepose_weights_as_a_folder_or_as_files(tmp_path):
    from vidaction.data.pose import PoseModelError, resolve_weights

    d = blazepose_dir()
    by_folder = resolve_weights("blazepose", d)
    assert by_folder == {"detector": d / "pose_detection.tflite",
                         "landmark": d / "pose_landmark_lite.tflite"}
    full = resolve_weights("blazepose-full", [d / "pose_landmark_full.tflite",
                                              d / "pose_detection.tflite"])
    assert full["landmark"].name == "pose_landmark_full.tflite"
    # one landmark file: its detector is found beside it
    assert resolve_weights("blazepose", d / "pose_landmark_lite.tflite") == by_folder
    lone = tmp_path / "pose_landmark_lite.tflite"
    lone.write_bytes((d / "pose_landmark_lite.tflite").read_bytes())
    with pytest.raises(PoseModelError, match="needs pose_detection.tflite"):
        resolve_weights("blazepose", lone)
