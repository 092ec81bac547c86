"""--model in any case; an unknown name gets the nearest one and the list."""

import pytest

from vidaction.errors import UserError
from vidaction.names import resolve_name

KNOWN = ["movinet-a0", "movinet-a0-stream", "rgb-diff", "cnn-rnn"]


def test_any_case_gives_the_listed_spelling():
    assert resolve_name("MoViNet-A0-Stream", KNOWN) == "movinet-a0-stream"
    assert resolve_name(" RGB-DIFF ", KNOWN) == "rgb-diff"


def test_unknown_name_suggests_the_closest_and_lists_all():
    with pytest.raises(UserError) as e:
        resolve_name("movinet-a0-strem", KNOWN)
    msg = str(e.value)
    assert "unknown model 'movinet-a0-strem'; did you mean movinet-a0-stream?" in msg
    assert msg.endswith("known: movinet-a0, movinet-a0-stream, rgb-diff, cnn-rnn")
    with pytest.raises(UserError, match=r"unknown model 'zzz'; known: movinet-a0,"):
        resolve_name("zzz", KNOWN)


def test_cli_train_refuses_an_unknown_model_with_a_suggestion(tmp_path, capsys):
    from vidaction.cli import main

    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--model", "movinet-a0-strem"]) == 1
    assert "did you mean movinet-a0-stream?" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
