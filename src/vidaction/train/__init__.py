"""Fit loop, run folders, checkpoints and resume."""

from vidaction.models.run import Run, load_run
from vidaction.train.fit import TrainConfig, train

__all__ = ["Run", "TrainConfig", "load_run", "train"]
