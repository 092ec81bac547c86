"""Evaluation: honest numbers on a held-out split, pictures and a one-page report.

`evaluate_run(RUN)` is the whole `vidaction evaluate` command; `video_scores` and
`score_videos` (K clips per video -> averaged probabilities) are shared with prediction
and import no TensorFlow.
"""

from vidaction.evaluate.metrics import NoPredictionWarning, compute_metrics, most_confused
from vidaction.models.scoring import average_clips, load_videos, score_videos, video_scores

__all__ = ["NoPredictionWarning", "average_clips", "compute_metrics", "evaluate_run",
           "format_summary", "load_videos", "most_confused", "score_videos", "video_scores"]


def __getattr__(name: str):
    # evaluate_run pulls in TensorFlow (through the run folder code): only on demand
    if name in ("evaluate_run", "format_summary"):
        from vidaction.evaluate import run

        return getattr(run, name)
    raise AttributeError(f"module 'vidaction.evaluate' has no attribute {name!r}")
