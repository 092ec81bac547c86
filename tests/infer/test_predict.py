import json
from pathlib import Path

import numpy as np
import pytest

from conftest import id_frame, make_video, real_video_paths
from vidaction.cli import main
from vidaction.data.builtin import render_dataset
from vidaction.infer.inputs import expand_inputs
from vidaction.io import probe, write_gif, write_video

TINY = dict(classes=["clap", "sit_down", "stand_up"], clips_per_class=4, size=32, seconds=0.8,
            fps=25, seed=3, splits=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A really trained tiny run (quality does not matter here, the plumbing does)."""
    from vidaction.train import TrainConfig, train

    root = tmp_path_factory.mktemp("predict")
    data = render_dataset(root / "data", progress=False, **TINY)
    cfg = TrainConfig(data=str(data), out=str(root / "run"), model="r2plus1d", epochs=1,
                      batch_size=3, frames=4, frame_step=3, size=32, patience=5)
    return str(train(cfg, progress=False))


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(8):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "zero.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("not a video at all\n" * 30)
    full = make_video(d / "full.mp4", 40).read_bytes()
    (d / "truncated.mp4").write_bytes(full[: len(full) // 2])
    (d / "full.mp4").unlink()
    _audio_only(d / "audio only.mp4")
    (d / "empty folder").mkdir()
    return {"missing": d / "missing.mp4", "empty: file has 0 bytes": d / "zero.mp4",
            "not a video": d / "text.mp4", "truncated": d / "truncated.mp4",
            "no video stream": d / "audio only.mp4",
            "no videos in this folder": d / "empty folder"}


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    d = tmp_path_factory.mktemp("odd")
    make_video(d / "one frame.mp4", 1)
    write_gif(d / "one_frame.gif", [id_frame(0)])
    make_video(d / "tiny16.mp4", 12, 16, 16)
    make_video(d / "uhd.mp4", 2, 3840, 2160)
    write_video(d / "gray.mkv", [np.full((48, 64), 20 * i, np.uint8) for i in range(12)],
                codec="ffv1", pix_fmt="gray")
    make_video(d / "portrait.mp4", 12, 36, 64)
    make_video(d / "odd size.mkv", 12, 33, 47, pix_fmt="yuv444p")
    make_video(d / "clip é 動作.mp4", 12)
    return sorted(d.iterdir())


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("vidaction: error:")]


def test_expand_inputs_walks_folders_and_expands_quoted_globs(tmp_path):
    make_video(tmp_path / "a" / "b" / "x.mp4", 2)
    make_video(tmp_path / "a" / "y.AVI", 2)
    (tmp_path / "a" / "notes.txt").write_text("-")
    (tmp_path / "a" / ".x.123.tmp.mp4").write_text("-")  # someone's half-written file
    (tmp_path / "empty").mkdir()
    (tmp_path / "c.mp4").write_text("-")
    got = expand_inputs([str(tmp_path / "a"), str(tmp_path / "a" / "**" / "*.mp4"),
                         str(tmp_path / "empty"), str(tmp_path / "q*.gif"),
                         str(tmp_path / "c.mp4"), str(tmp_path / "gone.mp4")])
    names = [(i.path.name, bool(i.error)) for i in got]
    assert names == [("x.mp4", False), ("y.AVI", False), ("empty", True), ("q*.gif", True),
                     ("c.mp4", False), ("gone.mp4", True)]
    assert "no videos in this folder" in got[2].error and "no video matches" in got[3].error
    # a missing file is known before the model loads (all missing: the model never does)
    assert got[5].error == f"{tmp_path / 'gone.mp4'}: missing: no such file"


def test_each_bad_input_gets_one_line_and_the_others_are_still_predicted(run, bad, odd,
                                                                          capsys):
    good = [odd[0], odd[-1]]  # a non-ASCII name and a 4K video
    rc = main(["predict", run, str(good[0]), *map(str, bad.values()), str(good[1]),
               "--no-progress", "--json"])
    out, err = capsys.readouterr()
    assert rc == 1
    errors = _errors(err)
    assert len(errors) == len(bad)
    for reason, path in bad.items():
        (line,) = [e for e in errors if str(path) in e]
        assert reason in line, line
    records = [json.loads(line) for line in out.splitlines()]  # in input order
    assert [r["path"] for r in records] == [str(p) for p in [good[0], *bad.values(), good[1]]]
    assert [("top" in r, "error" in r) for r in records] == (
        [(True, False)] + [(False, True)] * len(bad) + [(True, False)])


def test_odd_but_valid_inputs_are_predicted(run, odd, capsys):
    rc = main(["predict", run, str(odd[0].parent), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["path"] for r in records) == sorted(map(str, odd))
    for r in records:
        probs = [t["prob"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)  # top-5 of 3 classes
        assert sum(probs) == pytest.approx(1, abs=1e-3)
        assert {t["label"] for t in r["top"]} == {"clap", "sit_down", "stand_up"}
    uhd = next(r for r in records if r["path"].endswith("uhd.mp4"))
    assert (uhd["width"], uhd["height"]) == (3840, 2160)


def test_json_probabilities_are_the_mean_over_k_clips(run, tmp_path, capsys):
    import vidaction
    from vidaction.data.sampling import sample_clips
    from vidaction.models.predictor import sampling_config
    from vidaction.models.scoring import softmax

    video = make_video(tmp_path / "v.mp4", 50)
    rc = main(["predict", run, str(video), "--json", "--top-k", "2", "--clips", "3"])
    assert rc == 0
    (rec,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rec["clips"] == 3 and rec["frames"] == 50 and len(rec["top"]) == 2
    r = vidaction.load_run(run)
    clips, _ = sample_clips(video, sampling_config(r), clips=3)
    want = softmax(r.predict_logits(clips)).mean(axis=0)
    for t in rec["top"]:
        assert t["prob"] == pytest.approx(want[r.classes.index(t["label"])], abs=1e-4)


def test_overlay_mp4_has_every_frame_and_gif_its_capped_rate(run, odd, tmp_path, capsys):
    src = next(p for p in odd if p.name == "portrait.mp4")
    assert main(["predict", run, str(src), "--overlay", str(tmp_path / "o.mp4")]) == 0
    info = probe(tmp_path / "o.mp4")
    assert info.frame_count == 12 and info.height >= 96 and info.codec == "h264"
    two = [str(src), str(next(p for p in odd if p.name == "one frame.mp4"))]
    assert main(["predict", run, *two, "--overlay", str(tmp_path / "g.gif"),
                 "--no-progress"]) == 0
    # a GIF keeps at most 8 of the 25 frames a second (infer/overlay.py): 12 frames -> 4
    assert 3 <= probe(tmp_path / "g_portrait.gif").frame_count <= 4
    assert probe(tmp_path / "g_one frame.gif").frame_count == 1
    assert "overlay:" in capsys.readouterr().out


def test_timeline_from_the_command_line(run, tmp_path, capsys):
    video = make_video(tmp_path / "long.mp4", 100)
    rc = main(["predict", run, str(video), "--timeline", "--stride", "2", "--smooth", "3",
               "--out", str(tmp_path / "tl"), "--overlay", str(tmp_path / "tl.mp4"), "--json",
               "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rec = json.loads(out)
    # 4 frames every 3rd frame (the run's sampling): 34 sampled frames, windows every 2
    assert (rec["window"], rec["frame_step"], rec["stride"]) == (4, 3, 2)
    assert len(rec["timeline"]) == rec["windows"] == 16
    assert rec["timeline"][1]["start_frame"] == 6
    assert rec["timeline"][-1]["end_frame"] == 99
    for suffix in (".csv", ".json", ".png"):
        assert (tmp_path / f"tl{suffix}").is_file()
    assert probe(tmp_path / "tl.mp4").frame_count == 100

    rc = main(["predict", run, str(video), "--timeline", "--out", str(tmp_path / "t2")])
    out, _ = capsys.readouterr()
    assert rc == 0 and "start_s" in out and "whole video:" in out


def test_wrong_flags_and_runs_are_one_line(run, odd, tmp_path, capsys):
    v = str(odd[0])
    cases = [
        (["predict", run, v, "--timeline", "--window", "5"], "takes exactly 4 frames"),
        (["predict", run, v, "--smooth", "3"], "only apply with --timeline"),
        (["predict", run, v, "--overlay", str(tmp_path / "o.txt")], ".mp4 or .gif"),
        (["predict", str(tmp_path / "norun"), v], "no such run folder"),
        (["predict", str(tmp_path / "m.tflite"), v], "no such TFLite file"),
    ]
    for argv, msg in cases:
        assert main(argv) == 1
        (line,) = _errors(capsys.readouterr().err)
        assert msg in line


def test_every_real_recording_is_predicted(run, capsys):
    """Real files nobody here made (UCF101 packed B-frames, H.264 in AVI at 1080p, MKV,
    phone MP4): each one predicts, with the frame count of a full sequential decode."""
    import av

    paths = real_video_paths()
    rc = main(["predict", run, *map(str, paths), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    records = {r["path"]: r for r in map(json.loads, out.splitlines())}
    assert sorted(records) == sorted(map(str, paths))
    for p in paths:
        with av.open(str(p)) as c:
            n = sum(1 for _ in c.decode(video=0))
        assert records[str(p)]["frames"] == n, p.name
        assert len(records[str(p)]["top"]) == 3


def test_non_finite_outputs_are_refused_not_printed_as_nan(run, tmp_path, capsys,
                                                           monkeypatch):
    import shutil

    from vidaction.models import load_model, save_model
    from vidaction.models.run import Run

    videos = [str(make_video(tmp_path / f"v{i}.mp4", 20)) for i in range(2)]
    bad = tmp_path / "nan-run"
    shutil.copytree(run, bad)
    model = load_model(bad / "model")
    for w in model.weights:
        w.assign(np.full(w.shape, np.nan, w.dtype.as_numpy_dtype))
    save_model(model, bad / "model")
    # NaN weights: the model is at fault, one line for all inputs
    assert main(["predict", str(bad), *videos, "--no-progress"]) == 1
    out, err = capsys.readouterr()
    (line,) = _errors(err)
    assert line.startswith(f"vidaction: error: {bad / 'model'}: the weights hold NaN or inf")
    assert "%" not in out and "nan" not in out.lower()
    assert main(["predict", str(bad), videos[0], "--timeline", "--out",
                 str(tmp_path / "tl"), "--no-progress"]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert "the weights hold NaN or inf" in line
    assert not list(tmp_path.glob("tl*"))

    # finite weights, a NaN output anyway: that input fails, named, the others go on
    real = Run.predict_logits
    calls = []

    def nan_for_the_first(self, clips):  # one call per video (its 3 clips)
        calls.append(1)
        logits = real(self, clips)
        return logits * np.nan if len(calls) == 1 else logits

    monkeypatch.setattr(Run, "predict_logits", nan_for_the_first)
    assert main(["predict", run, *videos, "--no-progress"]) == 1
    out, err = capsys.readouterr()
    (line,) = _errors(err)
    assert line == f"vidaction: error: {run}/model: outputs NaN for {videos[0]}; no score " \
                   "can be given"
    assert videos[1] in out and "nan" not in out.lower()


def test_output_path_errors_name_the_output(run, tmp_path, capsys, monkeypatch):
    video = str(make_video(tmp_path / "in.mp4", 20))
    folder = tmp_path / "o.mp4"
    folder.mkdir()
    assert main(["predict", run, video, "--overlay", str(folder)]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line.startswith(f"vidaction: error: {folder}: is a folder") and "in.mp4" not in line

    (tmp_path / "afile").write_text("x")
    dest = tmp_path / "afile" / "o.gif"
    assert main(["predict", run, video, "--overlay", str(dest), "--no-progress"]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line.startswith(f"vidaction: error: {dest}: cannot create it") and "in.mp4" not in line

    (tmp_path / "tl.json").mkdir()  # the timeline's json cannot be written
    argv = ["predict", run, video, "--timeline", "--out", str(tmp_path / "tl"), "--no-progress"]
    assert main(argv) == 1  # an existing output: refused before anything runs
    (line,) = _errors(capsys.readouterr().err)
    assert line == f"vidaction: error: {tmp_path / 'tl.json'} already exists; --force replaces it"
    assert main([*argv, "--force"]) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line.startswith(f"vidaction: error: {tmp_path / 'tl.json'}: ")
    assert not (tmp_path / "tl.csv").exists() and not (tmp_path / "tl.png").exists()


def test_a_timeline_appears_whole_or_not_at_all(run, tmp_path, capsys, monkeypatch):
    import errno

    from vidaction.infer import timeline
    from vidaction.io import writer

    video = str(make_video(tmp_path / "long.mp4", 60))
    argv = ["predict", run, video, "--timeline", "--out", str(tmp_path / "tl"),
            "--no-progress"]
    real = writer._write

    def full_at_png(tmp, data):
        if tmp.name.endswith(".png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tmp, data)

    monkeypatch.setattr(writer, "_write", full_at_png)
    assert main(argv) == 1
    (line,) = _errors(capsys.readouterr().err)
    assert line == f"vidaction: error: {tmp_path / 'tl.png'}: No space left on device"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]  # no csv alone

    monkeypatch.undo()

    def interrupted(tl):
        raise KeyboardInterrupt

    monkeypatch.setattr(timeline, "plot_timeline", interrupted)  # Ctrl-C while plotting
    assert main(argv) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]

    monkeypatch.undo()
    assert main(argv) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4", "tl.csv", "tl.json",
                                                          "tl.png"]


def test_outputs_are_named_once_per_input_before_anything_runs():
    from vidaction.infer.inputs import Input
    from vidaction.infer.predict import _plan_outputs

    files = [Input(Path("a/x.mp4")), Input(Path("b/x.mp4")), Input(Path("c/y.mp4"))]
    plan = list(_plan_outputs(files, "o.mp4", True, None, True, set()).values())
    # two inputs named x: neither output replaces the other's within one command
    assert [str(o.timeline) for o in plan] == ["x_timeline", "x_timeline_2", "y_timeline"]
    assert [str(o.overlay) for o in plan] == ["o_x.mp4", "o_x_2.mp4", "o_y.mp4"]
    assert [p.name for p in plan[0].paths()] == ["x_timeline.csv", "x_timeline.json",
                                                 "x_timeline.png", "o_x.mp4"]
