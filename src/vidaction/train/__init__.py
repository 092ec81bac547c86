"""Fit loop, run folders, checkpoints and resume."""

from vidaction.train.fit import TrainConfig, train
from vidaction.train.run import Run, load_run

__all__ = ["Run", "TrainConfig", "load_run", "train"]
