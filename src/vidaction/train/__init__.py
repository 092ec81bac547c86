"""Fit loop, run folders, checkpoints and resume."""

from vidaction.models.run import Run, load_run

__all__ = ["Run", "TrainConfig", "load_run", "train"]


def __getattr__(name: str):
    # the fit loop pulls in TensorFlow: only on demand, so that `train.folder` (the checks
    # `vidaction train` makes before anything slow) imports in milliseconds
    if name in ("TrainConfig", "train"):
        from vidaction.train import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'vidaction.train' has no attribute {name!r}")
