import av
import numpy as np
import pytest

from conftest import frame_id, id_frame
from vidaction.io import VideoReader, VideoReadError, probe, read_frames, verify, write_gif

FORMATS = [".avi", ".mp4", ".mkv", ".webm", ".mov", ".gif"]


@pytest.mark.parametrize("ext", FORMATS)
def test_probe_and_read_every_format(video_factory, ext):
    path = video_factory(f"clip{ext}", n=40)
    info = probe(path)
    assert info.frame_count == 40
    assert info.fps == pytest.approx(25, rel=0.01)
    assert (info.width, info.height) == (64, 48)
    assert info.duration == pytest.approx(1.6, abs=0.05)
    assert info.backend == "pyav"

    with VideoReader(path) as r:
        frames = r.read([30, 3, 15, 3, 39, 0])
    assert frames.shape == (6, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_id(f) for f in frames] == [30, 3, 15, 3, 39, 0]

    every = read_frames(path)
    assert [frame_id(f) for f in every] == list(range(40))


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_seeking_reads_the_same_frames_as_decoding_everything(video_factory, ext):
    # short GOP so reads seek between keyframes
    path = video_factory(f"gop{ext}", n=120, gop=10)
    with VideoReader(path, threads=1) as r:
        picked = r.read([5, 57, 58, 99, 119])
        again = r.read([2, 100])  # backwards after a forward read
    assert [frame_id(f) for f in picked] == [5, 57, 58, 99, 119]
    assert [frame_id(f) for f in again] == [2, 100]
    with VideoReader(path, threads=0) as r:  # threaded decoding gives the same pixels
        assert np.array_equal(r.read([5, 57, 58, 99, 119]), picked)


def test_opencv_fallback_reads_the_same_frames(video_factory):
    path = video_factory("cv.avi", n=30)
    info = probe(path, backend="opencv")
    assert info.backend == "opencv" and info.frame_count == 30
    frames = read_frames(path, [0, 10, 29], backend="opencv")
    assert [frame_id(f) for f in frames] == [0, 10, 29]
    # OpenCV decodes BGR; we must hand back RGB like the PyAV path
    ref = read_frames(path, [10])
    assert np.abs(frames[1].astype(int) - ref[0].astype(int)).mean() < 2


def _marker_video(path, rotation):
    f = np.zeros((48, 64, 3), np.uint8)
    f[:12, :12] = (255, 0, 0)  # red block top-left as coded
    return make_video_frames(path, [f] * 5, rotation=rotation)


def make_video_frames(path, frames, **kw):
    from vidaction.io import write_video

    return write_video(path, frames, fps=25, **kw)


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
@pytest.mark.parametrize("rotation,corner", [(90, "bottom-left"), (270, "top-right"),
                                             (180, "bottom-right")])
def test_rotation_metadata_is_honoured(tmp_path, backend, rotation, corner):
    path = _marker_video(tmp_path / f"rot{rotation}.mp4", rotation)
    info = probe(path, backend=backend)
    expect_wh = (48, 64) if rotation in (90, 270) else (64, 48)
    assert (info.width, info.height) == expect_wh
    frame = read_frames(path, [0], backend=backend)[0]
    assert frame.shape == (expect_wh[1], expect_wh[0], 3)
    h, w = frame.shape[:2]
    corners = {"top-left": frame[:8, :8], "top-right": frame[:8, w - 8:],
               "bottom-left": frame[h - 8:, :8], "bottom-right": frame[h - 8:, w - 8:]}
    red = {k: v[..., 0].mean() > 150 and v[..., 1].mean() < 80 for k, v in corners.items()}
    assert red == {k: k == corner for k in corners}


def test_grayscale_video_comes_back_rgb(tmp_path):
    path = make_video_frames(tmp_path / "gray.mkv", [np.full((48, 64, 3), 100, np.uint8)] * 4,
                             codec="ffv1", pix_fmt="gray")
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"
    frames = read_frames(path)
    assert frames.shape == (4, 48, 64, 3)
    assert np.all(frames == 100)


def test_alpha_video_comes_back_rgb(tmp_path):
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 128
    path = make_video_frames(tmp_path / "alpha.mov", [rgba] * 3, codec="png", pix_fmt="rgba")
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "rgba"
    frames = read_frames(path)
    assert frames.shape == (3, 48, 64, 3)
    assert np.all(frames[..., 1] == 200) and np.all(frames[..., 0] == 0)


def test_gif_written_by_pillow_reads_back(tmp_path):
    path = write_gif(tmp_path / "anim.gif", [id_frame(i) for i in range(12)], fps=10)
    info = probe(path)
    assert info.frame_count == 12 and info.fps == pytest.approx(10, rel=0.01)
    assert [frame_id(f) for f in read_frames(path)] == list(range(12))


def test_iter_frames_is_a_stream(video_factory):
    path = video_factory("stream.mp4", n=25)
    with VideoReader(path) as r:
        it = r.iter_frames()
        first = next(it)
        assert frame_id(first) == 0
        assert [frame_id(f) for f in it] == list(range(1, 25))


# ---- errors: one exception type with the path and a reason ----

def _reason(path, fn=probe):
    with pytest.raises(VideoReadError) as e:
        fn(path)
    assert e.value.path == str(path)
    assert str(path) in str(e.value)
    return e.value.reason


def test_missing_file(tmp_path):
    assert _reason(tmp_path / "nope.mp4").startswith("missing")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    assert _reason(p).startswith("empty")


def test_fifo_is_named_as_such_not_empty(tmp_path):
    import os

    p = tmp_path / "pipe.mp4"
    os.mkfifo(p)
    assert _reason(p) == "not a video: is a named pipe (FIFO)"  # and returns: no blocking open


def test_symlink_loop_and_broken_symlink_are_not_just_missing(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.symlink_to(b)
    b.symlink_to(a)
    assert _reason(a).startswith("symlink loop")
    dangling = tmp_path / "c.mp4"
    dangling.symlink_to(tmp_path / "gone.mp4")
    reason = _reason(dangling)
    assert reason.startswith("missing: broken symlink") and "gone.mp4" in reason


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.avi"
    p.write_text("this is a text file, not a video\n" * 50)
    assert _reason(p).startswith("not a video")


@pytest.mark.parametrize("ext,fraction", [(".avi", 0.5), (".mp4", 0.6), (".mkv", 0.85),
                                          (".webm", 0.85), (".gif", 0.9)])
def test_truncated(video_factory, tmp_path, ext, fraction):
    src = video_factory(f"full{ext}", n=60)
    data = src.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: int(len(data) * fraction)])
    assert _reason(cut, verify).startswith("truncated")
    verify(src)  # the whole file passes


def test_no_video_stream(tmp_path):
    p = tmp_path / "audio.mp4"
    with av.open(str(p), "w") as c:
        s = c.add_stream("aac", rate=16000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                        layout="mono")
        fr.sample_rate = 16000
        for pk in [*s.encode(fr), *s.encode()]:
            c.mux(pk)
    assert _reason(p) == "no video stream"


def test_zero_frames(tmp_path):
    p = tmp_path / "zero.avi"
    c = av.open(str(p), "w")
    s = c.add_stream("mpeg4", rate=25)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    c.start_encoding()
    c.close()
    assert _reason(p).startswith("zero frames")


def test_out_of_range_index_is_an_error_not_a_stale_frame(video_factory):
    path = video_factory("short.avi", n=5)
    with VideoReader(path) as r, pytest.raises(VideoReadError, match="out of range"):
        r.read([2, 5])


def test_truncated_file_never_repeats_a_frame(video_factory, tmp_path):
    src = video_factory("long.avi", n=200)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(src.read_bytes()[: int(len(src.read_bytes()) * 0.7)])
    with VideoReader(cut) as r:
        n = r.frame_count
        assert 0 < n < 200
        assert r.truncated
        frames = r.read(range(n))  # everything the index holds decodes, each once
    assert [frame_id(f) for f in frames] == list(range(n))


def test_fast_colour_path_matches_ffmpeg_conversion(tmp_path):
    """yuv420p frames go through OpenCV's conversion; it must agree with FFmpeg's."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    colourful = [np.kron(np.roll(base, i, axis=1), np.ones((8, 8, 1), np.uint8))
                 for i in range(5)]  # 48x64 blocks of random colours
    path = make_video_frames(tmp_path / "colour.mp4", colourful, options={"crf": "10"})
    ours = read_frames(path)
    with av.open(str(path)) as c:
        ref = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert ours.shape == ref.shape
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 6


def test_reads_decode_only_from_the_keyframe_before_each_frame(video_factory):
    path = video_factory("gop.avi", n=200, gop=10)
    with VideoReader(path, threads=1) as r:
        frames = r.read([150, 185])
        assert [frame_id(f) for f in frames] == [150, 185]
        # keyframes at 150 and 180: 1 + 6 frames, not the 186 a sequential read needs
        assert r.frames_decoded <= 10
