"""vidaction: human action recognition in video."""

import os

# One Keras for MoViNet (tf-models-official) and our own models: tf-keras. This must be
# set before TensorFlow is first imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# OpenCV's bundled FFmpeg would print its own lines next to our one-line errors.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from vidaction.tflogs import quiet_by_default  # noqa: E402 - after the environment above

# TensorFlow's own log lines stay off unless VIDACTION_TF_LOGS=1 (or `vidaction --verbose`).
quiet_by_default()

__version__ = "0.1.0"


def __getattr__(name: str):
    # `vidaction.load_run(RUN)` without importing TensorFlow for every `import vidaction`.
    if name == "load_run":
        from vidaction.models.run import load_run

        return load_run
    raise AttributeError(f"module 'vidaction' has no attribute {name!r}")
