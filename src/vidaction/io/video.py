"""Read videos and animated GIFs: metadata, frames by index, frames as a stream.

PyAV is the main backend: it gives exact packet timestamps, so we can map frame
indices to presentation times, seek to the keyframe before the first frame we need and
decode only up to the last one. OpenCV is the fallback for files PyAV cannot open.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidaction.errors import VidactionError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".gif",
                    ".ts", ".mts", ".m2ts", ".3gp", ".flv", ".wmv", ".ogv")

# Leading bytes of the containers we accept; a file that starts like one of these but
# cannot be opened is truncated rather than "not a video".
_SIGNATURES = (b"RIFF", b"\x1a\x45\xdf\xa3", b"GIF87a", b"GIF89a", b"\x00\x00\x01\xba",
               b"FLV", b"OggS", b"\x30\x26\xb2\x75")  # ..., FLV, Ogg, ASF (WMV)


class VideoReadError(VidactionError):
    """A video that cannot be read; `reason` is short and meant for users."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    frame_count: int
    fps: float
    width: int  # as displayed, after rotation
    height: int
    duration: float  # seconds
    codec: str
    rotation: int = 0  # degrees counter-clockwise applied to decoded frames
    backend: str = "pyav"
    # How frame indices are found: "pts" (the container's timestamps, checked while
    # decoding) or "decoded" (an index built by one sequential decode, for files whose
    # timestamps do not say the display order, e.g. UCF101's packed B-frames in AVI).
    read_mode: str = "pts"


# (transform applied to every RGB frame after decoding): crop/resize/pad, see data.sampling.
FrameTransform = Callable[[np.ndarray], np.ndarray]


def _looks_like_container(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(200)
    mp4_box = head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
    # MPEG-TS: a sync byte every 188 bytes (192 in .m2ts, after a 4-byte timecode)
    mpeg_ts = head[0:1] == head[188:189] == b"G" or head[4:5] == head[196:197] == b"G"
    return head.startswith(_SIGNATURES) or mp4_box or mpeg_ts


_NOT_FILES = ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a named pipe (FIFO)"),
              (stat.S_ISSOCK, "is a socket"), (stat.S_ISCHR, "is a character device"),
              (stat.S_ISBLK, "is a block device"))


def _check_file(path: Path) -> None:
    """What is wrong before FFmpeg is asked: it would block on a FIFO, and Path.exists()
    calls a symlink loop missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise VideoReadError(path, "missing: broken symlink to "
                                       f"{os.readlink(path)}") from None
        raise VideoReadError(path, "missing: no such file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise VideoReadError(path, "symlink loop: following the links never reaches "
                                       "a file") from None
        raise VideoReadError(path, f"unreadable: {(e.strerror or str(e)).lower()}") from None
    for test, what in _NOT_FILES:
        if test(st.st_mode):
            raise VideoReadError(path, f"not a video: {what}")
    if st.st_size == 0:
        raise VideoReadError(path, "empty: file has 0 bytes")


def _rotate(frame: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, k)) if k else frame


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """Grayscale and alpha frames become 3-channel RGB (OpenCV path; PyAV converts itself)."""
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    if frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3])
    return frame


@dataclass
class _Index:
    """Where each frame is, in display order, and where a seek may start.

    mode "pts": `pts` are the packets' presentation timestamps, sorted; a decoded frame is
    found by its pts. mode "decoded": `pts` are the timestamps the decoder put on its
    frames, in the order it output them during one full sequential decode (they need not
    be sorted, or even present); a frame is found by counting decoder output from a
    keyframe, and each one is checked against this list.
    """

    pts: np.ndarray  # int64, one per frame in display order (NO_PTS where a frame had none)
    keyframes: np.ndarray  # int64, sorted frame indices a seek may start from
    header_frames: int
    rotation: int
    fps: float
    size: tuple[int, int]  # (width, height) as coded
    codec: str
    duration: float
    truncated: str = ""  # why the file looks cut short, empty if it does not
    mode: str = "pts"
    why: str = ""  # why "decoded" was chosen
    # decoded mode: each frame's picture type, and a fingerprint of each keyframe's pixels,
    # so that a seek is proven to land on the right keyframe and to count from it rightly
    types: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    prints: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class _IndexCache:
    """Small LRU of packet indices keyed by (path, mtime, size): epoch 2+ skips demuxing."""

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self._d: OrderedDict[tuple, _Index] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> _Index | None:
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key: tuple, value: _Index) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.capacity:
                self._d.popitem(last=False)


_INDEX_CACHE = _IndexCache()


class _DiskIndex:
    """Decoded indices under $VIDACTION_CACHE/index: a file indexed by decoding once is not
    decoded again by the next process (evaluate after train, a resumed run). An entry holds
    its own key and version; anything else (a changed file, a damaged entry) is rebuilt."""

    VERSION = 3  # bump whenever what an index holds, or how it is judged, changes
    ARRAYS = ("pts", "keyframes", "types", "prints")

    def __init__(self):
        self._warned = False

    def _path(self, key: tuple) -> Path:
        import hashlib

        from vidaction.paths import cache_root

        digest = hashlib.sha1(repr((self.VERSION, key)).encode()).hexdigest()
        return cache_root() / "index" / digest[:2] / f"{digest}.idx"

    def get(self, key: tuple) -> _Index | None:
        # A JSON line, then the int64 arrays: np.load would parse its header with `ast`,
        # which CPython 3.11 does not allow from several threads at once (SystemError).
        try:
            data = self._path(key).read_bytes()
            head, _, body = data.partition(b"\n")
            meta = json.loads(head)
            sizes = [meta.pop(f"n_{name}") for name in self.ARRAYS]
            if (meta.pop("key") != [*key] or meta.pop("version") != self.VERSION
                    or len(body) != 8 * sum(sizes)):
                return None
            arr = np.frombuffer(body, dtype="<i8").astype(np.int64)
            parts = np.split(arr, np.cumsum(sizes)[:-1])
            idx = _Index(**dict(zip(self.ARRAYS, parts, strict=True)), **meta)
        except Exception:  # absent, or damaged in any way: build it again
            return None
        idx.size = tuple(idx.size)
        return idx

    def put(self, key: tuple, idx: _Index) -> None:
        path = self._path(key)
        meta = {k: v for k, v in vars(idx).items() if k not in self.ARRAYS}
        meta.update(key=[*key], version=self.VERSION)
        meta.update({f"n_{name}": len(getattr(idx, name)) for name in self.ARRAYS})
        body = np.concatenate([getattr(idx, name) for name in self.ARRAYS]).astype("<i8")
        body = body.tobytes()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(json.dumps(meta).encode() + b"\n" + body)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if not self._warned:
                self._warned = True
                warnings.warn(f"cannot keep the frame index in {path.parent} ({e.strerror}); "
                              "reading goes on without it", stacklevel=2)


_DISK_INDEX = _DiskIndex()


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


NO_PTS = np.iinfo(np.int64).min

# Containers whose packets carry real presentation timestamps. AVI (and raw or MPEG
# program streams) store none: FFmpeg numbers their packets in decode order, which is not
# the display order once a codec reorders frames (B-frames).
_TIMESTAMPED_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")

# Codecs where decoding only the frames we need is checked pixel-exact (skip_frame=NONREF
# drops only frames that no other frame references).
_SKIP_NONREF_CODECS = ("h264", "hevc")


class _IndexMismatch(Exception):
    """The decoder's frames disagree with the packet index: index this file by decoding."""


class _SeekMismatch(Exception):
    """After a seek the decoder's frames disagree with the decoded index; `late` when it
    landed on a keyframe after the one aimed at (MPEG-TS seeks are approximate)."""

    def __init__(self, late: bool = False):
        super().__init__()
        self.late = late


class _PyAVReader:
    backend = "pyav"

    def __init__(self, path: Path, threads: int):
        import av

        _quiet_ffmpeg()
        self.path = path
        self.threads = threads
        try:
            self.container = av.open(str(path), metadata_errors="ignore")
        except av.error.FFmpegError as e:
            if _looks_like_container(path):
                raise VideoReadError(path, f"truncated or corrupt: {_ffmpeg_msg(e)}") from None
            raise VideoReadError(path, "not a video: no known container format") from None
        if not self.container.streams.video:
            no_streams = not (self.container.streams.audio or self.container.streams.subtitles)
            self.container.close()
            if no_streams and _looks_like_container(path):  # e.g. MP4 cut before its moov
                raise VideoReadError(path, "truncated or corrupt: no stream could be read")
            raise VideoReadError(path, "no video stream")
        self.stream = self.container.streams.video[0]
        self._configure_threads()
        self._key = _file_key(path)
        self._discarded = 0  # packets an edit list hides, seen while indexing
        index = _INDEX_CACHE.get(self._key) or _DISK_INDEX.get(self._key)
        if index is None:
            index = self._build_index()
            if index.mode == "decoded":  # it cost a full decode: keep it across processes
                _DISK_INDEX.put(self._key, index)
        _INDEX_CACHE.put(self._key, index)
        self.index = index
        self._it: Iterator | None = None  # decoded frames from the last seek on
        self._next: int | None = None  # index of the frame the decoder will produce next
        self._anchor = 0  # decoded mode: the keyframe the last seek aimed at
        self._last = -1  # pts mode: index of the last frame the decoder produced
        self._need: set[int] = set()  # frames of the current read (the rest may be skipped)
        self._seek_ok = True  # decoded mode: cleared when a seek does not land where expected
        self._back = 0  # decoded mode: aim this many keyframes earlier (seeks that land late)
        self._anchor_at: dict[int, int] | None = None  # decoded mode: keyframe pts -> index
        self._pos_of: dict[int, int] | None = None  # pts mode: packet pts -> frame index
        self.decoded = 0  # frames decoded so far: what seeking saves shows up here

    def _configure_threads(self) -> None:
        # threads=1 when clips are decoded in parallel (the pipeline): FFmpeg's own threads
        # would only compete with the other clips. 0 lets FFmpeg choose, for one big read.
        cc = self.stream.codec_context
        cc.thread_count = self.threads
        cc.thread_type = "AUTO" if self.threads != 1 else "SLICE"

    # ---- indexing -------------------------------------------------------------------------

    def _build_index(self) -> _Index:
        """Index from packets when their timestamps can be trusted, else by decoding."""
        import av

        s = self.stream
        pts, keys = [], []
        missing = 0
        rotation = None
        first_out: int | None = None  # timestamp of the decoder's first frame
        try:
            for p in self.container.demux(s):
                if p.is_discard:  # an edit list hides it: the decoder drops its frame
                    self._discarded += 1
                if p.size == 0 or p.is_corrupt or p.is_discard:
                    continue
                if p.pts is None:
                    missing += 1
                    continue
                pts.append(p.pts)
                keys.append(p.is_keyframe)
                if rotation is None:  # the display matrix travels on decoded frames
                    for frame in p.decode():
                        rotation = int(frame.rotation or 0) % 360
                        first_out = frame.pts
        except av.error.FFmpegError:
            pass  # a broken tail: keep what was demuxed, flagged below
        why = self._distrust(pts, keys, missing, first_out)
        if why:
            return self._decoded_index(why)
        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        pts_sorted = np.asarray(pts, dtype=np.int64)[order]
        key_frames = np.flatnonzero(np.asarray(keys, dtype=bool)[order]) if pts else np.array([])
        fps, duration = self._rate_and_duration(pts_sorted)
        if not rotation:
            rotation = self._rotation_tag()
        self._reopen()  # rewinding by seek is not possible in every container
        return self._make_index(pts_sorted, key_frames, rotation, fps, duration, "pts", "")

    def _distrust(self, pts: list[int], keys: list[bool], missing: int,
                  first_out: int | None = None) -> str:
        """Why the packets' timestamps cannot say which frame is which ("" if they can)."""
        cc = self.stream.codec_context
        if missing:
            return f"{missing} packets without a timestamp"
        if len(set(pts)) != len(pts):
            return "duplicate packet timestamps"
        if keys and not keys[0]:
            return "the stream does not start with a keyframe"
        if first_out is not None and pts and first_out != min(pts):
            # e.g. an open GOP cut at its keyframe: the frames shown before it need a
            # picture the file does not hold, and the decoder drops them
            return "the decoder's first frame is not the earliest packet"
        reorders = bool(getattr(cc.codec, "reorder", True))
        if self.container.format.name not in _TIMESTAMPED_FORMATS and reorders:
            # MPEG-4 part 2 declares in its header whether it has B-frames (low_delay);
            # H.264 and HEVC can reorder without saying so up front.
            if not (cc.name == "mpeg4" and not cc.has_b_frames):
                return f"{cc.name} in {self.container.format.name.split(',')[0]}: packet " \
                       "timestamps are in decode order"
        return ""

    def _decoded_index(self, why: str) -> _Index:
        """One full sequential decode: the frames FFmpeg outputs are the truth, in order."""
        import av

        self._reopen()
        cc = self.stream.codec_context
        cc.thread_count, cc.thread_type = 0, "AUTO"  # once per file: all cores help
        pts, types, prints = [], [], {}
        rotation = None
        broken = ""
        try:
            for packet in self.container.demux(self.stream):
                for frame in packet.decode():
                    if frame.key_frame:
                        prints[len(pts)] = _fingerprint(frame)
                    pts.append(NO_PTS if frame.pts is None else int(frame.pts))
                    types.append(int(frame.pict_type))
                    if rotation is None:
                        rotation = int(frame.rotation or 0) % 360
        except av.error.FFmpegError as e:
            broken = f"frame {len(pts)} could not be decoded ({_ffmpeg_msg(e)})"
        arr = np.asarray(pts, dtype=np.int64)
        # A seek may start at a keyframe whose timestamp is unique: after the seek, the
        # decoder's first keyframe must carry it and its pixels, which proves where we are.
        values, counts = np.unique(arr, return_counts=True)
        unique = set(values[counts == 1].tolist()) - {NO_PTS}
        anchors = [0] + [i for i in prints if i and int(arr[i]) in unique]
        fps, _ = self._rate_and_duration(np.sort(arr[arr != NO_PTS]))
        duration = len(arr) / fps if fps else 0.0
        if not rotation:
            rotation = self._rotation_tag()
        self._reopen()
        index = self._make_index(arr, np.asarray(anchors, dtype=np.int64), rotation, fps,
                                 duration, "decoded", why)
        if broken and not index.truncated:
            index.truncated = broken
        index.types = np.asarray(types, dtype=np.int64)
        index.prints = np.asarray([prints.get(i, 0) for i in anchors], dtype=np.int64)
        return index

    def _rate_and_duration(self, pts_sorted: np.ndarray) -> tuple[float, float]:
        s = self.stream
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        tb = float(s.time_base) if s.time_base else 0.0
        if len(pts_sorted) > 1 and tb:
            span = float(pts_sorted[-1] - pts_sorted[0]) * tb
            if not fps:
                fps = (len(pts_sorted) - 1) / span if span > 0 else 0.0
            return fps, span + (1.0 / fps if fps else 0.0)
        return fps, (len(pts_sorted) / fps if fps else 0.0)

    def _make_index(self, pts: np.ndarray, keyframes: np.ndarray, rotation: int, fps: float,
                    duration: float, mode: str, why: str) -> _Index:
        cc = self.stream.codec_context
        header = int(self.stream.frames or 0)
        return _Index(
            pts=pts,
            keyframes=keyframes.astype(np.int64),
            header_frames=header,
            rotation=rotation,
            fps=fps,
            size=(cc.width, cc.height),
            codec=cc.name,
            duration=duration,
            truncated=self._looks_truncated(header, pts, fps),
            mode=mode,
            why=why,
        )

    def use_decoded_index(self, why: str) -> None:
        """Replace a packet index the decoder contradicted (cached for later readers)."""
        self.index = self._decoded_index(why)
        self._pos_of = self._anchor_at = None
        _INDEX_CACHE.put(self._key, self.index)
        _DISK_INDEX.put(self._key, self.index)
        self._reset()

    def _looks_truncated(self, header: int, pts: np.ndarray, fps: float) -> str:
        """Fewer frames than the header promises (AVI, MP4), a video stream that ends before
        its declared end (Matroska/WebM), or a GIF without its trailer byte."""
        frames = len(pts)
        if header > frames + self._discarded + 1:  # edit lists may hide a few frames
            return f"header says {header} frames, file holds {frames}"
        declared = self._declared_video_end() if not header else None
        tb = float(self.stream.time_base or 0)
        if declared is not None and fps > 0 and tb and frames and not (pts == NO_PTS).any():
            end = float(pts.max()) * tb + 1.0 / fps
            if end + max(2.0 / fps, 0.1) < declared:
                return f"the video stream declares {declared:.2f} s, file holds {end:.2f} s"
        if self.path.suffix.lower() == ".gif":
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b";":
                    return f"GIF ends without its trailer after {frames} frames"
        return ""

    def _declared_video_end(self) -> float | None:
        """Where the header says the video stream ends (s), or None if it does not say: the
        container's duration covers every stream (audio often runs longer) and counts from
        its start time, so it is used only when the video is the only stream."""
        s, c = self.stream, self.container
        if s.duration and s.time_base:
            return float((s.start_time or 0) + s.duration) * float(s.time_base)
        tag = s.metadata.get("DURATION")  # Matroska writes one per track
        if tag:
            try:
                h, m, sec = tag.split(":")
                return int(h) * 3600 + int(m) * 60 + float(sec)  # an end, from 0
            except ValueError:
                return None
        if len(c.streams) == 1 and c.duration:
            return ((c.start_time or 0) + c.duration) / 1e6  # AV_TIME_BASE
        return None

    def _rotation_tag(self) -> int:
        """Older files carry a "rotate" tag (degrees clockwise) instead of a matrix."""
        tag = self.stream.metadata.get("rotate")
        try:
            return int(-int(tag)) % 360 if tag else 0
        except ValueError:
            return 0

    @property
    def frame_count(self) -> int:
        return len(self.index.pts)

    @property
    def mode(self) -> str:
        return self.index.mode

    # ---- decoding -------------------------------------------------------------------------

    def _reset(self) -> None:
        self._it, self._next, self._last = None, None, -1

    def _reopen(self) -> None:
        import av

        self.container.close()
        self.container = av.open(str(self.path), metadata_errors="ignore")
        self.stream = self.container.streams.video[0]
        self._configure_threads()
        self._reset()

    def _keyframe_before(self, i: int) -> int:
        ks = self.index.keyframes
        if len(ks) == 0:
            return 0
        j = int(np.searchsorted(ks, i, side="right")) - 1
        return int(ks[max(j, 0)])

    def to_rgb(self, frame, out_size: tuple[int, int] | None) -> np.ndarray:
        """RGB uint8, resized to out_size=(w, h) if given.

        For yuv420p (nearly every camera and web video) OpenCV's SIMD colour conversion
        and resize take a third of the time of FFmpeg's swscale doing both (measured:
        0.33 ms vs 1.1 ms per 320x240 frame); other pixel formats go through swscale.
        """
        import cv2

        if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
            rgb = cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
        else:
            rgb = frame.to_ndarray(format="rgb24")
        return _resize(rgb, out_size)

    def _packets(self) -> Iterator[object]:
        """Decoded frames from the current position. In pts mode, a packet whose frame is
        not wanted is decoded only if another frame references it (skip_frame=NONREF)."""
        import av

        cc = self.stream.codec_context
        skip = self.index.mode == "pts" and cc.name in _SKIP_NONREF_CODECS
        if skip and self._pos_of is None:
            self._pos_of = {int(p): i for i, p in enumerate(self.index.pts)}
        pos = self._pos_of or {}
        skipping = False
        if skip:
            cc.skip_frame = "DEFAULT"  # whatever an earlier, abandoned decode left
        try:
            for packet in self.container.demux(self.stream):
                if skip:
                    wanted = packet.pts is None or pos.get(int(packet.pts), -1) in self._need
                    if skipping == wanted:  # set only when it changes: once per run of packets
                        skipping = not wanted
                        cc.skip_frame = "NONREF" if skipping else "DEFAULT"
                for frame in packet.decode():
                    self.decoded += 1
                    yield frame
        except av.error.FFmpegError as e:
            raise VideoReadError(self.path, f"truncated or corrupt: {_ffmpeg_msg(e)}") from None
        finally:
            if skipping:
                cc.skip_frame = "DEFAULT"

    def _seek(self, k: int) -> None:
        """Start decoding at keyframe `k` (display index)."""
        import av

        self._reset()
        if k == 0:
            self._reopen()  # a fresh decoder: its first frame is frame 0
            self._next = 0
        else:
            target = k
            if self._back:  # the demuxer lands after where it is asked: ask for earlier
                ks = self.index.keyframes
                target = int(ks[max(int(np.searchsorted(ks, k)) - self._back, 0)])
            try:
                self.container.seek(int(self.index.pts[target]), stream=self.stream,
                                    backward=True)
                self.stream.codec_context.flush_buffers()
            except av.error.FFmpegError:  # unseekable (some GIFs): decode from the start
                self._reopen()
                self._next = 0
        self._anchor = k
        self._it = self._packets()

    def _frames_pts(self) -> Iterator[tuple[int, object]]:
        """pts mode: (index, frame) by timestamp; any disagreement distrusts the index."""
        idx = self.index
        assert self._it is not None
        for frame in self._it:
            if frame.pts is None:
                raise _IndexMismatch("decoded frames without a timestamp")
            i = int(np.searchsorted(idx.pts, frame.pts))
            if i >= len(idx.pts) or idx.pts[i] != frame.pts:
                raise _IndexMismatch("decoded frames' timestamps are not the packets'")
            if i <= self._last:
                raise _IndexMismatch("decoded frames' timestamps go backwards")
            self._last = i
            self._next = i + 1
            yield i, frame

    def _frames_counted(self) -> Iterator[tuple[int, object]]:
        """decoded mode: (index, frame) by counting from the keyframe the seek found. That
        keyframe must carry its timestamp, picture type and pixels (a fingerprint) from the
        full decode, and every frame after it its timestamp and picture type."""
        idx = self.index
        n = len(idx.pts)
        if self._anchor_at is None:
            self._anchor_at = {int(idx.pts[k]): j for j, k in enumerate(idx.keyframes)}
        assert self._it is not None
        for frame in self._it:
            p = NO_PTS if frame.pts is None else int(frame.pts)
            if self._next is None:  # after a seek: wait for a keyframe we know
                a = self._anchor
                j = self._anchor_at.get(p) if p != NO_PTS and frame.key_frame else None
                k = int(idx.keyframes[j]) if j is not None else -1
                if j is not None and k and _fingerprint(frame) != int(idx.prints[j]):
                    raise _SeekMismatch  # a keyframe with the right timestamp, wrong pixels
                if j is not None and k <= a:
                    self._next = k  # the one aimed at, or an earlier one: count from it
                elif j is not None:
                    raise _SeekMismatch(late=True)
                elif p != NO_PTS and _first(idx.pts, p) < a:
                    continue  # frames before a keyframe (open-GOP leaders)
                else:
                    raise _SeekMismatch
            i = self._next
            if i >= n or int(idx.pts[i]) != p or int(idx.types[i]) != int(frame.pict_type):
                raise _SeekMismatch
            self._next = i + 1
            yield i, frame

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, object]]:
        """Yield (index, frame) for each wanted index (sorted, unique), decoding only what
        is needed: a jump to a later keyframe seeks instead of decoding through.

        Raises _IndexMismatch (pts mode) when the decoder contradicts the packet index;
        the caller switches to a decoded index and reads again."""
        wanted = sorted(set(int(i) for i in indices))
        self._need = set(wanted)
        pos = 0
        while pos < len(wanted):
            try:
                pos = yield from self._read_from(wanted, pos)
            except _SeekMismatch as e:
                if not self._seek_ok:
                    raise VideoReadError(self.path, "corrupt: decoding the same frames twice "
                                         "gave different results") from None
                if e.late and self._back < 3:
                    self._back += 1  # aim earlier from now on
                else:
                    self._seek_ok = False  # seeking is unreliable here: decode from the start
                self._reset()
        self._need = set()

    def _read_from(self, wanted: list[int], pos: int):
        """Read wanted[pos:] until done or until a seek is worth it; returns the new pos."""
        counted = self.index.mode == "decoded"
        w = wanted[pos]
        k = self._keyframe_before(w) if self._seek_ok else 0
        fresh = self._it is None or (
            (self._next is None and not (self._anchor <= w and k <= self._anchor))
            if counted else self._next is None)
        if not fresh and self._next is not None and (w < self._next or k > self._next):
            fresh = True
        if fresh:
            self._seek(k)
        frames = self._frames_counted() if counted else self._frames_pts()
        stale_ok = not fresh  # a continued decode may be past the frame: seek back once
        for i, frame in frames:
            if i < w:
                continue
            if i > w:
                if stale_ok:
                    self._reset()
                    return pos
                if counted:  # counting cannot skip a frame
                    raise _SeekMismatch
                raise _IndexMismatch(f"the decoder gave no frame {w}")
            yield i, frame
            pos += 1
            if pos == len(wanted):
                return pos
            w = wanted[pos]
            if self._seek_ok and self._keyframe_before(w) > i + 1:
                return pos  # a keyframe lies between here and the next wanted frame
        if counted and self._anchor and self._seek_ok:
            raise _SeekMismatch  # the seek never reached its keyframe, or ended early
        self._reset()
        if counted or fresh:
            raise VideoReadError(self.path, f"truncated: frame {w} of {self.frame_count} "
                                 "could not be decoded")
        return pos

    def frames(self) -> Iterator[object]:
        import av

        self._reopen()
        try:
            for packet in self.container.demux(self.stream):
                yield from packet.decode()
        except av.error.FFmpegError as e:
            raise VideoReadError(self.path, f"truncated or corrupt: {_ffmpeg_msg(e)}") from None
        finally:
            self._reset()

    def close(self) -> None:
        self.container.close()


def _fingerprint(frame) -> int:
    """64 bits of a hash of every fourth row of the first plane: proves a keyframe decoded
    after a seek is the one the full decode saw there (about 1 ms at 1080p)."""
    import hashlib

    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    digest = hashlib.blake2b(np.ascontiguousarray(rows[::4, :plane.width]).tobytes(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _first(values: np.ndarray, v: int) -> int:
    """Position of the first `v` in `values`, or len(values)."""
    hits = np.flatnonzero(values == v)
    return int(hits[0]) if len(hits) else len(values)


def _resize(rgb: np.ndarray, out_size: tuple[int, int] | None) -> np.ndarray:
    """Bilinear like tf.image.resize_with_pad; area averaging when shrinking past 2x,
    where bilinear would alias."""
    import cv2

    if out_size is None or (rgb.shape[1], rgb.shape[0]) == tuple(out_size):
        return rgb
    shrink = out_size[0] * 2 < rgb.shape[1] or out_size[1] * 2 < rgb.shape[0]
    return cv2.resize(rgb, tuple(out_size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _quiet_ffmpeg() -> None:
    """FFmpeg's own log lines would duplicate our one-line errors."""
    import av.logging

    av.logging.set_level(None)  # a Python log callback can deadlock threaded decoding


def _ffmpeg_msg(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).split(";")[0].strip()


class _OpenCVReader:
    """Fallback for files FFmpeg-in-PyAV refuses; frame indices follow OpenCV's count."""

    backend = "opencv"

    def __init__(self, path: Path, threads: int):
        import cv2

        self.path = path
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise VideoReadError(path, "not a video: OpenCV cannot open it")
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        w = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w == 0 or h == 0:
            raise VideoReadError(path, "no video stream")
        self._pos = 0
        # OpenCV applies rotation metadata itself (CAP_PROP_ORIENTATION_AUTO).
        self.index = _Index(
            pts=np.arange(max(n, 0), dtype=np.int64),
            keyframes=np.array([0]),
            header_frames=n,
            rotation=0,
            fps=fps,
            size=(w, h),
            codec=_fourcc(self.cap.get(cv2.CAP_PROP_FOURCC)),
            duration=n / fps if fps else 0.0,
            mode="opencv",
        )

    @property
    def frame_count(self) -> int:
        return len(self.index.pts)

    def to_rgb(self, frame: np.ndarray, out_size: tuple[int, int] | None) -> np.ndarray:
        import cv2

        rgb = _to_rgb(frame)
        if rgb is frame and frame.ndim == 3:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return _resize(rgb, out_size)

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        wanted = sorted(set(int(i) for i in indices))
        for i in wanted:
            if i != self._pos:
                if i > self._pos and i - self._pos < 32:
                    while self._pos < i:  # grab() skips without converting
                        if not self.cap.grab():
                            raise VideoReadError(self.path, f"truncated: frame {i} could not "
                                                 "be decoded")
                        self._pos += 1
                else:
                    self.cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                    self._pos = i
            ok, frame = self.cap.read()
            if not ok:  # never fall back to the previous frame
                raise VideoReadError(self.path, f"truncated: frame {i} could not be decoded")
            self._pos += 1
            yield i, frame

    def frames(self) -> Iterator[np.ndarray]:
        import cv2

        self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield frame

    def close(self) -> None:
        self.cap.release()


def _fourcc(v: float) -> str:
    i = int(v)
    return "".join(chr((i >> (8 * k)) & 0xFF) for k in range(4)).strip("\x00 ").lower()


class VideoReader:
    """An open video. Use as a context manager.

    `read(indices)` returns RGB uint8 frames for the given indices in one pass (seeking
    where a keyframe allows); `iter_frames()` streams every frame; `transform`
    (e.g. letterbox) is applied per frame so full-size frames are never kept.
    """

    def __init__(self, path: str | os.PathLike, backend: str = "auto", threads: int = 0):
        self.path = Path(path)
        _check_file(self.path)
        if backend not in ("auto", "pyav", "opencv"):
            raise ValueError(f"unknown backend {backend!r}")
        self._r: _PyAVReader | _OpenCVReader
        if backend == "opencv":
            self._r = _OpenCVReader(self.path, threads)
        else:
            try:
                self._r = _PyAVReader(self.path, threads)
            except VideoReadError as e:
                if backend == "pyav" or e.reason.startswith(("no video stream", "not a video:")):
                    raise
                try:
                    self._r = _OpenCVReader(self.path, threads)
                except VideoReadError:
                    raise e from None
        idx = self._r.index
        if self.frame_count == 0:
            self.close()
            raise VideoReadError(self.path, "zero frames: the video stream holds no frames")
        self._rotation = idx.rotation
        self.info = self._make_info()

    def _make_info(self) -> VideoInfo:
        idx = self._r.index
        w, h = idx.size
        if self._rotation in (90, 270):
            w, h = h, w
        return VideoInfo(
            path=str(self.path),
            frame_count=self.frame_count,
            fps=idx.fps,
            width=w,
            height=h,
            duration=idx.duration,
            codec=idx.codec,
            rotation=self._rotation,
            backend=self._r.backend,
            read_mode=idx.mode,
        )

    @property
    def frame_count(self) -> int:
        return self._r.frame_count

    @property
    def frames_decoded(self) -> int:
        """Frames the decoder produced for read() so far (PyAV backend; else -1)."""
        return getattr(self._r, "decoded", -1)

    @property
    def truncated(self) -> str:
        """Why the file looks cut short ("" if it does not); found without decoding."""
        return self._r.index.truncated

    def _frame_to_rgb(self, frame, transform: FrameTransform | None,
                      decode_size: tuple[int, int] | None) -> np.ndarray:
        if decode_size is not None and self._rotation in (90, 270):
            decode_size = (decode_size[1], decode_size[0])
        rgb = _rotate(self._r.to_rgb(frame, decode_size), self._rotation)
        return transform(rgb) if transform is not None else rgb

    def read(self, indices: Sequence[int], transform: FrameTransform | None = None,
             decode_size: tuple[int, int] | None = None) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed) as (len, H, W, 3) uint8.

        Raises VideoReadError when an index is out of range or cannot be decoded.
        `decode_size` = (w, h) of the displayed frame to resize to while converting.
        """
        indices = [int(i) for i in indices]
        self._check_range(indices)
        if not indices:
            return np.zeros((0, self.info.height, self.info.width, 3), np.uint8)
        try:
            got = {i: self._frame_to_rgb(f, transform, decode_size)
                   for i, f in self._r.read(indices)}
        except _IndexMismatch as e:  # nothing read so far is returned: read again, right
            self._r.use_decoded_index(str(e))
            self.info = self._make_info()
            self._check_range(indices)
            got = {i: self._frame_to_rgb(f, transform, decode_size)
                   for i, f in self._r.read(indices)}
        return np.stack([got[i] for i in indices])

    def _check_range(self, indices: list[int]) -> None:
        bad = [i for i in indices if i < 0 or i >= self.frame_count]
        if bad:
            raise VideoReadError(self.path,
                                 f"frame {bad[0]} out of range (0..{self.frame_count - 1})")

    def iter_frames(self, transform: FrameTransform | None = None) -> Iterator[np.ndarray]:
        """Every frame in display order, RGB uint8, one at a time (flat memory)."""
        for frame in self._r.frames():
            yield self._frame_to_rgb(frame, transform, None)

    def close(self) -> None:
        self._r.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def probe(path: str | os.PathLike, backend: str = "auto") -> VideoInfo:
    """Metadata of a video; raises VideoReadError naming the reason it is unusable."""
    with VideoReader(path, backend=backend, threads=1) as r:
        return r.info


def verify(path: str | os.PathLike, backend: str = "auto") -> VideoInfo:
    """Probe, then decode the last frame: catches files cut short after a valid header."""
    with VideoReader(path, backend=backend, threads=1) as r:
        if r.truncated:
            raise VideoReadError(path, f"truncated: {r.truncated}")
        r.read([r.frame_count - 1])
        return r.info


def read_frames(path: str | os.PathLike, indices: Sequence[int] | None = None,
                backend: str = "auto", threads: int = 0) -> np.ndarray:
    """All frames, or the frames at `indices`, as (N, H, W, 3) RGB uint8."""
    with VideoReader(path, backend=backend, threads=threads) as r:
        if indices is None:
            return np.stack(list(r.iter_frames()))
        return r.read(indices)
