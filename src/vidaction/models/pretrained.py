"""Official Kinetics-600 MoViNet checkpoints: download, verify, unpack safely, restore.

The official tarball `movinet_<id>_<base|stream>.tar.gz` holds one folder
`movinet_<id>_<variant>/` with a TF object-based checkpoint (`checkpoint`,
`ckpt-1.index`, `ckpt-1.data-00000-of-00001`) written by
`tf.train.Checkpoint(model=MovinetClassifier(...))`. We restore it into a 600-class
classifier on the same backbone object, check that every variable found its value, and hand
the (now pretrained) backbone to the caller, who puts the user's head on it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import warnings
from pathlib import Path

import vidaction  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from vidaction.io.download import CHUNK, WeightsError, download  # noqa: F401 (WeightsError: part of this API)
from vidaction.io.download import Corrupt as _Corrupt
from vidaction.models import movinet as mv

URL_PATTERN = "https://storage.googleapis.com/tf_model_garden/vision/movinet/movinet_{id}_{variant}.tar.gz"

# sha256 of the official tarballs. Empty for now: they were not downloadable where this was
# written, so only the size (Content-Length) and a full read of the archive are checked.
# Add "movinet_a0_base.tar.gz": "<hex>" entries here once measured.
KNOWN_SHA256: dict[str, str] = {}

def official_url(cfg: mv.MovinetConfig) -> str:
    return URL_PATTERN.format(id=cfg.model_id, variant=cfg.variant)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """`cache_dir`, else `$VIDACTION_CACHE`, else ~/.cache/vidaction; weights live in weights/."""
    from vidaction.paths import cache_root as shared_root

    return (Path(cache_dir).expanduser() if cache_dir is not None else shared_root()) / "weights"


def _cache_name(url: str) -> str:
    name = Path(url.split("?", 1)[0]).name or "weights.tar.gz"
    if not url.startswith(URL_PATTERN.split("{", 1)[0]):
        # A user URL may reuse an official file name for other weights: keep them apart.
        name = hashlib.sha256(url.encode()).hexdigest()[:10] + "-" + name
    return name


def _verify(path: Path) -> None:
    """sha256 when known, and a full read of the archive (a truncated gzip fails here)."""
    known = KNOWN_SHA256.get(path.name)
    if known:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
        if h.hexdigest() != known:
            raise _Corrupt(f"{path}: sha256 {h.hexdigest()} is not the published {known}")
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile():
                    with tar.extractfile(member) as f:
                        while f.read(CHUNK):
                            pass
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise _Corrupt(f"{path}: not a readable tar archive ({e})") from e


def safe_extract(archive: Path, dest: Path) -> None:
    """Unpack `archive` into `dest`, refusing any member that would land outside it."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                target = (root / m.name).resolve()
                bad = (m.name.startswith(("/", "\\")) or ".." in Path(m.name).parts
                       or not target.is_relative_to(root)
                       or m.issym() or m.islnk() or m.isdev())
                if bad:
                    raise WeightsError(f"{archive}: refusing to unpack member {m.name!r} "
                                       "(path outside the folder, link or device)")
            tar.extractall(root, members=members, filter="data")
    except tarfile.TarError as e:  # includes the 'data' filter's own refusals
        raise WeightsError(f"{archive}: cannot unpack ({e})") from e


def find_checkpoint(path: Path) -> str:
    """The checkpoint prefix inside a folder (or the prefix itself): what tf restore wants."""
    import tensorflow as tf

    if Path(str(path) + ".index").is_file():
        return str(path)
    if path.is_dir():
        latest = tf.train.latest_checkpoint(str(path))
        if latest and Path(latest + ".index").is_file():
            return latest
        indexes = sorted(path.rglob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0].with_suffix(""))
        if len(indexes) > 1:
            raise WeightsError(f"{path}: {len(indexes)} checkpoints "
                               f"({', '.join(p.name for p in indexes[:4])}); pass one prefix")
    raise WeightsError(f"{path}: no TensorFlow checkpoint (*.index) found")


def fetch(url: str, cache_dir: str | Path | None = None) -> str:
    """Download (once), verify and unpack `url`; returns the checkpoint prefix in the cache."""
    root = cache_root(cache_dir)
    archive = root / _cache_name(url)
    unpacked = root / (archive.name.split(".tar")[0] + ".d")
    if unpacked.is_dir():
        return find_checkpoint(unpacked)
    for attempt in (1, 2):
        try:
            if not archive.is_file():
                download(url, archive, remedy="--pretrained PATH")
            _verify(archive)
            break
        except _Corrupt as e:
            archive.unlink(missing_ok=True)
            if attempt == 2:
                raise WeightsError(f"{e}; download it elsewhere and pass the file with "
                                   "--pretrained PATH") from None
            warnings.warn(f"{e}; downloading again (try 2 of 2)", stacklevel=2)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        safe_extract(archive, tmp)
        find_checkpoint(tmp)  # fail before the rename: the cache only holds usable folders
        try:
            os.replace(tmp, unpacked)
        except OSError:  # another process won the race; its copy is as good
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return find_checkpoint(unpacked)


def resolve(pretrained: str, cfg: mv.MovinetConfig, weights_url: str | None = None,
            cache_dir: str | Path | None = None, workdir: Path | None = None) -> str:
    """Map `--pretrained auto|PATH` to a checkpoint prefix (a tarball is unpacked in workdir)."""
    if pretrained == "auto":
        return fetch(weights_url or official_url(cfg), cache_dir)
    path = Path(pretrained).expanduser()
    if path.is_file() and tarfile.is_tarfile(path):
        if workdir is None:
            raise ValueError("a tarball needs a workdir to unpack into")
        safe_extract(path, workdir)
        return find_checkpoint(workdir)
    return find_checkpoint(path)


_VAR = re.compile(r"<tf\.Variable '([^']+)'")


def restore(model, prefix: str) -> None:
    """Restore a `tf.train.Checkpoint(model=...)` checkpoint into `model`, all or nothing.

    Extra entries in the checkpoint (optimizer slots, step counters) are fine; a variable of
    `model` without a value in the checkpoint, or of another shape, is an error naming it.
    """
    import tensorflow as tf

    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except AssertionError as e:
        names = _VAR.findall(str(e))
        total = len(model.weights)
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise WeightsError(f"{prefix}: {len(names) or 'some'} of {total} variables of "
                           f"{model.name} have no value in the checkpoint ({shown}); "
                           "is it for another model id or variant?") from None
    except (ValueError, tf.errors.OpError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{prefix}: does not fit {model.name}: {first[:300]}") from None


def load_movinet_backbone(backbone, cfg: mv.MovinetConfig, prefix: str) -> None:
    """Fill `backbone` from a Kinetics-600 classifier checkpoint (the official layout)."""
    k600 = mv.build_classifier(backbone, cfg, mv.KINETICS600, None, None)
    restore(k600, prefix)
