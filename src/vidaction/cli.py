"""Command line: parses flags and calls the stages. Heavy imports stay inside commands so
`vidaction --help` answers at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vidaction import __version__
from vidaction.errors import VidactionError


def _cmd_data_check(args: argparse.Namespace) -> int:
    from vidaction.data.check import check_dataset, format_report

    report = check_dataset(Path(args.root), val_fraction=args.val_fraction,
                           test_fraction=args.test_fraction, seed=args.seed,
                           quick=args.quick, progress=not args.no_progress)
    print(format_report(report))
    return 1 if report.bad else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from vidaction.demo import run_demo

    return run_demo(Path(args.out), force=args.force)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vidaction",
        description="Human action recognition in video: train, evaluate honestly, predict.",
    )
    p.add_argument("--version", action="version", version=f"vidaction {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="datasets: check a folder, render the built-in set",
                          description="Work with datasets.")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    chk = dsub.add_parser(
        "check", help="count clips per class and split; list unreadable files",
        description="Count clips per class and split and list every unreadable file with "
                    "its reason. Exit status 1 if any file is bad.")
    chk.add_argument("root", help="dataset folder: ROOT/<split>/<class>/, ROOT/<class>/, "
                                  "or videos with train.csv/test.csv")
    chk.add_argument("--val-fraction", type=float, default=0.2,
                     help="for ROOT/<class>/ layouts: share of each class for validation")
    chk.add_argument("--test-fraction", type=float, default=0.2,
                     help="for ROOT/<class>/ layouts: share of each class for test")
    chk.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    chk.add_argument("--quick", action="store_true",
                     help="only open each file; skip decoding its last frame")
    chk.add_argument("--no-progress", action="store_true", help="no progress bar")
    chk.set_defaults(func=_cmd_data_check)

    demo = sub.add_parser("demo", help="run the whole job end to end on built-in data",
                          description="Render the built-in dataset and run every stage "
                                      "that is available on it.")
    demo.add_argument("--out", default="demo-output", help="output folder (default: %(default)s)")
    demo.add_argument("--force", action="store_true", help="replace an existing demo run")
    demo.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (VidactionError, OSError) as e:
        print(f"vidaction: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vidaction: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
