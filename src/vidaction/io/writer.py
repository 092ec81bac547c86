"""Write videos (PyAV: H.264, MPEG-4, VP9, MJPEG) and GIFs (Pillow), and any output,
atomically: a file, a set of sibling files or a whole folder appears complete or not at all,
and a failed write names the file the user asked for, not a temporary."""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vidaction.errors import VidactionError

_CODEC_BY_EXT = {
    ".mp4": ("libx264", "yuv420p"),
    ".m4v": ("libx264", "yuv420p"),
    ".mov": ("libx264", "yuv420p"),
    ".mkv": ("libx264", "yuv420p"),
    ".avi": ("mpeg4", "yuv420p"),
    ".webm": ("libvpx-vp9", "yuv420p"),
}


class WriteError(VidactionError, OSError):
    """An output that could not be written, as one line: "run/metrics.json: No space left
    on device". Still an OSError (errno kept), so code that catches OSError goes on working."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


_REASONS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EISDIR,
            errno.ENOTDIR, errno.EFBIG, errno.EIO)


def _known_reason(text: str) -> str | None:
    for code in _REASONS:
        if os.strerror(code).lower() in text.lower():
            return os.strerror(code)
    return None


def os_reason(e: BaseException) -> str:
    """The reason of an I/O failure in words, whatever raised it: an OSError, numpy's short
    write ("20480 requested and 17376 written"), or a TensorFlow file op."""
    if isinstance(e, OSError) and e.errno is not None:
        return e.strerror or os.strerror(e.errno)
    text = str(getattr(e, "message", None) or e).strip()
    short = re.search(r"(\d+) requested and (\d+) written", text)
    if short:
        return (f"only {short.group(2)} of {short.group(1)} bytes written "
                "(no space left on device?)")
    return _known_reason(text) or (text.splitlines()[-1] if text else type(e).__name__)


def is_write_failure(e: BaseException) -> bool:
    """True for what a full, read-only or missing disk raises, TensorFlow's file ops
    included; False for programming errors, which keep their traceback."""
    if isinstance(e, OSError):
        return True
    return (type(e).__module__.startswith("tensorflow")
            and _known_reason(str(getattr(e, "message", e))) is not None)


def error_path(e: BaseException) -> str | None:
    """The file a TensorFlow file error names, as the user knows it. Its message starts
    with the path of a temporary (".../ckpt-1_temp/part-00000-of-00001.data-...tempstate12;
    No space left on device"), shown as the checkpoint it was for (".../ckpt-1")."""
    text = re.sub(r"\{\{.*?\}\}", "", str(getattr(e, "message", e))).strip()
    first = text.splitlines()[0].split(";")[0].strip() if text else ""
    if os.sep not in first or " " in first.split(os.sep)[0]:
        return None
    first = re.sub(r"_temp(/.*)?$", "", first)
    return re.sub(r"\.tempstate\d+$", "", first)


def write_error(e: BaseException, path: str | os.PathLike) -> WriteError:
    """`e` as a WriteError naming `path`."""
    code = e.errno if isinstance(e, OSError) else None
    reason = e.strerror if isinstance(e, WriteError) else os_reason(e)
    return WriteError(code, reason, str(path))


@contextmanager
def naming(path: str | os.PathLike, temporary: str | os.PathLike | None = None):
    """Inside the block, a failed write is re-raised as a WriteError naming `path` (or, for
    a file below the temporary folder `temporary`, the same file below `path`).

    An error that names some other file (an input read meanwhile) is left alone."""
    try:
        yield
    except OSError as e:
        tmp = str(temporary) if temporary is not None else None

        def inside(n: str) -> bool:
            return tmp is not None and (n == tmp or n.startswith(tmp + os.sep))

        names = [os.fspath(f) for f in (e.filename, e.filename2) if f is not None]
        if isinstance(e, WriteError) and not any(inside(n) for n in names):
            raise
        if names and not any(n == str(path) or inside(n) for n in names):
            raise
        target = Path(path)
        below = next((n for n in names if inside(n) and n != tmp), None)
        if below is not None:
            target = target / os.path.relpath(below, tmp)
        raise write_error(e, target) from e


def make_parent(path: str | os.PathLike) -> None:
    """Create the folders above `path`; a failure names `path` and the folder in the way."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise WriteError(errno.ENOTDIR, f"cannot create it: {e.filename or path.parent} is "
                         "not a folder", str(path)) from None
    except OSError as e:
        raise write_error(e, path) from e


# --------------------------------------------------------------------------- temporaries

_FILE_TMP = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)\.tmp(?P<suffix>.*)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours, left by an earlier failed attempt in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Remove what killed writers of `path` left beside it: `.NAME.tmp-PID` folders,
    `NAME.tmp-PID` (older model saves), `.STEM.PID.tmpSUFFIX` files. A `.NAME.old-PID`
    (the previous version, set aside for a swap) is put back where `path` is missing, else
    removed. Temporaries of a process still running are left alone. Returns what was
    removed or restored."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    done = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    for p in entries:
        name, pid = p.name, None
        for prefix in (f".{path.name}.tmp-", f"{path.name}.tmp-", f".{path.name}.old-"):
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                pid = int(name[len(prefix):])
                break
        else:
            m = _FILE_TMP.match(name)
            if m and m["stem"] == path.stem and m["suffix"] == path.suffix:
                pid = int(m["pid"])
        if pid is None or _alive(pid):
            continue
        if name.startswith(f".{path.name}.old-") and not (path.exists() or path.is_symlink()):
            os.replace(p, path)
        else:
            _remove(p)
        done.append(p)
    return done


def refuse_existing(paths: Iterable[str | os.PathLike], force: bool) -> None:
    """The one overwrite rule of every command (train, evaluate, export, predict, stream,
    data preview): an output that exists is replaced only with --force, and the refusal
    comes before any work."""
    from vidaction.errors import UserError

    there = [Path(p) for p in paths if Path(p).exists() or Path(p).is_symlink()]
    if there and not force:
        more = f" (and {len(there) - 1} more of the outputs)" if len(there) > 1 else ""
        raise UserError(f"{there[0]} already exists{more}; --force replaces it")


def replace_tree(tmp: str | os.PathLike, out: str | os.PathLike) -> None:
    """Move a finished folder onto `out`, the old one (if any) set aside until then; a kill
    in between leaves the old one as `.NAME.old-PID`, which `clean_stale` puts back."""
    tmp, out = Path(tmp), Path(out)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.is_dir() and not out.is_symlink():
        os.replace(out, old)
    elif out.exists() or out.is_symlink():
        out.unlink()
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_folder(path: str | os.PathLike, publish=None) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; when the block succeeds it becomes
    `path` in one rename (an existing `path` is replaced), else it is removed. What killed
    writers left beside `path` is cleaned first. `publish(tmp, path)` replaces the final
    rename where the caller needs another one."""
    path = Path(path)
    make_parent(path)
    clean_stale(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        with naming(path, tmp):
            tmp.mkdir()
            yield tmp
            (publish or replace_tree)(tmp, path)
    finally:
        _remove(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.
    A failed write is a WriteError naming `path`."""
    path = Path(path)
    make_parent(path)
    clean_stale(path)
    tmp = _file_tmp(path)
    try:
        with naming(path, tmp):
            yield tmp
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _file_tmp(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def _write(tmp: Path, data: bytes | str) -> None:
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write a whole small file (JSON, CSV, PNG) so readers never see half of it."""
    with atomic_path(path) as tmp:
        _write(tmp, data)
    return Path(path)


def write_together(files: Sequence[tuple[str | os.PathLike, bytes | str]],
                   unlink_first: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Write several sibling files as one output: every file is written to a temporary
    first, and only when all of them are complete are `unlink_first` removed and the files
    renamed into place, in the order given (put the file whose presence means "done"
    last). A failure while writing changes nothing."""
    for path, _ in files:  # a rename onto a folder fails: know it before the first rename
        if Path(path).is_dir():
            raise WriteError(errno.EISDIR, "is a folder", str(path))
    done: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = Path(path)
            make_parent(path)
            clean_stale(path)
            tmp = _file_tmp(path)
            done.append((tmp, path))
            with naming(path, tmp):
                _write(tmp, data)
        for path in unlink_first:
            with naming(path):
                Path(path).unlink(missing_ok=True)
        for tmp, path in done:
            with naming(path, tmp):
                os.replace(tmp, path)
    finally:
        for tmp, _ in done:
            tmp.unlink(missing_ok=True)
    return [p for _, p in done]


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
            for index, arr in enumerate(frames):
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
                frame = _zero_row_padding(frame.reformat(format=pix_fmt))
                # Explicit timestamps: one per frame at the stream's rate, not FFmpeg's guess.
                frame.pts, frame.time_base = index, 1 / rate
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is None:
                raise ValueError(f"{path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return path


def _zero_row_padding(frame):
    """The frame with the bytes after each row's last pixel (line_size > row) set to 0.

    FFmpeg leaves them uninitialised and libx264 reads some of them, so the same frames
    encoded to different bytes (one video in three at widths like 100). Zeroed, the same
    frames always give the same file. 8-bit formats only; others are left as they are.
    """
    fmt = frame.format
    if any(c.bits != 8 for c in fmt.components):
        return frame
    per_pixel = 1 if fmt.is_planar else len(fmt.components)
    for plane in frame.planes:
        row = plane.width * per_pixel
        if plane.line_size > row:
            np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:, row:] = 0
    return frame


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
