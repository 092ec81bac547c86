import json
import math

import numpy as np
import pytest

from vidaction.evaluate.metrics import NoPredictionWarning, compute_metrics, most_confused

CLASSES = ["a", "b", "c", "d"]  # "d": no video in the split and never predicted


def _probs(y_pred, second):
    """Rows whose argmax is y_pred, with `second` the runner-up."""
    p = np.full((len(y_pred), len(CLASSES)), 0.05)
    for i, (a, b) in enumerate(zip(y_pred, second, strict=True)):
        p[i, a], p[i, b] = 0.6, 0.3
    return p


# hand-computed case: 7 videos, class c never predicted
Y_TRUE = [0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 1, 1, 0, 0, 1]
SECOND = [1, 1, 0, 0, 2, 2, 2]  # video 4 (true b) has neither guess right


def test_metrics_match_a_hand_computed_confusion_matrix():
    with pytest.warns(NoPredictionWarning, match="precision is set to 0: c$"):
        m = compute_metrics(Y_TRUE, _probs(Y_PRED, SECOND), CLASSES, top_k=2)
    assert m["confusion_matrix"] == [[2, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    pc = m["per_class"]
    # precision = diagonal / column sum, recall = diagonal / row sum
    assert pc["a"]["precision"] == pytest.approx(2 / 4)
    assert pc["b"]["precision"] == pytest.approx(1 / 3)
    assert pc["c"]["precision"] == 0.0 and pc["c"]["predicted"] == 0
    assert [pc[c]["recall"] for c in "abc"] == pytest.approx([2 / 3, 1 / 2, 0])
    f1_a, f1_b = 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 2 * (1 / 3) * 0.5 / (1 / 3 + 0.5)
    assert [pc[c]["f1"] for c in "abc"] == pytest.approx([f1_a, f1_b, 0])
    assert [pc[c]["support"] for c in CLASSES] == [3, 2, 2, 0]
    # averages over the classes in the split or the predictions: "d" does not count
    assert m["macro_precision"] == pytest.approx((0.5 + 1 / 3) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 0.5) / 3)
    assert m["macro_f1"] == pytest.approx((f1_a + f1_b) / 3)
    assert m["weighted_precision"] == pytest.approx((3 * 0.5 + 2 / 3) / 7)
    assert m["weighted_recall"] == pytest.approx(3 / 7)
    assert m["weighted_f1"] == pytest.approx((3 * f1_a + 2 * f1_b) / 7)
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert m["top1_accuracy"] == pytest.approx(3 / 7)
    # top-2: right at once (3 videos) or as runner-up (videos 2, 5, 6), not video 4
    assert m["top_k"] == 2 and m["top5_accuracy"] == pytest.approx(6 / 7)
    p_true = [0.6, 0.6, 0.3, 0.6, 0.05, 0.3, 0.3]
    assert m["loss"] == pytest.approx(-np.mean(np.log(p_true)))
    assert m["warnings"] == ["never predicted, so precision is set to 0: c"]


def test_json_never_holds_nan_even_for_empty_classes():
    with pytest.warns(NoPredictionWarning):
        m = compute_metrics(Y_TRUE, _probs(Y_PRED, SECOND), CLASSES)
    text = json.dumps(m, allow_nan=False)  # raises on NaN or inf
    assert "NaN" not in text
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0,
                                   "predicted": 0}


def test_top_k_is_capped_at_the_class_count():
    y = [0, 1, 2]
    probs = np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    with pytest.warns(NoPredictionWarning):
        m = compute_metrics(y, probs, ["a", "b", "c"])
    assert m["top_k"] == 3 and m["top5_accuracy"] == 1.0
    assert m["top1_accuracy"] == pytest.approx(1 / 3)
    with pytest.warns(NoPredictionWarning):
        two = compute_metrics([0, 1], np.array([[0.9, 0.1], [0.6, 0.4]]), ["a", "b"], top_k=1)
    assert two["top5_accuracy"] == 0.5


def test_perfect_predictions_give_no_warning_and_zero_confusions(recwarn):
    y = [0, 1, 2, 2]
    probs = np.eye(3)[y] * 0.9 + 0.1 / 3
    m = compute_metrics(y, probs, ["a", "b", "c"], clip_correct=[True] * 7 + [False])
    assert m["top1_accuracy"] == 1.0 and m["macro_f1"] == 1.0
    assert m["clip_top1_accuracy"] == pytest.approx(7 / 8)
    assert m["loss"] > 0 and math.isfinite(m["loss"])
    assert not [w for w in recwarn if issubclass(w.category, NoPredictionWarning)]
    assert most_confused(m["confusion_matrix"], m["classes"]) == []


def test_most_confused_orders_by_count():
    cm = [[5, 3, 0], [1, 4, 0], [2, 3, 1]]
    pairs = most_confused(cm, ["a", "b", "c"], n=3)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("a", "b", 3), ("c", "b", 3), ("c", "a", 2)]
    assert pairs[0]["share"] == pytest.approx(3 / 8)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics([0, 1], np.ones((3, 2)) / 2, ["a", "b"])
