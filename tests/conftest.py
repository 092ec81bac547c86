"""Shared test helpers: videos written here with PyAV whose frames carry their own index."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

BITS = 8


def id_frame(i: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A frame whose top band spells `i` in 8 black/white stripes (survives compression)."""
    f = np.full((height, width, 3), 90, np.uint8)
    sw = width // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            f[: height // 3, b * sw:(b + 1) * sw] = 255
        else:
            f[: height // 3, b * sw:(b + 1) * sw] = 0
    return f


def frame_id(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    sw = w // BITS
    band = frame[1: h // 3 - 1].mean(axis=(0, 2))
    bits = [band[b * sw + 1:(b + 1) * sw - 1].mean() > 128 for b in range(BITS)]
    return sum(int(v) << b for b, v in enumerate(bits))


def make_video(path: Path, n: int = 40, width: int = 64, height: int = 48, fps: float = 25,
               **kw) -> Path:
    from vidaction.io import write_video

    return write_video(path, (id_frame(i, width, height) for i in range(n)), fps=fps, **kw)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Caches (clips, features, weights) of a test session stay out of the user's home and
    apart from other sessions and xdist workers."""
    old = os.environ.get("VIDACTION_CACHE")
    os.environ["VIDACTION_CACHE"] = str(tmp_path_factory.mktemp("vidaction-cache"))
    yield
    if old is None:
        os.environ.pop("VIDACTION_CACHE", None)
    else:
        os.environ["VIDACTION_CACHE"] = old


@pytest.fixture
def video_factory(tmp_path):
    def make(name: str, n: int = 40, **kw) -> Path:
        return make_video(tmp_path / name, n, **kw)

    return make


# ---- real recordings (../shared/media/real, or $VIDACTION_TEST_MEDIA) --------------------

def real_media_dir() -> Path:
    env = os.environ.get("VIDACTION_TEST_MEDIA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "media" / "real"


def real_video_paths() -> list[Path]:
    """The real videos, for a test that takes them all at once; skips naming the folder
    where it is absent."""
    paths = [p.values[0] for p in real_videos()]
    if paths == [None]:
        pytest.skip(f"no real videos in {real_media_dir()} (set VIDACTION_TEST_MEDIA)")
    return paths


def real_clip(name: str) -> Path:
    """One real video from real_media_dir(); skips naming it only where ../shared is absent."""
    p = real_media_dir() / name
    if not p.is_file():
        pytest.skip(f"no {name} in {real_media_dir()} (set VIDACTION_TEST_MEDIA)")
    return p


def real_videos() -> list:
    """One pytest param per real video; one skipped param naming the folder if it is absent."""
    from vidaction.io import VIDEO_EXTENSIONS

    d = real_media_dir()
    files = sorted(p for p in d.glob("*") if p.suffix.lower() in VIDEO_EXTENSIONS) \
        if d.is_dir() else []
    if not files:
        reason = f"no real videos in {d} (set VIDACTION_TEST_MEDIA to a folder of them)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-real-media")]
    return [pytest.param(p, id=p.name) for p in files]


def shared_models_dir() -> Path:
    """../shared/models (or $VIDACTION_TEST_MODELS): official model files, see its README."""
    env = os.environ.get("VIDACTION_TEST_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "models"


def shared_model(name: str) -> Path:
    """One official model file from shared_models_dir(); skips naming it where it is absent."""
    p = shared_models_dir() / name
    if not p.is_file():
        pytest.skip(f"no {name} in {shared_models_dir()} (set VIDACTION_TEST_MODELS)")
    return p


class LoopbackServer:
    """An HTTP server on 127.0.0.1 for download tests: path -> list of (mode, body), one per
    request, the last repeating (or one (mode, body) for every request). Modes: "ok"; "cut"
    (announces twice the body, sends it, hangs up); "stall" (half the body, then silence
    until `release` is set)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[str, list[tuple[str, bytes]] | tuple[str, bytes]] = {}
        self.hits: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.hits.append(self.path)
                queue = server.routes.get(self.path)
                if not queue:
                    self.send_error(404)
                    return
                if isinstance(queue, tuple):
                    mode, body = queue
                else:
                    mode, body = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) * (2 if mode == "cut" else 1)))
                self.end_headers()
                if mode == "stall":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(20)
                    return
                self.wfile.write(body)
                if mode == "cut":
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def loopback_server():
    s = LoopbackServer()
    yield s
    s.release.set()
    s.httpd.shutdown()
    s.httpd.server_close()


def closed_port_url(path: str = "/model") -> str:
    """A loopback URL nobody listens on: what a download meets offline."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def frame_digest(frame: np.ndarray) -> str:
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


def sequential_digests(path: Path) -> list[str]:
    """Ground truth: a digest of every frame FFmpeg outputs decoding the file from start to
    end (converted to RGB as the reader converts). Digests keep 1080p files small."""
    import av

    from vidaction.io.video import _PyAVReader

    with av.open(str(path)) as c:
        return [frame_digest(_PyAVReader.to_rgb(None, fr, None)) for fr in c.decode(video=0)]


# ---- a tiny rendered dataset and a training config that trains on it in seconds ----------

TINY = dict(classes=["clap", "sit_down", "stand_up"], clips_per_class=6, size=32, seconds=0.8,
            fps=25, seed=3, splits=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from vidaction.data.builtin import render_dataset

    return render_dataset(tmp_path_factory.mktemp("data") / "tiny", progress=False, **TINY)


def tiny_config(data, out, **kw):
    from vidaction.train import TrainConfig

    base = dict(data=str(data), out=str(out), model="r2plus1d", epochs=2, batch_size=3,
                frames=4, frame_step=3, size=32, patience=5)
    return TrainConfig(**{**base, **kw})


# ---- a full disk, for writes through a module's `open` -------------------------------------

class _FullDiskFile:
    """A file opened for writing whose writes fail as on a full disk."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def full_disk_open(path, mode="r", *args, **kw):
    """`open` for monkeypatching into a module: reads work, every write fails with ENOSPC."""
    import builtins

    f = builtins.open(path, mode, *args, **kw)
    return _FullDiskFile(f) if "w" in mode else f
