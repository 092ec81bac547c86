"""Official model files: fetched once over HTTP, checked by sha256, cached, or given locally.

Every pretrained file vidaction uses (MoViNet checkpoints and TFLite models, pose models)
comes from its publisher's own URL; nothing is bundled. The first use downloads it into
`$VIDACTION_CACHE/<subdir>/` through a temporary name, so a cut connection never leaves a
short file under the real name. A file whose sha256 is not the published one (a damaged or
truncated copy) is deleted and fetched again once. Offline, the error names the URL and the
remedy: download it elsewhere and pass it with `--weights PATH` (or the caller's flag).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

from vidaction.errors import VidactionError

CHUNK = 1 << 20
TIMEOUT = 30.0  # seconds without a byte before a download counts as stalled


class WeightsError(VidactionError):
    """Pretrained weights that cannot be fetched, verified, unpacked or restored."""


class Corrupt(Exception):
    """A file that is there but not whole; deleted and fetched again once."""


def cache_dir_for(subdir: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else `$VIDACTION_CACHE`, else ~/.cache/vidaction; then `subdir`."""
    from vidaction.paths import cache_root

    return (Path(cache_dir).expanduser() if cache_dir is not None else cache_root()) / subdir


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, remedy: str = "--weights PATH") -> None:
    """Fetch `url` to `dest` via a temporary name; a short body never lands under `dest`.

    Raises WeightsError when the server cannot be reached or refuses (naming `remedy`), and
    Corrupt when the body stopped short (worth another try)."""
    import requests

    from vidaction.progress import bar as progress_bar

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    got, expected = 0, None
    elsewhere = f"download it elsewhere and pass the file with {remedy}"
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as r:
            if r.status_code != 200:
                raise WeightsError(f"{url} answered HTTP {r.status_code}; {elsewhere}")
            expected = int(r.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as f, progress_bar(total=expected, unit="B", unit_scale=True,
                                                    desc=dest.name) as bar:
                for chunk in r.iter_content(CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and got != expected:
            raise Corrupt(f"{url}: got {got} of {expected} bytes")
        os.replace(tmp, dest)
    except requests.exceptions.ChunkedEncodingError as e:  # body shorter than announced
        raise Corrupt(f"{url}: connection dropped mid-download") from e
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as e:
        # a quiet server: ReadTimeout before the body, ConnectionError(ReadTimeoutError)
        # inside it; a connection that broke after some bytes is worth another try too
        stalled = (isinstance(e, requests.exceptions.ReadTimeout)
                   or "read timed out" in str(e).lower())
        if not (stalled or got):
            raise WeightsError(f"could not reach {url} ({type(e).__name__}); "
                               f"{elsewhere}") from None
        at = f"{got / 1e6:.1f}" + (f" of {expected / 1e6:.1f}" if expected else "") + " MB"
        why = f"stalled, no data for {TIMEOUT:g} s" if stalled else "connection dropped"
        raise Corrupt(f"{url}: download {why} at {at}") from e
    except requests.exceptions.RequestException as e:
        raise WeightsError(f"could not reach {url} ({type(e).__name__}); {elsewhere}") from None
    finally:
        tmp.unlink(missing_ok=True)


def fetch_verified(url: str, sha256: str, filename: str, subdir: str = "weights",
                   weights: str | os.PathLike | None = None,
                   cache_dir: str | os.PathLike | None = None,
                   remedy: str = "--weights PATH",
                   unpack: Callable[[Path, Path], None] | None = None) -> Path:
    """The path of the published file: `weights` when given, else the cached copy, else
    downloaded. A cached or downloaded copy must have the published sha256; a local
    `weights` copy that differs is used with a warning (the user chose it).

    `unpack(downloaded, dest)`, when given, turns what the URL serves (e.g. an archive)
    into the file at `dest`; it raises Corrupt for a damaged download."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: no such file (given with {remedy.split()[0]})")
        if sha256 and sha256_of(path) != sha256:
            warnings.warn(f"{path}: not the published {filename} (sha256 differs); "
                          "using it as given", stacklevel=2)
        return path
    dest = cache_dir_for(subdir, cache_dir) / filename
    for attempt in (1, 2):
        try:
            if not dest.is_file() and unpack is None:
                download(url, dest, remedy)
            elif not dest.is_file():
                served = dest.with_name(f"{dest.name}.download")
                try:
                    download(url, served, remedy)
                    unpack(served, dest)
                finally:
                    served.unlink(missing_ok=True)
            got = sha256_of(dest)
            if sha256 and got != sha256:
                raise Corrupt(f"{dest}: sha256 {got[:12]}... is not the published "
                              f"{sha256[:12]}...")
            return dest
        except Corrupt as e:
            dest.unlink(missing_ok=True)
            if attempt == 2:
                raise WeightsError(f"{e}; download {url} elsewhere and pass it with "
                                   f"{remedy}") from None
            warnings.warn(f"{e}; downloading again (try 2 of 2)", stacklevel=2)
    raise AssertionError("unreachable")
