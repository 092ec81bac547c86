"""A split that ends up empty (every video unreadable) fails the run; a cache that cannot
be written is no reason to skip a video."""

import json
import shutil
import warnings

import pytest

from conftest import full_disk_open
from vidaction.data.builtin import render_dataset
from vidaction.data.sources import DatasetError

TINY = dict(classes=["clap", "kick"], clips_per_class=4, size=32, seconds=0.6, fps=25, seed=4,
            splits=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return render_dataset(tmp_path_factory.mktemp("d") / "tiny", progress=False, **TINY)


def _cfg(data, out, **kw):
    from vidaction.train import TrainConfig

    return TrainConfig(**{**dict(data=str(data), out=str(out), model="r2plus1d", epochs=1,
                                 batch_size=2, frames=4, frame_step=3, size=32), **kw})


@pytest.mark.parametrize("split,name", [("val", "validation"), ("train", "training")])
def test_a_split_with_no_readable_video_fails_the_run(pristine, tmp_path, split, name):
    from vidaction.train import train

    data = shutil.copytree(pristine, tmp_path / "data")
    broken = sorted((data / split).rglob("*.mp4"))
    for p in broken:
        p.write_bytes(b"not a video at all" * 50)
    with pytest.raises(DatasetError) as e:
        train(_cfg(data, tmp_path / "run"), progress=False)
    msg = str(e.value)
    assert f"none of the {len(broken)} {name} videos could be read" in msg
    assert "\n" not in msg and str(data) in msg
    assert not (tmp_path / "run" / "model").exists()  # no "model saved"


def test_train_with_a_clip_cache_on_a_full_disk_skips_nothing(pristine, tmp_path, monkeypatch):
    from vidaction.data import cache as cache_module
    from vidaction.train import train

    monkeypatch.setattr(cache_module, "open", full_disk_open, raising=False)
    cache = tmp_path / "clips"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(_cfg(pristine, tmp_path / "run", clip_cache=str(cache), epochs=2),
                    progress=False)
    hist = json.loads((run / "history.json").read_text())
    assert hist["skipped_files"] == {}
    assert all(e["val_loss"] < float("inf") for e in hist["epochs"])
    full = [str(w.message) for w in caught if "no space left on device" in str(w.message)]
    assert len(full) == 1 and str(cache) in full[0]
