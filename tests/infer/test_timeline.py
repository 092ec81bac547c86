import csv
import json

import numpy as np
import pytest

import vidaction.infer.timeline as timeline
from vidaction.data.builtin import ClipParams, render_clip
from vidaction.data.sampling import SamplingConfig, fit_frame
from vidaction.infer.timeline import (
    compute_timeline,
    moving_average,
    plan_windows,
    write_timeline,
)
from vidaction.io import write_video

ORDER = ["jumping_jacks", "clap", "squats", "jumping_jacks"]
SEG = 60  # frames per joined clip
CFG = SamplingConfig(n_frames=4, frame_step=2, size=32)


def _render(cls: str, phase: float) -> np.ndarray:
    return render_clip(cls, ClipParams(seed=1, phase=phase), size=64, n_frames=SEG)[0]


class PosePredictor:
    """A stand-in model that separates the classes from the pixels: 1-nearest-neighbour of
    each frame among frames of a reference clip per class (rendered at another phase)."""

    classes = sorted(set(ORDER))
    config: dict = {}

    def __init__(self, size: int):
        self.refs = [np.stack([fit_frame(f, size, "letterbox") for f in _render(c, 0.37)])
                     .astype(np.float32) for c in self.classes]

    def predict_logits(self, clips: np.ndarray) -> np.ndarray:
        out = []
        for clip in clips.astype(np.float32):
            dist = [np.mean([np.abs(ref - f).mean(axis=(1, 2, 3)).min() for f in clip])
                    for ref in self.refs]
            out.append(-np.array(dist))
        return np.array(out)


class GrayPredictor:
    """Dark frames are class "dark", bright ones "bright"."""

    classes = ["bright", "dark"]
    config: dict = {}

    def predict_logits(self, clips: np.ndarray) -> np.ndarray:
        m = clips.reshape(len(clips), -1).mean(axis=1) / 255.0
        return np.stack([m, 1 - m], axis=1) * 8


@pytest.fixture(scope="module")
def joined(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "joined clips.mp4"
    write_video(path, np.concatenate([_render(c, 0.0) for c in ORDER]), fps=25)
    return path


def test_windows_tile_the_video_and_the_tail_gets_an_end_aligned_window():
    ws = plan_windows(100, window=4, stride=4, frame_step=3)  # 34 sampled frames
    assert [w.start_frame for w in ws[:3]] == [0, 12, 24]
    assert all(w.end_frame == w.start_frame + 11 for w in ws[:-1])
    assert [int(i) for i in ws[0].indices] == [0, 3, 6, 9]
    assert ws[-2].start_frame == 84 and ws[-1].start_frame == 90  # 30..33 sampled, at the end
    assert ws[-1].end_frame == 99 and ws[-1].mask.all()
    consecutive = plan_windows(16, window=8, stride=8, frame_step=1)
    assert [(w.start_frame, w.end_frame) for w in consecutive] == [(0, 7), (8, 15)]
    overlap = plan_windows(40, window=8, stride=2, frame_step=1)
    assert [w.start_frame for w in overlap] == list(range(0, 33, 2))


def test_a_video_shorter_than_one_window_gets_one_padded_window():
    (w,) = plan_windows(5, window=4, stride=4, frame_step=3)
    assert (w.start_frame, w.end_frame) == (0, 4)
    assert w.mask.tolist() == [True, True, False, False]
    (one,) = plan_windows(1, window=8, stride=8, frame_step=15)
    assert one.mask.sum() == 1 and one.end_frame == 0


def test_moving_average():
    p = np.array([[1.0, 0], [1, 0], [0, 1], [1, 0], [1, 0]])
    np.testing.assert_array_equal(moving_average(p, 1), p)
    s = moving_average(p, 3)
    np.testing.assert_allclose(s[2], [2 / 3, 1 / 3])
    np.testing.assert_allclose(s[0], [1, 0])  # only the windows that exist at the ends
    np.testing.assert_allclose(s.sum(axis=1), 1)
    np.testing.assert_allclose(moving_average(np.full((6, 3), 1 / 3), 4), 1 / 3)


def test_timeline_finds_the_joins_within_one_window(joined, tmp_path):
    tl = compute_timeline(PosePredictor(CFG.size), joined, CFG, stride=4)
    span = CFG.n_frames * CFG.frame_step  # frames per window
    assert tl.frame_count == SEG * len(ORDER) and len(tl.windows) == tl.frame_count // span
    segs = tl.segments()
    assert [s["label"] for s in segs] == ORDER
    found = [s["start_frame"] for s in segs[1:]]
    for true, got in zip([SEG, 2 * SEG, 3 * SEG], found, strict=True):
        assert abs(got - true) <= span, (true, got)
    assert segs[0]["start_s"] == 0 and segs[-1]["end_frame"] == tl.frame_count - 1

    paths = write_timeline(tl, tmp_path / "out" / "t l")
    assert [p.name for p in paths] == ["t l.csv", "t l.json", "t l.png"]
    rows = list(csv.DictReader(paths[0].open()))
    assert list(rows[0]) == ["window", "start_s", "end_s", "start_frame", "end_frame", "label",
                             "prob"]
    assert len(rows) == len(tl.windows)
    assert [r["label"] for r in rows] == [r["label"] for r in tl.rows()]
    assert float(rows[1]["start_s"]) == pytest.approx(span / 25)
    data = json.loads(paths[1].read_text())
    assert data["segments"] == segs and len(data["probs"]) == len(rows)
    from PIL import Image

    img = Image.open(paths[2])
    assert img.format == "PNG" and img.size[0] >= 1000


@pytest.fixture(scope="module")
def blip(tmp_path_factory):
    """200 dark frames with 8 bright ones (one window) at 96..103."""
    level = np.full(200, 30, np.uint8)
    level[96:104] = 220
    path = tmp_path_factory.mktemp("blip") / "blip.mp4"
    write_video(path, [np.full((32, 32, 3), v, np.uint8) for v in level], fps=20)
    return path


def test_smoothing_removes_a_one_window_blip(blip):
    cfg = SamplingConfig(n_frames=8, frame_step=1, size=32)
    raw = compute_timeline(GrayPredictor(), blip, cfg, stride=8)
    assert [r["label"] for r in raw.rows()].count("bright") == 1
    assert raw.rows()[12]["label"] == "bright" and raw.rows()[12]["start_s"] == 96 / 20
    smooth = compute_timeline(GrayPredictor(), blip, cfg, stride=8, smooth=5)
    assert {r["label"] for r in smooth.rows()} == {"dark"}
    assert smooth.rows()[12]["prob"] < raw.rows()[11]["prob"]  # still shows the dip
    np.testing.assert_allclose(smooth.raw, raw.raw)


def test_long_videos_are_read_a_few_windows_at_a_time(blip, monkeypatch):
    cfg = SamplingConfig(n_frames=8, frame_step=1, size=32)
    whole = compute_timeline(GrayPredictor(), blip, cfg, stride=8, thumbnails=0)
    sizes = []
    real = timeline.read_index_sets

    def spy(reader, pairs, c):
        sizes.append(len(pairs))
        return real(reader, pairs, c)

    monkeypatch.setattr(timeline, "CHUNK", 3)
    monkeypatch.setattr(timeline, "read_index_sets", spy)
    chunked = compute_timeline(GrayPredictor(), blip, cfg, stride=8, thumbnails=0)
    assert max(sizes) == 3 and sum(sizes) == len(whole.windows) == 25
    np.testing.assert_allclose(chunked.raw, whole.raw)
