"""Files whose packet timestamps do not tell which frame is which, written here: B-frames in
AVI and MPEG streams, open GOPs, variable frame rate, duplicate and missing timestamps, a file
cut midway. Every read must equal a sequential decode, and seeking must still be used."""

from fractions import Fraction

import av
import numpy as np
import pytest

from conftest import frame_digest, frame_id, id_frame, real_clip, sequential_digests
from vidaction.io import VideoReader, VideoReadError, verify
from vidaction.io.video import _INDEX_CACHE, _PyAVReader

N = 120
X264 = "bframes=3:keyint=10:min-keyint=10:scenecut=0"


def _frames(n=N):
    rng = np.random.default_rng(0)
    for i in range(n):  # the id band on top, some texture below so B-frames are worth it
        f = id_frame(i).copy()
        f[24:] = rng.integers(0, 64, (24, 64, 3), dtype=np.uint8) + (i * 5) % 128
        yield f


def _write(path, codec, fmt, options=None, n=N, pts=None, gop=10, bf=None):
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=25, options=options or {})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.gop_size = gop
        if bf is not None:
            s.codec_context.max_b_frames = bf
        if pts is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        for i, f in enumerate(_frames(n)):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            if pts is not None:
                vf.pts, vf.time_base = pts[i], Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _vfr_pts(n=N):
    steps = np.random.default_rng(1).choice([10, 20, 40, 70], size=n)
    return np.concatenate([[0], np.cumsum(steps)[:-1]]).tolist()


def _duplicate_pts(tmp_path):
    """Matroska allows equal timestamps: remux a clean file with a few collapsed."""
    src = _write(tmp_path / "src.mkv", "libx264", "matroska", {"x264-params": X264 + ":bframes=0"})
    out = tmp_path / "dup.mkv"
    with av.open(str(src)) as i, av.open(str(out), "w", format="matroska") as o:
        ist = i.streams.video[0]
        ost = o.add_stream_from_template(ist)
        prev = 0
        for k, p in enumerate(i.demux(ist)):
            if p.dts is None:
                continue
            if k in (20, 21, 22, 41):
                p.pts = p.dts = prev
            prev = p.pts
            p.stream = ost
            o.mux(p)
    return out


def _vfr_gif(path):
    """An animated GIF whose frames last 20 to 90 ms (variable rate), written by Pillow."""
    from PIL import Image

    ims = [Image.fromarray(f) for f in _frames()]
    durations = [int(d) for d in np.random.default_rng(2).choice([20, 40, 60, 90], size=N)]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=durations, loop=0,
                optimize=False, disposal=1)
    return path


def _open_gop_cut(path):
    """An open-GOP H.264 stream cut (remuxed from its second keyframe on) into Matroska,
    which has no edit list to hide them: the B-frames shown before that keyframe reference
    a picture the file no longer holds, and the decoder drops them."""
    src = _write(path.with_name("whole.mp4"), "libx264", "mp4",
                 {"x264-params": X264 + ":open-gop=1"})
    with av.open(str(src)) as i, av.open(str(path), "w", format="matroska") as o:
        ist = i.streams.video[0]
        ost = o.add_stream_from_template(ist)
        keys = 0
        for p in i.demux(ist):
            if p.dts is None:
                continue
            keys += p.is_keyframe
            if keys >= 2:
                p.stream = ost
                o.mux(p)
    return path


CASES = {  # name: (writer, read mode we expect)
    "h264-bframes.avi": (lambda p: _write(p, "libx264", "avi", {"x264-params": X264}),
                         "decoded"),
    "h264-open-gop.avi": (lambda p: _write(p, "libx264", "avi",
                                           {"x264-params": X264 + ":open-gop=1"}), "decoded"),
    "mpeg4-bframes.avi": (lambda p: _write(p, "mpeg4", "avi", gop=12, bf=2), "decoded"),
    "mpeg2-bframes.mpg": (lambda p: _write(p, "mpeg2video", "mpeg", gop=12, bf=2), "decoded"),
    # after a seek, MPEG-PS hands out timestamps one frame off: only the keyframe's pixels
    # and picture types tell (a reader checking timestamps alone returned frame 25 for 24)
    "mpeg1-bframes.mpg": (lambda p: _write(p, "mpeg1video", "mpeg", gop=12, bf=2), "decoded"),
    "mpeg2-bframes.ts": (lambda p: _write(p, "mpeg2video", "mpegts", gop=12, bf=2), "decoded"),
    "h264-no-timestamps.h264": (lambda p: _write(p, "libx264", "h264", {"x264-params": X264}),
                                "decoded"),
    "h264-duplicate-pts.mkv": (lambda p: _duplicate_pts(p.parent), "decoded"),
    "h264-bframes.mp4": (lambda p: _write(p, "libx264", "mp4", {"x264-params": X264}), "pts"),
    "h264-open-gop.mp4": (lambda p: _write(p, "libx264", "mp4",
                                           {"x264-params": X264 + ":open-gop=1"}), "pts"),
    "h264-open-gop-cut.mkv": (_open_gop_cut, "decoded"),
    "h264-bframes.mkv": (lambda p: _write(p, "libx264", "matroska", {"x264-params": X264}),
                         "pts"),
    "mpeg4-bframes.mp4": (lambda p: _write(p, "mpeg4", "mp4", gop=12, bf=2), "pts"),
    "hevc-bframes.mkv": (lambda p: _write(p, "libx265", "matroska", {
        "x265-params": "bframes=3:keyint=10:min-keyint=10:scenecut=0:log-level=0"}), "pts"),
    "hevc-bframes.mp4": (lambda p: _write(p, "libx265", "mp4", {
        "x265-params": "bframes=3:keyint=10:min-keyint=10:scenecut=0:log-level=0"}), "pts"),
    "vfr.gif": (_vfr_gif, "pts"),
    "vp9-altref.webm": (lambda p: _write(p, "libvpx-vp9", "webm",
                                         {"lag-in-frames": "16", "auto-alt-ref": "1"}), "pts"),
    "h264-vfr.mp4": (lambda p: _write(p, "libx264", "mp4", {"x264-params": X264},
                                      pts=_vfr_pts()), "pts"),
    "h264-vfr.mkv": (lambda p: _write(p, "libx264", "matroska", {"x264-params": X264},
                                      pts=_vfr_pts()), "pts"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    writer, mode = CASES[request.param]
    path = writer(tmp_path_factory.mktemp("reorder") / request.param)
    return path, mode, sequential_digests(path)


def _fresh(path, threads=1) -> VideoReader:
    _INDEX_CACHE._d.clear()
    return VideoReader(path, threads=threads)


def test_count_mode_and_order(case):
    path, mode, seq = case
    n = len(seq)
    assert n == N or "cut" in path.name
    with _fresh(path) as r:
        assert r.frame_count == n
        assert r.info.read_mode == mode
        frames = r.read(range(n))
    ids = [frame_id(f) for f in frames]
    assert ids == list(range(ids[0], ids[0] + n))  # display order, as written
    assert [frame_digest(f) for f in frames] == seq


@pytest.mark.parametrize("threads", [1, 0])
def test_sampled_reads_equal_the_sequential_decode(case, threads):
    path, _, seq = case
    n = len(seq)
    with _fresh(path, threads) as r:
        for seed in range(4):
            rng = np.random.default_rng(seed)
            if seed % 2:  # the sampler's pattern: a stride from a random start
                start = int(rng.integers(0, n - 60))
                idx = [start + 7 * k for k in range(8)]
            else:
                idx = rng.choice(n, size=12, replace=False).tolist()
            assert [frame_digest(f) for f in r.read(idx)] == [seq[i] for i in idx], idx
        assert [frame_digest(f) for f in r.read([3, 2, 1])] == [seq[3], seq[2], seq[1]]


def test_seeking_is_kept(case):
    """A late frame costs one group of pictures, not the whole file."""
    path, _, seq = case
    with _fresh(path) as r:
        got = r.read([len(seq) - 3])
        assert frame_digest(got[0]) == seq[-3]
        if path.suffix in (".mpg", ".ts", ".h264", ".gif"):
            return  # reads stay right; these do not always seek to a keyframe, and a GIF
            # frame draws over the one before it, so it has none after the first
        assert r.frames_decoded <= 20


def test_skipping_unreferenced_frames_is_pixel_exact(tmp_path):
    """H.264 with B-frames: frames no wanted frame depends on are not decoded at all."""
    path = _write(tmp_path / "skip.mp4", "libx264", "mp4",
                  {"x264-params": "bframes=3:b-pyramid=none:keyint=120:scenecut=0"})
    seq = sequential_digests(path)
    idx = list(range(0, 106, 15))
    with _fresh(path) as r:
        assert [frame_digest(f) for f in r.read(idx)] == [seq[i] for i in idx]
        assert r.frames_decoded < 106 * 0.6  # non-reference B-frames were skipped


def test_a_contradicted_packet_index_switches_to_decoding(tmp_path, monkeypatch):
    """If the packets looked trustworthy but the decoder disagrees, nothing wrong is returned
    and the file is indexed by decoding instead."""
    path = _write(tmp_path / "liar.avi", "libx264", "avi", {"x264-params": X264})
    seq = sequential_digests(path)
    monkeypatch.setattr(_PyAVReader, "_distrust", lambda self, *a: "")
    with _fresh(path) as r:
        assert r.info.read_mode == "pts"
        assert [frame_digest(f) for f in r.read(range(N))] == seq
        assert r.info.read_mode == "decoded"


def test_a_file_cut_midway(tmp_path):
    path = _write(tmp_path / "full.avi", "mpeg4", "avi", gop=12, bf=2)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    seq = sequential_digests(cut)
    assert 0 < len(seq) < N
    with _fresh(cut) as r:
        assert r.frame_count == len(seq)
        assert r.truncated  # the header promised more
        idx = [0, len(seq) // 2, len(seq) - 1]
        assert [frame_digest(f) for f in r.read(idx)] == [seq[i] for i in idx]
    with pytest.raises(VideoReadError, match="truncated"):
        verify(cut)


def _packed_b_frames_three_times(tmp_path):
    """UCF101's own packed B-frames, three groups of pictures long (the shared clip remuxed
    three times), so that seeks land on later keyframes."""
    src = real_clip("v_ApplyEyeMakeup_g01_c01.avi")
    out = tmp_path / "packed3.avi"
    with av.open(str(out), "w", format="avi") as o:
        ost = None
        offset = 0
        for _ in range(3):
            with av.open(str(src)) as i:
                ist = i.streams.video[0]
                ost = ost or o.add_stream_from_template(ist)
                last = 0
                for p in i.demux(ist):
                    if p.dts is None:
                        continue
                    p.dts += offset
                    p.pts, last = p.dts, p.dts
                    p.stream = ost
                    o.mux(p)
                offset = last + 1
    return out


def test_packed_b_frames_seek_and_count(tmp_path):
    path = _packed_b_frames_three_times(tmp_path)
    seq = sequential_digests(path)
    with _fresh(path) as r:
        assert r.frame_count == len(seq) == 3 * 164
        assert r.info.read_mode == "decoded"
        idx = [400, 401, 415, 470]
        assert [frame_digest(f) for f in r.read(idx)] == [seq[i] for i in idx]
        assert r.frames_decoded < 164  # started at the third keyframe, not at frame 0
        assert [frame_digest(f) for f in r.read([5, 170])] == [seq[5], seq[170]]


def test_a_decoded_index_is_kept_on_disk_and_a_damaged_one_rebuilt(tmp_path, monkeypatch):
    from vidaction.io.video import _DISK_INDEX

    monkeypatch.setenv("VIDACTION_CACHE", str(tmp_path / "cache"))
    path = _write(tmp_path / "b.avi", "libx264", "avi", {"x264-params": X264})
    with _fresh(path) as r:
        first = r.read([57])
    entry = _DISK_INDEX._path(r._r._key)
    assert entry.is_file()

    def no_decoding(self, why):
        raise AssertionError("indexed by decoding again")

    with monkeypatch.context() as m:  # the next process reads the index from disk
        m.setattr(_PyAVReader, "_decoded_index", no_decoding)
        with _fresh(path) as r:
            assert r.info.read_mode == "decoded" and r.frame_count == N
            assert np.array_equal(r.read([57]), first)
    entry.write_bytes(entry.read_bytes()[:100])  # damaged: rebuilt, not trusted
    with _fresh(path) as r:
        assert r.frame_count == N and np.array_equal(r.read([57]), first)
    path.touch()  # a changed file gets a new entry
    with _fresh(path) as r:
        assert _DISK_INDEX._path(r._r._key) != entry


def _with_audio(path, fmt, start_pts=0, audio_seconds=3.0):
    """Video that starts late (a trimmed clip) beside a longer audio track, as downloaded
    Kinetics clips and phone videos are."""
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream("libx264", rate=25, options={"x264-params": X264})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=16000)
        for i, f in enumerate(_frames(40)):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i + start_pts
            for p in v.encode(vf):
                c.mux(p)
        for k in range(int(audio_seconds * 16000 / 1024)):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = 16000, k * 1024
            for p in a.encode(af):
                c.mux(p)
        for s in (v, a):
            for p in s.encode():
                c.mux(p)
    return path


@pytest.mark.parametrize("fmt,ext", [("mp4", ".mp4"), ("matroska", ".mkv"), ("flv", ".flv")])
def test_a_late_start_and_longer_audio_are_not_truncation(tmp_path, fmt, ext):
    """The container's duration spans every stream from its start: a video stream that ends
    before the audio, or starts after 0, is whole (this read as "truncated" before)."""
    path = _with_audio(tmp_path / f"trimmed{ext}", fmt, start_pts=30)
    seq = sequential_digests(path)
    info = verify(path)
    assert info.frame_count == len(seq) == 40


@pytest.mark.parametrize("name,codec,fmt", [
    ("camcorder.mts", "libx264", "mpegts"), ("camcorder.m2ts", "libx264", "mpegts"),
    ("old-phone.3gp", "libx264", "3gp"), ("web.flv", "libx264", "flv"),
    ("windows.wmv", "wmv2", "asf"), ("av1.mp4", "libsvtav1", "mp4")])
def test_other_containers_people_record_in(tmp_path, name, codec, fmt):
    """Found in folders, read whole, and cut short they are "truncated", not "not a video"."""
    from vidaction.data.sources import load_dataset

    opts = {"x264-params": X264} if codec == "libx264" else {}
    for c in ("clap", "wave"):
        (tmp_path / "data" / c).mkdir(parents=True)
    path = _write(tmp_path / "data" / "clap" / name, codec, fmt, opts, n=60)
    seq = sequential_digests(path)
    with _fresh(path) as r:
        assert r.frame_count == len(seq) == 60
        idx = [0, 17, 31, 59]
        assert [frame_digest(f) for f in r.read(idx)] == [seq[i] for i in idx]
    _write(tmp_path / "data" / "wave" / "w.mp4", "libx264", "mp4", n=10)
    assert path in [c.path for c in load_dataset(tmp_path / "data").clips]
    cut = tmp_path / f"cut{path.suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    try:
        info = verify(cut)
    except VideoReadError as e:
        assert not e.reason.startswith("not a video"), e.reason
    else:  # no header says how long it was: what is there reads, as a decode gives it
        assert info.frame_count == len(sequential_digests(cut)) < 60
