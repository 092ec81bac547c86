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
