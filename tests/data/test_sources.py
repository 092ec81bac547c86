from collections import defaultdict

import pytest

from conftest import make_video
from vidaction.data.sources import DatasetError, load_dataset, stratified_split


def _tree(root, layout):
    for rel in layout:
        make_video(root / rel, 6)


def test_split_folders(tmp_path):
    _tree(tmp_path, [f"{s}/{c}/v{i}.avi" for s in ("train", "val", "test")
                     for c in ("Walk", "Jump") for i in range(2)])
    (tmp_path / "train" / "Walk" / "readme.txt").write_text("not a video, ignored")
    ds = load_dataset(tmp_path)
    assert ds.layout == "split-folders"
    assert ds.classes == ["Jump", "Walk"]
    assert (tmp_path / "classes.txt").read_text() == "Jump\nWalk\n"
    assert {c: dict(v) for c, v in ds.counts().items()} == {
        "Jump": {"train": 2, "val": 2, "test": 2}, "Walk": {"train": 2, "val": 2, "test": 2}}
    assert all(c.label == ds.classes.index(c.class_name) for c in ds.clips)


def test_existing_classes_txt_fixes_the_ids(tmp_path):
    _tree(tmp_path, ["train/a/1.avi", "train/b/1.avi"])
    (tmp_path / "classes.txt").write_text("b\na\nc\n")  # written earlier, not sorted
    ds = load_dataset(tmp_path)
    assert ds.classes == ["b", "a", "c"]
    assert {c.class_name: c.label for c in ds.clips} == {"b": 0, "a": 1}


def test_unknown_class_against_classes_txt(tmp_path):
    _tree(tmp_path, ["train/a/1.avi", "train/zebra/1.avi"])
    (tmp_path / "classes.txt").write_text("a\n")
    with pytest.raises(DatasetError, match="zebra"):
        load_dataset(tmp_path)


def test_class_folders_split_is_stratified_seeded_and_group_aware(tmp_path):
    names = [f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi" for c in ("Run", "Swim")
             for g in range(1, 6) for k in range(1, 3)]
    _tree(tmp_path, names)
    ds = load_dataset(tmp_path, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert ds.layout == "class-folders"
    for c in ("Run", "Swim"):
        assert dict(ds.counts()[c]) == {"train": 6, "val": 2, "test": 2}
    splits_of_group = defaultdict(set)
    for c in ds.clips:
        splits_of_group[c.group].add(c.split)
    assert all(len(s) == 1 for s in splits_of_group.values())
    again = load_dataset(tmp_path, seed=1)
    assert [(c.path, c.split) for c in ds.clips] == [(c.path, c.split) for c in again.clips]
    (tmp_path / "classes.txt").unlink()
    other = load_dataset(tmp_path, seed=2)
    assert {c.path: c.split for c in ds.clips} != {c.path: c.split for c in other.clips}


def test_stratified_split_keeps_a_training_item():
    assert set(stratified_split(["only"], 0.5, 0.4, seed=0).values()) == {"train"}
    out = stratified_split([str(i) for i in range(10)], 0.2, 0.3, seed=0)
    assert sorted(out.values()).count("test") == 3
    assert sorted(out.values()).count("val") == 2


def test_csv_manifests(tmp_path):
    for i in range(6):
        make_video(tmp_path / "train" / f"t{i}.avi", 4)
    make_video(tmp_path / "test" / "x.avi", 4)
    (tmp_path / "train.csv").write_text(
        "video_name,tag\n" + "".join(f"t{i}.avi,{'Sit' if i % 2 else 'Stand'}\n"
                                     for i in range(6)))
    (tmp_path / "test.csv").write_text("video_name,tag\nx.avi,Sit\n")
    ds = load_dataset(tmp_path, val_fraction=0.34, seed=0)
    assert ds.layout == "csv"
    assert ds.classes == ["Sit", "Stand"]
    assert all(c.path.exists() for c in ds.clips)
    counts = ds.counts()
    assert counts["Sit"]["test"] == 1
    assert counts["Sit"]["val"] == 1 and counts["Stand"]["val"] == 1  # carved per class


def test_csv_wrong_columns(tmp_path):
    (tmp_path / "train.csv").write_text("file,label\na.avi,x\n")
    with pytest.raises(DatasetError, match="video_name,tag"):
        load_dataset(tmp_path)


def test_missing_and_empty_roots(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no videos found"):
        load_dataset(tmp_path / "empty")


def test_class_names_match_without_case(tmp_path):
    _tree(tmp_path, ["train/HandStandPushups/1.avi", "test/HandstandPushups/2.avi"])
    (tmp_path / "classes.txt").write_text("HandstandPushups\n")
    ds = load_dataset(tmp_path)
    assert {c.class_name for c in ds.clips} == {"HandstandPushups"}


def _csv_tree(root, train_rows, test_rows, bom=False):
    """Videos t*.avi in ROOT/train, x*.avi in ROOT/test, and the two manifests."""
    for name, _ in train_rows:
        make_video(root / "train" / name, 4)
    for name, _ in test_rows:
        make_video(root / "test" / name, 4)
    prefix = "\ufeff" if bom else ""
    for split, rows in (("train", train_rows), ("test", test_rows)):
        (root / f"{split}.csv").write_text(
            prefix + "video_name,tag\n" + "".join(f"{n},{t}\n" for n, t in rows),
            encoding="utf-8")


def test_csv_with_a_utf8_bom_as_excel_saves_it(tmp_path):
    _csv_tree(tmp_path, [("t0.avi", "Sit"), ("t1.avi", "Stand")], [("x0.avi", "Sit")],
              bom=True)
    ds = load_dataset(tmp_path, val_fraction=0.0)
    assert ds.classes == ["Sit", "Stand"]
    assert len(ds.clips) == 3


def test_csv_tags_differing_only_in_case_are_one_class(tmp_path):
    _csv_tree(tmp_path, [("t0.avi", "bow"), ("t1.avi", "bow"), ("t2.avi", "Squat")],
              [("x0.avi", "Bow"), ("x1.avi", "squat")])
    ds = load_dataset(tmp_path, val_fraction=0.0)
    assert ds.classes == ["Squat", "bow"]  # as most clips spell them
    assert (tmp_path / "classes.txt").read_text() == "Squat\nbow\n"
    assert {(c.path.name, c.class_name, c.label) for c in ds.split("test")} == {
        ("x0.avi", "bow", 1), ("x1.avi", "Squat", 0)}


def test_classes_txt_with_two_spellings_of_one_class_is_refused(tmp_path):
    _tree(tmp_path, ["train/bow/1.avi"])
    (tmp_path / "classes.txt").write_text("Bow\nbow\n")
    with pytest.raises(DatasetError, match=r"classes.txt: Bow and bow differ only in case"):
        load_dataset(tmp_path)


def test_csv_video_in_train_and_test_is_refused_naming_it(tmp_path):
    make_video(tmp_path / "shared.avi", 4)
    (tmp_path / "train.csv").write_text("video_name,tag\nshared.avi,Sit\n")
    (tmp_path / "test.csv").write_text("video_name,tag\nshared.avi,Sit\n")
    with pytest.raises(DatasetError) as e:
        load_dataset(tmp_path)
    msg = str(e.value)
    assert "shared.avi" in msg and "train.csv:2" in msg and "test.csv:2" in msg
    assert "\n" not in msg


def test_csv_video_with_two_tags_is_refused_naming_it(tmp_path):
    _csv_tree(tmp_path, [("t0.avi", "Sit"), ("t1.avi", "Stand"), ("t0.avi", "Stand")],
              [("x0.avi", "Sit")])
    with pytest.raises(DatasetError, match=r"t0.avi: two tags, Sit \(train.csv:2\) and Stand "
                                           r"\(train.csv:4\)"):
        load_dataset(tmp_path)


def test_csv_duplicate_rows_and_test_only_tags_warn_once(tmp_path, recwarn):
    import warnings

    warnings.simplefilter("always")
    _csv_tree(tmp_path, [("t0.avi", "Sit"), ("t1.avi", "Stand"), ("t0.avi", "sit"),
                         ("t1.avi", "Stand")],
              [("x0.avi", "Sit"), ("x1.avi", "Jump"), ("x2.avi", "Kneel")])
    ds = load_dataset(tmp_path, val_fraction=0.0)
    assert sorted(c.path.name for c in ds.split("train")) == ["t0.avi", "t1.avi"]
    msgs = [str(w.message) for w in recwarn.list]
    dup = [m for m in msgs if "duplicate row" in m]
    only = [m for m in msgs if "found only in test" in m]
    assert len(dup) == 1 and "2 duplicate row(s)" in dup[0] and "train.csv:4" in dup[0]
    assert len(only) == 1 and only[0].endswith("Jump, Kneel")
    assert len(msgs) == 2


def test_split_folders_spelt_two_ways_are_one_class(tmp_path):
    _tree(tmp_path, ["train/HandStandPushups/1.avi", "train/HandStandPushups/2.avi",
                     "test/HandstandPushups/3.avi"])
    ds = load_dataset(tmp_path)
    assert ds.classes == ["HandStandPushups"]
    assert {c.label for c in ds.clips} == {0}


def test_links_and_pipes_named_like_videos_are_listed_for_the_reader_to_name(tmp_path):
    import os

    _tree(tmp_path, ["train/a/1.avi", "train/a/2.avi"])
    (tmp_path / "train/a/loop.avi").symlink_to(tmp_path / "train/a/loop.avi")
    os.mkfifo(tmp_path / "train/a/pipe.avi")
    ds = load_dataset(tmp_path)
    assert sorted(c.path.name for c in ds.clips) == ["1.avi", "2.avi", "loop.avi", "pipe.avi"]


def test_one_loose_video_is_counted_in_english(tmp_path):
    from vidaction.data.sources import DatasetError, load_dataset

    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(DatasetError, match=r": 1 video but no class folders"):
        load_dataset(tmp_path)
