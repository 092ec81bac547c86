"""vidaction: human action recognition in video."""

import os

# One Keras for MoViNet (tf-models-official) and our own models: tf-keras. This must be
# set before TensorFlow is first imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
