"""`vidaction evaluate` on one tiny trained run (r2plus1d, 32 px, 4 frames, 3 classes)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vidaction.cli import main
from vidaction.data.builtin import render_dataset
from vidaction.errors import VidactionError
from vidaction.evaluate.run import OUTPUTS

# a one-epoch model often predicts one class; that warning is tested in test_eval_metrics
pytestmark = pytest.mark.filterwarnings(
    "ignore::vidaction.evaluate.metrics.NoPredictionWarning")

TINY = dict(classes=["clap", "sit_down", "stand_up"], clips_per_class=6, size=32, seconds=0.8,
            fps=25, seed=3, splits=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from vidaction.train import TrainConfig, train

    base = tmp_path_factory.mktemp("eval")
    data = render_dataset(base / "data", progress=False, **TINY)
    cfg = TrainConfig(data=str(data), out=str(base / "run"), model="r2plus1d", epochs=1,
                      batch_size=3, frames=4, frame_step=3, size=32, patience=5)
    return data, train(cfg, progress=False)


def _no_nan(text: str) -> dict:
    def refuse(name):
        raise AssertionError(f"{name} in metrics.json")
    return json.loads(text, parse_constant=refuse)


def _ours(err: str) -> str:
    """stderr without TensorFlow's own logging (a garbage-collected checkpoint of an earlier
    test may print there at any time)."""
    return "\n".join(ln for ln in err.splitlines() if not ln.startswith("WARNING:tensorflow"))


def test_cli_writes_everything_and_repeats_exactly(trained, capsys):
    data, run = trained
    assert main(["evaluate", str(run), "--no-progress"]) == 0
    out = run / "eval" / "test"
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    printed = capsys.readouterr().out
    assert "top-1 accuracy (video)" in printed and "chance 33.3%" in printed
    assert "top-3 accuracy" not in printed  # top-3 of 3 classes says nothing

    first = (out / "metrics.json").read_text()
    m = _no_nan(first)
    n_test = len(list((data / "test").rglob("*.mp4")))
    assert m["videos"] == n_test and m["skipped"] == 0 and m["skipped_videos"] == []
    assert m["clips_per_video"] == 3 and m["clips_scored"] == 3 * n_test
    assert m["top_k"] == 3 and m["top5_accuracy"] == 1.0
    assert sum(map(sum, m["confusion_matrix"])) == n_test
    for key in ("loss", "top1_accuracy", "clip_top1_accuracy", "mean_class_accuracy",
                "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
                "weighted_recall", "weighted_f1"):
        assert 0.0 <= m[key] and (key == "loss" or m[key] <= 1.0), key
    assert set(m["per_class"]) == set(TINY["classes"])

    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == n_test
    assert {"path", "true_label", "predicted_label", "top1", "prob1", "top3", "prob3"} <= set(
        rows[0])
    assert sum(r["true_label"] == r["predicted_label"] for r in rows) == round(
        m["top1_accuracy"] * n_test)

    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # confusion matrix and curves
    wrong = sum(r["true_label"] != r["predicted_label"] for r in rows)
    assert html.count("data:image/gif;base64,") == min(wrong, 6)
    assert 'src="http' not in html and "<link" not in html

    # an existing evaluation is not replaced without --force
    assert main(["evaluate", str(run), "--no-progress"]) == 1
    assert "--force" in capsys.readouterr().err
    # the same run gives the same numbers: determinism
    assert main(["evaluate", str(run), "--no-progress", "--force"]) == 0
    assert (out / "metrics.json").read_text() == first
    assert list(csv.DictReader((out / "predictions.csv").open())) == rows


def test_seen_splits_are_refused_unless_allowed(trained, tmp_path, capsys):
    from vidaction.evaluate import evaluate_run

    _, run = trained
    for split in ("train", "val"):
        with pytest.raises(VidactionError, match="--allow-seen"):
            evaluate_run(run, split=split)
    assert main(["evaluate", str(run), "--split", "val", "--no-progress"]) == 1
    err = _ours(capsys.readouterr().err)
    assert err.startswith("vidaction: error:") and "--allow-seen" in err
    assert len(err.strip().splitlines()) == 1
    assert not (run / "eval" / "val").exists()
    m = evaluate_run(run, split="val", allow_seen=True, out=tmp_path / "val", clips=1)
    assert m["seen_split"] is True and m["split"] == "val"
    assert m["clips_per_video"] == 1 and m["clips_scored"] == m["videos"]
    assert m["clip_top1_accuracy"] == m["top1_accuracy"]  # one clip: the clip is the video
    val_videos = len(list((trained[0] / "val").rglob("*.mp4")))
    assert m["videos"] == val_videos
    assert "overstate" in (tmp_path / "val" / "report.html").read_text()


def test_unreadable_video_is_skipped_and_listed(trained, tmp_path):
    from vidaction.evaluate import evaluate_run

    data, run = trained
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    broken = copy / "test" / "clap" / "broken.mp4"
    good = next((copy / "test" / "sit_down").glob("*.mp4"))
    broken.write_bytes(good.read_bytes()[:300])  # a header and nothing after it
    m = evaluate_run(run, data=copy, out=tmp_path / "out")
    n_good = len(list((data / "test").rglob("*.mp4")))
    assert m["videos"] == n_good and m["skipped"] == 1
    assert m["skipped_videos"][0]["path"] == str(broken) and m["skipped_videos"][0]["reason"]
    paths = [r["path"] for r in csv.DictReader((tmp_path / "out" / "predictions.csv").open())]
    assert str(broken) not in paths and len(paths) == n_good
    assert "broken.mp4" in (tmp_path / "out" / "report.html").read_text()


def test_bad_runs_and_data_give_one_line_errors(trained, tmp_path, capsys):
    data, run = trained
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(run / "config.json", half / "config.json")
    unknown = tmp_path / "data"
    shutil.copytree(data, unknown)
    (unknown / "test" / "dance").mkdir()
    shutil.copy(next((data / "test" / "clap").glob("*.mp4")), unknown / "test" / "dance")
    (unknown / "classes.txt").unlink()
    cases = [
        ([str(tmp_path / "nope")], "no such run folder"),
        ([str(half)], "no saved model"),
        ([str(run), "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o")],
         "no such folder"),
        ([str(run), "--data", str(unknown), "--out", str(tmp_path / "o")], "dance"),
    ]
    for args, msg in cases:
        assert main(["evaluate", *args, "--no-progress"]) == 1, args
        err = _ours(capsys.readouterr().err)
        assert err.startswith("vidaction: error:") and msg in err, err
        assert len(err.strip().splitlines()) == 1, err


def _nan_copy(run, dest):
    """The run with every weight of its model set to NaN (what a diverged training saved
    before training stopped on a NaN loss)."""
    from vidaction.models import load_model, save_model

    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("eval"))
    model = load_model(dest / "model")
    for w in model.weights:
        w.assign(np.full(w.shape, np.nan, w.dtype.as_numpy_dtype))
    save_model(model, dest / "model")
    return dest


def test_non_finite_model_outputs_are_refused_in_one_line(trained, tmp_path, capsys,
                                                          monkeypatch):
    _, run = trained
    bad = _nan_copy(run, tmp_path / "nan-run")
    assert main(["evaluate", str(bad), "--no-progress"]) == 1
    err = _ours(capsys.readouterr().err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"vidaction: error: {bad / 'model'}: the weights hold NaN or inf")
    assert "Traceback" not in err and "nan%" not in err
    assert not (bad / "eval").exists()

    # finite weights, NaN outputs anyway: the video is named
    from vidaction.models.run import Run

    monkeypatch.setattr(Run, "predict_logits", lambda self, clips: np.full(
        (len(clips), 3), np.nan, np.float32))
    assert main(["evaluate", str(run), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    err = _ours(capsys.readouterr().err)
    assert len(err.strip().splitlines()) == 1, err
    assert f"{run / 'model'}: outputs NaN for " in err and ".mp4" in err
    assert not (tmp_path / "o").exists()


def _full_disk_at(monkeypatch, name: str, exc: BaseException | None = None):
    """Writing the output `name` fails as on a full disk (or raises `exc`), after the ones
    before it went through."""
    import errno

    from vidaction.io import writer

    real = writer._write

    def write(tmp, data):
        if tmp.name.startswith("." + name.split(".")[0] + "."):
            raise exc or OSError(errno.ENOSPC, "No space left on device")
        real(tmp, data)

    monkeypatch.setattr(writer, "_write", write)


def test_a_failed_evaluation_leaves_nothing_and_the_rerun_works(trained, tmp_path, capsys,
                                                                monkeypatch):
    _, run = trained
    out = tmp_path / "ev"
    _full_disk_at(monkeypatch, "report.html")  # metrics.json, predictions.csv went through
    assert main(["evaluate", str(run), "--out", str(out), "--no-progress"]) == 1
    err = _ours(capsys.readouterr().err)
    assert err.strip() == f"vidaction: error: {out / 'report.html'}: No space left on device"
    assert list(tmp_path.iterdir()) == []  # no metrics.json alone, no temporary folder

    monkeypatch.undo()
    assert main(["evaluate", str(run), "--out", str(out), "--no-progress"]) == 0  # no --force
    assert {p.name for p in out.iterdir()} == set(OUTPUTS)

    # an interrupted --force replaces nothing: the first evaluation stays whole
    first = (out / "metrics.json").read_text()
    _full_disk_at(monkeypatch, "report.html", KeyboardInterrupt())
    assert main(["evaluate", str(run), "--out", str(out), "--force", "--clips", "1",
                 "--no-progress"]) == 130
    assert {p.name for p in out.iterdir()} == set(OUTPUTS)
    assert (out / "metrics.json").read_text() == first
    assert [p.name for p in tmp_path.iterdir()] == ["ev"]


def test_leftovers_of_killed_evaluations_never_block_the_next(trained, tmp_path, capsys):
    import subprocess
    import sys

    _, run = trained
    out = tmp_path / "ev"
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    tmp = tmp_path / f".ev.tmp-{p.pid}"  # a killed evaluation's temporary folder
    tmp.mkdir()
    (tmp / "metrics.json").write_text("{}")
    out.mkdir()  # what an older version left when interrupted: no report.html
    (out / "metrics.json").write_text("{}")
    (out / "predictions.csv").write_text("path\n")
    assert main(["evaluate", str(run), "--out", str(out), "--no-progress"]) == 0
    err = _ours(capsys.readouterr().err)
    assert "replacing an incomplete evaluation" in err
    assert {p.name for p in out.iterdir()} == set(OUTPUTS)
    assert [p.name for p in tmp_path.iterdir()] == ["ev"]
    assert _no_nan((out / "metrics.json").read_text())["videos"] > 0


def test_force_into_a_folder_with_other_files_keeps_them(trained, tmp_path):
    from vidaction.evaluate import evaluate_run

    _, run = trained
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "curves.png").write_bytes(b"a stale picture")
    with pytest.raises(VidactionError, match="is not empty"):
        evaluate_run(run, out=out)
    evaluate_run(run, out=out, force=True, clips=1)
    assert (out / "notes.txt").read_text() == "my notes"
    assert {p.name for p in out.iterdir()} == {"notes.txt", *OUTPUTS}
    assert (out / "curves.png").read_bytes() != b"a stale picture"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_a_grown_class_folder_dataset_keeps_the_runs_test_split(tmp_path, capsys):
    """ROOT/<class>/<video> is split by a seeded draw; videos added after training would
    redraw it. The run's split.json keeps every clip where the run put it."""
    from vidaction.train import TrainConfig, train

    data = render_dataset(tmp_path / "r", progress=False, **{**TINY, "clips_per_class": 8})
    flat = tmp_path / "flat"
    for f in sorted(data.glob("*/*/*.mp4")):  # <split>/<class>/<video> -> <class>/<video>
        (flat / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, flat / f.parent.name / f.name)
    run = train(TrainConfig(data=str(flat), out=str(tmp_path / "run"), model="rgb-diff",
                            epochs=1, batch_size=4, frames=4, frame_step=3, size=32),
                progress=False)
    record = json.loads((run / "split.json").read_text())
    seen = set(record["files"]["train"]) | set(record["files"]["val"])
    assert record["files"]["test"] and not seen & set(record["files"]["test"])

    more = render_dataset(tmp_path / "more", progress=False, **{**TINY, "seed": 9})
    for f in sorted(more.glob("*/*/*.mp4")):
        shutil.copy(f, flat / f.parent.name / f"new_{f.name}")
    assert main(["evaluate", str(run), "--out", str(tmp_path / "ev")]) == 0
    tested = {str(Path(r["path"]).relative_to(flat)) for r in
              csv.DictReader((tmp_path / "ev" / "predictions.csv").open())}
    assert set(record["files"]["test"]) <= tested and not tested & seen
    assert any(t.split("/")[-1].startswith("new_") for t in tested)  # new videos are tested
    assert "the dataset changed since training" in capsys.readouterr().err


def test_a_damaged_split_record_is_one_line_naming_it(trained, tmp_path, capsys):
    data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "split.json").write_text("{cut sho")
    assert main(["evaluate", str(copy), "--data", str(data), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 1
    err = _ours(capsys.readouterr().err).strip()
    assert err.startswith("vidaction: error:") and len(err.splitlines()) == 1, err
    assert f"{copy / 'split.json'}: unreadable" in err
    assert not (tmp_path / "o").exists()
