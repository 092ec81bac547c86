"""Cache entries are read without `ast`, and a read that fails is a miss, never a skip."""

import ast
import io
import struct
import warnings

import numpy as np
import pytest

from vidaction.data import cache as C

ARRAYS = [np.arange(8 * 4 * 4 * 3, dtype=np.uint8).reshape(8, 4, 4, 3),
          np.array([True, False] * 4), np.float32(2.5) * np.ones((), np.float32),
          np.linspace(0, 1, 15, dtype=np.float32).reshape(3, 5), np.zeros(0, np.int64)]


def _no_ast(monkeypatch):
    """As CPython 3.11 < 3.11.8 does when two threads parse at once (gh-106905)."""
    def broken(*a, **k):
        raise SystemError("AST constructor recursion depth mismatch (before=42, after=38)")
    monkeypatch.setattr(ast, "literal_eval", broken)


def test_entries_written_by_numpy_are_read_back_without_ast(monkeypatch):
    data = C.encode_entry(ARRAYS)
    _no_ast(monkeypatch)
    got = C.decode_entry(data, len(ARRAYS))
    for a, b in zip(got, ARRAYS, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def _entry_with_header(text: str, payload: bytes) -> bytes:
    head = text.encode("latin1")
    head += b" " * (-(len(head) + 11) % 64) + b"\n"
    body = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + payload
    return body + C._TRAILER.pack(C.zlib.crc32(body), C._MAGIC)


def test_a_header_in_another_form_goes_through_numpy(monkeypatch):
    # keys in another order: valid .npy, not the form this numpy writes
    data = _entry_with_header("{'shape': (2, 3), 'fortran_order': False, 'descr': '<i2', }",
                              np.arange(6, dtype="<i2").tobytes())
    (a,) = C.decode_entry(data, 1)
    np.testing.assert_array_equal(a, np.arange(6, dtype=np.int16).reshape(2, 3))
    _no_ast(monkeypatch)  # numpy's parser failing is a damaged entry (recomputed), no crash
    with pytest.raises(C.DamagedEntry, match="SystemError: AST constructor"):
        C.decode_entry(data, 1)


@pytest.mark.parametrize("header", ["{'descr': '|u1', 'fortran_order': False, 'shape': (8, }",
                                    "not a dict at all"])
def test_a_garbled_header_is_a_damaged_entry(header):
    with pytest.raises(C.DamagedEntry, match="bad array header"):
        C.decode_entry(_entry_with_header(header, b"\x00" * 8), 1)


def test_a_read_that_fails_in_any_way_is_a_miss_and_the_clip_is_computed_again(
        tmp_path, monkeypatch):
    cache = C.ClipCache(tmp_path)
    clip, mask = ARRAYS[0], ARRAYS[1]
    assert cache.put("k", clip, mask)
    got = cache.get("k", clip.shape)
    assert got is not None and cache.hits == 1
    np.testing.assert_array_equal(got[0], clip)

    def boom(data, count):
        raise RuntimeError("something unforeseen")
    monkeypatch.setattr(C, "decode_entry", boom)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert cache.get("k", clip.shape) is None
    assert cache.misses == 1 and "RuntimeError: something unforeseen" in str(w[0].message)
    monkeypatch.undo()
    assert cache.put("k", clip, mask) and cache.get("k", clip.shape) is not None


def test_header_parse_matches_numpy_for_every_written_form():
    for a in ARRAYS + [np.zeros((1,), "<f8"), np.zeros((3, 1, 2), ">u2")]:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a, allow_pickle=False)
        raw = memoryview(buf.getvalue())
        ref = io.BytesIO(raw)
        np.lib.format.read_magic(ref)
        want = np.lib.format.read_array_header_1_0(ref)
        shape, fortran, dtype, size = C._array_header(raw)
        assert (shape, fortran, dtype, size) == (*want, ref.tell())
