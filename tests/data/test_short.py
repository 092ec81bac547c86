"""A video shorter than one clip is filled as --short says, and every verb says so: a
warning per video and "padded" in predict --json, a count in data check."""

import json

import numpy as np
import pytest

from conftest import frame_id, make_video, real_clip
from vidaction.data.sampling import (
    DEFAULT_SHORT,
    SHORT_MODES,
    SamplingConfig,
    clip_indices,
    read_clips,
)
from vidaction.io import VideoReader


def test_each_mode_fills_a_short_clip_its_own_way():
    cfg = SamplingConfig(8, 15)  # spans 106 frames
    idx, mask = clip_indices(0, 21, cfg)
    assert mask.tolist() == [True, True] + [False] * 6  # pad: black, masked
    idx, mask = clip_indices(0, 21, SamplingConfig(8, 15, short="loop"))
    assert mask.all() and idx.tolist() == [0, 15, 9, 3, 18, 12, 6, 0]  # MMAction2's mod
    idx, mask = clip_indices(0, 21, SamplingConfig(8, 15, short="stretch"))
    assert mask.all() and idx[0] == 0 and idx[-1] == 20 and (np.diff(idx) > 0).all()


def test_a_long_enough_video_is_the_same_in_every_mode():
    for mode in SHORT_MODES:
        idx, mask = clip_indices(10, 200, SamplingConfig(8, 15, short=mode))
        assert idx.tolist() == list(range(10, 116, 15)) and mask.all()


def test_pad_stays_out_of_saved_configs_and_unknown_modes_are_refused():
    assert "short" not in SamplingConfig().as_dict()  # runs and cache keys from before
    assert SamplingConfig(short="loop").as_dict()["short"] == "loop"
    assert SamplingConfig(**SamplingConfig(short="stretch").as_dict()).short == "stretch"
    with pytest.raises(ValueError, match="short must be one of"):
        SamplingConfig(short="mirror")
    assert DEFAULT_SHORT in SHORT_MODES
    assert SamplingConfig(8, 15).is_short(105) and not SamplingConfig(8, 15).is_short(106)


def test_looped_frames_are_real_frames(tmp_path):
    path = make_video(tmp_path / "v.mp4", 20)
    with VideoReader(path) as r:
        clips, masks = read_clips(r, [0], SamplingConfig(6, 5, size=64, short="loop"))
    assert masks.all()
    # letterboxed 64x48 -> 64x64: the id band sits 8 rows down
    assert [frame_id(f[8:56]) for f in clips[0]] == [0, 5, 10, 15, 0, 5]


class _Fake:
    """A predictor that needs no TensorFlow: always the same logits."""

    classes = ["a", "b"]
    config = {"sampling": {"n_frames": 8, "frame_step": 15, "size": 32}}

    def predict_logits(self, clips):
        return np.tile([[2.0, 0.0]], (len(clips), 1))


def test_predict_warns_and_marks_a_short_video(tmp_path, capsys):
    from vidaction.infer.predict import _predict_one

    cfg = SamplingConfig(8, 15, size=32, short="pad")
    short = make_video(tmp_path / "short.mp4", 21)
    record, text, _ = _predict_one(_Fake(), short, cfg, 3, 2)
    err = capsys.readouterr().err
    assert record["padded"] is True and record["short"] == "pad"
    assert record["clips"] == 1 and "1 clip averaged" in text[0]  # not 3 copies of one clip
    assert f"vidaction: warning: {short}: 21 frames, shorter than the 106 one clip spans; " \
           "padded with black frames" in err
    json.dumps(record)
    long = make_video(tmp_path / "long.mp4", 110)
    record, _, _ = _predict_one(_Fake(), long, cfg, 3, 2)
    assert record["padded"] is False and record["short"] is None and record["clips"] == 3
    assert "warning" not in capsys.readouterr().err


def test_data_check_counts_short_videos(tmp_path):
    from vidaction.data.check import check_dataset, format_report

    for cls, n in (("a", 21), ("b", 120)):
        for k in range(2):
            make_video(tmp_path / "d" / "train" / cls / f"{k}.mp4", n)
            make_video(tmp_path / "d" / "test" / cls / f"{k}.mp4", n)
    report = check_dataset(tmp_path / "d", progress=False,
                           sampling=SamplingConfig(8, 15))
    assert len(report.short) == 4
    assert report.as_dict()["summary"]["shorter_than_a_clip"] == 4
    assert "4 of 8 readable videos are shorter than one clip (106 frames" in \
        format_report(report)


def test_the_real_deadlift_clip_is_short_at_the_defaults():
    path = real_clip("deadlift_64.mp4")
    with VideoReader(path) as r:
        assert SamplingConfig().is_short(r.frame_count)


def test_evaluate_loader_marks_short_videos(tmp_path):
    from vidaction.models.scoring import load_videos

    paths = [make_video(tmp_path / "s.mp4", 21), make_video(tmp_path / "l.mp4", 120)]
    got = list(load_videos(paths, SamplingConfig(8, 15, size=32, short="loop"), clips=2))
    assert [g.short for g in got] == [True, False]
    assert all(g.clips.shape == (2, 8, 32, 32, 3) for g in got)


class _Recording(_Fake):
    """_Fake that keeps what it was fed."""

    def __init__(self, drops_padding: bool = False):
        self.fed = []
        self.drops_padding = drops_padding

    def predict_logits(self, clips):
        self.fed.append(np.array(clips))
        return super().predict_logits(clips)


@pytest.mark.parametrize("mode", SHORT_MODES)
def test_timeline_fills_a_video_shorter_than_one_window_as_short_says(mode, tmp_path, capsys):
    from vidaction.infer.predict import _timeline_one

    path = make_video(tmp_path / "short.mp4", 21)
    cfg = SamplingConfig(6, 5, size=64, short=mode)  # a 26-frame window: 5 real frames
    model = _Recording()
    record, _, _ = _timeline_one(model, path, cfg, 6, 1, 2, tmp_path / "tl", False)
    (clip,) = model.fed[0]
    black = [int(f.max() == 0) for f in clip]
    err = capsys.readouterr().err
    assert record["short"] == mode and record["padded"] is True
    assert f"{path}: 21 frames, shorter than the 26 one clip spans" in err
    assert json.loads((tmp_path / "tl.json").read_text())["short"] == mode
    ids = [frame_id(f[8:56]) for f, b in zip(clip, black, strict=True) if not b]
    if mode == "pad":
        assert black == [0, 0, 0, 0, 0, 1] and ids == [0, 5, 10, 15, 20]
    elif mode == "loop":
        assert black == [0] * 6 and ids == [0, 5, 10, 15, 20, 4]
    else:
        assert black == [0] * 6 and ids[0] == 0 and ids[-1] == 20


def test_timeline_of_a_long_video_or_a_model_that_drops_padding_fills_nothing(tmp_path,
                                                                              capsys):
    from vidaction.infer.predict import _timeline_one

    cfg = SamplingConfig(6, 5, size=64, short="pad")
    record, _, _ = _timeline_one(_Recording(drops_padding=True), make_video(
        tmp_path / "s.mp4", 21), cfg, 6, 1, 2, tmp_path / "a", False)
    assert record["short"] is None
    record, _, _ = _timeline_one(_Recording(), make_video(tmp_path / "l.mp4", 90),
                                 SamplingConfig(6, 5, size=64, short="loop"), 6, 1, 2,
                                 tmp_path / "b", False)
    assert record["short"] is None and record["windows"] == 3
    assert "warning" not in capsys.readouterr().err
