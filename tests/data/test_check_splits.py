"""`data check` shows the split `train` uses, a carved val split included."""

from conftest import make_video


def test_data_check_says_how_train_will_carve_a_missing_val_split(tmp_path):
    from vidaction.data.check import check_dataset, format_report

    for cls in ("a", "b"):
        for k in range(3):
            make_video(tmp_path / "d" / "train" / cls / f"{k}.mp4", 20)
    text = format_report(check_dataset(tmp_path / "d", val_fraction=0.3, progress=False,
                                       quick=True))
    assert "no val split: `train` carves 0.3 of the training videos" in text
