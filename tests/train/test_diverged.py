"""A NaN or inf loss never ends in "model saved": one line, a non-zero exit, no model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vidaction.cli import main
from vidaction.data.builtin import render_dataset

TINY = dict(classes=["clap", "sit_down", "stand_up"], clips_per_class=4, size=32, seconds=0.8,
            fps=25, seed=3, splits=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return render_dataset(tmp_path_factory.mktemp("data") / "tiny", progress=False, **TINY)


def _poisoned(monkeypatch, value: float) -> None:
    """Models come out of create_model with one weight set to `value` (NaN weights: the
    loss is NaN from the first batch)."""
    import vidaction.models as models

    real = models.create_model

    def create_model(*a, **k):
        model = real(*a, **k)
        w = model.trainable_weights[-2]  # the classifier's kernel
        w.assign(np.full(w.shape, value, w.dtype.as_numpy_dtype))
        return model

    monkeypatch.setattr(models, "create_model", create_model)


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_non_finite_loss_stops_training_in_one_line(data, tmp_path, monkeypatch, capsys,
                                                      value):
    _poisoned(monkeypatch, value)
    out = tmp_path / "run"
    rc = main(["train", "--data", str(data), "--out", str(out), "--model", "r2plus1d",
               "--epochs", "2", "--batch-size", "3", "--frames", "4", "--frame-step", "3",
               "--size", "32", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("vidaction: error:")]
    assert len(lines) == 1, captured.err
    assert re.search(r"training diverged: loss is (nan|inf) at epoch 1, batch 1", lines[0])
    assert "no model saved" in lines[0] and "--lr" in lines[0]
    assert "Traceback" not in captured.err
    assert "model saved" not in captured.out
    assert not (out / "model").exists()
    assert not list(out.rglob("*.index"))  # the diverged epoch was never checkpointed
