import numpy as np
import pytest

from vidaction.data.sampling import SamplingConfig
from vidaction.models.scoring import (
    average_clips,
    load_videos,
    score_videos,
    softmax,
    video_scores,
)

# A fake model: each clip's first pixel selects its logits, so tests decide clip verdicts.
LOGITS = {
    0: [1.0, 0.8],   # leans to class 0 (p0 = 0.55)
    1: [1.0, 0.8],   # the same
    2: [0.0, 3.0],   # sure of class 1 (p1 = 0.95)
    3: [9.0, 0.0],   # very sure of class 0
    4: [0.0, 1.0],
}


def fake_model(calls=None):
    def fn(batch):
        if calls is not None:
            calls.append(len(batch))
        return np.array([LOGITS[int(c[0, 0, 0, 0])] for c in batch])
    return fn


def clips_of(*ids):
    out = np.zeros((len(ids), 2, 4, 4, 3), np.uint8)
    for i, v in enumerate(ids):
        out[i, 0, 0, 0, 0] = v
    return out


def test_disagreeing_clips_get_the_averaged_verdict():
    # two of three clips lean to class 0, one is sure of class 1: the average says class 1
    probs = video_scores(fake_model(), clips_of(0, 1, 2))
    votes = [int(np.argmax(LOGITS[i])) for i in (0, 1, 2)]
    assert votes.count(0) == 2
    assert int(np.argmax(probs)) == 1
    expected = np.mean([softmax(np.array(LOGITS[i])) for i in (0, 1, 2)], axis=0)
    np.testing.assert_allclose(probs, expected)
    assert probs.sum() == pytest.approx(1.0)


def test_probabilities_are_averaged_not_logits():
    # logit averaging would let one huge logit outvote two confident clips
    logits = np.array([[9.0, 0.0], [0.0, 3.0], [0.0, 3.0]])
    assert int(np.argmax(logits.mean(axis=0))) == 0
    assert int(np.argmax(average_clips(logits))) == 1


def test_single_clip_is_its_own_softmax():
    probs = video_scores(fake_model(), clips_of(4))
    np.testing.assert_allclose(probs, softmax(np.array([0.0, 1.0])))


def test_batches_cross_video_boundaries_and_keep_order():
    videos = [("a", clips_of(0, 1, 2)), ("b", clips_of(3)), ("c", clips_of(4, 2)),
              ("d", clips_of(2, 2, 3))]
    calls = []
    got = list(score_videos(fake_model(calls), videos, batch_size=4))
    assert [s.key for s in got] == ["a", "b", "c", "d"]
    assert calls == [4, 4, 1]  # 9 clips in batches of 4, whatever the video borders
    for s, (_, clips) in zip(got, videos, strict=True):
        assert s.clip_logits.shape == (len(clips), 2)
        np.testing.assert_allclose(s.probs, video_scores(fake_model(), clips))


def test_load_videos_reads_in_order_and_reports_bad_files(video_factory, tmp_path):
    good = video_factory("good.mp4", n=40)
    short = video_factory("short.mp4", n=3)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 10)
    missing = tmp_path / "missing.mp4"
    cfg = SamplingConfig(n_frames=4, frame_step=3, size=16)
    out = list(load_videos([good, junk, short, missing], cfg, clips=3, workers=2,
                           lookahead=2))
    assert [o.index for o in out] == [0, 1, 2, 3]
    assert out[0].clips.shape == (3, 4, 16, 16, 3) and out[0].error == ""
    assert out[2].clips.shape == (3, 4, 16, 16, 3)  # short videos are padded, not skipped
    assert out[1].clips is None and out[1].error
    assert out[3].clips is None and out[3].error
    # evenly spaced clips of the good video differ (they start at frames 0, 15, 30)
    assert not np.array_equal(out[0].clips[0], out[0].clips[2])
