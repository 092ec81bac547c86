"""--short is part of how a run cuts clips: a resume keeps it, and refuses another."""

import dataclasses
import json

import pytest

from vidaction.models.run import RunError
from vidaction.train.fit import TrainConfig
from vidaction.train.resume import resume_config


def _run(tmp_path, sampling: dict):
    out = tmp_path / "run"
    out.mkdir()
    cfg = TrainConfig(data=str(tmp_path), out=str(out), model="rgb-diff")
    (out / "config.json").write_text(json.dumps(
        {"train": dataclasses.asdict(cfg), "model": {"name": "rgb-diff"},
         "sampling": {"n_frames": 8, "frame_step": 15, "size": 48, **sampling}}))
    return out


@pytest.mark.parametrize(("sampling", "same", "other"), [
    ({"short": "loop"}, "loop", "pad"),
    ({}, "pad", "loop"),  # a run from before --short: it padded
])
def test_resume_keeps_the_runs_short_mode(tmp_path, sampling, same, other):
    out = _run(tmp_path, sampling)
    cfg, _, changes = resume_config(TrainConfig(data="", out=str(out), short=same), {"short"})
    assert changes == {}
    with pytest.raises(RunError, match=f"--short {other} \\(the run has short {same}\\)"):
        resume_config(TrainConfig(data="", out=str(out), short=other), {"short"})
