import numpy as np
import pytest

from vidaction.errors import UserError
from vidaction.infer.overlay import OverlayWriter, draw_label, overlay_video
from vidaction.io import probe, read_frames

GREEN = np.array([60, 200, 90])


def _changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """(height, width) of the region draw_label touched."""
    ys, xs = np.nonzero(np.any(before != after, axis=2))
    return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


def _bar_pixels(img: np.ndarray) -> int:
    return int(np.all(np.abs(img.astype(int) - GREEN) < 8, axis=2).sum())


@pytest.mark.parametrize("h,w", [(96, 96), (1080, 1920), (240, 135)])
def test_draw_label_keeps_size_and_leaves_input_alone(h, w):
    frame = np.full((h, w, 3), 200, np.uint8)
    keep = frame.copy()
    out = draw_label(frame, [("wave_one_hand", 0.8), ("clap", 0.15)])
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(frame, keep)
    bh, bw = _changed_box(frame, out)
    assert bw <= w and bh < h / 2  # a corner box, not the whole frame
    assert (out > 230).all(axis=2).sum() > 20  # light text on the dark box


def test_label_scales_with_frame_size_and_text_depends_on_label():
    small = np.full((96, 96, 3), 200, np.uint8)
    big = np.full((1080, 1920, 3), 200, np.uint8)
    hs, _ = _changed_box(small, draw_label(small, [("clap", 0.5)]))
    hb, _ = _changed_box(big, draw_label(big, [("clap", 0.5)]))
    assert hb > 4 * hs  # the box grows with the frame (small frames get a minimum font)
    a = draw_label(big, [("clap", 0.5)])
    b = draw_label(big, [("squats", 0.5)])
    assert not np.array_equal(a, b)


def test_bar_length_follows_probability():
    frame = np.full((360, 640, 3), 30, np.uint8)
    quarter = _bar_pixels(draw_label(frame, [("clap", 0.25)]))
    most = _bar_pixels(draw_label(frame, [("clap", 0.75)]))
    assert quarter > 0 and 2.5 < most / quarter < 3.5
    assert _bar_pixels(draw_label(frame, [("clap", 0.0)])) == 0


def test_tiny_and_grayscale_frames_are_enlarged_to_readable_size():
    out = draw_label(np.full((16, 24), 90, np.uint8), [("a_long_label_name", 0.9)])
    assert min(out.shape[:2]) >= 96 and out.shape[2] == 3
    assert out.shape[0] / out.shape[1] == pytest.approx(16 / 24)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_overlay_writer_writes_every_frame_up_to_the_gif_rate(tmp_path, suffix):
    out = tmp_path / f"o{suffix}"
    with OverlayWriter(out, fps=20) as w:
        for i in range(23):
            w.write(draw_label(np.full((64, 80, 3), i * 10, np.uint8), [("clap", i / 23)]))
    info = probe(out)
    # a GIF keeps at most 8 frames a second (test_small_gif.py): 23 at 20 fps -> 10 at 8
    # (GIF delays are in 1/100 s, and Pillow merges frames that quantise alike)
    assert (info.width, info.height) == (160, 128)  # enlarged x2
    if suffix == ".mp4":
        assert info.frame_count == 23 and info.fps == pytest.approx(20, rel=0.05)
    else:
        assert 8 <= info.frame_count <= 10 and info.fps == pytest.approx(8, rel=0.06)
    frames = read_frames(out)
    assert frames[1].mean() < frames[-2].mean()  # frames stay in order


def test_overlay_writer_is_atomic_and_refuses_other_suffixes(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError), OverlayWriter(out, fps=25) as w:
        w.write(np.zeros((32, 32, 3), np.uint8))
        raise RuntimeError("stopped")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match=r"o\.txt.*\.mp4 or \.gif"):
        OverlayWriter(tmp_path / "o.txt", fps=25)


def test_overlay_video_labels_each_source_frame(tmp_path, video_factory):
    src = video_factory("src.mp4", 17, width=128, height=96)
    asked = []

    def top(i):
        asked.append(i)
        return [("first" if i < 8 else "second", 0.9)]

    n = overlay_video(src, tmp_path / "o.mp4", top)  # (a GIF keeps 8 frames a second)
    assert n == 17 and asked == list(range(17))
    assert probe(tmp_path / "o.mp4").frame_count == 17
