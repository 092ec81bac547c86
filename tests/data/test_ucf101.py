"""UCF101 subset fetching against a small zip laid out like the real one, served from
127.0.0.1 with (and without) HTTP range requests."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from vidaction.data import ucf101
from vidaction.data.sources import load_dataset
from vidaction.data.ucf101 import FetchError, GroupLeakWarning, fetch_subset

CLASSES = ["Archery", "BabyCrawling", "HandStandPushups", "Punch", "TaiChi"]
GROUPS = range(1, 11)
SLIP = "UCF101/../v_Archery_g01_c09.avi"


def _clips(ci: int, g: int) -> int:
    return 2 + (ci + g) % 3  # 2 to 4 clips per group, like UCF101's 4 to 7


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    from vidaction.io import write_video

    root = tmp_path_factory.mktemp("ucf")
    rng = np.random.default_rng(0)
    zpath = root / "UCF101.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
        z.writestr("UCF101/", b"")
        for ci, cls in enumerate(CLASSES):
            for g in GROUPS:
                for c in range(1, _clips(ci, g) + 1):
                    name = f"v_{cls}_g{g:02d}_c{c:02d}.avi"
                    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
                    z.write(write_video(root / name, frames, fps=25), f"UCF101/{name}")
        z.writestr(SLIP, (root / "v_Archery_g01_c01.avi").read_bytes())
        z.writestr("UCF101/readme.txt", b"not a video")
    return zpath


def _n_clips(cls: str) -> int:
    ci = CLASSES.index(cls)
    return sum(_clips(ci, g) for g in GROUPS)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes], ranges: bool = True):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.ranges = files, ranges
        self.served = 0  # body bytes sent
        self.fail_after: int | None = None  # cut every body once this many bytes went out
        self.stall_after: int | None = None  # hold the transfer here until `go` is set
        self.stalled, self.go = threading.Event(), threading.Event()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        srv: _Server = self.server  # type: ignore[assignment]
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng or "")
        if m and srv.ranges:
            if not m[1]:
                start, end = max(0, len(data) - int(m[2])), len(data) - 1
            else:
                start = int(m[1])
                end = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if srv.ranges else "none")
        self.end_headers()
        if head:
            return
        with srv.lock:
            if srv.fail_after is not None:
                body = body[:max(0, srv.fail_after - srv.served)]
            srv.served += len(body)
        try:
            if srv.stall_after is not None and srv.served > srv.stall_after:
                cut = len(body) // 2
                self.wfile.write(body[:cut])
                self.wfile.flush()
                srv.stalled.set()
                srv.go.wait(20)
                body = body[cut:]
            self.wfile.write(body)
        except OSError:
            pass  # the client hung up early (e.g. no range support): fine


@pytest.fixture
def server(archive):
    files = {"/UCF101.zip": archive.read_bytes()}
    srv = _Server(files)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _zip_url(srv: _Server) -> str:
    return srv.url + "/UCF101.zip"


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _groups_by_split(out: Path) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for c in _manifest(out)["clips"]:
        seen[c["group"]].add(c["split"])
    return seen


def _spans(archive: Path, names: set[str]) -> int:
    """Bytes remotezip asks for per member: its local header up to the next member."""
    with zipfile.ZipFile(archive) as z:
        infos = sorted(z.infolist(), key=lambda i: i.header_offset)
        ends = [i.header_offset for i in infos[1:]] + [z.start_dir]
        return sum(e - i.header_offset for i, e in zip(infos, ends, strict=True)
                   if i.filename in names)


def _listing_cost(archive: Path) -> int:
    with zipfile.ZipFile(archive) as z:
        cdir = archive.stat().st_size - z.start_dir
    return 65536 + cdir  # remotezip's first tail read, then the central directory if longer


def test_fetches_only_chosen_members_and_second_run_transfers_nothing(server, archive, tmp_path):
    out = tmp_path / "ucf"
    r = fetch_subset(out, url=_zip_url(server), first=2, split="train=4,val=2,test=2",
                     progress=False, retries=0)
    chosen = sorted(CLASSES)[:2]
    assert r.classes == chosen
    assert r.counts() == {s: {c: n for c in chosen}
                          for s, n in (("train", 4), ("val", 2), ("test", 2))}
    assert (out / "classes.txt").read_text().splitlines() == chosen
    names = {c["member"] for c in _manifest(out)["clips"]}
    payload = sum(c["size"] for c in _manifest(out)["clips"])
    size = archive.stat().st_size
    assert payload <= server.served <= _spans(archive, names) + _listing_cost(archive)
    assert server.served < 0.25 * size, (server.served, size)
    assert all(len(s) == 1 for s in _groups_by_split(out).values())
    for c in _manifest(out)["clips"]:
        p = out / c["path"]
        assert p.stat().st_size == c["size"]
        assert p.parts[-3:-1] == (c["split"], c["class"])

    ds = load_dataset(out)
    assert ds.classes == chosen
    assert {c: dict(v) for c, v in ds.counts().items()} == {
        c: {"train": 4, "val": 2, "test": 2} for c in chosen}

    before = server.served
    r2 = fetch_subset(out, url=_zip_url(server), first=2, split="train=4,val=2,test=2",
                      progress=False, retries=0)
    assert (r2.fetched, r2.skipped) == (0, 16)
    assert server.served - before == 0  # the listing is remembered, the clips are on disk
    assert r2.paths == r.paths


@pytest.mark.parametrize("split, test_groups", [(1, set(range(1, 8))), (2, {8, 9, 10})])
def test_official_split_groups(archive, tmp_path, split, test_groups):
    out = tmp_path / "ucf"
    r = fetch_subset(out, url=str(archive), classes=["Punch", "TaiChi"], official_split=split,
                     progress=False)
    clips = _manifest(out)["clips"]
    groups = defaultdict(set)
    for c in clips:
        groups[c["split"]].add(int(c["group"].split("/g")[1]))
    assert groups["test"] == test_groups
    assert groups["val"] and not groups["val"] & groups["train"]
    assert groups["train"] | groups["val"] == set(GROUPS) - test_groups
    assert all(len(s) == 1 for s in _groups_by_split(out).values())
    assert sum(len(p) for p in r.paths.values()) == _n_clips("Punch") + _n_clips("TaiChi")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_aware_split_counts_and_rule(archive, tmp_path, seed):
    out = tmp_path / "ucf"
    r = fetch_subset(out, url=str(archive), classes=["Archery", "Punch", "TaiChi"],
                     split="train=12,val=5,test=5", seed=seed, progress=False)
    for split, n in (("train", 12), ("val", 5), ("test", 5)):
        assert set(r.counts()[split].values()) == {n}
    assert all(len(s) == 1 for s in _groups_by_split(out).values())


def test_group_aware_split_refuses_impossible_counts(archive, tmp_path):
    with pytest.raises(FetchError, match="group in two splits"):
        fetch_subset(tmp_path / "ucf", url=str(archive), classes=["Punch"],
                     split="train=20,val=5,test=5", progress=False)


def test_leak_mode_warns_and_leaks(archive, tmp_path):
    out = tmp_path / "ucf"
    with pytest.warns(GroupLeakWarning, match="inflated"):
        r = fetch_subset(out, url=str(archive), classes=["Archery", "Punch"],
                         split="train=12,val=5,test=5", allow_group_leak=True, progress=False)
    assert r.counts()["test"] == {"Archery": 5, "Punch": 5}
    assert any(len(s) > 1 for s in _groups_by_split(out).values())


def test_class_names_match_without_case(archive, tmp_path):
    r = fetch_subset(tmp_path / "ucf", url=str(archive), classes=["handstandpushups", "ARCHERY"],
                     official_split=1, progress=False)
    assert r.classes == ["Archery", "HandStandPushups"]
    assert {p.parent.name for ps in r.paths.values() for p in ps} == set(r.classes)
    with pytest.raises(FetchError, match="Diving"):
        fetch_subset(tmp_path / "x", url=str(archive), classes=["Diving"], progress=False)


def test_zip_slip_and_non_video_members_refused(archive, tmp_path):
    out = tmp_path / "a" / "ucf"
    r = fetch_subset(out, url=str(archive), classes=["Archery"], progress=False)
    assert any(SLIP in x for x in r.refused)
    assert any("readme.txt" in x for x in r.refused)
    assert not list(tmp_path.rglob("v_Archery_g01_c09.avi"))
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    for bad in ("../v_A_g01_c01.avi", "/tmp/v_A_g01_c01.avi", "UCF101\\v_A_g01_c01.avi",
                "UCF101/v_A_g01_c01.mp4", "UCF101/a/../../v_A_g01_c01.avi"):
        assert ucf101.unsafe_reason(bad), bad
    assert ucf101.unsafe_reason("UCF101/v_Archery_g01_c01.avi") is None


def test_server_without_range_support_fails_clearly(server, tmp_path):
    server.ranges = False
    with pytest.raises(FetchError, match="does not support range requests"):
        fetch_subset(tmp_path / "ucf", url=_zip_url(server), first=1, progress=False,
                     retries=0)
    assert not list(tmp_path.rglob("*.avi"))


def test_interrupted_transfer_resumes_with_only_the_missing_clips(server, archive, tmp_path):
    out = tmp_path / "ucf"
    kw = dict(url=_zip_url(server), classes=["Punch", "TaiChi"], official_split=1,
              progress=False, retries=1, backoff=0.0)
    total = _n_clips("Punch") + _n_clips("TaiChi")
    server.fail_after = _listing_cost(archive) + archive.stat().st_size // 10
    with pytest.raises(FetchError, match="UCF101.zip"):
        fetch_subset(out, **kw)
    with zipfile.ZipFile(archive) as z:
        crc = {Path(i.filename).name: i.CRC for i in z.infolist()}
    got = [p for p in out.rglob("*") if p.is_file() and p.suffix == ".avi"]
    assert 0 < len(got) < total
    assert all(zlib.crc32(p.read_bytes()) == crc[p.name] for p in got)
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary files left

    server.fail_after = None
    server.served = 0
    r = fetch_subset(out, **kw)
    assert (r.fetched, r.skipped) == (total - len(got), len(got))
    missing = {c["member"] for c in _manifest(out)["clips"]} - {
        f"UCF101/{p.name}" for p in got}
    assert server.served <= _spans(archive, missing) + _listing_cost(archive)


def test_no_partial_file_under_its_final_name_during_transfer(server, archive, tmp_path):
    out = tmp_path / "ucf"
    server.stall_after = _listing_cost(archive) + 100_000
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            fetch_subset(out, url=_zip_url(server), classes=["Punch"], progress=False,
                         retries=0)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    t = threading.Thread(target=fetch)
    t.start()
    try:
        assert server.stalled.wait(20)
        time.sleep(0.2)  # let the client write what it has
        with zipfile.ZipFile(archive) as z:
            crc = {Path(i.filename).name: i.CRC for i in z.infolist()}
        final = [p for p in out.rglob("*.avi") if not p.name.startswith(".")]
        partial = [p for p in out.rglob(".*.part")]
        assert partial, "the member in transfer should sit under a temporary name"
        assert all(zlib.crc32(p.read_bytes()) == crc[p.name] for p in final)
    finally:
        server.go.set()
        t.join(30)
    assert not errors
    assert len(list(out.rglob("*.avi"))) == _n_clips("Punch")
    assert not list(out.rglob(".*.part"))


def test_stalled_transfer_prints_a_line_while_it_retries(server, archive, tmp_path):
    out = tmp_path / "ucf"
    server.stall_after = _listing_cost(archive) + 100_000

    def unstall() -> None:  # the next request flows; the stalled one stays stuck
        if server.stalled.wait(20):
            server.stall_after = None

    helper = threading.Thread(target=unstall)
    helper.start()
    try:
        with pytest.warns(ucf101.RetryWarning) as caught:
            r = fetch_subset(out, url=_zip_url(server), classes=["Punch"], progress=False,
                             retries=2, backoff=0.0, timeout=2)
    finally:
        server.go.set()
        helper.join(30)
    lines = [str(w.message) for w in caught]
    assert len(lines) == 1
    assert "stalled, no data for 2 s" in lines[0] and "try 2 of 3" in lines[0]
    assert _zip_url(server) in lines[0] and "\n" not in lines[0]
    assert r.fetched == _n_clips("Punch")


def test_damaged_clip_is_fetched_again(archive, tmp_path):
    out = tmp_path / "ucf"
    r = fetch_subset(out, url=str(archive), classes=["Punch"], progress=False)
    victim = r.paths["train"][0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, wrong content
    victim.write_bytes(bytes(data))
    r2 = fetch_subset(out, url=str(archive), classes=["Punch"], progress=False)
    assert (r2.fetched, r2.skipped) == (1, _n_clips("Punch") - 1)
    assert victim.read_bytes() != bytes(data)


def test_network_errors_retry_then_fail_in_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/UCF101.zip"
    with pytest.raises(FetchError) as e:
        fetch_subset(tmp_path / "ucf", url=url, first=1, progress=False, retries=2,
                     backoff=0.0, timeout=2)
    assert url in str(e.value) and "3 tries" in str(e.value) and "\n" not in str(e.value)


def test_refuses_when_disk_is_too_small(archive, tmp_path, monkeypatch):
    monkeypatch.setattr(ucf101.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000}))
    with pytest.raises(FetchError, match="disk space"):
        fetch_subset(tmp_path / "ucf", url=str(archive), first=1, progress=False)
    assert not list(tmp_path.rglob("*.avi"))


def _write_lists(folder: Path, archive: Path, move: str | None = None) -> Path:
    folder.mkdir(parents=True)
    with zipfile.ZipFile(archive) as z:
        stems = [Path(n).name for n in z.namelist() if ucf101.unsafe_reason(n) is None]
    train, test = [], []
    for name in stems:
        cls = name.split("_")[1].replace("HandStand", "Handstand")  # the lists' spelling
        entry = f"{cls}/{name.replace('HandStand', 'Handstand')}"
        g = int(name.split("_")[-2][1:])
        (test if g <= 7 else train).append(entry)
    if move:
        test.remove(move)
        train.append(move)
    classes = sorted({e.split("/")[0] for e in train + test})
    (folder / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    (folder / "trainlist01.txt").write_text("".join(f"{e} 1\n" for e in train))
    (folder / "testlist01.txt").write_text("".join(f"{e}\n" for e in test))
    return folder


def test_split_lists_agree_with_group_rule(archive, tmp_path, server):
    lists = _write_lists(tmp_path / "lists", archive)
    r = fetch_subset(tmp_path / "ucf", url=str(archive), classes=["HandstandPushups", "Punch"],
                     split_lists=lists, progress=False)
    test_groups = {int(p.stem.split("_")[-2][1:]) for p in r.paths["test"]}
    assert test_groups == set(range(1, 8))
    assert sum(len(p) for p in r.paths.values()) == _n_clips("HandStandPushups") + _n_clips("Punch")

    buf = io.BytesIO()  # the zip form, fetched by URL
    with zipfile.ZipFile(buf, "w") as z:
        for f in lists.iterdir():
            z.write(f, f"ucfTrainTestlist/{f.name}")
    server.files["/splits.zip"] = buf.getvalue()
    r2 = fetch_subset(tmp_path / "ucf2", url=str(archive), classes=["Punch"],
                      split_lists=server.url + "/splits.zip", progress=False)
    assert r2.counts()["test"] == {"Punch": sum(_clips(3, g) for g in range(1, 8))}

    bad = _write_lists(tmp_path / "bad", archive, move="Punch/v_Punch_g03_c01.avi")
    with pytest.raises(FetchError, match="disagree with the group rule"):
        fetch_subset(tmp_path / "ucf3", url=str(archive), classes=["Punch"], split_lists=bad,
                     progress=False)


def test_split_spec_parsing():
    assert ucf101.parse_split_spec("train=30,val=10,test=10") == {
        "train": 30, "val": 10, "test": 10}
    for bad in ("train=abc", "train", "foo=3", "train=1,train=2", "train=-1", "train=0"):
        with pytest.raises(FetchError):
            ucf101.parse_split_spec(bad)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidaction.cli", "data", "ucf101", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli(server, tmp_path):
    out = tmp_path / "ucf"
    p = _cli("--out", str(out), "--url", _zip_url(server), "--classes", "punch,archery",
             "--split", "train=3,val=1,test=1", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "train" in p.stdout and str(out) in p.stdout
    assert len(list(out.rglob("*.avi"))) == 10

    p = _cli("--out", str(out), "--url", _zip_url(server), "--split", "train=abc")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "train=abc" in p.stderr

    p = _cli("--out", str(tmp_path / "leak"), "--url", _zip_url(server), "--first", "1",
             "--split", "train=3,val=1,test=1", "--allow-group-leak", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "inflated" in p.stderr and "warnings.warn" not in p.stderr


def test_check_group_rule_catches_a_shared_group():
    def m(g: int, c: int) -> ucf101.Member:
        return ucf101.Member(f"UCF101/v_Punch_g{g:02d}_c{c:02d}.avi", "Punch", g, c, 1, 0, 0)

    ucf101.check_group_rule({"train": [m(1, 1), m(1, 2)], "test": [m(2, 1)]})
    with pytest.raises(FetchError, match="punch/g01"):
        ucf101.check_group_rule({"train": [m(1, 1)], "test": [m(1, 2)]})
