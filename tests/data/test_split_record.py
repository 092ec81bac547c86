"""A dataset that grows keeps the run's split: no clip the run trained on is ever tested."""

import json

import pytest

from vidaction.data.sources import DatasetError, load_dataset
from vidaction.data.split_record import apply_split_record, read_split_record, split_record


def _folder(root, per_class, start=0, prefix="clip"):
    for cls in ("clap", "wave"):
        for k in range(start, start + per_class):
            f = root / cls / f"{prefix}{k:03d}.mp4"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"")  # the split is drawn from names alone
    return root


def _splits(ds):
    return {s: {str(c.path.relative_to(ds.root)) for c in ds.split(s)}
            for s in ("train", "val", "test")}


def test_added_videos_reshuffle_a_class_folder_split_unless_the_record_is_applied(tmp_path):
    root = _folder(tmp_path / "d", 10)
    before = load_dataset(root, write_classes_file=False)
    record = json.loads(json.dumps(split_record(before, before.split("train"),
                                                before.split("val"))))  # as stored
    old = _splits(before)
    _folder(root, 10, start=10)
    redrawn = _splits(load_dataset(root, write_classes_file=False))
    # the problem: drawn again, the test split takes in clips the run trained on
    assert redrawn["test"] & (old["train"] | old["val"])

    applied = apply_split_record(load_dataset(root, write_classes_file=False), record)
    now = _splits(applied.dataset)
    for s in old:
        assert old[s] <= now[s]  # every recorded clip where the run put it
    assert not now["test"] & (old["train"] | old["val"])
    assert sum(applied.added.values()) == 20 and applied.missing == 0
    assert applied.moved > 0 and "the dataset changed since training" in applied.note()
    assert len(now["test"]) > len(old["test"])  # new videos still get tested


def test_a_new_video_of_an_actor_the_run_saw_goes_where_that_actor_went(tmp_path):
    root = tmp_path / "ucf"
    for g in range(1, 9):
        for c in (1, 2):
            f = root / "Punch" / f"v_Punch_g{g:02d}_c{c:02d}.avi"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"")
    ds = load_dataset(root, write_classes_file=False)
    record = split_record(ds, ds.split("train"), ds.split("val"))
    train_group = ds.split("train")[0].group
    g = int(train_group.rsplit("g", 1)[1])
    (root / "Punch" / f"v_Punch_g{g:02d}_c07.avi").write_bytes(b"")
    applied = apply_split_record(load_dataset(root, write_classes_file=False), record)
    new = next(c for c in applied.dataset.clips if c.path.name.endswith("_c07.avi"))
    assert new.split == "train" and applied.seen_actor == 1
    assert "1 of a group the run saw" in applied.note()


def test_a_file_moved_from_train_to_test_stays_a_training_clip(tmp_path):
    root = tmp_path / "s"
    for split in ("train", "test"):
        for k in range(3):
            f = root / split / "clap" / f"{split}{k}.mp4"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"")
    ds = load_dataset(root, write_classes_file=False)
    record = split_record(ds, ds.split("train")[:2], ds.split("train")[2:])
    (root / "train" / "clap" / "train0.mp4").rename(root / "test" / "clap" / "train0.mp4")
    # split folders: the path changed, so the file is new; its group (its name) was trained on
    applied = apply_split_record(load_dataset(root, write_classes_file=False), record)
    assert {c.path.name for c in applied.dataset.split("test")} == {"test0.mp4", "test1.mp4",
                                                                    "test2.mp4"}
    assert applied.missing == 1


def test_no_record_is_none_and_a_damaged_one_is_one_line(tmp_path):
    assert read_split_record(tmp_path) is None
    (tmp_path / "split.json").write_text("{not json")
    with pytest.raises(DatasetError, match="split.json: unreadable"):
        read_split_record(tmp_path)
    (tmp_path / "split.json").write_text('{"version": 99}')
    with pytest.raises(DatasetError, match="version 99"):
        read_split_record(tmp_path)
