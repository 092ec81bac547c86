"""Write videos (PyAV: H.264, MPEG-4, VP9, MJPEG) and GIFs (Pillow), atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_CODEC_BY_EXT = {
    ".mp4": ("libx264", "yuv420p"),
    ".m4v": ("libx264", "yuv420p"),
    ".mov": ("libx264", "yuv420p"),
    ".mkv": ("libx264", "yuv420p"),
    ".avi": ("mpeg4", "yuv420p"),
    ".webm": ("libvpx-vp9", "yuv420p"),
}


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write a whole small file (JSON, CSV, PNG) so readers never see half of it."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
    return Path(path)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    codec: str | None = None,
    pix_fmt: str | None = None,
    options: dict[str, str] | None = None,
    rotation: int | None = None,
    gop: int | None = None,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) to `path`; codec chosen by extension.

    Odd sizes are padded by one pixel where the codec needs even ones (yuv420p).
    `rotation` writes a display matrix (degrees counter-clockwise) without touching pixels.
    """
    import av

    path = Path(path)
    if path.suffix.lower() == ".gif":
        return write_gif(path, frames, fps=fps)
    default_codec, default_fmt = _CODEC_BY_EXT.get(path.suffix.lower(), ("libx264", "yuv420p"))
    codec = codec or default_codec
    pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else default_fmt)
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), "w", format=_format_for(path))
        try:
            stream = None
            for arr in frames:
                arr = np.asarray(arr)
                if arr.ndim == 2:
                    arr = np.repeat(arr[:, :, None], 3, axis=2)
                if stream is None:
                    h, w = arr.shape[:2]
                    even = pix_fmt.endswith("420p")
                    w2, h2 = (w + w % 2, h + h % 2) if even else (w, h)
                    stream = container.add_stream(codec, rate=rate, options=options or {})
                    stream.width, stream.height, stream.pix_fmt = w2, h2, pix_fmt
                    if gop:
                        stream.codec_context.gop_size = gop
                    if rotation:
                        stream.set_display_rotation(rotation)
                if arr.shape[:2] != (stream.height, stream.width):
                    arr = np.pad(arr, ((0, stream.height - arr.shape[0]),
                                       (0, stream.width - arr.shape[1]), (0, 0)), mode="edge")
                rgba = arr.shape[2] == 4
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr),
                                                   format="rgba" if rgba else "rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is None:
                raise ValueError(f"{path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return path


def _format_for(path: Path) -> str | None:
    return {".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov",
            ".mp4": "mp4", ".m4v": "mp4"}.get(path.suffix.lower())


def write_gif(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 10.0,
              loop: int = 0) -> Path:
    """Animated GIF with an adaptive palette per frame (Pillow does this better than FFmpeg's
    fixed rgb8 encoder)."""
    from PIL import Image

    path = Path(path)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    if not images:
        raise ValueError(f"{path}: no frames to write")
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(int(round(1000 / fps)), 20), loop=loop, disposal=1)
    return path
