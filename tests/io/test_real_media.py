"""The reader on real recordings nobody here made (UCF101's packed B-frames, H.264 in AVI,
Matroska, phone-size MP4): frame counts and pixels equal a plain sequential decode."""

from functools import cache

import numpy as np
import pytest

from conftest import frame_digest, real_videos, sequential_digests
from vidaction.io import VideoReader, verify
from vidaction.io.video import _INDEX_CACHE

truth = cache(sequential_digests)


@pytest.fixture(params=real_videos())
def real(request):
    _INDEX_CACHE._d.clear()  # index each file afresh: what a new process sees
    return request.param, truth(request.param)


def test_frame_count_is_what_a_sequential_decode_gives(real):
    path, seq = real
    with VideoReader(path, threads=1) as r:
        assert r.frame_count == len(seq) > 0
        assert r.info.frame_count == len(seq)
        assert not r.truncated


@pytest.mark.parametrize("threads", [1, 0])
def test_random_index_sets_read_the_sequential_frames(real, threads):
    path, seq = real
    n = len(seq)
    with VideoReader(path, threads=threads) as r:
        for seed in (0, 1, 2):
            idx = np.random.default_rng(seed).choice(n, size=min(n, 12), replace=False)
            got = [frame_digest(f) for f in r.read(idx)]
            assert got == [seq[i] for i in idx], f"{path.name}: seed {seed}"


def test_every_frame_backwards_and_streamed(real):
    path, seq = real
    with VideoReader(path, threads=1) as r:
        back = [frame_digest(f) for f in r.read(list(range(len(seq)))[::-1])]
        assert back == seq[::-1]
        assert [frame_digest(f) for f in r.iter_frames()] == seq


def test_verify_accepts_the_file(real):
    path, seq = real
    info = verify(path)
    assert info.frame_count == len(seq)
    assert info.read_mode in ("pts", "decoded")
