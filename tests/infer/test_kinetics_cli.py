"""`vidaction predict kinetics600` and `stream kinetics600`: no training, no internet here
(a loopback server or --weights stands in for the official URL)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from conftest import closed_port_url, real_clip, shared_model
from vidaction.cli import main
from vidaction.models import kinetics as kin

MODEL = "movinet_a0_stream_kinetics600_int8.tflite"


def _real(name: str):
    return real_clip(name)


@pytest.fixture
def official_at(monkeypatch, tmp_path):
    """Point kinetics600's official URL at `url`, with an empty cache in tmp_path."""
    monkeypatch.setenv("VIDACTION_CACHE", str(tmp_path / "cache"))

    def point(url: str) -> None:
        monkeypatch.setitem(kin.CLASSIFIERS, "kinetics600",
                            replace(kin.CLASSIFIERS["kinetics600"], url=url))

    return point


def test_predict_fetches_on_first_use_then_runs_from_the_cache(official_at, loopback_server,
                                                               tmp_path, capsys):
    video = _real("flipping_a_pancake.mkv")
    loopback_server.routes["/k600"] = [("ok", shared_model(MODEL).read_bytes())]
    official_at(loopback_server.url("/k600"))
    for _ in range(2):
        assert main(["predict", "kinetics600", str(video), "--no-progress"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(str(video)) and "3 clips averaged" in out[0]
        assert out[1].split()[1:3] == ["flipping", "pancake"]  # "1. flipping pancake  78.7%"
        assert len(out) == 6  # top-5 of 600
    assert loopback_server.hits == ["/k600"]
    assert (tmp_path / "cache" / "weights" / MODEL).is_file()


def test_offline_without_a_copy_is_one_line_and_a_failure(official_at, capsys):
    url = closed_port_url("/k600")
    official_at(url)
    video = _real("jumping_jacks.mp4")
    assert main(["predict", "kinetics600", str(video), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidaction: error:")
    assert url in err[0] and "--weights PATH" in err[0]


def test_json_top_k_overlay_and_timeline(tmp_path, capsys):
    video = _real("flipping_a_pancake.mkv")
    weights = str(shared_model(MODEL))
    overlay = tmp_path / "pancake.mp4"
    assert main(["predict", "kinetics600", str(video), "--weights", weights, "--json",
                 "--top-k", "3", "--overlay", str(overlay), "--no-progress"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert [t["label"] for t in rec["top"]][0] == "flipping pancake" and len(rec["top"]) == 3
    assert rec["overlay"] == str(overlay) and overlay.stat().st_size > 0

    prefix = tmp_path / "tl"
    assert main(["predict", "kinetics600", str(video), "--weights", weights, "--json",
                 "--timeline", "--window", "10", "--out", str(prefix), "--no-progress"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["frame_step"] == 6  # 5 fps of a 30 fps video: its training rate
    assert rec["window"] == 10 and rec["windows"] >= 5
    assert rec["top"][0]["label"] == "flipping pancake"
    assert all(p.endswith((".csv", ".json", ".png")) for p in rec["files"])


def test_fps_sets_the_step_per_video_and_excludes_frame_step(tmp_path, capsys):
    video = _real("flipping_a_pancake.mkv")
    weights = str(shared_model(MODEL))
    assert main(["predict", "kinetics600", str(video), "--weights", weights, "--json",
                 "--timeline", "--fps", "10", "--out", str(tmp_path / "t"),
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["frame_step"] == 3
    assert main(["predict", "kinetics600", str(video), "--weights", weights, "--json",
                 "--timeline", "--frame-step", "2", "--out", str(tmp_path / "t2"),
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["frame_step"] == 2  # replaces the 5 fps
    with pytest.raises(SystemExit) as e:
        main(["predict", "kinetics600", str(video), "--fps", "5", "--frame-step", "2"])
    assert e.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_stream_a_file_at_the_training_rate(tmp_path, capsys):
    video = _real("jumping_jacks.mp4")  # 64 frames at 10 fps
    overlay = tmp_path / "jj.mp4"
    assert main(["stream", "kinetics600", "--source", str(video), "--weights",
                 str(shared_model(MODEL)), "--overlay", str(overlay), "--no-progress"]) == 0
    cap = capsys.readouterr()
    labels = [re.search(r"frame +\d+  (.+?)  [\d.]+%?$", line).group(1)
              for line in cap.out.splitlines()]
    assert labels and labels[-1] == "jumping jacks", cap.out
    assert "32 frames through the model" in cap.err  # every 2nd frame: 5 fps
    assert overlay.stat().st_size > 0


def test_stream_fps_flag(capsys):
    video = _real("jumping_jacks.mp4")
    assert main(["stream", "kinetics600", "--source", str(video), "--weights",
                 str(shared_model(MODEL)), "--fps", "10", "--no-progress"]) == 0
    assert "64 frames through the model" in capsys.readouterr().err


def test_models_lists_the_pretrained_classifier(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("pretrained classifiers"):]
    row = next(line for line in section.splitlines() if line.startswith("kinetics600"))
    assert "172x172" in row and "600" in row and "5 fps" in row
