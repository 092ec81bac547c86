"""`--help` teaches: every flag explained, its default shown, examples per verb; and the
names that mean one thing across verbs (--frame-step, --model in any case)."""

import argparse
import dataclasses

import pytest

from vidaction import cli, cli_parser


def _all_parsers():
    return list(cli_parser._parsers(cli_parser.build_parser()))


def _options(parser):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction | argparse._HelpAction
                      | argparse._VersionAction) or a.help == argparse.SUPPRESS:
            continue
        yield a


def test_every_flag_has_help_and_shows_its_default():
    missing, no_default = [], []
    for parser in _all_parsers():
        text = parser.format_help()
        assert "usage:" in text
        fmt = parser._get_formatter()
        for a in _options(parser):
            name = f"{parser.prog} {'/'.join(a.option_strings) or a.dest}"
            if not a.help:
                missing.append(name)
                continue
            shown = fmt._expand_help(a) if hasattr(fmt, "_expand_help") else a.help
            if a.option_strings and a.default not in (None, False) and "default" not in shown:
                no_default.append(f"{name} (default {a.default!r})")
    assert not missing, "flags without help: " + ", ".join(missing)
    assert not no_default, "defaults not shown: " + ", ".join(no_default)


def test_train_flags_without_argparse_defaults_name_the_config_default():
    from vidaction.train.fit import TrainConfig

    train = next(p for p in _all_parsers() if p.prog == "vidaction train")
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    silent = [a.option_strings[0] for a in _options(train)
              if a.option_strings and fields.get(a.dest, None) not in (None, False, True,
                                                                       dataclasses.MISSING)
              and a.dest in fields and "default" not in (a.help or "")]
    assert not silent, "train flags whose default is hidden: " + ", ".join(silent)


def test_help_shows_the_hidden_defaults_the_issue_named():
    by_prog = {p.prog: p.format_help() for p in _all_parsers()}
    assert "--top-k K" in by_prog["vidaction predict"]
    for prog, flag in [("vidaction predict", "--top-k"), ("vidaction train", "--epochs"),
                       ("vidaction train", "--batch-size"), ("vidaction train", "--frame-step"),
                       ("vidaction train", "--cache-samples"),
                       ("vidaction data builtin", "--size"),
                       ("vidaction data builtin", "--clips-per-class")]:
        block = by_prog[prog].split("options:", 1)[1].split(flag, 1)[1].split("\n  -", 1)[0]
        assert "default" in block, (prog, flag, block)


def test_every_verb_ends_with_examples(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal
    for parser in _all_parsers():
        if parser.prog in ("vidaction data",):
            continue
        text = parser.format_help()
        assert "examples:\n  vidaction" in text, parser.prog
        # descriptions are wrapped (only an example line may run long)
        long = [ln for ln in text.split("examples:")[0].splitlines() if len(ln) > 100]
        assert not long, (parser.prog, long)


def test_unfreeze_top_zero_is_its_default_and_accepted():
    args = cli.build_parser().parse_args(["train", "--data", "d", "--out", "r",
                                          "--unfreeze-top", "0"])
    assert args.unfreeze_top == 0
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--out", "r", "--unfreeze-top", "-1"])


def test_stream_frame_step_and_the_deprecated_every(capsys):
    p = cli.build_parser()
    a = p.parse_args(["stream", "run", "clip.mp4", "--frame-step", "4"])
    assert (a.video, a.source, a.frame_step) == ("clip.mp4", None, 4)
    a = p.parse_args(["stream", "run", "--source", "0", "--every", "3"])
    assert (a.video, a.source, a.every_deprecated) == (None, "0", 3)
    assert "--every" not in p._subparsers._group_actions[0].choices["stream"].format_help()


def test_stream_needs_exactly_one_source(tmp_path, capsys):
    assert cli.main(["stream", str(tmp_path), "a.mp4", "--source", "0"]) == 1
    assert "not both" in capsys.readouterr().err
    assert cli.main(["stream", str(tmp_path)]) == 1


def test_every_warns_that_it_is_deprecated(tmp_path, capsys):
    cli.main(["stream", str(tmp_path / "norun"), "x.mp4", "--every", "2"])
    err = capsys.readouterr().err
    assert "vidaction: warning: --every is deprecated; use --frame-step" in err


def test_train_takes_the_split_fractions_data_check_shows():
    a = cli.build_parser().parse_args(["train", "--data", "d", "--out", "r",
                                       "--val-fraction", "0.1", "--test-fraction", "0.3"])
    assert (a.val_fraction, a.test_fraction) == (0.1, 0.3)


def test_every_verb_the_parser_knows_is_a_command_cli_runs():
    named = {p.get_default("func") for p in _all_parsers()} - {None}
    assert named == set(cli.COMMANDS)


def _refused(argv: list[str], capsys) -> str:
    """The one stderr line of an argument error (exit status 2, nothing on stdout)."""
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == 2 and not out, (argv, e.value.code, out)
    lines = err.splitlines()
    assert len(lines) == 1, (argv, err)
    return lines[0]


TRAIN = ["train", "--data", "d", "--out", "r"]


@pytest.mark.parametrize(("argv", "line"), [
    (TRAIN + ["--epochs", "-1"], "vidaction train: error: argument --epochs: must be at "
     "least 1, got -1 (vidaction train --help lists the flags)"),
    (TRAIN + ["--batch-size", "0"], "vidaction train: error: argument --batch-size: must be "
     "at least 1, got 0 (vidaction train --help lists the flags)"),
    (TRAIN + ["--lr", "abc"], "vidaction train: error: argument --lr: not a number: 'abc' "
     "(vidaction train --help lists the flags)"),
    (TRAIN + ["--epochs", "abc"], "vidaction train: error: argument --epochs: invalid whole "
     "number: 'abc' (vidaction train --help lists the flags)"),
    (["predcit", "run", "x.mp4"], "vidaction: error: argument COMMAND: invalid choice: "
     "'predcit' (did you mean predict?)"),
    (["Train", "--out", "r"], "vidaction: error: argument COMMAND: invalid choice: 'Train' "
     "(did you mean train?)"),
    (["data", "chek", "x"], "vidaction data: error: argument SUBCOMMAND: invalid choice: "
     "'chek' (did you mean check?)"),
    (["predict", "run", "x.mp4", "--short", "lop"], "vidaction predict: error: argument "
     "--short: invalid choice: 'lop' (did you mean loop?)"),
    (TRAIN + ["--modle", "rgb-diff"], "vidaction train: error: unrecognized arguments: "
     "--modle rgb-diff (did you mean --model?)"),
    (TRAIN + ["--modle=rgb-diff"], "vidaction train: error: unrecognized arguments: "
     "--modle=rgb-diff (did you mean --model?)"),
    (["data", "check", "x", "--jsno"], "vidaction data check: error: unrecognized "
     "arguments: --jsno (did you mean --json?)"),
    (TRAIN + ["--progress"], "vidaction train: error: unrecognized arguments: --progress "
     "(did you mean vidaction --progress train ...?)"),
    (TRAIN + ["extra"], "vidaction train: error: unrecognized arguments: extra (vidaction "
     "train --help lists the flags)"),
    (["train", "--data", "d"], "vidaction train: error: the following arguments are "
     "required: --out (vidaction train --help lists the flags)"),
    ([], "vidaction: error: the following arguments are required: COMMAND (vidaction "
     "--help lists the commands)"),
])
def test_an_argument_error_is_one_line_from_the_verb_it_belongs_to(argv, line, capsys):
    assert _refused(argv, capsys) == line


def test_a_verb_near_none_lists_them_all(capsys):
    line = _refused(["xyz"], capsys)
    assert line.startswith("vidaction: error: argument COMMAND: invalid choice: 'xyz' "
                           "(choose from ")
    assert "'predict'" in line and "did you mean" not in line


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["data", "check", "-h"],
                                  ["--version"]])
def test_help_and_version_still_print_in_full(argv, capsys):
    from vidaction import __version__

    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == 0 and not err
    if argv == ["--version"]:
        assert out == f"vidaction {__version__}\n"
    else:
        assert out.startswith("usage: vidaction") and len(out.splitlines()) > 10


def test_a_default_of_zero_is_shown():
    text = next(p for p in _all_parsers() if p.prog == "vidaction data builtin").format_help()
    assert "same dataset) (default: 0)" in " ".join(text.split())
