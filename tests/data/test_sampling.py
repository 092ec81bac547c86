import numpy as np
import pytest

from conftest import frame_id, make_video
from vidaction.data.sampling import (
    SamplingConfig,
    center_crop,
    clip_indices,
    eval_starts,
    fit_geometry,
    letterbox,
    sample_clip,
    sample_clips,
    sampled_indices,
    train_start,
)


def test_train_start_random_in_range_and_seeded():
    cfg = SamplingConfig(n_frames=8, frame_step=15)  # span 106
    starts = [train_start(200, cfg, np.random.default_rng(s)) for s in range(300)]
    assert min(starts) >= 0 and max(starts) <= 200 - 106
    assert len(set(starts)) > 40  # actually random
    assert max(starts) == 94 and min(starts) == 0  # both ends reachable, none past the end
    a = [train_start(200, cfg, np.random.default_rng(7)) for _ in range(3)]
    b = [train_start(200, cfg, np.random.default_rng(7)) for _ in range(3)]
    assert a == b


def test_short_video_starts_at_zero():
    cfg = SamplingConfig(n_frames=8, frame_step=15)
    assert train_start(50, cfg, np.random.default_rng(0)) == 0
    assert eval_starts(50, cfg, 3) == [0, 0, 0]


def test_eval_starts_repeatable_and_evenly_spaced():
    cfg = SamplingConfig(n_frames=8, frame_step=15)
    assert eval_starts(206, cfg, 1) == [50]  # centre clip
    assert eval_starts(206, cfg, 3) == [0, 50, 100]
    assert eval_starts(206, cfg, 3) == eval_starts(206, cfg, 3)


def test_sampled_indices_cover_eval_clips_training_range_ends_and_last_frame():
    cfg = SamplingConfig(n_frames=8, frame_step=15)  # span 106, starts 0..94 in 200 frames
    got = sampled_indices(200, cfg, (1, 3))
    assert got == sorted(set(got)) and got[-1] == 199
    for start in (0, 47, 94):  # 3 clips; 0 and 94 are also training's first and last start
        assert set(clip_indices(start, 200, cfg)[0].tolist()) <= set(got)
    assert len(got) == 3 * 8  # the clips do not overlap; 199 ends the last one
    assert sampled_indices(10, cfg) == [0, 9]  # short video: one clip at 0, and the last frame


def test_clip_indices_and_mask():
    cfg = SamplingConfig(n_frames=4, frame_step=3)
    idx, mask = clip_indices(2, 10, cfg)
    assert idx.tolist() == [2, 5, 8, 11]
    assert mask.tolist() == [True, True, True, False]


@pytest.mark.parametrize("w,h", [(320, 240), (240, 320), (100, 100), (171, 64)])
def test_letterbox_keeps_aspect_and_pads_symmetrically(w, h):
    frame = np.full((h, w, 3), 200, np.uint8)
    out = letterbox(frame, 224)
    assert out.shape == (224, 224, 3)
    rows = np.flatnonzero(out[:, 112, 0] > 100)
    cols = np.flatnonzero(out[112, :, 0] > 100)
    content_h, content_w = len(rows), len(cols)
    assert content_w / content_h == pytest.approx(w / h, rel=0.03)
    top, bottom = rows[0], 223 - rows[-1]
    left, right = cols[0], 223 - cols[-1]
    assert abs(top - bottom) <= 1 and abs(left - right) <= 1
    assert max(content_h, content_w) == 224


def test_center_crop_takes_the_middle_square():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, 40:280] = 255  # the centre 240x240 square is white, the sides black
    out = center_crop(frame, 112)
    assert out.shape == (112, 112, 3)
    assert out.min() == 255


def test_fit_geometry_crop_box():
    assert fit_geometry(320, 240, 64, "crop") == (64, 64, (40, 0, 240))


def test_sample_clip_reads_the_right_frames(tmp_path):
    path = make_video(tmp_path / "v.avi", 100, width=64, height=48)
    cfg = SamplingConfig(n_frames=5, frame_step=7, size=64)
    clip, mask = sample_clip(path, cfg, start=10)
    assert clip.shape == (5, 64, 64, 3) and clip.dtype == np.uint8 and mask.all()
    # letterbox: 64x48 -> 64x48 content with 8 black rows above and below
    assert clip[:, :8].max() == 0 and clip[:, -8:].max() == 0
    assert [frame_id(f[8:56]) for f in clip] == [10, 17, 24, 31, 38]


def test_sample_clip_eval_is_deterministic_train_is_seeded(tmp_path):
    path = make_video(tmp_path / "v.mp4", 100)
    cfg = SamplingConfig(n_frames=4, frame_step=5, size=32)
    a, _ = sample_clip(path, cfg)
    b, _ = sample_clip(path, cfg)
    assert np.array_equal(a, b)
    t1, _ = sample_clip(path, cfg, training=True, rng=np.random.default_rng(3))
    t2, _ = sample_clip(path, cfg, training=True, rng=np.random.default_rng(3))
    assert np.array_equal(t1, t2)
    firsts = {frame_id(sample_clip(path, SamplingConfig(4, 5, size=64), training=True,
                                   rng=np.random.default_rng(s))[0][0][8:56])
              for s in range(12)}
    assert len(firsts) > 4


def test_short_clip_padded_with_black_not_repeated(tmp_path):
    path = make_video(tmp_path / "short.avi", 3)
    cfg = SamplingConfig(n_frames=8, frame_step=2, size=64)
    clip, mask = sample_clip(path, cfg, training=True, rng=np.random.default_rng(0))
    assert mask.tolist() == [True, True] + [False] * 6
    assert [frame_id(f[8:56]) for f in clip[:2]] == [0, 2]
    assert clip[2:].max() == 0


def test_one_frame_video(tmp_path):
    path = make_video(tmp_path / "one.mp4", 1)
    clip, mask = sample_clip(path, SamplingConfig(n_frames=4, frame_step=15, size=32))
    assert mask.tolist() == [True, False, False, False]
    assert clip[0].max() > 0 and clip[1:].max() == 0


def test_crop_mode(tmp_path):
    path = make_video(tmp_path / "c.avi", 20, width=96, height=48)
    clip, _ = sample_clip(path, SamplingConfig(n_frames=2, frame_step=1, size=48,
                                               resize="crop"), start=0)
    assert clip.shape == (2, 48, 48, 3)


def test_multi_clip_sampling(tmp_path):
    path = make_video(tmp_path / "m.avi", 106)
    cfg = SamplingConfig(n_frames=3, frame_step=3, size=64)  # span 7, max start 99
    clips, masks = sample_clips(path, cfg, clips=4)
    assert clips.shape == (4, 3, 64, 64, 3) and masks.all()
    assert [frame_id(c[0][8:56]) for c in clips] == [0, 33, 66, 99]
    again, _ = sample_clips(path, cfg, clips=4)
    assert np.array_equal(clips, again)


def test_bad_config():
    with pytest.raises(ValueError):
        SamplingConfig(n_frames=0)
    with pytest.raises(ValueError):
        SamplingConfig(resize="stretch")
