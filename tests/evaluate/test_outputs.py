"""What people read: titles name the model, accuracies come with chance, top-k only where
it means something, config rows in words, probabilities as 99.4%."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vidaction.evaluate.metrics import compute_metrics
from vidaction.evaluate.report import _config_rows, render_report
from vidaction.evaluate.run import format_summary


def _metrics(n_classes: int) -> dict:
    classes = [f"c{i}" for i in range(n_classes)]
    y = np.arange(2 * n_classes) % n_classes
    probs = np.full((len(y), n_classes), 0.1 / n_classes)
    probs[np.arange(len(y)), y] += 0.9
    probs[0] = np.roll(probs[0], 1)  # one mistake
    return {"run": "/x/demo-output/run", "data": "/x/data", "split": "test",
            "seen_split": False, "model": "rgb-diff",
            "sampling": {"n_frames": 8, "frame_step": 7}, "clips_per_video": 3,
            "averaging": "mean of softmax", "skipped": 0, "skipped_videos": [],
            **compute_metrics(y, probs, classes, clip_correct=probs.argmax(1) == y)}


def test_summary_names_the_model_and_chance_and_hides_a_trivial_top_k():
    text = format_summary(_metrics(4))
    assert text.startswith("rgb-diff on the test split (/x/demo-output/run")
    assert "chance 25.0%" in text and "87.5%" in text
    assert "top-4 accuracy" not in text
    many = format_summary(_metrics(8))
    assert "top-5 accuracy (video)" in many and "chance 12.5%" in many


CONFIG = {"model": {"name": "rgb-diff", "pretrained": "none", "frames": 8, "size": 48},
          "sampling": {"n_frames": 8, "frame_step": 7, "size": 48, "resize": "letterbox",
                       "short": "loop"},
          "train": {"epochs": 40, "batch_size": 16, "lr": 0.001, "augment": True,
                    "freeze_backbone": True, "unfreeze_top": 0, "seed": 0}}


def test_config_rows_apply_to_the_model_in_words():
    rows = dict(_config_rows(CONFIG))
    assert rows["pretrained weights"] == "none, trained from scratch"
    assert rows["clip"] == "8 frames, 7 apart, 48x48 pixels, letterboxed"
    assert rows["videos shorter than a clip"] == "looped from the start"
    assert "fine-tuning" not in rows  # a from-scratch model has no backbone to freeze
    text = " ".join(rows.values())
    assert "True" not in text and "None" not in text and "freeze_backbone" not in text
    movinet = {**CONFIG, "model": {"name": "movinet-a0-stream", "pretrained": "auto"},
               "train": {**CONFIG["train"], "unfreeze_top": 2}}
    assert dict(_config_rows(movinet))["fine-tuning"] == \
        "last 2 backbone blocks fine-tuned, the rest frozen"


def test_report_title_chance_videos_and_gallery(tmp_path):
    m = _metrics(4)
    gif = tmp_path / "p.gif"
    gif.write_bytes(b"GIF89a fake")
    ds = SimpleNamespace(root=Path("/x/data"), layout="split folders", classes=m["classes"],
                         clips=[SimpleNamespace(split="test")] * 8, splits=["test"],
                         notes=[])
    videos = [SimpleNamespace(class_name=c) for c in m["classes"] * 2]
    html = render_report(m, CONFIG, ds, videos, b"png", None,
                         [{"path": "/x/a.mp4", "true": "c0",
                           "top3": [("c1", 0.934), ("c0", 0.05)], "gif": None,
                           "error": "gone"}],
                         gallery=[{"path": gif, "video": "/x/b.mp4", "true": "c2",
                                   "predicted": "c2", "prob": 0.994}])
    assert "<h1>Rgb-diff on the test split</h1>" in html
    assert "chance 25.0%" in html and "top-4 accuracy" not in html
    assert "videos per split" in html and "clips per split" not in html
    assert "c1 93.4%" in html and "predicted c2 99.4%: right" in html
    assert html.count("data:image/gif;base64,") == 1
    assert "<title>vidaction evaluation: rgb-diff on the test split</title>" in html
