import subprocess
import sys

import pytest

from vidaction import __version__
from vidaction.cli import build_parser, main


def _verbs(parser, prefix=()):
    """Every command path in the parser, e.g. ('data', 'check')."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _verbs(sub, (*prefix, name))


def test_help_lists_the_verbs(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for verb in ("data", "demo"):
        assert verb in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize("verb", list(_verbs(build_parser())), ids=" ".join)
def test_help_on_every_verb(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([*verb, "--help"])
    assert e.value.code == 0
    assert "usage: vidaction " + " ".join(verb) in capsys.readouterr().out


def test_wrong_flag_is_a_clear_error():
    r = subprocess.run([sys.executable, "-m", "vidaction.cli", "data", "check", "--bogus"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "unrecognized arguments: --bogus" in r.stderr or "required" in r.stderr
    assert "Traceback" not in r.stderr


def test_console_script_installed():
    import shutil

    exe = shutil.which("vidaction", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the vidaction console script is not installed next to this python"
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and __version__ in r.stdout


@pytest.mark.parametrize("argv", [
    ["train", "--data", "d", "--out", "r", "--lr", "nan"],
    ["train", "--data", "d", "--out", "r", "--lr", "inf"],
    ["train", "--data", "d", "--out", "r", "--lr", "-0.001"],
    ["data", "check", "d", "--val-fraction", "nan"],
    ["data", "builtin", "--out", "d", "--seconds", "inf"],
], ids=lambda a: " ".join(a[-2:]))
def test_non_finite_float_flags_are_refused_at_parsing(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if "error:" in ln]
    assert argv[-2] in line and ("finite" in line or "positive" in line)
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_train_config_refuses_a_non_finite_lr():
    from vidaction.errors import UserError
    from vidaction.train import TrainConfig

    for lr in (float("nan"), float("inf"), 0.0):
        with pytest.raises(UserError, match="--lr must be a positive finite number"):
            TrainConfig(data="d", out="r", lr=lr).validate()


def test_write_errors_are_one_line_naming_the_file(monkeypatch, capsys):
    """An OSError reaches the user as FILE: reason; so does TensorFlow's own error for a
    full disk (checkpoints, SavedModel), instead of a traceback."""
    import errno

    import tensorflow as tf

    import vidaction.cli as cli

    def boom(exc):
        def command(args):
            raise exc
        return command

    cases = [
        (OSError(errno.ENOSPC, "No space left on device", "run/log.csv"),
         "vidaction: error: run/log.csv: No space left on device"),
        (tf.errors.ResourceExhaustedError(  # as TensorFlow words it, checkpoint save
            None, None, "{{function_node __wrapped__SaveV2_dtypes_215_device_/job:localhost/"
                        "replica:0/task:0/device:CPU:0}} run/checkpoints/last/ckpt-1_temp/"
                        "part-00000-of-00001.data-00000-of-00001.tempstate1527535; No space "
                        "left on device [Op:SaveV2]"),
         "vidaction: error: run/checkpoints/last/ckpt-1: No space left on device"),
        (tf.errors.UnknownError(None, None, "Failed to rename: Read-only file system"),
         "vidaction: error: Read-only file system"),
        (OSError("20480 requested and 17376 written"),  # numpy's tofile on a full disk
         "vidaction: error: only 17376 of 20480 bytes written (no space left on device?)"),
    ]
    for exc, want in cases:
        monkeypatch.setitem(cli.COMMANDS, "models", boom(exc))
        assert main(["models"]) == 1
        assert capsys.readouterr().err.strip() == want
    monkeypatch.setitem(cli.COMMANDS, "models", boom(tf.errors.InvalidArgumentError(
        None, None, "a bug: shapes differ")))
    with pytest.raises(tf.errors.InvalidArgumentError):  # not an I/O error: the traceback
        main(["models"])
