"""A run finds its dataset from any working folder, and after run and data moved together;
a folder given in place of a run says where the run is."""

import json
import shutil
from pathlib import Path

import pytest

from conftest import tiny_config
from vidaction.models.run import RunError, check_run_folder, data_from_run, run_data


def _config(run: Path, data: Path) -> dict:
    return {"train": {"data": str(data.absolute()), "data_from_run": data_from_run(run, data)}}


def test_run_data_prefers_the_data_beside_a_moved_run(tmp_path):
    old = tmp_path / "old"
    (old / "data").mkdir(parents=True)
    config = _config(old / "run", old / "data")
    assert config["train"]["data_from_run"] == "../data"
    assert run_data(old / "run", config) == old / "data"

    # moved together: the absolute path is gone, the relative one finds it
    new = tmp_path / "elsewhere" / "new"
    new.parent.mkdir()
    shutil.move(old, new)
    assert run_data(new / "run", config) == new / "data"
    # copied together while the original stays: the copy's own data, not the original's
    shutil.copytree(new, old)
    assert run_data(new / "run", config) == new / "data"
    # the run alone moved away: the absolute path still holds
    lone = tmp_path / "lone" / "run"
    assert run_data(lone, config) == old / "data"
    shutil.rmtree(old)
    assert run_data(lone, config) is None
    # older runs: a path relative to where train ran, read as it was
    assert run_data(lone, {"train": {"data": str(new / "data")}}) == new / "data"


def test_a_folder_holding_a_run_names_it(tmp_path):
    run = tmp_path / "demo-output" / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (tmp_path / "demo-output" / "data" / "train").mkdir(parents=True)
    with pytest.raises(RunError, match=f"demo-output is not a run folder; it holds a run at "
                                       f"{run}$"):
        check_run_folder(tmp_path / "demo-output")
    with pytest.raises(RunError, match="is a dataset folder, not a run"):
        check_run_folder(tmp_path / "demo-output" / "data")
    with pytest.raises(RunError, match="no such run folder"):
        check_run_folder(tmp_path / "nope")
    check_run_folder(run)  # a run passes


def test_evaluate_and_predict_after_moving_run_and_data(data, tmp_path, monkeypatch, capsys):
    """Train in one folder with relative paths, move run and data together, and use the
    run from a third folder."""
    from vidaction.cli import main
    from vidaction.train import train

    first = tmp_path / "first"
    first.mkdir()
    shutil.copytree(data, first / "data")
    monkeypatch.chdir(first)
    train(tiny_config("data", "run", model="rgb-diff", epochs=1), progress=False)
    recorded = json.loads((first / "run" / "config.json").read_text())["train"]
    assert recorded["data"] == str(first / "data") and recorded["data_from_run"] == "../data"

    moved = tmp_path / "moved"
    shutil.move(first, moved)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    capsys.readouterr()
    assert main(["evaluate", str(moved / "run"), "--no-progress"]) == 0, \
        capsys.readouterr().err
    metrics = json.loads((moved / "run" / "eval" / "test" / "metrics.json").read_text())
    assert Path(metrics["data"]) == moved / "data"
    video = next((moved / "data" / "test").rglob("*.mp4"))
    assert main(["predict", str(moved / "run"), str(video), "--no-progress"]) == 0
    assert str(video) in capsys.readouterr().out
    # --resume finds the moved data too, and records where it now is
    assert main(["train", "--resume", "--out", str(moved / "run"), "--epochs", "2",
                 "--no-progress"]) == 0, capsys.readouterr().err
    recorded = json.loads((moved / "run" / "config.json").read_text())["train"]
    assert recorded["data"] == str(moved / "data") and recorded["data_from_run"] == "../data"


def test_a_bare_name_near_a_pretrained_one_is_told_it(tmp_path, monkeypatch):
    from vidaction.models.predictor import check_predictor_path

    monkeypatch.chdir(tmp_path)
    for typed in ("kinetic600", "Kinetics600"):
        with pytest.raises(RunError, match=rf"^{typed}: no such run folder \(did you mean "
                                           r"kinetics600\?\)$"):
            check_predictor_path(typed)
    # far from every name, a path rather than a name, or a command without such names
    for typed, names in [("zzz", ["kinetics600"]), ("runs/kinetic600", ["kinetics600"]),
                         ("kinetic600", [])]:
        with pytest.raises(RunError, match=r"no such run folder$"):
            check_run_folder(Path(typed), names=names)
    # a real folder of that name is what it is, whatever names are near
    (tmp_path / "kinetic600").mkdir()
    with pytest.raises(RunError, match="is not a run folder"):
        check_predictor_path("kinetic600")
    (tmp_path / "kinetic600" / "config.json").write_text("{}")
    check_predictor_path("kinetic600")
