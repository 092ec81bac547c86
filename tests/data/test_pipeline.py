import logging
import os
import warnings

import numpy as np
import pytest

from conftest import frame_id, full_disk_open
from vidaction.data import cache as cache_module
from vidaction.data.cache import ClipCache, clip_key, encode_entry, file_identity
from vidaction.data.pipeline import SkipLog, make_dataset, to_float01
from vidaction.data.sampling import SamplingConfig

CFG = SamplingConfig(n_frames=3, frame_step=4, size=64)


@pytest.fixture
def videos(tmp_path):
    # video i has 40 + 10 i frames; its first frame id is offset by 100 * label
    out = []
    for i in range(6):
        p = tmp_path / f"v{i}.avi"
        from conftest import id_frame
        from vidaction.io import write_video

        label = i % 3
        write_video(p, [id_frame(min(j, 255)) for j in range(40 + 10 * i)], fps=25)
        out.append((p, label))
    return out


def _ids(clip):
    return [frame_id(f[8:56]) for f in clip]


def _epoch(ds):
    got = []
    for x, y in ds:
        for c, lab in zip(x.numpy(), y.numpy(), strict=True):
            got.append((int(lab), tuple(_ids(c))))
    return sorted(got)


def test_training_batches_uint8_random_starts_seeded(videos):
    ds = make_dataset(videos, CFG, training=True, batch_size=4, seed=5)
    e1, e2 = _epoch(ds), _epoch(ds)
    assert len(e1) == 6 and e1 != e2  # new random starts each epoch
    for _, ids in e1:
        assert ids[1] - ids[0] == 4 and ids[2] - ids[1] == 4
    same_seed = make_dataset(videos, CFG, training=True, batch_size=4, seed=5)
    x, y = next(iter(same_seed))
    assert x.shape == (4, 3, 64, 64, 3) and x.dtype.name == "uint8"
    assert y.dtype.name == "int32"
    # the peek above was epoch 1 of `same_seed`; its epoch 2 matches e2
    assert _epoch(same_seed) == e2


def test_eval_is_deterministic_with_k_clips(videos):
    ds = make_dataset(videos, CFG, training=False, batch_size=5, clips_per_video=3,
                      with_video_id=True)
    rows = [(int(v), int(lab), tuple(_ids(c))) for x, y, vid in ds
            for c, lab, v in zip(x.numpy(), y.numpy(), vid.numpy(), strict=True)]
    assert len(rows) == 18
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # file order kept
    first = [r for r in rows if r[0] == 0]  # 40 frames, span 9 -> starts 0, 16, 31
    assert [r[2][0] for r in first] == [0, 16, 31]
    again = [(int(v), int(lab), tuple(_ids(c))) for x, y, vid in ds
             for c, lab, v in zip(x.numpy(), y.numpy(), vid.numpy(), strict=True)]
    assert rows == again
    assert all(lab == videos[v][1] for v, lab, _ in rows)


def test_bad_file_is_skipped_with_one_warning(videos, tmp_path, caplog):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"garbage" * 100)
    items = [*videos[:2], (bad, 2), *videos[2:4]]
    skips = SkipLog()
    ds = make_dataset(items, CFG, training=True, batch_size=2, seed=0, skips=skips)
    with caplog.at_level(logging.WARNING, logger="vidaction.data"):
        e1 = _epoch(ds)
        e2 = _epoch(ds)
    assert len(e1) == len(e2) == 4
    assert skips.counts == {str(bad): 2}  # counted every epoch
    warnings = [r for r in caplog.records if "broken.avi" in r.getMessage()]
    assert len(warnings) == 1  # warned once
    # labels still belong to their own videos: no shift after the dropped element
    expect = sorted(lab for _, lab in items if _ != bad)
    assert sorted(lab for lab, _ in e1) == expect


def test_cache_serves_epoch_two_from_disk(videos, tmp_path):
    cache_dir = tmp_path / "cache"
    plain = make_dataset(videos, CFG, training=False, batch_size=3)
    cached = make_dataset(videos, CFG, training=False, batch_size=3, cache_dir=cache_dir)
    e_plain = _epoch(plain)
    assert _epoch(cached) == e_plain
    cache = cached.loader.cache
    assert cache.misses == 6 and cache.hits == 0
    assert _epoch(cached) == e_plain
    assert cache.hits == 6 and cache.misses == 6


def test_training_cache_fills_every_position_in_epoch_one(videos, tmp_path):
    ds = make_dataset(videos, CFG, training=True, batch_size=3, seed=2,
                      cache_dir=tmp_path / "c")
    _epoch(ds)
    cache = ds.loader.cache
    assert cache.misses == 6 and len(list((tmp_path / "c").rglob("*.npy"))) == 6 * 4
    _epoch(ds)
    _epoch(ds)
    assert cache.misses == 6 and cache.hits == 12  # nothing decoded after epoch one


def test_cache_key_changes_with_file_and_params(videos):
    path = videos[0][0]
    k = clip_key(file_identity(path), CFG, "eval1:0")
    assert k == clip_key(file_identity(path), CFG, "eval1:0")
    assert k != clip_key(file_identity(path), SamplingConfig(3, 5, 64), "eval1:0")
    assert k != clip_key(file_identity(path), CFG, "eval1:1")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert k != clip_key(file_identity(path), CFG, "eval1:0")


def test_cache_write_is_atomic_and_roundtrips(tmp_path):
    cache = ClipCache(tmp_path)
    clip = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    cache.put("ab" * 20, clip, np.array([True, False]))
    got = cache.get("ab" * 20)
    assert np.array_equal(got[0], clip) and got[1].tolist() == [True, False]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert cache.get("cd" * 20) is None
    f = next(tmp_path.rglob("*.npy"))
    f.write_bytes(f.read_bytes()[:40])  # a damaged entry is a miss, not a crash
    with pytest.warns(UserWarning, match="damaged entry"):
        assert cache.get("ab" * 20) is None


def test_training_with_cache_varies_start_over_fixed_positions(videos, tmp_path):
    ds = make_dataset(videos, CFG, training=True, batch_size=6, seed=1,
                      cache_dir=tmp_path / "c")
    starts = {ids[0] for _ in range(6) for _, ids in _epoch(ds)}
    assert len(starts) > 3


def test_with_mask_and_float_conversion(videos):
    ds = make_dataset(videos[:1], SamplingConfig(n_frames=8, frame_step=10, size=32),
                      training=False, batch_size=1, with_mask=True)
    x, _ = next(iter(ds))
    assert x["mask"].numpy().tolist() == [[True] * 4 + [False] * 4]
    f = to_float01(x["clip"]).numpy()
    assert f.dtype == np.float32 and 0.0 <= f.min() and f.max() <= 1.0


@pytest.mark.parametrize("training", [False, True])
def test_cache_on_a_full_disk_warns_once_and_skips_no_video(videos, tmp_path, monkeypatch,
                                                            training):
    cache_dir = tmp_path / "cache"
    monkeypatch.setattr(cache_module, "open", full_disk_open, raising=False)
    skips = SkipLog()
    ds = make_dataset(videos, CFG, training=training, batch_size=3, seed=1,
                      cache_dir=cache_dir, skips=skips)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e1, e2 = _epoch(ds), _epoch(ds)
    assert len(e1) == len(e2) == 6 and skips.total == 0  # no good video "unreadable"
    assert sorted(lab for lab, _ in e1) == sorted(lab for _, lab in videos)
    msgs = [str(w.message) for w in caught if "cache" in str(w.message)]
    assert len(msgs) == 1, msgs
    assert "no space left on device" in msgs[0] and str(cache_dir) in msgs[0]
    assert not [p for p in cache_dir.rglob("*") if p.is_file()]  # no temporaries left
    if not training:
        assert e1 == _epoch(make_dataset(videos, CFG, training=False, batch_size=3))


def test_cache_folder_that_cannot_be_made_warns_and_decodes(videos, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    with pytest.warns(UserWarning, match="clip cache: cannot write"):
        ds = make_dataset(videos, CFG, training=False, batch_size=3,
                          cache_dir=blocker / "cache")
        assert len(_epoch(ds)) == 6 and ds.skips.total == 0


def test_garbled_clip_cache_entries_are_recomputed_with_one_warning(videos, tmp_path):
    cache_dir = tmp_path / "cache"
    plain = _epoch(make_dataset(videos, CFG, training=False, batch_size=3))
    assert _epoch(make_dataset(videos, CFG, training=False, batch_size=3,
                               cache_dir=cache_dir)) == plain
    entries = sorted(cache_dir.rglob("*.npy"))
    assert len(entries) == 6
    # zeroed pixels (same size), a truncated entry, a well-formed entry of the wrong shape
    data = bytearray(entries[0].read_bytes())
    data[200:-200] = bytes(len(data) - 400)
    entries[0].write_bytes(bytes(data))
    entries[1].write_bytes(entries[1].read_bytes()[:-100])
    entries[2].write_bytes(encode_entry([np.zeros((3, 32, 32, 3), np.uint8),
                                         np.ones(3, bool)]))
    ds = make_dataset(videos, CFG, training=False, batch_size=3, cache_dir=cache_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _epoch(ds) == plain  # never a black or wrong-shaped clip
    msgs = [str(w.message) for w in caught if "cache" in str(w.message)]
    assert len(msgs) == 1 and "damaged entry" in msgs[0], msgs
    store = ds.loader.cache.store
    assert store.damaged == 3 and ds.loader.cache.misses == 3 and ds.skips.total == 0
    assert _epoch(ds) == plain and ds.loader.cache.hits == 3 + 6  # rewritten, then served
