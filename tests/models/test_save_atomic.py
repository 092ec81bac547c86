"""save_model: a failed save (a full disk) leaves the previous model whole and no temporary,
and names the file; what a killed save left (model.tmp-PID) is cleaned by the next save."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vidaction.io.writer import WriteError


def test_a_failed_save_keeps_the_old_model_and_the_next_cleans_leftovers(tmp_path,
                                                                         monkeypatch):
    import tensorflow as tf

    from vidaction.models import create_model, load_model, save_model

    model = create_model("r2plus1d", 3, frames=4, size=32)
    path = save_model(model, tmp_path / "model")
    before = sorted(p.name for p in path.iterdir())

    def full(self, *a, **k):  # TensorFlow's own error, a part of the weights written
        (tmp_path / f".model.tmp-{os.getpid()}" / "weights.index").write_bytes(b"half")
        raise tf.errors.ResourceExhaustedError(
            None, None, "weights.data-00000-of-00001.tempstate1; No space left on device")

    with monkeypatch.context() as m:
        m.setattr(type(model), "save_weights", full)
        with pytest.raises(WriteError) as e:
            save_model(model, tmp_path / "model")
    assert str(e.value) == f"{tmp_path / 'model' / 'weights'}: No space left on device"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary left
    assert sorted(p.name for p in path.iterdir()) == before
    load_model(path)  # the old model is whole

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    killed = tmp_path / f"model.tmp-{p.pid}"  # what an older, killed save left
    killed.mkdir()
    (killed / "weights.index").write_bytes(b"half")
    save_model(model, tmp_path / "model")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
