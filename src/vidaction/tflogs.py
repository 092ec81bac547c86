"""TensorFlow's own log lines: off by default, back with `vidaction --verbose` or
VIDACTION_TF_LOGS=1.

TensorFlow logs three ways. tsl's C++ lines honour TF_CPP_MIN_LOG_LEVEL. Abseil's C++ lines
do not (TensorFlow 2.20: grappler's "Error in PredictCost() ...", each epoch, after
"All log messages before absl::InitializeLog() is called are written to STDERR"); abseil
lives in libtensorflow_framework, so we set its minimum level there, through ctypes, to
the same TF_CPP_MIN_LOG_LEVEL. Python lines go through the `tensorflow` and `absl`
loggers. All of it must be settled before TensorFlow is first imported, so
`import vidaction` calls `quiet_by_default()`, and the native part waits for TensorFlow's
import (a finder on sys.meta_path) rather than loading 250 MB for `vidaction --help`.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from contextlib import contextmanager

# Nothing heavier than the above: this module runs on every `import vidaction`.

ENV = "VIDACTION_TF_LOGS"
_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# absl::SetMinLogLevel(absl::LogSeverityAtLeast) as exported by TensorFlow 2.20's
# libtensorflow_framework (abseil LTS 2025-01-27). A TensorFlow built on another abseil
# misses it: the lines then show, nothing breaks.
_SET_MIN_LOG_LEVEL = ("_ZN4absl12lts_2025012714SetMinLogLevelENS0_18LogSeverityAtLeastE",)
_FRAMEWORK = ("libtensorflow_framework.so.2", "libtensorflow_framework.2.dylib")

_we_set_level = False  # TF_CPP_MIN_LOG_LEVEL came from us, not from the user
_OPENCV = "OPENCV_LOG_LEVEL"  # OpenCV's "[ WARN:0@0.1] ... can't open camera by index"
_we_set_opencv = False


def tf_logs_wanted() -> bool:
    """VIDACTION_TF_LOGS set to anything but "" or "0"."""
    return os.environ.get(ENV, "") not in ("", "0")


def _native_min_level() -> int:
    try:
        return min(max(int(os.environ.get(_LEVEL, "0")), 0), 3)
    except ValueError:
        return 0


def _set_absl_min_level(tf_dir: str, level: int) -> bool:
    """Abseil's minimum log level inside TensorFlow's framework library; False if that
    library or symbol is not there. Loading it first is harmless: TensorFlow's own
    modules link the same file, which the loader then shares."""
    import ctypes

    for name in _FRAMEWORK:
        try:
            lib = ctypes.CDLL(os.path.join(tf_dir, name))
        except OSError:
            continue
        for sym in _SET_MIN_LOG_LEVEL:
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.argtypes, fn.restype = [ctypes.c_int], None
                fn(level)
                return True
    return False


def _quiet_python_loggers() -> None:
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def _quiet(tf_dir: str | None) -> None:
    _quiet_python_loggers()
    if tf_dir is not None:
        _set_absl_min_level(tf_dir, _native_min_level())


class _BeforeTensorFlow:
    """A sys.meta_path finder that runs `_quiet` once, when `tensorflow` is about to be
    imported, and finds nothing itself."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            _remove_finder()
            try:
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                locations = list(spec.submodule_search_locations or []) if spec else []
                _quiet(locations[0] if locations else None)
            except Exception:  # noqa: BLE001 - quieter logs must never cost the import
                pass
        return None


_finder = _BeforeTensorFlow()


def _remove_finder() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def quiet_by_default() -> None:
    """Silence TensorFlow unless VIDACTION_TF_LOGS asks for its lines. A
    TF_CPP_MIN_LOG_LEVEL the user set is kept (and applied to abseil's lines as well)."""
    global _we_set_level, _we_set_opencv
    if tf_logs_wanted():
        return
    if _LEVEL not in os.environ:
        os.environ[_LEVEL] = "3"
        _we_set_level = True
    if _OPENCV not in os.environ:  # read when cv2 loads; errors still come as our lines
        os.environ[_OPENCV] = "ERROR"
        _we_set_opencv = True
    if "cv2" in sys.modules:
        _opencv_level("ERROR")
    tf = sys.modules.get("tensorflow")
    if tf is not None:  # imported before vidaction: quiet what can still be quieted
        _quiet(os.path.dirname(tf.__file__) if getattr(tf, "__file__", None) else None)
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def show_tf_logs() -> None:
    """Undo `quiet_by_default` (`vidaction --verbose`); only whole before TensorFlow is
    imported. Child processes inherit the choice through VIDACTION_TF_LOGS."""
    global _we_set_level, _we_set_opencv
    os.environ[ENV] = "1"
    _remove_finder()
    if _we_set_level:
        os.environ.pop(_LEVEL, None)
        _we_set_level = False
    if _we_set_opencv:
        os.environ.pop(_OPENCV, None)
        _we_set_opencv = False
        if "cv2" in sys.modules:
            _opencv_level("INFO")


def _opencv_level(name: str) -> None:
    """OpenCV already loaded: its environment variable is read; set the level directly."""
    try:
        log = sys.modules["cv2"].utils.logging
        log.setLogLevel(getattr(log, f"LOG_LEVEL_{name}"))
    except Exception:  # noqa: BLE001 - an OpenCV without utils.logging: the lines show
        pass


@contextmanager
def quiet_native_stderr():
    """LiteRT's C++ logger prints "INFO: Created TensorFlow Lite XNNPACK delegate" on every
    interpreter; keep it off the CLI's stderr (errors still arrive as Python exceptions)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (captured, closed): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
