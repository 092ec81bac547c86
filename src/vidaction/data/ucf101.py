"""UCF101 subsets fetched member by member from the public zip over HTTP range requests.

The whole archive is 6.5 GB; a 25-class subset is a few hundred MB, so we list the zip's
central directory (remotezip) and pull only the chosen members. Splits keep every group
(clips of one actor and scene) inside one split, unless the user asks for the reference's
leaky per-class random split.

Layout written: OUT/<split>/<class>/<clip>.avi, OUT/classes.txt, OUT/manifest.json.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import random
import re
import shutil
import time
import warnings
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from vidaction.errors import VidactionError
from vidaction.io.writer import write_atomic

DEFAULT_URL = "https://storage.googleapis.com/thumos14_files/UCF101_videos.zip"
SPLITS = ("train", "val", "test")
PRESETS = {
    "seed25": (
        "Archery", "BabyCrawling", "BoxingPunchingBag", "BoxingSpeedBag", "CliffDiving",
        "CuttingInKitchen", "Diving", "Fencing", "Hammering", "HammerThrow", "HighJump",
        "HulaHoop", "IceDancing", "JavelinThrow", "LongJump", "Mixing", "MoppingFloor",
        "PoleVault", "Punch", "SalsaSpin", "Shotput", "SumoWrestling", "TaiChi",
        "ThrowDiscus", "TrampolineJumping",
    ),
}
OFFICIAL_TEST_GROUPS = {1: range(1, 8), 2: range(8, 15), 3: range(15, 22)}
_STEM = re.compile(r"^v_(?P<cls>[A-Za-z0-9]+)_g(?P<group>\d+)_c(?P<clip>\d+)$")
_CHUNK = 1 << 16
_FREE_MARGIN = 64 << 20  # leave room for the manifest and the file system's own needs


class FetchError(VidactionError):
    """Fetching or laying out the subset failed; the message names the URL or file."""


class GroupLeakWarning(UserWarning):
    """Clips of one group (actor, scene) sit in several splits: scores will be inflated."""


@dataclass(frozen=True)
class Member:
    """One clip of the archive, parsed from its name."""

    name: str  # the zip member name
    class_name: str  # as the archive spells it
    group: int
    clip: int
    size: int
    crc: int
    offset: int

    @property
    def filename(self) -> str:
        return PurePosixPath(self.name).name

    @property
    def group_key(self) -> str:
        return f"{self.class_name.lower()}/g{self.group:02d}"


@dataclass
class FetchResult:
    """What a fetch produced: the paths per split, and how much it cost."""

    out: Path
    classes: list[str]
    paths: dict[str, list[Path]]
    fetched: int = 0
    skipped: int = 0
    bytes_fetched: int = 0
    refused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """split -> class -> clips."""
        out: dict[str, dict[str, int]] = {}
        for split, paths in self.paths.items():
            per: dict[str, int] = defaultdict(int)
            for p in paths:
                per[p.parent.name] += 1
            out[split] = dict(sorted(per.items()))
        return out


# --------------------------------------------------------------------------- parsing

def parse_split_spec(spec: str) -> dict[str, int]:
    """`train=30,val=10,test=10` -> counts per split (the reference's numbers)."""
    counts: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not eq or name not in SPLITS:
            raise FetchError(f"--split {spec!r}: expected split=count with split in "
                             f"{', '.join(SPLITS)}, got {part!r}")
        if name in counts:
            raise FetchError(f"--split {spec!r}: {name} given twice")
        try:
            counts[name] = int(value)
        except ValueError:
            raise FetchError(f"--split {spec!r}: {value.strip()!r} is not a whole number") from None
        if counts[name] < 0:
            raise FetchError(f"--split {spec!r}: negative count for {name}")
    if not counts or not any(counts.values()):
        raise FetchError(f"--split {spec!r}: no clips asked for")
    return counts


def unsafe_reason(name: str) -> str | None:
    """Why a member may not be extracted (zip-slip, not a video), or None."""
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute or Windows path"
    if ".." in PurePosixPath(name).parts:
        return "escapes the output folder"
    if not name.lower().endswith(".avi"):
        return "not an .avi file"
    if not _STEM.match(PurePosixPath(name).stem):
        return "name is not v_<Class>_g<NN>_c<NN>.avi"
    return None


def parse_members(infos: Iterable[zipfile.ZipInfo]) -> tuple[list[Member], list[str]]:
    """Clips of the archive, and the refused member names with their reasons."""
    members, refused = [], []
    for info in infos:
        if info.is_dir():
            continue
        reason = unsafe_reason(info.filename)
        if reason:
            refused.append(f"{info.filename} ({reason})")
            continue
        m = _STEM.match(PurePosixPath(info.filename).stem)
        assert m is not None
        members.append(Member(info.filename, m["cls"], int(m["group"]), int(m["clip"]),
                              info.file_size, info.CRC, info.header_offset))
    return members, refused


def choose_classes(available: Iterable[str], classes: Iterable[str] | None = None,
                   first: int | None = None, preset: str | None = None) -> list[str]:
    """Class names as the archive spells them; asked-for names match without regard to case."""
    by_lower = {c.lower(): c for c in available}
    if sum(x is not None for x in (classes, first, preset)) > 1:
        raise FetchError("choose classes with only one of classes, first, preset")
    if preset is not None:
        if preset not in PRESETS:
            raise FetchError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        classes = PRESETS[preset]
    if first is not None:
        if first < 1:
            raise FetchError(f"first must be at least 1, got {first}")
        return sorted(by_lower.values())[:first]
    if classes is None:
        return sorted(by_lower.values())
    wanted = [c.strip() for c in classes if c.strip()]
    unknown = [c for c in wanted if c.lower() not in by_lower]
    if unknown:
        raise FetchError(f"class(es) not in the archive: {', '.join(unknown)}")
    return sorted({by_lower[c.lower()] for c in wanted})


# --------------------------------------------------------------------------- splits

def _by_class(members: Iterable[Member]) -> dict[str, list[Member]]:
    out: dict[str, list[Member]] = defaultdict(list)
    for m in sorted(members, key=lambda m: (m.class_name, m.group, m.clip)):
        out[m.class_name].append(m)
    return out


def official_assignment(members: list[Member], split: int, seed: int = 0,
                   val_groups: int | None = None) -> dict[str, list[Member]]:
    """Test = the official groups of `split`; validation = whole groups drawn from the rest."""
    if split not in OFFICIAL_TEST_GROUPS:
        raise FetchError(f"official split must be 1, 2 or 3, got {split}")
    test_groups = set(OFFICIAL_TEST_GROUPS[split])
    train_groups = sorted({m.group for m in members} - test_groups)
    n_val = val_groups if val_groups is not None else (
        max(1, round(0.15 * len(train_groups))) if len(train_groups) >= 2 else 0)
    if n_val >= len(train_groups) and n_val > 0:
        raise FetchError(f"cannot carve {n_val} validation group(s) out of "
                         f"{len(train_groups)} training group(s)")
    val = set(random.Random(f"ucf101-val-{seed}").sample(train_groups, n_val))
    out: dict[str, list[Member]] = {s: [] for s in SPLITS}
    for m in members:
        out["test" if m.group in test_groups else "val" if m.group in val else "train"].append(m)
    return out


def group_assignment(members: list[Member], counts: dict[str, int],
                seed: int = 0) -> dict[str, list[Member]]:
    """Per class, whole groups go to one split each (smallest split first); the last group a
    split takes may be used only in part, which never puts a group in two splits."""
    out: dict[str, list[Member]] = {s: [] for s in SPLITS}
    order = sorted((s for s in SPLITS if counts.get(s)), key=lambda s: (counts[s], s))
    for cls, clips in _by_class(members).items():
        rng = random.Random(f"ucf101-{seed}-{cls.lower()}")
        groups: dict[int, list[Member]] = defaultdict(list)
        for m in clips:
            groups[m.group].append(m)
        queue = sorted(groups)
        rng.shuffle(queue)
        for split in order:
            taken: list[Member] = []
            while len(taken) < counts[split] and queue:
                g = groups[queue.pop()]
                taken.extend(rng.sample(g, min(len(g), counts[split] - len(taken))))
            if len(taken) < counts[split]:
                raise FetchError(
                    f"class {cls}: {len(clips)} clips in {len(groups)} groups cannot fill "
                    f"{_spec(counts)} without putting a group in two splits "
                    f"(ask for fewer clips, or --allow-group-leak)")
            out[split].extend(sorted(taken, key=lambda m: (m.group, m.clip)))
    return out


def leaky_assignment(members: list[Member], counts: dict[str, int],
                seed: int = 0) -> dict[str, list[Member]]:
    """The reference's per-class random split: groups straddle splits, scores are inflated."""
    warnings.warn("--allow-group-leak: clips of one actor and scene land in several splits; "
                  "test scores will be inflated and are not comparable to published ones",
                  GroupLeakWarning, stacklevel=3)
    out: dict[str, list[Member]] = {s: [] for s in SPLITS}
    for cls, clips in _by_class(members).items():
        need = sum(counts.values())
        if len(clips) < need:
            raise FetchError(f"class {cls}: {len(clips)} clips, {_spec(counts)} needs {need}")
        shuffled = list(clips)
        random.Random(f"ucf101-leak-{seed}-{cls.lower()}").shuffle(shuffled)
        start = 0
        for split in SPLITS:
            n = counts.get(split, 0)
            out[split].extend(shuffled[start:start + n])
            start += n
    return out


def check_group_rule(assignment: dict[str, list[Member]]) -> None:
    """Fail if any group has clips in two splits."""
    seen: dict[str, str] = {}
    for split, members in assignment.items():
        for m in members:
            other = seen.setdefault(m.group_key, split)
            if other != split:
                raise FetchError(f"group {m.group_key} is in both {other} and {split}")


def _spec(counts: dict[str, int]) -> str:
    return ",".join(f"{s}={counts[s]}" for s in SPLITS if s in counts)


# --------------------------------------------------------------------------- split lists

@dataclass
class SplitLists:
    """The official lists: class names (classInd.txt) and clip file names per split number."""

    source: str
    classes: list[str]
    train: dict[int, list[str]]
    test: dict[int, list[str]]


def read_split_lists(source: str | os.PathLike, timeout: float = 30.0) -> SplitLists:
    """Read UCF101TrainTestSplits-RecognitionTask.zip (path or URL) or its extracted folder."""
    src = str(source)
    files: dict[str, str] = {}
    if src.startswith(("http://", "https://")):
        import requests

        try:
            r = requests.get(src, timeout=timeout)
            r.raise_for_status()
        except requests.RequestException as e:
            raise FetchError(f"{src}: cannot download split lists: {e}") from None
        files = _read_list_zip(io.BytesIO(r.content), src)
    elif Path(src).is_dir():
        for p in Path(src).rglob("*.txt"):
            files[p.name.lower()] = p.read_text(errors="replace")
    elif Path(src).is_file():
        files = _read_list_zip(src, src)
    else:
        raise FetchError(f"{src}: no such file or folder (split lists)")
    if "classind.txt" not in files:
        raise FetchError(f"{src}: no classInd.txt in the split lists")
    classes = [ln.split()[1] for ln in files["classind.txt"].splitlines() if len(ln.split()) >= 2]
    train, test = {}, {}
    for n in (1, 2, 3):
        for kind, target in (("train", train), ("test", test)):
            text = files.get(f"{kind}list0{n}.txt")
            if text is not None:
                target[n] = [ln.split()[0] for ln in text.splitlines() if ln.strip()]
    if not train or not test:
        raise FetchError(f"{src}: no trainlist0N.txt / testlist0N.txt in the split lists")
    return SplitLists(src, classes, train, test)


def _read_list_zip(file, name: str) -> dict[str, str]:
    try:
        with zipfile.ZipFile(file) as z:
            return {PurePosixPath(i.filename).name.lower(): z.read(i).decode(errors="replace")
                    for i in z.infolist() if i.filename.lower().endswith(".txt")}
    except zipfile.BadZipFile:
        raise FetchError(f"{name}: not a zip file (split lists)") from None


def split_from_lists(members: list[Member], lists: SplitLists, split: int, seed: int = 0,
                     val_groups: int | None = None) -> tuple[dict[str, list[Member]], list[str]]:
    """Train/test as the official lists say, after checking they obey the group rule; val
    carved from the training groups as in `official_assignment`. Returns notes too."""
    if split not in lists.train or split not in lists.test:
        raise FetchError(f"{lists.source}: no lists for split {split}")
    known = {c.lower() for c in lists.classes}
    missing = sorted({m.class_name for m in members if m.class_name.lower() not in known})
    if missing:
        raise FetchError(f"{lists.source}: classInd.txt lacks {', '.join(missing)}")
    test_groups = set(OFFICIAL_TEST_GROUPS[split])
    chosen = {m.class_name.lower() for m in members}
    listed: dict[str, str] = {}
    bad = []
    for kind, names in (("train", lists.train[split]), ("test", lists.test[split])):
        for entry in names:
            stem = PurePosixPath(entry).stem
            m = _STEM.match(stem)
            if not m or m["cls"].lower() not in chosen:
                continue
            if (int(m["group"]) in test_groups) != (kind == "test"):
                bad.append(f"{entry} in {kind}list0{split}.txt")
            listed[stem.lower()] = kind
    if bad:
        raise FetchError(f"{lists.source}: split lists disagree with the group rule "
                         f"(test = groups {min(test_groups)}-{max(test_groups)}): "
                         f"{len(bad)} clip(s), e.g. {bad[0]}")
    base = official_assignment(members, split, seed, val_groups)
    out: dict[str, list[Member]] = {s: [] for s in SPLITS}
    unlisted = 0
    for s, ms in base.items():
        for m in ms:
            if PurePosixPath(m.name).stem.lower() in listed:
                out[s].append(m)
            else:
                unlisted += 1
    notes = [f"{unlisted} clip(s) of the archive are in neither official list; left out"] \
        if unlisted else []
    return out, notes


# --------------------------------------------------------------------------- transfer

def _open_archive(url: str, timeout: float) -> zipfile.ZipFile:
    if not url.startswith(("http://", "https://")):
        path = Path(url.removeprefix("file://"))
        if not path.is_file():
            raise FetchError(f"{path}: no such zip file")
        try:
            return zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise FetchError(f"{path}: not a zip file") from None
    import requests
    from remotezip import RangeNotSupported, RemoteZip, RemoteZipError

    session = requests.Session()
    session.headers["User-Agent"] = "vidaction"
    try:
        return RemoteZip(url, session=session, timeout=timeout)
    except RangeNotSupported:
        raise FetchError(f"{url}: server does not support range requests; download the zip "
                         f"and pass its path with --url") from None
    except zipfile.BadZipFile as e:
        raise FetchError(f"{url}: not a zip archive ({e})") from None
    except RemoteZipError as e:
        raise _NetworkError(f"{url}: {e}") from None


class _NetworkError(Exception):
    """Transient: worth another try."""


class RetryWarning(UserWarning):
    """A network try failed or stalled and is being repeated."""


def _retryable() -> tuple[type[BaseException], ...]:
    import requests
    import urllib3
    from remotezip import RemoteIOError

    return (_NetworkError, RemoteIOError, requests.RequestException, urllib3.exceptions.HTTPError,
            http.client.HTTPException, ConnectionError, TimeoutError, EOFError,
            zipfile.BadZipFile)


def _why(e: BaseException, timeout: float | None) -> str:
    """One line for a failed try: a read timeout is a stall (the server went quiet)."""
    import requests
    import urllib3

    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    timed_out = (isinstance(e, (TimeoutError, requests.Timeout, urllib3.exceptions.TimeoutError))
                 or "timed out" in msg.lower())
    if timed_out:
        return "stalled, no data for " + (f"{timeout:g} s" if timeout else "too long")
    for cause, words in (("Connection refused", "connection refused"),
                         ("Name or service not known", "unknown host"),
                         ("Temporary failure in name resolution", "unknown host"),
                         ("Connection reset", "connection reset"),
                         ("Network is unreachable", "network unreachable")):
        if cause in msg:
            return words  # not urllib3's "HTTPConnectionPool(...): Max retries exceeded"
    return msg


def _with_retries(what: str, fn: Callable, retries: int, backoff: float,
                  on_error: Callable[[], None] | None = None, timeout: float | None = None):
    """fn(), tried `retries` more times on network errors; each retry says so in a line
    (a stalled transfer is otherwise a silent minute)."""
    errors = _retryable()
    for attempt in range(retries + 1):
        try:
            return fn()
        except errors as e:
            why = _why(e, timeout)
            if attempt == retries:
                raise FetchError(f"{what}: failed after {retries + 1} tries: {why}") from None
            if on_error:
                on_error()
            wait = backoff * 2 ** attempt
            warnings.warn(f"{what}: {why}; retrying in {wait:g} s (try {attempt + 2} of "
                          f"{retries + 1})", RetryWarning, stacklevel=2)
            time.sleep(wait)


def _file_digest(path: Path) -> tuple[int, int, str]:
    """(size, crc32, sha256) of a local file."""
    crc, h, size = 0, hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
            h.update(chunk)
            size += len(chunk)
    return size, crc, h.hexdigest()


def _present(path: Path, m: Member, known_sha: str | None) -> str | None:
    """sha256 of `path` if it already holds member `m` intact, else None."""
    if not path.is_file() or path.stat().st_size != m.size:
        return None
    size, crc, sha = _file_digest(path)
    if crc != m.crc or (known_sha is not None and sha != known_sha):
        return None
    return sha


def _extract(zf: zipfile.ZipFile, m: Member, dest: Path, bar) -> str:
    """Copy one member to a temporary sibling, then rename: no partial file under `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    h = hashlib.sha256()
    done = 0
    try:
        with zf.open(m.name) as src, open(tmp, "wb") as f:
            while chunk := src.read(_CHUNK):
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if done != m.size:
            raise EOFError(f"{m.name}: got {done} of {m.size} bytes")
        os.replace(tmp, dest)
    except BaseException:
        if bar is not None:
            bar.update(-done)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    return h.hexdigest()


def _read_manifest(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a damaged manifest only costs re-hashing; files are checked by CRC anyway


# --------------------------------------------------------------------------- the fetch

def fetch_subset(
    out: str | os.PathLike,
    url: str = DEFAULT_URL,
    classes: Iterable[str] | None = None,
    first: int | None = None,
    preset: str | None = None,
    official_split: int | None = None,
    split: str | dict[str, int] | None = None,
    seed: int = 0,
    allow_group_leak: bool = False,
    split_lists: str | os.PathLike | None = None,
    progress: bool = True,
    val_groups: int | None = None,
    retries: int = 3,
    backoff: float = 2.0,
    timeout: float = 60.0,
) -> FetchResult:
    """Fetch a UCF101 subset into OUT/<split>/<class>/<clip>.avi; only chosen members travel.

    Split modes: `official_split` (1-3, default 1 when no `split` is given), `split` counts
    drawn group-aware, or `split` with `allow_group_leak` (the reference's leaky split).
    Re-running skips clips already present intact and moves clips whose split changed.
    """
    out = Path(out)
    counts = parse_split_spec(split) if isinstance(split, str) else (dict(split) if split else None)
    if counts is not None and (official_split is not None or split_lists is not None):
        raise FetchError("choose either an official split (or split lists) or split counts")
    if allow_group_leak and counts is None:
        raise FetchError("allow_group_leak needs split counts (--split train=30,val=10,test=10)")
    if counts is None and official_split is None:
        official_split = 1
    lists = read_split_lists(split_lists, timeout) if split_lists is not None else None

    listed = _cached_listing(out, url)
    zf = None
    if listed is None:  # remember the listing: a re-run then needs no request at all
        zf = _with_retries(f"{url}: listing the archive", lambda: _open_archive(url, timeout),
                           retries, backoff, timeout=timeout)
        listed = parse_members(zf.infolist())
        _save_listing(out, url, *listed)
    try:
        members, refused = listed
        if not members:
            raise FetchError(f"{url}: no UCF101 clips (UCF101/v_<Class>_g<NN>_c<NN>.avi) inside")
        chosen = choose_classes({m.class_name for m in members}, classes, first, preset)
        lower = {c.lower() for c in chosen}
        members = [m for m in members if m.class_name.lower() in lower]
        notes: list[str] = []
        if lists is not None:
            assignment, notes = split_from_lists(members, lists, official_split or 1, seed,
                                                 val_groups)
        elif counts is None:
            assignment = official_assignment(members, official_split, seed, val_groups)
        elif allow_group_leak:
            assignment = leaky_assignment(members, counts, seed)
        else:
            assignment = group_assignment(members, counts, seed)
        if not allow_group_leak:
            check_group_rule(assignment)
        plan = [(s, m, out / s / m.class_name / m.filename)
                for s in SPLITS for m in assignment.get(s, [])]
        return _transfer(zf, url, out, chosen, plan, refused, notes, progress, retries, backoff,
                         timeout, settings={
                             "official_split": official_split, "split": counts, "seed": seed,
                             "allow_group_leak": allow_group_leak,
                             "split_lists": str(split_lists) if split_lists else None})
    finally:
        if zf is not None:
            zf.close()


_LISTING = "archive-listing.json"  # member names, sizes, CRCs of the zip


def _cached_listing(out: Path, url: str) -> tuple[list[Member], list[str]] | None:
    try:
        data = json.loads((out / _LISTING).read_text())
        if data.get("url") != url:
            return None
        return [Member(*m) for m in data["members"]], list(data["refused"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_listing(out: Path, url: str, members: list[Member], refused: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / _LISTING, json.dumps({
        "url": url, "refused": refused,
        "members": [[m.name, m.class_name, m.group, m.clip, m.size, m.crc, m.offset]
                    for m in members]}))


def _transfer(zf: zipfile.ZipFile | None, url: str, out: Path, classes: list[str],
              plan: list[tuple[str, Member, Path]], refused: list[str], notes: list[str],
              progress: bool, retries: int, backoff: float, timeout: float,
              settings: dict) -> FetchResult:
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    old = {c["member"]: c for c in _read_manifest(manifest_path).get("clips", [])
           if isinstance(c, dict) and "member" in c and "path" in c}
    result = FetchResult(out, classes, {s: [] for s in SPLITS}, refused=refused, notes=notes)
    entries: list[dict] = []
    todo: list[tuple[str, Member, Path]] = []
    for split, m, dest in plan:
        prev = old.get(m.name)
        sha = _present(dest, m, prev.get("sha256") if prev else None)
        if sha is None and prev and (out / prev["path"]) != dest:
            moved = out / prev["path"]
            sha = _present(moved, m, prev.get("sha256"))
            if sha is not None:  # the split changed since last run: move, don't re-fetch
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(moved, dest)
        if sha is None:
            todo.append((split, m, dest))
        else:
            result.skipped += 1
            entries.append(_entry(out, split, m, dest, sha))
    # clips a previous run fetched that this selection drops would confuse the loader
    planned = {d for _, _, d in plan}
    for c in old.values():
        stale = out / c["path"]
        if stale not in planned and stale.is_file() and stale.resolve().is_relative_to(
                out.resolve()):
            stale.unlink()

    need = sum(m.size for _, m, _ in todo)
    free = shutil.disk_usage(out).free
    if need + _FREE_MARGIN > free:
        raise FetchError(f"{out}: not enough free disk space: {need / 1e6:.1f} MB to fetch, "
                         f"{free / 1e6:.1f} MB free")
    bar = None
    if progress and todo:
        from vidaction.progress import bar as progress_bar

        bar = progress_bar(total=need, unit="B", unit_scale=True, desc="ucf101")
    remote = url.startswith(("http://", "https://"))
    state: dict[str, zipfile.ZipFile | None] = {"zf": zf}

    def attempt(m: Member, dest: Path) -> str:
        if state["zf"] is None:  # not open yet (cached listing) or the connection broke
            state["zf"] = _open_archive(url, timeout)
        return _extract(state["zf"], m, dest, bar)

    def drop_connection() -> None:
        if remote and state["zf"] is not None:
            if state["zf"] is not zf:
                state["zf"].close()
            state["zf"] = None

    try:
        todo.sort(key=lambda t: t[1].offset)  # sequential reads of the archive
        for i, (split, m, dest) in enumerate(todo):
            sha = _with_retries(f"{url}: {m.name}", lambda m=m, dest=dest: attempt(m, dest),
                                retries, backoff, on_error=drop_connection, timeout=timeout)
            result.fetched += 1
            result.bytes_fetched += m.size
            entries.append(_entry(out, split, m, dest, sha))
            if bar is not None:
                bar.set_postfix_str(f"clips {i + 1}/{len(todo)}")
    finally:
        if bar is not None:
            bar.close()
        if state["zf"] is not None and state["zf"] is not zf:
            state["zf"].close()
        _write_outputs(out, url, classes, entries, settings)
    for e in sorted(entries, key=lambda e: e["path"]):
        result.paths[e["split"]].append(out / e["path"])
    result.paths = {s: p for s, p in result.paths.items() if p}
    return result


def _entry(out: Path, split: str, m: Member, dest: Path, sha: str) -> dict:
    return {"path": dest.relative_to(out).as_posix(), "split": split, "class": m.class_name,
            "group": m.group_key, "member": m.name, "size": m.size, "sha256": sha}


def _write_outputs(out: Path, url: str, classes: list[str], entries: list[dict],
                   settings: dict) -> None:
    """classes.txt and manifest.json, atomically; also after a failure, so the clips already
    fetched keep their hashes for the next run."""
    write_atomic(out / "classes.txt", "".join(f"{c}\n" for c in sorted(classes)))
    manifest = {"source": url, "settings": settings, "classes": sorted(classes),
                "clips": sorted(entries, key=lambda e: e["path"])}
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
