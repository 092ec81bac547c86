"""The command line's grammar: every verb, its flags, their types, defaults and examples.

Kept apart from `vidaction.cli`, which runs the commands: what can be typed is one idea,
what each verb does is another. Nothing here imports more than argparse, so `--help`
answers at once. Each verb's parser names its command (`func`); `cli.COMMANDS` runs it.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from vidaction import __version__


def _finite(v: str) -> float:
    """A float flag: nan and inf parse as floats but never make sense (a --lr of nan trains
    to NaN and would still save a model)."""
    import math

    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {v!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {v}")
    return x


def _positive_float(v: str) -> float:
    x = _finite(v)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {v}")
    return x


def _non_negative(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {v!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {v}")
    return n


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:  # argparse would say "invalid _positive value"
        raise argparse.ArgumentTypeError(f"invalid whole number: {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return n


class Parser(argparse.ArgumentParser):
    """Every argument error as one line, exit status 2: the verb's own prog, argparse's
    reason and, where a near name exists, the name meant (a verb, a choice, a flag); else
    where the flags are listed. The usage block above it hid the reason (20 lines)."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # one line, whatever argparse joined
        if "(did you mean " not in message and "(choose from " not in message:
            what = "commands" if _subcommands(self) else "flags"
            message += f" ({self.prog} --help lists the {what})"
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _check_value(self, action: argparse.Action, value) -> None:
        """An invalid choice (a verb, `--short lop`) names the nearest one instead of
        listing them all."""
        from vidaction.names import did_you_mean

        choices = action.choices
        if choices is not None and not isinstance(choices, str) and value not in choices:
            hint = did_you_mean(str(value), map(str, choices))
            if hint:
                raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint}")
        super()._check_value(action, value)

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - argparse's
        """Arguments no parser took are reported by the verb they were typed to (argparse
        has the top parser report them), with the verb's flag meant."""
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            chain = _selected(self, ns)
            owner = chain[-1]
            owner.error(f"unrecognized arguments: {' '.join(extras)}"
                        + _unrecognized_hint(extras, chain))
        return ns


def _subcommands(p: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)


def _selected(p: argparse.ArgumentParser, ns: argparse.Namespace) -> list:
    """The parsers a command line went through: vidaction, vidaction data, ... check."""
    chain = [p]
    while (sub := _subcommands(chain[-1])) is not None:
        child = sub.choices.get(getattr(ns, sub.dest, None) or "")
        if child is None:
            break
        chain.append(child)
    return chain


def _unrecognized_hint(extras: list[str], chain: list) -> str:
    """" (did you mean --model?)" for the first unknown flag near one of the verb's own;
    a flag of a parser above it (`train ... --progress`) is shown where it goes."""
    from vidaction.names import did_you_mean

    owner = chain[-1]
    own = [s for a in owner._actions for s in a.option_strings if s.startswith("--")]
    for token in extras:
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0]
        for above in chain[:-1]:
            if flag in above._option_string_actions:
                verb = owner.prog[len(above.prog):].strip()
                return f" (did you mean {above.prog} {flag} {verb} ...?)"
        if flag in own:  # typed twice over, after `--`: nothing nearer to offer
            continue
        hint = did_you_mean(flag, own)
        if hint:
            return hint
    return ""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="vidaction",
        description="Human action recognition in video: train, evaluate honestly, predict.",
    )
    p.add_argument("--version", action="version", version=f"vidaction {__version__}")
    p.add_argument("--verbose", dest="tf_logs", action="store_true",
                   help="also show TensorFlow's own log lines, off by default (as does "
                        "VIDACTION_TF_LOGS=1)")
    p.add_argument("--progress", action="store_true",
                   help="draw progress bars even when stderr is not a terminal (by default "
                        "a log or pipe gets one line per finished step instead)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True,
                           parser_class=Parser)

    data = sub.add_parser("data", help="datasets: check a folder, render the built-in set",
                          description="Work with datasets.")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True,
                               parser_class=Parser)
    chk = dsub.add_parser(
        "check", help="count clips per class and split; list unreadable files",
        description="Count clips per class and split and list every unreadable file with "
                    "its reason. Each file's frames that training and evaluation read are "
                    "decoded, the way they read them; --full decodes every frame. Exit "
                    "status 1 if any file is bad.")
    chk.add_argument("root", help="dataset folder: ROOT/<split>/<class>/, ROOT/<class>/, "
                                  "or videos with train.csv/test.csv")
    chk.add_argument("--val-fraction", type=_finite, default=0.2,
                     help="for ROOT/<class>/ layouts: share of each class for validation")
    chk.add_argument("--test-fraction", type=_finite, default=0.2,
                     help="for ROOT/<class>/ layouts: share of each class for test")
    chk.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    depth = chk.add_mutually_exclusive_group()
    depth.add_argument("--quick", action="store_true",
                       help="only open each file (header and index); decode nothing")
    depth.add_argument("--full", action="store_true",
                       help="also decode every frame in order and compare the count with "
                            "the index (slow)")
    chk.add_argument("--frames", type=_positive, default=8,
                     help="frames per clip of the runs to check for (default: %(default)s)")
    chk.add_argument("--frame-step", type=_positive, default=15,
                     help="frames between samples (default: %(default)s)")
    chk.add_argument("--verbose", action="store_true",
                     help="per file: frames, fps, size, codec, reading mode, ok or why not")
    chk.add_argument("--json", action="store_true",
                     help="print the report as one JSON object (files and summary) instead")
    chk.add_argument("--no-progress", action="store_true", help="no progress bar")
    chk.set_defaults(func="data_check")

    bi = dsub.add_parser(
        "builtin", help="render the built-in dataset of people performing actions",
        description="Render clips of an articulated figure performing actions into "
                    "OUT/<split>/<class>/ (H.264 MP4), with classes.txt, manifest.json and "
                    "per-frame joint positions. Actors never cross splits.")
    bi.add_argument("--out", required=True, metavar="DIR",
                    help="dataset folder to render into (created)")
    bi.add_argument("--classes", help="comma-separated subset of the built-in classes "
                                      "(default: all of them)")
    bi.add_argument("--clips-per-class", type=_positive, default=30, metavar="N",
                    help="clips rendered per class, over all splits")
    bi.add_argument("--size", type=_positive, default=128, help="frame side in pixels")
    bi.add_argument("--seconds", type=_positive_float, default=3.0, help="clip length")
    bi.add_argument("--fps", type=_positive, default=25, help="frames per second of the clips")
    bi.add_argument("--seed", type=int, default=0,
                    help="seed of actors, motions and scenes (same seed, same dataset)")
    bi.add_argument("--workers", type=_positive, default=1, help="rendering processes")
    bi.add_argument("--variation", choices=["full", "low", "pose"], default="full",
                    help="low: plain backgrounds, steady camera, no distractors or occluders "
                         "(quick from-scratch demos); full: every nuisance (default); pose: "
                         "full, with larger figures that move as real people do, for skeleton "
                         "models (render it at 256 px or more)")
    bi.add_argument("--force", action="store_true",
                    help="replace a different dataset already in --out")
    bi.add_argument("--no-progress", action="store_true", help="no progress bar")
    bi.set_defaults(func="data_builtin")

    pv = dsub.add_parser("preview", help="contact sheet: a few frames of a few clips per class",
                         description="Tile a few frames of a few clips per class into one PNG.")
    pv.add_argument("root", help="dataset folder")
    pv.add_argument("--out", required=True, metavar="PNG", help="contact sheet image to write")
    pv.add_argument("--clips-per-class", type=_positive, default=3, metavar="N",
                    help="clips shown per class")
    pv.add_argument("--frames", type=_positive, default=4, help="frames per clip")
    pv.add_argument("--force", action="store_true", help="replace an existing PNG")
    pv.set_defaults(func="data_preview")

    uc = dsub.add_parser(
        "ucf101", help="fetch a UCF101 subset by HTTP range requests",
        description="Fetch chosen UCF101 clips into OUT/<split>/<class>/ with classes.txt and "
                    "manifest.json, pulling only their bytes out of the remote zip. Splits "
                    "keep each group (actor, scene) in one split.")
    uc.add_argument("--out", required=True, metavar="DIR",
                    help="dataset folder to fetch the clips into (created)")
    uc.add_argument("--url", default=None,
                    help="zip URL (must serve range requests) or local zip path "
                         "(default: the public UCF101 archive)")
    ucc = uc.add_mutually_exclusive_group()
    ucc.add_argument("--classes", help="comma-separated class names (any case)")
    ucc.add_argument("--first", type=_positive, metavar="N",
                     help="the first N classes alphabetically")
    ucc.add_argument("--preset", choices=["seed25"], help="seed25: the reference's 25 classes")
    uc.add_argument("--official-split", type=int, choices=[1, 2, 3],
                    help="official protocol: test = groups 1-7 / 8-14 / 15-21 (default 1)")
    uc.add_argument("--split", metavar="SPEC",
                    help="clips per class, group-aware, e.g. train=30,val=10,test=10")
    uc.add_argument("--seed", type=int, default=0, help="seed of the split")
    uc.add_argument("--val-groups", type=int, metavar="N",
                    help="official split: groups carved out of train for validation")
    uc.add_argument("--allow-group-leak", action="store_true",
                    help="with --split: the reference's per-class random split (inflated scores)")
    uc.add_argument("--split-lists", metavar="PATH_OR_URL",
                    help="UCF101TrainTestSplits-RecognitionTask.zip or its folder; checked "
                         "against the group rule")
    uc.add_argument("--no-progress", action="store_true", help="no progress bar")
    uc.set_defaults(func="data_ucf101")

    tr = sub.add_parser(
        "train", help="train a classifier on a dataset folder",
        description="Train on the train split, validate on the val split (never on test), "
                    "keep the best epoch, log to CSV and TensorBoard, save the model in OUT. "
                    "A killed run continues with --resume.")
    tr.add_argument("--data", help="dataset folder (any layout `data check` accepts)")
    tr.add_argument("--out", required=True, metavar="RUN",
                    help="run folder to create: model, config.json, classes.txt, logs")
    # No argparse defaults below: TrainConfig has them, and --resume must tell a flag the
    # user typed from one left out (left out: the run's own value).
    tr.add_argument("--model", help="model name, see `vidaction models` (default: "
                                    "movinet-a0-stream)")
    tr.add_argument("--epochs", type=_positive, help="epochs in all (default: 10; with "
                                                     "--resume: the run's)")
    tr.add_argument("--batch-size", type=_positive,
                    help="clips per step, the GLOBAL batch: with a strategy it is split "
                         "over the replicas (default: 8); the learning rate is not "
                         "rescaled (linear rule: k times the batch, try k times --lr)")
    tr.add_argument("--frames", type=_positive, help="frames per clip (model default)")
    spacing = tr.add_mutually_exclusive_group()
    spacing.add_argument("--frame-step", type=_positive,
                         help="frames between samples (default: 15; a MoViNet on "
                              "Kinetics-600 weights samples at --fps 5, their own rate)")
    spacing.add_argument("--fps", type=_positive_float, metavar="F",
                         help="sample F frames per second of video instead, whatever each "
                              "video's rate: its frame step is round(video fps / F), at "
                              "least 1 (30 fps at --fps 5: every 6th frame; 24 fps: every "
                              "5th); recorded in the run's config")
    tr.add_argument("--short", choices=["loop", "pad", "stretch"],
                    help="a video shorter than one clip spans ((frames - 1) x frame step + "
                         "1): loop it from its first frame (MMAction2's way), pad it with "
                         "black frames, or stretch the clip over the whole video (default: "
                         "loop, the best of the three on the built-in set, see "
                         "bench/short_clips.py)")
    tr.add_argument("--size", type=_positive, help="frame side in pixels (model default)")
    tr.add_argument("--lr", type=_positive_float,
                    help="learning rate (Adam; default 1e-3, 1e-4 for r2plus1d)")
    tr.add_argument("--pretrained", help="'auto' (download), 'none', or a local tarball or "
                                         "checkpoint (MoViNet) or .h5 file (frame CNN) "
                                         "(default: auto where weights exist)")
    tr.add_argument("--weights-url", help="where --pretrained auto downloads from")
    tune = tr.add_mutually_exclusive_group()
    tune.add_argument("--train-backbone", action="store_true",
                      help="train the whole backbone with the head, at --lr")
    tune.add_argument("--unfreeze-top", type=_non_negative, metavar="N",
                      help="fine-tune the last N backbone blocks at --lr / 10 (batch norm "
                           "stays frozen); the rest stays frozen (default: 0, none)")
    tr.add_argument("--patience", type=_positive,
                    help="epochs without a better val_loss before stopping (default 3; 2 for "
                         "frame-baseline)")
    tr.add_argument("--frame-backbone", choices=["inceptionv3", "mobilenetv2", "efficientnetb0"],
                    help="per-frame ImageNet CNN of cnn-rnn (default inceptionv3, frames of "
                         "75 px or more) and frame-baseline (default efficientnetb0)")
    tr.add_argument("--augment", action="store_true",
                    help="flip, random resized crop, brightness/contrast and time jitter, "
                         "the same for every frame of a clip (no flips with left/right classes)")
    tr.add_argument("--seed", type=int, help="seed of weights, shuffling and a drawn split "
                                             "(default: 0)")
    tr.add_argument("--val-fraction", type=_finite, metavar="F",
                    help="ROOT/<class>/ layouts, or a dataset without a val split: share of "
                         "each class for validation, as `data check --val-fraction` shows "
                         "it (default: 0.2)")
    tr.add_argument("--test-fraction", type=_finite, metavar="F",
                    help="ROOT/<class>/ layouts: share of each class held out for test, as "
                         "`data check --test-fraction` (default: 0.2)")
    tr.add_argument("--clip-cache", help="folder to keep decoded clips in between epochs")
    tr.add_argument("--pose-model", choices=["movenet", "blazepose", "blazepose-full"],
                    help="skeleton models (pose-*): the pose estimator whose keypoints they "
                         "learn from (default movenet; computed once per video and cached)")
    tr.add_argument("--pose-weights", metavar="PATH",
                    help="skeleton models: the estimator's weights file (default: fetched "
                         "from the official location and cached)")
    tr.add_argument("--cache-samples", type=int, metavar="K",
                    help="frozen backbone without --augment: compute backbone features once "
                         "for K clips per video (at most --epochs) and train the head on "
                         "them, one clip per video per epoch in turn (default 4; 0: off)")
    tr.add_argument("--feature-cache", help="folder for those features "
                                            "(default: $VIDACTION_CACHE/features)")
    tr.add_argument("--precision",
                    choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                    help="auto (the default): mixed_float16 when a GPU is present, else "
                         "float32")
    tr.add_argument("--conv-impl", choices=["fast", "reference"],
                    help="MoViNet base: run the 3-D convolutions as exact sums of 2-D ones "
                         "(fast, the default, TFLite-convertible) or as the official Conv3D "
                         "(reference)")
    tr.add_argument("--resume", action="store_true",
                    help="continue the run in --out as it was configured: flags left out "
                         "keep the run's values; --epochs, --patience, --batch-size, "
                         "--data and the cache folders may change, the rest must agree")
    tr.add_argument("--force", action="store_true",
                    help="replace a vidaction run in --out (never any other folder); the "
                         "old run stays until the new one is complete")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    dist = tr.add_argument_group(
        "distributed training (tf.distribute; see docs/distributed.md)",
        "--batch-size stays the global batch. Clips are sharded per worker before decoding "
        "(each decodes only its share of every batch). Only the chief (worker 0) writes "
        "--out; the others keep their checkpoints in temporary folders they remove. A "
        "killed worker stops the job; relaunch every worker with --resume.")
    dist.add_argument("--strategy", choices=["auto", "none", "mirrored", "multi-worker"],
                      help="auto (the default): multi-worker when TF_CONFIG names several "
                           "workers, mirrored with several GPUs, else none; multi-worker "
                           "reads the cluster from TF_CONFIG")
    dist.add_argument("--workers", metavar="HOST:PORT,...",
                      help="the cluster, every worker in the same order (writes TF_CONFIG; "
                           "worker 0 is the chief); with --task-index")
    dist.add_argument("--task-index", type=int, metavar="I",
                      help="this machine's place in --workers (0-based)")
    dist.add_argument("--local-workers", type=_positive, metavar="N",
                      help="start N workers on 127.0.0.1 with free ports and the cores "
                           "shared out; shows worker 0's progress; fails as a whole if one "
                           "worker fails")
    dist.add_argument("--cluster-timeout", type=_positive_float, metavar="SECONDS",
                      help="how long a worker waits for the others at the start (default "
                           "300); then one line and exit 1")
    tr.set_defaults(func="train", train_actions=tr._actions)

    ev = sub.add_parser(
        "evaluate", help="score a trained run on its test split; metrics, pictures, report",
        description="Score every video of a held-out split with K evenly spaced clips (their "
                    "softmax probabilities averaged) and write metrics.json, predictions.csv, "
                    "confusion_matrix.png, curves.png and report.html to RUN/eval/<split>/. "
                    "Unreadable videos are skipped and listed. The same run gives the same "
                    "numbers every time.")
    ev.add_argument("run", help="run folder (from `vidaction train`)")
    ev.add_argument("--data", help="dataset folder (default: the one the run trained on)")
    ev.add_argument("--split", default="test", choices=["test", "val", "train"],
                    help="split to score (default: %(default)s; val and train need "
                         "--allow-seen)")
    ev.add_argument("--clips", type=_positive, default=3, metavar="K",
                    help="evenly spaced clips per video (default: %(default)s; 1: the "
                         "centre clip)")
    ev_spacing = ev.add_mutually_exclusive_group()
    ev_spacing.add_argument("--frame-step", type=_positive, metavar="N",
                            help="frames between samples (default: the run's spacing)")
    ev_spacing.add_argument("--fps", type=_positive_float, metavar="F",
                            help="sample F frames per second of each video instead "
                                 "(frame step round(video fps / F))")
    ev.add_argument("--short", choices=["loop", "pad", "stretch"],
                    help="a video shorter than one clip: loop, pad with black or stretch "
                         "(default: the run's own, as it trained)")
    ev.add_argument("--allow-seen", action="store_true",
                    help="score a split the run trained or validated on (inflated numbers)")
    ev.add_argument("--out", metavar="DIR",
                    help="folder for metrics.json, predictions.csv, the plots and report.html "
                         "(default: RUN/eval/<split>)")
    ev.add_argument("--force", action="store_true",
                    help="replace an evaluation already in the output folder")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.set_defaults(func="evaluate")

    pr = sub.add_parser(
        "predict", help="top-k labels for videos, GIFs, folders or globs; long-video timeline",
        description="Print the top-k labels with probabilities for each input (K evenly "
                    "spaced clips averaged). A bad input gets one error line; the others are "
                    "still predicted; the exit status is 1 if any failed. --timeline labels "
                    "consecutive windows of a long video instead.")
    pr.add_argument("run", help="run folder (from `vidaction train`), an exported .tflite, "
                                "or kinetics600: the official Kinetics-600 MoViNet, no "
                                "training needed (fetched on first use)")
    pr.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="video or GIF file, folder (searched recursively) or glob pattern")
    pr.add_argument("--top-k", type=_positive, default=5, metavar="K",
                    help="labels printed per input, most probable first")
    pr.add_argument("--clips", type=_positive, default=3, metavar="K",
                    help="evenly spaced clips averaged per video (default: %(default)s, "
                         "as evaluate)")
    pr.add_argument("--json", action="store_true", help="one JSON object per input per line")
    pr.add_argument("--overlay", metavar="OUT",
                    help="write the video with its label drawn on every frame (.mp4 or .gif); "
                         "several inputs give OUT_<name>.mp4 each")
    pr.add_argument("--timeline", action="store_true",
                    help="label consecutive windows of the video (long videos)")
    pr.add_argument("--window", type=_positive, metavar="N",
                    help="frames per window (default: the run's frames per clip)")
    pr.add_argument("--stride", type=_positive, metavar="N",
                    help="sampled frames between window starts (default: --window, "
                         "no overlap)")
    pr_spacing = pr.add_mutually_exclusive_group()
    pr_spacing.add_argument("--frame-step", type=_positive, metavar="N",
                            help="take every N-th frame into windows (default: the run's "
                                 "frame step; 1: consecutive frames)")
    pr_spacing.add_argument("--fps", type=_positive_float, metavar="F",
                            help="sample clips and windows at F frames per second of each "
                                 "video (frame step round(video fps / F); default: the run's "
                                 "spacing, 5 fps for kinetics600)")
    pr.add_argument("--short", choices=["loop", "pad", "stretch"],
                    help="a video shorter than one clip: loop, pad with black or stretch; "
                         "each such video gets a warning and \"padded\": true in --json "
                         "(default: the run's own, as it trained)")
    pr.add_argument("--weights", metavar="PATH",
                    help="kinetics600: a local copy of its .tflite (or the .tar.gz it is "
                         "published as), for machines without internet")
    pr.add_argument("--smooth", type=_positive, default=1, metavar="N",
                    help="moving average of probabilities over N windows")
    pr.add_argument("--out", metavar="PREFIX",
                    help="--timeline only: write PREFIX.csv/.json/.png (default: "
                         "<name>_timeline); labels go to stdout, --overlay names its own file")
    pr.add_argument("--force", action="store_true",
                    help="replace existing --overlay and timeline files (without it an "
                         "existing output is refused before anything runs, as in every "
                         "command)")
    pr.add_argument("--no-progress", action="store_true", help="no progress bars")
    pr.set_defaults(func="predict")

    st = sub.add_parser(
        "stream", help="label a video, camera or network stream frame by frame",
        description="Feed a source one frame at a time through a movinet-*-stream run (or its "
                    "exported .tflite), the causal state carried between frames, and print "
                    "the label whenever it changes. Memory stays flat however long it runs. "
                    "Exit status: 0 when the source ends, 3 when it was lost before its end "
                    "(truncated file, camera gone, network stream lost after --reconnects "
                    "tries), 1 when it cannot be opened.")
    st.add_argument("run", help="run folder of a movinet-*-stream model, its .tflite export, "
                                "or kinetics600 (the official Kinetics-600 MoViNet)")
    st.add_argument("video", nargs="?", metavar="VIDEO",
                    help="video file to stream (or give --source)")
    st.add_argument("--source",
                    help="camera index (0), URL (rtsp://, http://, ...) or video file")
    st.add_argument("--overlay", metavar="OUT",
                    help="also write the frames with the current label drawn on (.mp4 or .gif)")
    st.add_argument("--frame-step", type=_positive, metavar="N",
                    help="feed every N-th frame to the model (default: the run's frame step, "
                         "the spacing it was trained on), as predict's --frame-step")
    st.add_argument("--every", type=_positive, dest="every_deprecated",
                    help=argparse.SUPPRESS)  # the old name of --frame-step
    st.add_argument("--fps", type=_positive_float, metavar="F",
                    help="feed F frames per second of the source (one in round(source fps "
                         "/ F); default: the run's spacing, 5 fps for kinetics600)")
    st.add_argument("--weights", metavar="PATH",
                    help="kinetics600: a local copy of its .tflite (or .tar.gz)")
    st.add_argument("--reset-every", type=_non_negative, metavar="N", default=None,
                    help="clear the model state after every N frames fed to it (default: "
                         "the run's frames per clip, so the label covers about what a "
                         "training clip covered; 0: never, the label then pools everything "
                         "seen so far)")
    st.add_argument("--force", action="store_true",
                    help="replace an existing --overlay file (without it an existing output "
                         "is refused before anything runs, as in every command)")
    st.add_argument("--reconnects", type=int, default=3, metavar="N",
                    help="network sources: reopen a lost stream N times, with growing waits "
                         "(default: %(default)s)")
    st.add_argument("--no-progress", action="store_true", help="no progress bar")
    st.set_defaults(func="stream")

    ex = sub.add_parser(
        "export", help="export a run as a SavedModel or TFLite (float, dynamic, int8)",
        description="Write a run's model for serving: a TensorFlow SavedModel of the clip "
                    "model, or a TFLite file (stream MoViNets: the frame-by-frame function "
                    "with its state inputs and outputs). Labels and config go beside it; "
                    "`predict` and `stream` accept the .tflite in place of the run.")
    ex.add_argument("run", help="run folder (from `vidaction train`)")
    ex.add_argument("--format", required=True, choices=["savedmodel", "tflite"],
                    help="savedmodel: TensorFlow SavedModel folder (serving); tflite: one "
                         "LiteRT file for phones and edge devices (required, no default)")
    ex.add_argument("--quantize", default="none", choices=["none", "dynamic", "int8"],
                    help="TFLite only: float weights (none), int8 weights (dynamic), or int8 "
                         "weights and activations calibrated on training clips (int8)")
    ex.add_argument("--out", required=True, metavar="PATH",
                    help="the exported model: a folder (savedmodel) or a .tflite file")
    ex.add_argument("--data", help="int8: dataset folder to calibrate on (default: the run's)")
    ex.add_argument("--force", action="store_true", help="replace an existing PATH")
    ex.add_argument("--no-progress", action="store_true", help="no progress bars")
    ex.set_defaults(func="export")

    mo = sub.add_parser("models", help="list the model names",
                        description="Model names with input size, frames, parameters and "
                                    "whether pretrained weights exist.")
    mo.add_argument("--params", action="store_true",
                    help="also count parameters (builds every model: minutes on a CPU)")
    mo.set_defaults(func="models")

    po = sub.add_parser(
        "pose", help="human pose keypoints of every frame (MoveNet, BlazePose); skeleton overlay",
        description="Run an official pose model (LiteRT) on every frame of each video and "
                    "write DIR/<name>.keypoints.json and DIR/<name>.keypoints.npz. JSON: "
                    "format, path, model, weights_sha256, tracked, fps, width, height, frames, "
                    "joints (names, in order) and keypoints: per frame, per joint [x, y, "
                    "score], x and y in pixels of the source frame (pixel centres at "
                    "integers), score 0-1. NPZ: points float32 (frames, joints, 3) and meta "
                    "(the JSON fields but keypoints, as a string). Weights are downloaded "
                    "once from their official location and sha256-checked. Keypoints are "
                    "cached per video in $VIDACTION_CACHE/keypoints. A bad input gets one "
                    "error line; the others are still done; the exit status is 1 if any "
                    "failed.")
    po.add_argument("inputs", nargs="+", metavar="VIDEO",
                    help="video or GIF file, folder (searched recursively) or glob pattern")
    po.add_argument("--model", default="movenet",
                    choices=["movenet", "blazepose", "blazepose-full"],
                    help="movenet: MoveNet SinglePose Lightning int8, 17 COCO joints "
                         "(default); blazepose / blazepose-full: MediaPipe BlazePose lite / "
                         "full, 33 landmarks")
    po.add_argument("--weights", metavar="PATH", action="append",
                    help="local model file instead of the download (movenet: the .tflite; "
                         "blazepose: a folder with pose_detection.tflite and "
                         "pose_landmark_lite/full.tflite, or the files, --weights each)")
    po.add_argument("--overlay", metavar="OUT",
                    help="write the video with the skeleton drawn on every frame (.mp4 or "
                         ".gif; joints scoring under 0.3 left out); several inputs give "
                         "OUT_<name>.mp4 each")
    po.add_argument("--json", action="store_true",
                    help="one JSON summary per input per line (frames, mean score, per-joint "
                         "mean scores, files written)")
    po.add_argument("--out", metavar="DIR", default=".",
                    help="folder for the keypoint files (default: the current folder)")
    po.add_argument("--no-track", action="store_true",
                    help="run on the whole frame every time, instead of a crop that follows "
                         "the person from the previous frame's keypoints")
    po.add_argument("--force", action="store_true",
                    help="replace keypoint files or an overlay that already exist")
    po.add_argument("--no-progress", action="store_true", help="no progress bars")
    po.set_defaults(func="pose")

    demo = sub.add_parser("demo", help="run the whole job end to end on built-in data",
                          description="Render the built-in dataset and run every stage "
                                      "that is available on it.")
    demo.add_argument("--out", default="demo-output", metavar="DIR",
                      help="folder for everything the demo makes: data/, run/, the "
                           "evaluation and prediction GIFs (default: %(default)s)")
    demo.add_argument("--force", action="store_true", help="replace an existing demo run")
    demo.add_argument("--pose", action="store_true",
                      help="also train the skeleton model (pose-stats on MoveNet keypoints of "
                           "larger rendered figures) and draw a skeleton overlay GIF; fetches "
                           "the MoveNet weights once unless --pose-weights is given")
    demo.add_argument("--pose-weights", metavar="PATH",
                      help="--pose: a local MoveNet Lightning int8 .tflite")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func="demo")
    _teach(p)
    return p


class _Help(argparse.HelpFormatter):
    """Descriptions wrapped, epilog examples kept line by line; every flag's default is
    shown, unless its help says it already or it has none (a switch, or None: "the
    run's", "the model's")."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:  # the examples: one command per line, as typed
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text
                or any(action.default is v for v in (None, False, argparse.SUPPRESS))):
            return text
        return f"{text} (default: %(default)s)"


# `--help` ends with these: one or two command lines per verb that work as typed
EXAMPLES = {
    "vidaction": ["vidaction demo", "vidaction data builtin --out data && "
                  "vidaction train --data data --out run --model rgb-diff"],
    "vidaction data check": ["vidaction data check data", "vidaction data check ucf --full"],
    "vidaction data builtin": ["vidaction data builtin --out data",
                               "vidaction data builtin --out small --classes clap,bow "
                               "--clips-per-class 10 --variation low"],
    "vidaction data preview": ["vidaction data preview data --out sheet.png"],
    "vidaction data ucf101": ["vidaction data ucf101 --out ucf --preset seed25",
                              "vidaction data ucf101 --out ucf --first 5 "
                              "--split train=30,val=10,test=10"],
    "vidaction train": ["vidaction train --data data --out run",
                        "vidaction train --data data --out run --model rgb-diff --epochs 20"],
    "vidaction evaluate": ["vidaction evaluate run", "vidaction evaluate run --clips 1"],
    "vidaction predict": ["vidaction predict run clip.mp4 --top-k 3",
                          "vidaction predict run long.mp4 --timeline --out long"],
    "vidaction stream": ["vidaction stream run clip.mp4",
                         "vidaction stream run --source 0 --overlay live.mp4"],
    "vidaction export": ["vidaction export run --format tflite --out model.tflite",
                         "vidaction export run --format savedmodel --out saved"],
    "vidaction models": ["vidaction models"],
    "vidaction pose": ["vidaction pose clip.mp4 --overlay skeleton.mp4"],
    "vidaction demo": ["vidaction demo --out demo-output"],
}


def _parsers(p: argparse.ArgumentParser):
    yield p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for child in dict.fromkeys(a.choices.values()):
                yield from _parsers(child)


def _teach(p: argparse.ArgumentParser) -> None:
    """Every parser shows defaults and ends with its examples (subparsers do not inherit
    the top parser's formatter)."""
    for q in _parsers(p):
        q.formatter_class = _Help
        lines = EXAMPLES.get(q.prog)
        if lines and not q.epilog:
            q.epilog = "examples:\n" + "\n".join(f"  {ln}" for ln in lines)
