"""Labels drawn on video frames, and a writer that saves such frames as MP4 or GIF.

Used by `predict --overlay` and `stream --overlay`: a dark translucent box in the top-left
corner holds the top label, its probability as a bar and a percentage, and (on frames large
enough) the runners-up. Sizes follow the frame, so the text reads the same at 96 px and at
1080p.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

# Frames whose short side is below this are enlarged by an integer factor first: a label
# cannot be read in a 32 px frame.
MIN_SIDE = 96
# GIFs are for sharing, and GIF has no inter-frame compression beyond "unchanged pixels":
# a 10 s 426x240 overlay was 15 MB at 30 fps, 480 px and a palette per frame. At most 8
# frames a second, 320 px and one 96-colour palette for the whole clip (no dithering, so
# still pixels stay equal and are not stored again) it is 1.9 MB; an MP4 stays the choice
# for full quality.
GIF_MAX_SIDE = 320
GIF_MAX_FPS = 8.0
GIF_COLORS = 96
VIDEO_MAX_SIDE = 1920  # 4K inputs give 1080p overlays: the label reads the same, 4x less work
BAR_RGB = (60, 200, 90)
TRACK_RGB = (70, 70, 70)


def pct_text(p: float) -> str:
    """A probability as every output prints it: "99.4%"."""
    return f"{float(p) * 100:.1f}%"


@lru_cache(maxsize=32)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font


def enlarge(frame: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """Nearest-neighbour upscale by the smallest integer factor giving `min_side` pixels."""
    side = min(frame.shape[:2])
    if side >= min_side:
        return frame
    k = -(-min_side // max(side, 1))
    return np.repeat(np.repeat(frame, k, axis=0), k, axis=1)


def _fit_text(draw, text: str, size: int, width: int, min_size: int) -> tuple[str, object]:
    """Shrink the font down to `min_size`, then cut the text with an ellipsis, to fit."""
    while size > min_size and draw.textlength(text, font=_font(size)) > width:
        size -= 1
    font = _font(size)
    if draw.textlength(text, font=font) <= width:
        return text, font
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…", font


def draw_label(frame: np.ndarray, top: list[tuple[str, float]]) -> np.ndarray:
    """A copy of the RGB uint8 `frame` with `top` [(label, probability), ...] drawn on it.

    The first entry gets the large line and the bar; up to two more are listed below it when
    the frame's short side is at least 200 px. Frames smaller than 96 px on their short side
    come back enlarged (integer factor, nearest neighbour) so the text stays readable.
    """
    from PIL import Image, ImageDraw

    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    frame = enlarge(np.ascontiguousarray(frame[:, :, :3], dtype=np.uint8))
    h, w = frame.shape[:2]
    side = min(h, w)
    if not top:
        return frame.copy()
    big = max(11, round(side / 18))
    small = max(9, round(big * 0.7))
    pad = max(2, big // 4)
    extra = [f"{pct_text(p)}  {lab}" for lab, p in top[1:3]] if side >= 200 else []
    label, prob = top[0]
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    natural = max([draw.textlength(str(label), font=_font(big)), big * 7.0]
                  + [draw.textlength(t, font=_font(small)) for t in extra])
    inner = int(min(w - 4 * pad, natural))
    box_w = inner + 2 * pad
    prob = float(np.clip(prob, 0.0, 1.0))
    text, font = _fit_text(draw, str(label), big, inner, max(8, big * 2 // 3))
    pct = pct_text(prob)
    pct_font = _font(small)
    pct_w = draw.textlength(" 100.0%", font=pct_font)
    bar_h = max(3, big // 3)
    line_h = round(big * 1.2)
    small_h = round(small * 1.25)
    box_h = pad + line_h + max(bar_h, small_h) + len(extra) * small_h + pad

    # Translucent box: blend by hand, PIL's RGB draw has no alpha.
    x0, y0 = pad, pad
    x1, y1 = min(w, x0 + box_w), min(h, y0 + box_h)
    frame = frame.copy()
    frame[y0:y1, x0:x1] = (frame[y0:y1, x0:x1] * 0.35).astype(np.uint8)
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)

    tx, ty = x0 + pad, y0 + pad
    draw.text((tx, ty), text, font=font, fill=(255, 255, 255))
    ty += line_h
    bar_w = max(4, int(inner - pct_w))
    by = ty + (small_h - bar_h) // 2
    draw.rectangle([tx, by, tx + bar_w, by + bar_h], fill=TRACK_RGB)
    if prob > 0:
        draw.rectangle([tx, by, tx + max(1, round(bar_w * prob)), by + bar_h], fill=BAR_RGB)
    draw.text((tx + bar_w + pad, ty + (small_h - small) // 2 - 1), pct, font=pct_font,
              fill=(255, 255, 255))
    ty += max(bar_h, small_h)
    for line in extra:
        t, f = _fit_text(draw, line, small, inner, max(8, small * 2 // 3))
        draw.text((tx, ty), t, font=f, fill=(215, 215, 215))
        ty += small_h
    return np.asarray(img)


def draw_caption(frame: np.ndarray, text: str, ok: bool | None = None) -> np.ndarray:
    """A copy of `frame` with `text` in a dark band along the bottom, green when `ok`, red
    when not ok (None: white): the demo's "true: clap, right"."""
    from PIL import Image, ImageDraw

    frame = np.array(frame, dtype=np.uint8)
    h, w = frame.shape[:2]
    size = max(9, round(min(h, w) / 14))
    pad = max(2, size // 4)
    band = size + 2 * pad
    frame[h - band:] = (frame[h - band:] * 0.35).astype(np.uint8)
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    line, font = _fit_text(draw, text, size, w - 2 * pad, max(8, size * 2 // 3))
    colour = (255, 255, 255) if ok is None else (110, 230, 120) if ok else (255, 110, 100)
    draw.text((pad, h - band + pad - 1), line, font=font, fill=colour)
    return np.asarray(img)


def _shrink(frame: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    if max(h, w) <= max_side:
        return frame
    s = max_side / max(h, w)
    return cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA)


class _Abort(Exception):
    pass


def write_small_gif(path: str | os.PathLike, frames, fps: float,
                    max_fps: float = GIF_MAX_FPS, max_side: int = GIF_MAX_SIDE,
                    colors: int = GIF_COLORS) -> Path:
    """An animated GIF kept small: frames dropped to `max_fps` (the timing stays real),
    shrunk to `max_side`, and one palette for the whole clip taken from up to 8 evenly
    spaced frames, applied without dithering."""
    from PIL import Image

    from vidaction.io.writer import atomic_path

    fps = float(fps) if fps and fps > 0 else 25.0
    out_fps = min(fps, max_fps)
    kept, last = [], -1
    for i, f in enumerate(frames):
        slot = int(i * out_fps / fps)  # which output frame this input frame falls in
        if slot != last:
            kept.append(_shrink(np.ascontiguousarray(f, dtype=np.uint8), max_side))
            last = slot
    if not kept:
        raise ValueError(f"{path}: no frames to write")
    sample = [kept[int(j)] for j in np.linspace(0, len(kept) - 1, min(8, len(kept)))]
    palette = Image.fromarray(np.concatenate(sample, axis=0)).quantize(
        colors, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in kept]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(int(round(1000 / out_fps)), 20), loop=0, disposal=1,
                       optimize=False)
    return Path(path)


class OverlayWriter:
    """Write frames one at a time to an MP4 (H.264) or a GIF, chosen by the suffix.

    The encoder runs in a thread fed through a small queue, so frames are not all held in
    memory (MP4). The file appears only when the `with` block ends without an error; GIFs
    are kept small (write_small_gif).
    """

    SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".gif")

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() not in self.SUFFIXES:
            from vidaction.errors import UserError

            raise UserError(f"{self.path}: overlay output must end in .mp4 or .gif "
                            f"(or {', '.join(self.SUFFIXES[1:-1])})")
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.frames = 0
        self._q: queue.Queue = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def _source(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            if item is _Abort:
                raise _Abort()
            yield item

    def _run(self) -> None:
        from vidaction.io import write_video

        try:
            if self.path.suffix.lower() == ".gif":
                write_small_gif(self.path, self._source(), self.fps)
            else:
                write_video(self.path, self._source(), fps=self.fps)
        except BaseException as e:  # reported to the caller by close()
            self._error = e
            while True:  # unblock a writer waiting on a full queue
                try:
                    if self._q.get_nowait() is None:
                        break
                except queue.Empty:
                    break

    def write(self, frame: np.ndarray) -> None:
        if self._closed:
            raise ValueError("OverlayWriter is closed")
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="overlay-writer", daemon=True)
            self._thread.start()
        self._q.put(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames += 1

    def close(self, abort: bool = False) -> None:
        """Finish the file (or, with abort, drop it). Raises what the encoder raised."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            if not abort:
                raise ValueError(f"{self.path}: no frames to write")
            return
        self._q.put(_Abort if abort else None)
        self._thread.join()
        if self._error is not None and not isinstance(self._error, _Abort):
            raise self._error

    def __enter__(self) -> OverlayWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)


def overlay_video(src: str | os.PathLike, out: str | os.PathLike,
                  top_for_frame: Callable[[int], list[tuple[str, float]]],
                  max_side: int = VIDEO_MAX_SIDE,
                  caption: tuple[str, bool | None] | None = None) -> int:
    """Every frame of `src` with `top_for_frame(i)` drawn on it, written to `out` at the
    source's frame rate, one frame at a time. `caption`: (text, ok) for draw_caption.
    Returns the number of frames written."""
    from vidaction.io import VideoReader

    with VideoReader(src) as r, OverlayWriter(out, r.info.fps) as w:
        for i, frame in enumerate(r.iter_frames()):
            drawn = draw_label(_shrink(frame, max_side), top_for_frame(i))
            w.write(draw_caption(drawn, *caption) if caption else drawn)
    return w.frames
