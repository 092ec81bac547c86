"""On-disk cache of decoded, resized clips, so epoch 2+ reads arrays instead of decoding.

A key covers everything that changes the pixels: the file (resolved path, mtime, size),
the sampling parameters and which clip of the file. A changed file gets a new key; stale
entries are never served.

Every entry ends in a CRC-32 of its bytes and is checked for shape and dtype on read, so a
garbled entry (bit rot, a zeroed block, a hand-copied file) is recomputed, with one warning,
instead of being served. A cache that cannot be written (disk full, read-only) is a cache
problem, not a bad video: one warning, and the work goes on without storing entries.
`CacheStore` is shared with the feature cache of `vidaction.train.features`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidaction.data.sampling import SamplingConfig
from vidaction.io.writer import os_reason

# Bumped when the entry layout changes: part of every key, so old entries are never read.
FORMAT = "v2"
_MAGIC = b"vac2"  # last bytes of an entry, after the CRC-32 of everything before them
_TRAILER = struct.Struct("<I4s")


def file_identity(path: str | os.PathLike) -> tuple:
    """What makes two reads of a file the same: absolute path, mtime, size."""
    st = os.stat(path)
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _cfg_text(cfg: SamplingConfig) -> str:
    return json.dumps(cfg.as_dict(), sort_keys=True)


def clip_key(identity: tuple, cfg: SamplingConfig, slot: str) -> str:
    """Hex key of one clip; computed on every read, so kept to a stat and a hash."""
    blob = "\x00".join([FORMAT, *(str(v) for v in identity), _cfg_text(cfg), slot])
    return hashlib.sha1(blob.encode()).hexdigest()


class DamagedEntry(Exception):
    """A cache entry whose bytes are not what was written."""


def encode_entry(arrays: Sequence[np.ndarray]) -> bytes:
    """The arrays as consecutive .npy records, then their CRC-32 and a magic tag."""
    buf = io.BytesIO()
    for a in arrays:
        np.lib.format.write_array(buf, np.asarray(a, order="C"), allow_pickle=False)
    payload = buf.getbuffer()
    return bytes(payload) + _TRAILER.pack(zlib.crc32(payload), _MAGIC)


# The header numpy writes ("{'descr': '|u1', 'fortran_order': False, 'shape': (8, 32), }").
_HEADER = re.compile(r"\{'descr': '([<>|=][a-z]\d+)', 'fortran_order': (True|False), "
                     r"'shape': \(((?:\d+, )*\d*,?)\), \}\s*")
_LENGTH = {(1, 0): struct.Struct("<H"), (2, 0): struct.Struct("<I")}
_ast_lock = threading.Lock()


def _array_header(head: memoryview) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran, dtype, header size) of one .npy record, without `ast`.

    numpy parses the header with `ast.literal_eval`, and CPython 3.11 before 3.11.8 raises
    "SystemError: AST constructor recursion depth mismatch" when two threads do that at
    once (gh-106905); tf.data reads entries from several threads, and that error once
    skipped a good video. So the header numpy writes is parsed here; any other form goes
    through numpy's own parser, one thread at a time.
    """
    buf = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(buf)
        length = _LENGTH.get(version)
        if length is None:
            raise ValueError(f"format version {version}")
        start = buf.tell() + length.size
        (n,) = length.unpack_from(head, buf.tell())
        m = _HEADER.fullmatch(bytes(head[start:start + n]).decode("latin1"))
        if m is not None:
            shape = tuple(int(d) for d in m[3].replace(",", " ").split())
            return shape, m[2] == "True", np.dtype(m[1]), start + n
        buf.seek(0)
        np.lib.format.read_magic(buf)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        with _ast_lock:
            shape, fortran, dtype = read(buf)
        return shape, fortran, dtype, buf.tell()
    except Exception as e:  # noqa: BLE001 - numpy's parser raises SyntaxError, TokenError...
        raise DamagedEntry(f"bad array header ({type(e).__name__}: {e})") from None


def decode_entry(data: bytes | bytearray, count: int) -> list[np.ndarray]:
    """The `count` arrays of an entry (views into `data`); DamagedEntry when it is not whole."""
    if len(data) < _TRAILER.size:
        raise DamagedEntry(f"{len(data)} bytes, shorter than any entry")
    crc, magic = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    view = memoryview(data)[:len(data) - _TRAILER.size]
    if magic != _MAGIC:
        raise DamagedEntry("no end marker (truncated or not a vidaction cache entry)")
    if zlib.crc32(view) != crc:
        raise DamagedEntry("checksum mismatch")
    out, pos = [], 0
    for _ in range(count):
        shape, fortran, dtype, size = _array_header(view[pos:pos + 4096])
        if dtype.hasobject or fortran:
            raise DamagedEntry("unexpected array layout")
        pos += size
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if pos + n > len(view):
            raise DamagedEntry("shorter than its header says")
        out.append(np.frombuffer(data, dtype, count=int(np.prod(shape)), offset=pos)
                   .reshape(shape))
        pos += n
    if pos != len(view):
        raise DamagedEntry("longer than its arrays")
    return out


def _matches(shape: tuple, want: Sequence[int | None] | None) -> bool:
    if want is None:
        return True
    return len(shape) == len(want) and all(w is None or s == w
                                           for s, w in zip(shape, want, strict=True))


_warned: set[tuple[str, str]] = set()  # (what, folder): a train and a val store share one
_warned_lock = threading.Lock()


def _first_time(what: str, folder: Path) -> bool:
    with _warned_lock:
        key = (what, str(folder))
        new = key not in _warned
        _warned.add(key)
    return new


class CacheStore:
    """Checked entries of arrays under one folder. Thread-safe (tf.data reads in threads).

    Reads: a missing entry is a miss; a damaged one is a miss, deleted, and warned about
    once per folder and process. Writes: atomic (temporary name, then rename); the first
    failure turns writing off for this store and warns once per folder, naming the file
    and the reason.
    """

    def __init__(self, directory: str | os.PathLike, kind: str):
        self.dir = Path(directory)
        self.kind = kind
        self.writable = True
        self.damaged = 0
        self._lock = threading.Lock()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._write_failed(self.dir, e)

    def _write_failed(self, path: Path, e: OSError) -> None:
        with self._lock:
            first, self.writable = self.writable, False
        if first and _first_time("write", self.dir):
            warnings.warn(f"{self.kind} cache: cannot write {path}: {os_reason(e).lower()}; "
                          "going on without storing new entries", stacklevel=3)

    def read(self, f: Path, spec: Sequence[tuple[Sequence[int | None] | None, np.dtype | type]],
             finite: bool = False) -> list[np.ndarray] | None:
        """The entry's arrays, checked against `spec` ((shape, dtype) per array, None for
        any size or shape) and, with `finite`, for NaN and inf; None when missing or damaged."""
        try:
            with open(f, "rb") as fh:
                data = bytearray(os.fstat(fh.fileno()).st_size)
                got = fh.readinto(data)
            if got != len(data):
                raise DamagedEntry(f"read {got} of {len(data)} bytes")
            arrays = decode_entry(data, len(spec))
            for a, (shape, dtype) in zip(arrays, spec, strict=True):
                if a.dtype != np.dtype(dtype) or not _matches(a.shape, shape):
                    want = "any" if shape is None else [s or "*" for s in shape]
                    raise DamagedEntry(f"holds {a.dtype}{list(a.shape)}, expected "
                                       f"{np.dtype(dtype)}{want}")
                if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
                    raise DamagedEntry("holds NaN or inf values")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (DamagedEntry, OSError) as e:
            self._damaged(f, e)
            return None
        except Exception as e:  # noqa: BLE001 - a read that fails is a miss, not a lost video
            self._damaged(f, DamagedEntry(f"{type(e).__name__}: {e}"))
            return None
        return arrays

    def _damaged(self, f: Path, e: Exception) -> None:
        with self._lock:
            self.damaged += 1
        try:
            f.unlink()
        except OSError:
            pass
        if _first_time("damaged", self.dir):
            reason = os_reason(e).lower() if isinstance(e, OSError) else str(e)
            warnings.warn(f"{self.kind} cache: {f}: damaged entry ({reason}); recomputed "
                          "(further damaged entries are recomputed without a warning)",
                          stacklevel=3)

    def write(self, f: Path, arrays: Sequence[np.ndarray]) -> bool:
        """Store an entry; False when the cache cannot be written (warned once)."""
        if not self.writable:
            return False
        tmp = f.with_name(f".{f.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            # bytes through a plain file write: numpy's tofile reports a full disk as
            # "N requested and M written", without errno
            data = encode_entry(arrays)
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, f)
        except OSError as e:
            self._write_failed(f, e)
            return False
        finally:
            try:
                tmp.unlink()
            except OSError:
                pass
        return True


class ClipCache:
    def __init__(self, directory: str | os.PathLike):
        self.store = CacheStore(directory, "clip")
        self.dir = self.store.dir
        self.hits = 0
        self.misses = 0
        # tf.data calls get() from several threads: `+=` on an attribute is not atomic.
        self._count_lock = threading.Lock()

    def _file(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str, shape: Sequence[int | None] = (None, None, None, 3)
            ) -> tuple[np.ndarray, np.ndarray] | None:
        """The clip (uint8 `shape`) and its mask, or None. A damaged entry is a miss."""
        # Plain .npy records and a CRC-32: np.savez would also CRC-check every read, but
        # through zipfile, which cost more than the read itself.
        got = self.store.read(self._file(key), [(shape, np.uint8), ((shape[0],), np.bool_)])
        with self._count_lock:
            if got is None:
                self.misses += 1
            else:
                self.hits += 1
        return None if got is None else (got[0], got[1])

    def put(self, key: str, clip: np.ndarray, mask: np.ndarray) -> bool:
        """Store a clip; False (warned once) when the cache cannot be written."""
        return self.store.write(self._file(key), [np.asarray(clip, np.uint8),
                                                  np.asarray(mask, bool)])
