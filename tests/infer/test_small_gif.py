"""GIF overlays stay small: at most 8 frames a second, 320 px, one palette; a 10-second
240p overlay at most about 2 MB (it was 15 MB)."""

import numpy as np
from PIL import Image

from conftest import real_clip
from vidaction.infer.overlay import (
    GIF_MAX_FPS,
    GIF_MAX_SIDE,
    OverlayWriter,
    overlay_video,
    pct_text,
)


def _moving(i: int, w: int = 426, h: int = 240) -> np.ndarray:
    rng = np.random.default_rng(i)
    f = np.full((h, w, 3), 120, np.uint8)
    x = (i * 5) % (w - 40)
    f[60:180, x:x + 40] = rng.integers(0, 255, (120, 40, 3), dtype=np.uint8)
    return f


def test_gif_frames_are_capped_in_rate_and_size_but_keep_real_time(tmp_path):
    out = tmp_path / "o.gif"
    with OverlayWriter(out, 25) as w:
        for i in range(250):  # 10 s at 25 fps
            w.write(_moving(i))
    im = Image.open(out)
    assert max(im.size) <= GIF_MAX_SIDE
    assert im.n_frames <= 10 * GIF_MAX_FPS + 1
    total = 0
    for k in range(im.n_frames):
        im.seek(k)
        total += im.info["duration"]
    assert 9500 <= total <= 10500  # the clip still lasts 10 s


def test_a_ten_second_240p_overlay_is_at_most_2_mb(tmp_path):
    src = real_clip("flipping_a_pancake.mkv")  # 426x240, 30 fps, 310 frames
    out = tmp_path / "pancake.gif"
    overlay_video(src, out, lambda i: [("flipping pancake", 0.934), ("cooking", 0.041)])
    assert out.stat().st_size <= 2.0e6, out.stat().st_size


def test_probabilities_read_one_way():
    assert pct_text(0.9941) == "99.4%" and pct_text(1) == "100.0%"
