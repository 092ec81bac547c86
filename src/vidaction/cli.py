"""Command line: runs each verb by calling the stages, and turns their errors into one line.
The flags themselves are in `vidaction.cli_parser`. Heavy imports stay inside commands so
`vidaction --help` answers at once."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from vidaction.cli_parser import build_parser
from vidaction.errors import UserError, VidactionError
from vidaction.progress import force_bars, warning_hook


def _cmd_data_check(args: argparse.Namespace) -> int:
    import json

    from vidaction.data.check import check_dataset, format_report
    from vidaction.data.sampling import SamplingConfig

    report = check_dataset(Path(args.root), val_fraction=args.val_fraction,
                           test_fraction=args.test_fraction, seed=args.seed,
                           quick=args.quick, full=args.full, progress=not args.no_progress,
                           sampling=SamplingConfig(args.frames, args.frame_step))
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(format_report(report, verbose=args.verbose))
    return 1 if report.bad else 0


def _cmd_data_builtin(args: argparse.Namespace) -> int:
    from vidaction.data.builtin import BUILTIN_CLASSES, render_dataset

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    unknown = sorted(set(classes or []) - set(BUILTIN_CLASSES))
    if unknown:
        raise UserError(f"unknown built-in class(es) {', '.join(unknown)}; "
                        f"choose from {', '.join(BUILTIN_CLASSES)}")
    try:
        out = render_dataset(Path(args.out), classes=classes,
                             clips_per_class=args.clips_per_class, size=args.size,
                             seconds=args.seconds, fps=args.fps, seed=args.seed,
                             force=args.force, workers=args.workers,
                             progress=not args.no_progress, variation=args.variation)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(f"built-in dataset in {out} (classes.txt, manifest.json, <split>/<class>/*.mp4)")
    return 0


def _cmd_data_preview(args: argparse.Namespace) -> int:
    from vidaction.data.builtin import preview_dataset

    root = Path(args.root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    from vidaction.io.writer import refuse_existing

    refuse_existing([args.out], args.force)  # the one overwrite rule
    skipped: list = []  # each named in a warning as it is met
    try:
        out = preview_dataset(root, Path(args.out), clips_per_class=args.clips_per_class,
                              frames_per_clip=args.frames, skipped=skipped)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(f"contact sheet written to {out}"
          + (f" ({len(skipped)} unreadable file(s) left out)" if skipped else ""))
    return 1 if skipped else 0


def _cmd_data_ucf101(args: argparse.Namespace) -> int:
    from vidaction.data.ucf101 import DEFAULT_URL, fetch_subset

    classes = [c for c in args.classes.split(",") if c.strip()] if args.classes else None
    with warnings.catch_warnings():  # the group-leak warning, as one line
        warnings.showwarning = warning_hook
        r = fetch_subset(Path(args.out), url=args.url or DEFAULT_URL, classes=classes,
                         first=args.first, preset=args.preset,
                         official_split=args.official_split, split=args.split,
                         seed=args.seed, allow_group_leak=args.allow_group_leak,
                         split_lists=args.split_lists, val_groups=args.val_groups,
                         progress=not args.no_progress)
    for line in r.refused:
        print(f"refused member: {line}", file=sys.stderr)
    for line in r.notes:
        print(f"note: {line}", file=sys.stderr)
    counts = r.counts()
    print(f"UCF101 subset in {r.out}: {len(r.classes)} classes, "
          + ", ".join(f"{s} {sum(counts[s].values())}" for s in counts) + " clips; "
          f"fetched {r.fetched} ({r.bytes_fetched / 1e6:.1f} MB), kept {r.skipped}")
    return 0


_LAUNCH_FLAGS = ("local_workers", "strategy", "workers", "task_index")


def _train_argv(args: argparse.Namespace) -> list[str]:
    """The train flags typed, as a command line again, less the launch ones: what each
    --local-workers worker runs."""
    argv = []
    for action in args.train_actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in _LAUNCH_FLAGS or value is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            argv += [action.option_strings[0]] if value else []
        elif not isinstance(action, argparse._HelpAction):
            argv += [action.option_strings[0], str(value)]
    return argv


def _cmd_train(args: argparse.Namespace) -> int:
    if not args.resume and not args.data:
        raise UserError("--data is required (unless --resume)")
    from vidaction.train import distribute

    if args.local_workers is not None and (args.workers or args.task_index is not None):
        raise UserError("--local-workers starts its own cluster: leave out --workers and "
                        "--task-index")
    if (args.workers is None) != (args.task_index is None):
        raise UserError("--workers and --task-index go together")
    if args.workers is not None:
        os.environ["TF_CONFIG"] = distribute.tf_config_for(args.workers, args.task_index)
        args.strategy = args.strategy or "multi-worker"
    strategy = args.strategy or "auto"
    if args.local_workers is not None and strategy not in ("auto", "multi-worker"):
        raise UserError(f"--local-workers runs --strategy multi-worker, not {strategy}")
    from vidaction.train.folder import check_start

    # refusals from the flags and folders alone, before TensorFlow loads (seconds); a
    # non-chief worker leaves the run folder to the chief
    if not distribute.non_chief(strategy):
        check_start(args.out, args.data, model=args.model, resume=args.resume,
                    force=args.force)
    if args.local_workers is not None:
        return distribute.launch_local(_train_argv(args), args.local_workers)
    from vidaction.train import TrainConfig, train

    # Only the flags typed (their argparse default is None): --resume keeps the run's
    # value of every other one, a fresh run takes TrainConfig's defaults.
    typed = {name: getattr(args, name) for name in (
        "data", "model", "epochs", "batch_size", "frames", "frame_step", "fps", "size", "lr",
        "unfreeze_top", "pretrained", "weights_url", "patience", "frame_backbone", "seed",
        "clip_cache", "cache_samples", "feature_cache", "precision", "conv_impl",
        "val_fraction", "test_fraction", "pose_model", "pose_weights", "short")}
    typed = {k: v for k, v in typed.items() if v is not None}
    if "model" in typed:  # any case; an unknown name gets the nearest one and the list
        from vidaction.models.factory import resolve_model_name

        typed["model"] = resolve_model_name(typed["model"])
    if args.train_backbone:
        typed["freeze_backbone"] = False
    if args.augment:
        typed["augment"] = True
    cfg = TrainConfig(**{"data": "", **typed, "out": args.out})
    train(cfg, resume=args.resume, force=args.force, progress=not args.no_progress,
          given=set(typed), strategy=strategy, cluster_timeout=args.cluster_timeout)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from vidaction.infer.predict import predict_command

    return predict_command(
        args.run, args.inputs, top_k=args.top_k, clips=args.clips, as_json=args.json,
        overlay=args.overlay, timeline=args.timeline, window=args.window, stride=args.stride,
        frame_step=args.frame_step, smooth=args.smooth, out_prefix=args.out,
        progress=not args.no_progress, fps=args.fps, weights=args.weights,
        force=args.force, short=args.short)


def _cmd_stream(args: argparse.Namespace) -> int:
    from vidaction.infer.stream import stream_command

    if args.every_deprecated is not None:
        warnings.warn("--every is deprecated; use --frame-step (the same flag as predict's)",
                      stacklevel=1)
    return stream_command(
        args.run, args.video, args.source,
        frame_step=args.frame_step if args.frame_step is not None else args.every_deprecated,
        reset_every=args.reset_every, overlay=args.overlay, force=args.force,
        reconnects=args.reconnects, weights=args.weights, fps=args.fps,
        progress=not args.no_progress)


def _cmd_export(args: argparse.Namespace) -> int:
    from vidaction.export import export_run

    out = export_run(args.run, args.format, args.out, quantize=args.quantize, force=args.force,
                     data=args.data, progress=not args.no_progress)
    side = " (labels and config inside)" if args.format == "savedmodel" else \
        f" (+ {out.with_suffix('.labels.txt').name}, {out.with_suffix('.json').name})"
    print(f"exported {args.format}" + (f" {args.quantize}" if args.quantize != "none" else "")
          + f" to {out}{side}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from vidaction.evaluate import evaluate_run, format_summary

    with warnings.catch_warnings():  # "never predicted" and the like, as one line each
        warnings.showwarning = warning_hook
        metrics = evaluate_run(args.run, data=args.data, split=args.split, clips=args.clips,
                               allow_seen=args.allow_seen, out=args.out, force=args.force,
                               progress=not args.no_progress, frame_step=args.frame_step,
                               fps=args.fps, short=args.short)
    print(format_summary(metrics))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from vidaction.models import format_model_table

    print(format_model_table(with_params=args.params))
    return 0


def _cmd_pose(args: argparse.Namespace) -> int:
    from vidaction.infer.pose import pose_command

    return pose_command(args.inputs, model=args.model, weights=args.weights,
                        overlay=args.overlay, as_json=args.json, out=args.out,
                        track=not args.no_track, progress=not args.no_progress,
                        force=args.force)


def _cmd_demo(args: argparse.Namespace) -> int:
    from vidaction.demo import run_demo

    rc = run_demo(Path(args.out), force=args.force, progress=not args.no_progress)
    if args.pose:  # the skeleton model too (needs the MoveNet weights: fetched or given)
        from vidaction.demo import run_pose_demo

        rc = max(rc, run_pose_demo(Path(args.out), force=args.force,
                                   progress=not args.no_progress, weights=args.pose_weights))
    return rc


def _one_line(e: BaseException) -> str:
    """An OSError as "FILE: reason" (a write names its file: see io.writer.WriteError),
    not "[Errno 28] No space left on device"."""
    if isinstance(e, VidactionError) or not isinstance(e, OSError):
        return str(e)
    from vidaction.io.writer import os_reason  # also numpy's "N requested and M written"

    if e.filename is not None:
        to = f" -> {e.filename2}" if e.filename2 is not None else ""
        return f"{e.filename}{to}: {os_reason(e)}"
    return os_reason(e)


COMMANDS = {
    "data_check": _cmd_data_check, "data_builtin": _cmd_data_builtin,
    "data_preview": _cmd_data_preview, "data_ucf101": _cmd_data_ucf101,
    "train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict,
    "stream": _cmd_stream, "export": _cmd_export, "models": _cmd_models, "pose": _cmd_pose,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tf_logs:  # commands import TensorFlow later, inside func
        from vidaction.tflogs import show_tf_logs

        show_tf_logs()
    force_bars(True if args.progress else None)  # None: bars only on a terminal
    # every command's warnings (a cache that cannot be written, a CSV's duplicate rows) as
    # one line, not Python's "file:line: UserWarning:" and the source line, printed above
    # any progress bar (tqdm.write), never glued onto it
    warnings.showwarning = warning_hook
    try:
        return int(COMMANDS[args.func](args) or 0)
    except BrokenPipeError:  # `vidaction ... | head`: the reader left, not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush quiet
        return 0
    except (VidactionError, OSError) as e:
        print(f"vidaction: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:
        from vidaction.io.writer import error_path, is_write_failure, os_reason

        if not is_write_failure(e):  # TensorFlow's own file errors (a full disk) only
            raise
        where = error_path(e)
        print(f"vidaction: error: {where + ': ' if where else ''}{os_reason(e)}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vidaction: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
