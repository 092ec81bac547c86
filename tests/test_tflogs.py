"""TensorFlow's log lines are off unless asked for; a short real `train` shows that end to end
(tests/train/test_train.py::test_resume_after_sigkill)."""

import os
import subprocess
import sys

PROBE = """
import os, sys
import vidaction
from vidaction.tflogs import _finder
print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"), _finder in sys.meta_path)
"""


def _python(code, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "VIDACTION_TF_LOGS")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env={**base, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def test_import_quiets_tensorflow_unless_asked():
    assert _python(PROBE).stdout.split() == ["3", "True"]
    assert _python(PROBE, VIDACTION_TF_LOGS="1").stdout.split() == ["None", "False"]
    assert _python(PROBE, VIDACTION_TF_LOGS="0").stdout.split() == ["3", "True"]
    # a level the user chose is theirs
    assert _python(PROBE, TF_CPP_MIN_LOG_LEVEL="1").stdout.split() == ["1", "True"]


def test_verbose_flag_gives_tensorflow_its_default_level_back(tmp_path):
    code = ("import os, sys\nfrom vidaction.cli import main\nfrom vidaction.tflogs import _finder\n"
            f"main(['--verbose', 'data', 'check', {str(tmp_path / 'nope')!r}])\n"
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), os.environ.get('VIDACTION_TF_LOGS'),"
            " _finder in sys.meta_path)")
    assert _python(code).stdout.split() == ["None", "1", "False"]


def test_abseil_and_python_loggers_are_quiet_once_tensorflow_loads():
    """TensorFlow 2.20's abseil lines ignore TF_CPP_MIN_LOG_LEVEL; ours set abseil's level."""
    code = """
import ctypes, logging, os
import vidaction
import tensorflow as tf
from absl import logging as absl_logging
lib = ctypes.CDLL(os.path.join(os.path.dirname(tf.__file__), "libtensorflow_framework.so.2"))
level = lib._ZN4absl12lts_2025012711MinLogLevelEv
level.restype = ctypes.c_int
print(level(), logging.getLogger("tensorflow").level == logging.ERROR,
      absl_logging.get_verbosity() == absl_logging.ERROR)
"""
    r = _python(code)
    assert r.stdout.split() == ["3", "True", "True"]
    assert r.stderr == ""
