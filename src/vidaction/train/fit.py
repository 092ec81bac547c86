"""`vidaction train`: Keras `fit` with honest validation, keep-best, logs and resume.

The validation split comes from the dataset (or is carved from train by group); the test
split never reaches this module. Everything needed to resume sits in one TensorFlow
checkpoint per epoch (model, optimizer, epoch, early-stopping state), which TensorFlow
commits by renaming its index file, so a kill at any moment loses at most the epoch in
progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

import vidaction
from vidaction.data.augment import AugmentConfig, mirror_sensitive
from vidaction.data.pipeline import SkipLog
from vidaction.data.sources import Clip, Dataset, DatasetError, load_dataset, stratified_split
from vidaction.data.split_record import FILE as SPLIT_FILE
from vidaction.data.split_record import keep_run_split, split_record
from vidaction.errors import UserError, VidactionError
from vidaction.io.writer import write_atomic
from vidaction.models.factory import (
    CONV_IMPLS,
    PRECISIONS,
    resolve_frame_backbone,
    resolve_precision,
)
from vidaction.models.integrity import checkpoint_damage
from vidaction.models.run import RunError, data_from_run, write_json
from vidaction.paths import cache_root
from vidaction.progress import bar as progress_bar
from vidaction.train.features import (
    FeatureCache,
    compute_features,
    feature_dataset,
    forward_fn,
    split_model,
    weights_fingerprint,
)
from vidaction.train.resume import (
    given_fields,
    intact_up_to,
    pick_checkpoint,
    resume_config,
    run_dataset,
    state_problem,
    warn,
    write_state,
)


@dataclass
class TrainConfig:
    data: str
    out: str
    model: str = "movinet-a0-stream"
    epochs: int = 10
    batch_size: int = 8
    frames: int | None = None  # None: the model's default
    frame_step: int = 15
    fps: float | None = None  # frames per second of video instead (per video: frame_step =
    #                           round(video_fps / fps), see SamplingConfig.at_rate)
    size: int | None = None  # None: the model's native resolution
    resize: str | None = None  # None: the model's default (letterbox; crop for cnn-rnn)
    lr: float | None = None  # None: the model's default (1e-3; 1e-4 for r2plus1d)
    freeze_backbone: bool = True
    unfreeze_top: int = 0  # fine-tune the last N backbone blocks at lr * backbone_lr_scale
    backbone_lr_scale: float = 0.1
    pretrained: str | None = None  # None: "auto" where weights exist, else "none"
    weights_url: str | None = None
    patience: int | None = None  # None: the model's default (3; 2 for frame-baseline)
    frame_backbone: str | None = None  # cnn-rnn / frame-baseline: the per-frame ImageNet CNN
    seed: int = 0
    clip_cache: str | None = None  # folder for decoded clips; None: decode every epoch
    augment: bool = False  # flip (unless the classes have a left/right pair), crop, colour,
    #                        time jitter; one draw per clip
    cache_samples: int = 4  # frozen backbone, no augment: clips per video whose backbone
    #                         features are computed once; 0 runs the backbone every epoch
    feature_cache: str | None = None  # None: $VIDACTION_CACHE/features
    precision: str = "auto"  # auto: mixed_float16 on a GPU, float32 on CPU
    conv_impl: str = "fast"  # MoViNet base: 3-D convs as exact 2-D sums, or "reference"
    short: str | None = None  # a video shorter than a clip: pad/loop/stretch (None: the
    #                           default, DEFAULT_SHORT; see SamplingConfig.short)
    val_fraction: float = 0.2  # for ROOT/<class>/ layouts, and to carve a missing val split
    test_fraction: float = 0.2
    pose_model: str = "movenet"  # skeleton models (pose-*): the estimator of the keypoints
    pose_weights: str | None = None  # its weights file(s); None: fetched and cached

    @property
    def uses_feature_cache(self) -> bool:
        """Only a frozen backbone fed unaugmented clips gives the same features every epoch."""
        return (self.freeze_backbone and not self.unfreeze_top and not self.augment
                and self.cache_samples > 0)

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "frame_step", "patience"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise UserError(f"--fps must be a positive finite number, got {self.fps}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"--lr must be a positive finite number, got {self.lr}")
        if self.unfreeze_top and not self.freeze_backbone:
            raise UserError("--unfreeze-top and --train-backbone exclude each other")
        if self.precision not in ("auto", *PRECISIONS):
            raise UserError(f"--precision must be auto or one of {', '.join(PRECISIONS)}")
        if self.conv_impl not in CONV_IMPLS:
            raise UserError(f"--conv-impl must be one of {', '.join(CONV_IMPLS)}")


def _splits(ds: Dataset, cfg: TrainConfig) -> tuple[list[Clip], list[Clip], str | None]:
    """Train and validation clips; a missing val split is carved from train, by group."""
    train, val = ds.split("train"), ds.split("val")
    if not train:
        raise UserError(f"{ds.root}: no training clips")
    if val:
        return train, val, None
    groups = sorted({c.group for c in train})
    assign = stratified_split(groups, cfg.val_fraction, 0.0, seed=(cfg.seed, "val"))
    val = [c for c in train if assign[c.group] == "val"]
    train = [c for c in train if assign[c.group] == "train"]
    if not val:
        raise UserError(f"{ds.root}: no val split and too few clips to carve one")
    return train, val, f"no val split: {len(val)} clips carved from train by group"


def _unreadable(root: Path, split: str, clips: list[Clip], skips: SkipLog) -> DatasetError:
    """Every video of a split skipped: training on nothing must not end in "model saved"."""
    names = {str(c.path) for c in clips}
    first = next((f"{p}: {r}" for p, r in skips.reasons.items() if p in names), None)
    return DatasetError(f"{root}: none of the {len(clips)} {split} videos could be read"
                        + (f" (first: {first})" if first else "") + "; nothing to train on")


class ReadGuard(tf_keras.callbacks.Callback):
    """Counts the batches each epoch really got: a split whose every video was skipped
    stops the run (before Keeper saves anything of that epoch)."""

    def __init__(self, root: Path, train: list[Clip], val: list[Clip], skips: SkipLog):
        super().__init__()
        self.root, self.train, self.val, self.skips = root, train, val, skips
        self.train_batches = self.val_batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.train_batches = self.val_batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.train_batches += 1

    def on_test_batch_end(self, batch, logs=None):
        self.val_batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if not self.train_batches:
            raise _unreadable(self.root, "training", self.train, self.skips)
        if not self.val_batches:
            raise _unreadable(self.root, "validation", self.val, self.skips)


class Diverged(VidactionError):
    """The loss went NaN or inf: nothing after that point is a model."""


class FiniteLoss(tf_keras.callbacks.Callback):
    """A NaN or inf loss stops the run at once, with one line and no model saved (Keras's
    TerminateOnNaN only stops, and "model saved" followed). Placed before Keeper, so the
    epoch that diverged is never checkpointed."""

    def __init__(self, lr: float):
        super().__init__()
        self.lr, self.epoch = lr, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def _check(self, logs, where: str) -> None:
        bad = {k: float(v) for k, v in (logs or {}).items()
               if np.ndim(v) == 0 and not math.isfinite(float(v))}
        if bad:
            name, value = next(iter(bad.items()))
            raise Diverged(f"training diverged: {name} is {value} {where} (learning rate "
                           f"{self.lr:g}); stopped, no model saved; try a lower --lr")

    def on_train_batch_end(self, batch, logs=None):
        self._check({"loss": (logs or {}).get("loss", 0.0)},
                    f"at epoch {self.epoch}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"after epoch {epoch + 1}")


class Keeper(tf_keras.callbacks.Callback):
    """Per-epoch bookkeeping: best and last checkpoints, history, early stopping.

    The history travels inside the epoch checkpoint, so what --resume restores always
    agrees with the weights; history.json and log.csv are written from it afterwards.
    """

    def __init__(self, out: Path, ckpt, last, best, patience: int, skips,
                 before_commit=None, worker_temp=None):
        super().__init__()
        self.out, self.ckpt, self.last, self.best = out, ckpt, last, best
        self.patience, self.skips = patience, skips
        self.before_commit = before_commit  # once, before the first epoch is committed
        # a non-chief worker (train.distribute): saves as the chief does, since the
        # strategy needs every worker to, into this temporary folder; writes no history
        self.worker_temp = worker_temp

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        ck = self.ckpt
        val_loss = logs.get("val_loss", math.inf)
        improved = val_loss < float(ck.best_val_loss.numpy())
        if improved:
            ck.best_val_loss.assign(val_loss)
            ck.best_epoch.assign(epoch + 1)
            ck.wait.assign(0)
        else:
            ck.wait.assign_add(1)
        history = json.loads(ck.history.numpy().decode())
        history["epochs"].append({"epoch": epoch + 1, **logs, "best": bool(improved)})
        history["skipped_files"] = {**history.get("skipped_files", {}), **self.skips.counts}
        ck.history.assign(json.dumps(history))
        ck.epoch.assign(epoch + 1)
        if self.before_commit:
            self.before_commit()
            self.before_commit = None
        # The commit point of the epoch. Best is saved after it: a kill in between leaves
        # a best epoch whose weights are exactly last's, and resume writes them into best/
        # (the other order could leave best/ holding an epoch history never recorded).
        self.last.save(checkpoint_number=epoch + 1)
        if improved:
            self.best.save(checkpoint_number=epoch + 1)
        if self.worker_temp is not None:
            self.worker_temp.clear()
        else:
            write_history(self.out, history)
        if int(ck.wait.numpy()) >= self.patience:
            self.model.stop_training = True


def write_history(out: Path, history: dict) -> None:
    """history.json, and the same numbers as log.csv (one row per epoch)."""
    write_json(out / "history.json", history)
    rows = history["epochs"]
    keys = sorted({k for r in rows for k in r} - {"epoch", "best"})
    lines = [",".join(["epoch", *keys])]
    lines += [",".join([str(r["epoch"]), *(f"{r[k]:.6g}" if k in r else "" for k in keys)])
              for r in rows]
    write_atomic(out / "log.csv", "\n".join(lines) + "\n")


class TwoRates(tf_keras.Model):
    """Fine-tuning: the head learns at the optimizer's rate, the unfrozen backbone blocks
    at a lower one (a second optimizer; Adam ignores gradient scaling, so it must be)."""

    def __init__(self, inner, slow_variables: list, slow_optimizer):
        super().__init__()
        self.inner = inner
        self.slow_ids = {id(v) for v in slow_variables}
        self.slow_optimizer = slow_optimizer

    def call(self, x, training=False):
        return self.inner(x, training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            loss = self.compiled_loss(y, logits)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        pairs = list(zip(grads, variables, strict=True))
        self.optimizer.apply_gradients([p for p in pairs if id(p[1]) not in self.slow_ids])
        self.slow_optimizer.apply_gradients([p for p in pairs if id(p[1]) in self.slow_ids])
        self.compiled_metrics.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}


class Progress(tf_keras.callbacks.Callback):
    """A bar per epoch (on a terminal), then one summary line."""

    def __init__(self, steps: int, epochs: int, enabled: bool):
        super().__init__()
        self.steps, self.epochs, self.enabled = steps, epochs, enabled

    def on_epoch_begin(self, epoch, logs=None):
        # off a terminal no bar: the epoch line below is the one line per step
        self.bar = progress_bar(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}",
                                unit="batch", enabled=self.enabled, summary=False)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update()
        if logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs.get('accuracy', 0):.3f}")

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()
        print(f"epoch {epoch + 1}/{self.epochs}: " + "  ".join(
            f"{k} {v:.4f}" for k, v in (logs or {}).items()), flush=True)


def _feature_datasets(parts, cfg: TrainConfig, sampling, train_clips: list[Clip],
                      val_clips: list[Clip], initial_epoch: int, skips, progress: bool):
    """The head model, its train/val datasets of cached backbone features, the training
    steps per epoch and a summary line."""
    features_model, head_model = parts
    root = Path(cfg.feature_cache) if cfg.feature_cache else cache_root() / "features"
    fingerprint = weights_fingerprint(features_model)
    # No more clips per video than epochs to use them: the backbone pass is the cost, and
    # the reference recipe trains 2 epochs.
    k_train = min(cfg.cache_samples, cfg.epochs)
    out = []
    stats = {"computed": 0, "reused": 0}
    forward = forward_fn(features_model)
    for clips, k, training in ((train_clips, k_train, True), (val_clips, 1, False)):
        cache = FeatureCache(root, fingerprint, sampling, k)
        feats, ok = compute_features(features_model, clips, sampling, k, cache,
                                     cfg.batch_size, cfg.clip_cache, skips, progress, forward)
        if not ok.any():
            raise _unreadable(Path(cfg.data), "training" if training else "validation",
                              clips, skips)
        labels = np.array([c.label for c in clips])
        out.append(feature_dataset(feats[ok], labels[ok], cfg.batch_size, cfg.seed, training,
                                   epochs=(initial_epoch, cfg.epochs)))
        stats["computed"] += cache.computed
        stats["reused"] += cache.reused
        if training:
            steps = max(1, math.ceil(int(ok.sum()) / cfg.batch_size))
    text = (f"{stats['computed']} videos computed, {stats['reused']} reused from "
            f"{root}, {k_train} clip(s) per training video")
    return head_model, out[0], out[1], steps, text


class _Recorder:
    """A resume's changed settings go into config.json once the resume is known to work:
    just before its first epoch is committed (or at the end, if it had none to train)."""

    def __init__(self, out: Path, config: dict, cfg: TrainConfig):
        self.out, self.config, self.cfg, self.pending = out, config, cfg, True

    def __call__(self) -> None:
        self.pending = False
        saved = self.config.get("train") or {}
        train_cfg = {**saved, **dataclasses.asdict(self.cfg)}
        if train_cfg.get("data") != saved.get("data"):  # --data changed: keep both in step
            train_cfg["data_from_run"] = data_from_run(self.out, train_cfg["data"])
        if {k: v for k, v in train_cfg.items() if k != "out"} != \
                {k: v for k, v in saved.items() if k != "out"}:
            write_json(self.out / "config.json", {**self.config, "train": train_cfg})


def _restore(ckpt, model, last_dir: Path, best_dir: Path, cfg: TrainConfig,
             changes: dict, plain=None) -> int:
    """Restore the newest intact last checkpoint into `ckpt`; returns its epoch.

    Then reconcile, writing nothing intact away: the state files are pointed at intact
    checkpoints (a garbled one is rebuilt), and a best epoch missing from best/ (a kill
    between the two saves, or damage) is written there from the last checkpoint that
    holds its weights.
    """
    out = last_dir.parent.parent
    prefix = pick_checkpoint(last_dir)
    if prefix is None:
        print(f"{out}: no finished epoch to resume from; starting at epoch 1")
        return 0
    ckpt.restore(prefix).expect_partial()
    epoch = int(ckpt.epoch.numpy())
    if "epochs" in changes and cfg.epochs < epoch:
        raise RunError(f"{out}: --epochs {cfg.epochs}, but the run has already trained "
                       f"{epoch} epochs")
    print(f"resuming {out} after epoch {epoch}")
    for folder in (last_dir, best_dir):
        problem = state_problem(folder)
        if problem:
            warn(f"{folder / 'checkpoint'}: garbled ({problem}); rebuilt from the "
                 "checkpoint files beside it")
    write_state(last_dir, [*intact_up_to(last_dir, epoch - 1), prefix])
    best_epoch = int(ckpt.best_epoch.numpy())
    want = best_dir / f"ckpt-{best_epoch}"
    if best_epoch and checkpoint_damage(want) is not None:
        source = prefix if best_epoch == epoch else str(last_dir / f"ckpt-{best_epoch}")
        if plain is not None and (source == prefix or checkpoint_damage(source) is None):
            # under a strategy, saving its variables is a collective the other workers do
            # not join: written from a model outside it (`plain` builds one)
            weights = tf.train.Checkpoint(model=plain("none"))
            weights.restore(source).expect_partial()
            weights.write(str(want))
            print(f"best epoch {best_epoch} was missing from {best_dir}; written there "
                  f"from {source}")
        elif source == prefix or checkpoint_damage(source) is None:
            weights = tf.train.Checkpoint(model=model)
            if source != prefix:
                weights.restore(source).expect_partial()
            weights.write(str(want))
            if source != prefix:
                ckpt.restore(prefix).expect_partial()
            print(f"best epoch {best_epoch} was missing from {best_dir}; written there "
                  f"from {source}")
        else:
            warn(f"{want}: the weights of best epoch {best_epoch} are lost; the final "
                 "model will hold the best epoch trained from now on, or the last")
    write_state(best_dir, intact_up_to(best_dir, epoch))
    return epoch


def _restore_best(model, best_dir: Path, best_epoch: int) -> None:
    """The final model carries the best validation epoch's weights, the very epoch
    history.json marks best (by number, not whatever best/ saved last)."""
    if not best_epoch:
        return
    want = best_dir / f"ckpt-{best_epoch}"
    damage = checkpoint_damage(want)
    if damage:
        warn(f"{want}: {damage}; the saved model holds the last epoch's weights instead")
        return
    tf.train.Checkpoint(model=model).restore(str(want)).expect_partial()


def _pose_section(cfg: TrainConfig, frames: int) -> dict:
    from vidaction.train.pose import pose_section

    return pose_section(cfg, frames)


def _write_config(out: Path, cfg: TrainConfig, ds: Dataset, info, frames: int, size: int,
                  pretrained: str, sampling, augment, train_clips, val_clips, note,
                  distribute: dict | None = None) -> None:
    """A new run's classes.txt and config.json (a resumed run keeps its own)."""
    from vidaction.data.sources import write_classes

    out.mkdir(parents=True, exist_ok=True)
    # config.json first: it is what marks the folder as a run (see train.folder)
    write_json(out / "config.json", {
        # the dataset as an absolute path and relative to the run: --resume or evaluate
        # from another folder, or after run and data moved together (models.run.run_data)
        "train": {**dataclasses.asdict(cfg), "data": os.path.abspath(cfg.data),
                  "data_from_run": data_from_run(cfg.out, cfg.data)},
        "model": {"name": cfg.model, "frames": frames, "size": size, "pretrained": pretrained,
                  "num_classes": len(ds.classes),
                  **({"frame_backbone": cfg.frame_backbone or info.frame_backbone}
                     if info.frame_backbone else {})},
        "sampling": sampling.as_dict(),
        "augment": dataclasses.asdict(augment) if augment else None,
        "classes": ds.classes,
        "dataset": {"root": str(ds.root), "layout": ds.layout, "train": len(train_clips),
                    "val": len(val_clips), "notes": ds.notes + ([note] if note else [])},
        "vidaction": vidaction.__version__,
        # how it was trained: strategy, replicas, global and per-replica batch
        **({"distribute": distribute} if distribute else {}),
        **({"pose": _pose_section(cfg, frames)} if info.inputs == "keypoints" else {}),
    })
    write_classes(out / "classes.txt", ds.classes)
    # which video went where: a dataset that grows keeps this run's split (data.split_record)
    write_json(out / SPLIT_FILE, split_record(ds, train_clips, val_clips))


def train(cfg: TrainConfig, resume: bool = False, force: bool = False,
          progress: bool = True, given: Collection[str] | None = None,
          strategy: str = "none", cluster_timeout: float | None = None) -> Path:
    """Train into cfg.out; returns the run folder. See vidaction.train.run for its layout.

    With `resume`, the run's config.json supplies every setting except those named in
    `given` (the flags the user typed; None: the settings off TrainConfig's defaults),
    which must agree with the run or be ones that may change (see train.resume).

    The run folder is locked while training writes it (a second writer is refused), and
    nothing is written before the flags, the model's limits and the dataset are known to
    be right. `force` replaces a vidaction run, never any other folder, and the old run
    stays until the new one is complete (see train.folder).

    `strategy`: none, auto, mirrored or multi-worker (see train.distribute: --batch-size
    is the global batch; only the chief writes the run folder).
    """
    from vidaction.train.distribute import WorkerFolder, plan_strategy
    from vidaction.train.folder import RunFolder

    plan = plan_strategy(strategy, cluster_timeout)
    what = "train --resume" if resume else "train --force" if force else "train"
    folder = RunFolder(cfg.out, force=force, what=what) if plan.is_chief else \
        WorkerFolder(cfg.out)
    try:
        _train(cfg, resume, folder, progress, given, plan)
    except BaseException:
        folder.abort()
        raise
    return folder.commit()


def _check_recipe(cfg: TrainConfig, info, pretrained: str) -> None:
    """What create_model and the fine-tuning set-up would refuse, refused before the run
    folder is touched."""
    if pretrained != "none" and not info.pretrained:
        raise UserError(f"{cfg.model} trains from scratch: no pretrained weights exist for it "
                        "(use --pretrained none)")
    if pretrained not in ("none", "auto") and not Path(pretrained).expanduser().exists() \
            and not Path(str(pretrained) + ".index").exists():
        raise UserError(f"--pretrained: {pretrained} is neither 'none', 'auto' nor an "
                        "existing tarball or checkpoint")
    if cfg.unfreeze_top and not cfg.model.startswith("movinet"):
        raise UserError(f"--unfreeze-top fine-tunes MoViNet backbone blocks; {cfg.model} has "
                        "none (use --train-backbone)")


def _model_for_tflite(cfg: TrainConfig, given: Collection[str]) -> TrainConfig:
    """--pretrained PATH.tflite: an official TFLite file holds the ReLU6, no-SE MoViNet
    stream; without --model it picks that variant, with the float one of the same id it is
    refused (create_model), as it is for any other model."""
    from vidaction.models.movinet import config_for
    from vidaction.models.tflite_import import is_tflite

    if not cfg.pretrained or not is_tflite(cfg.pretrained) or "model" in given:
        return cfg
    from vidaction.models.factory import MODELS, model_name
    from vidaction.models.movinet import MovinetConfig

    try:
        mcfg = config_for(cfg.model)
    except ValueError:
        return cfg
    name = model_name(MovinetConfig(mcfg.model_id, True, relu6=True))
    if name != cfg.model and name in MODELS:
        print(f"--pretrained {cfg.pretrained}: an official int8 MoViNet file; model {name}")
        return dataclasses.replace(cfg, model=name)
    return cfg


KINETICS_FPS = 5.0  # the rate the official MoViNets were trained at on Kinetics-600


def kinetics_rate(cfg: TrainConfig, pretrained: str, given: Collection[str]) -> TrainConfig:
    """A MoViNet on Kinetics-600 weights samples at the rate those weights were trained at
    (5 fps), unless --frame-step or --fps says otherwise: its features were learnt at that
    speed of motion. Other models keep the frame step."""
    if (pretrained == "none" or not cfg.model.startswith("movinet-") or cfg.fps is not None
            or "frame_step" in given or "fps" in given):
        return cfg
    print(f"{cfg.model} on Kinetics-600 weights: sampling at --fps {KINETICS_FPS:g}, the rate "
          "they were trained at (give --frame-step or --fps to choose)")
    return dataclasses.replace(cfg, fps=KINETICS_FPS)


def _train(cfg: TrainConfig, resume: bool, folder, progress: bool,
           given: Collection[str] | None, plan=None) -> None:
    from vidaction.data.pipeline import make_dataset
    from vidaction.data.sampling import DEFAULT_SHORT, SamplingConfig
    from vidaction.models import create_model, model_info, save_model, unfreeze_top_blocks
    from vidaction.models.factory import check_input
    from vidaction.train.folder import check_apart

    out = Path(cfg.out)
    run_config, changes = None, {}
    if resume:
        folder.lock_for_resume()
        cfg, run_config, changes = resume_config(
            cfg, given_fields(cfg) if given is None else given)
    cfg.validate()
    if not resume:
        cfg = _model_for_tflite(cfg, given_fields(cfg) if given is None else given)
    info = model_info(cfg.model)
    frames, size = cfg.frames or info.frames, cfg.size or info.size
    pretrained = cfg.pretrained or ("auto" if info.pretrained else "none")
    if not resume:
        cfg = kinetics_rate(cfg, pretrained, given_fields(cfg) if given is None else given)
    # --short: a resumed run keeps its own (pad for runs from before --short existed)
    short = cfg.short or (SamplingConfig(**(run_config or {}).get("sampling", {})).short
                          if resume else DEFAULT_SHORT)
    cfg = dataclasses.replace(cfg, short=short)  # config.json says which, not null
    sampling = SamplingConfig(frames, cfg.frame_step, size, cfg.resize or info.resize,
                              fps=cfg.fps, short=short)
    patience = cfg.patience or info.patience
    lr = cfg.lr or info.lr
    resolve_frame_backbone(cfg.model, cfg.frame_backbone, size)  # before any run folder
    check_input(cfg.model, frames, size)
    _check_recipe(cfg, info, pretrained)
    precision = resolve_precision(cfg.precision)
    if precision == "mixed_float16" and cfg.unfreeze_top:
        raise UserError("--unfreeze-top with mixed_float16 needs two loss-scaled optimizers, "
                        "which is not supported: use --precision mixed_bfloat16 or float32")
    check_apart(out, cfg.data)
    if not resume:
        folder.check()  # not a vidaction run, or a run without --force: refused, untouched
    distributed = plan is not None and plan.name != "none"
    chief = plan is None or plan.is_chief
    if distributed and info.inputs == "keypoints":
        raise UserError(f"{cfg.model} (a skeleton model) trains in one process: use "
                        "--strategy none")

    ds = load_dataset(cfg.data, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    if resume:  # the run's class ids, whatever order the dataset lists them in today
        ds = run_dataset(ds, out, run_config)
        ds = keep_run_split(ds, out, print)  # and its split, whatever was added since
    train_clips, val_clips, note = _splits(ds, cfg)
    augment = None
    if cfg.augment and info.inputs != "keypoints":  # skeleton runs: train.pose augments
        augment = AugmentConfig(flip=not mirror_sensitive(ds.classes))
        if not augment.flip:
            print("augmentation: no horizontal flips, the classes include a left/right pair")
    out = folder.begin()  # locked; --force trains beside the old run (train.folder)
    from vidaction.train.distribute import start

    # before any other TensorFlow op; multi-worker waits here for the whole cluster
    dist = start(plan) if plan is not None else None
    if dist is not None:
        if cfg.batch_size < dist.num_replicas:
            raise UserError(f"--batch-size {cfg.batch_size} is the global batch: it must be "
                            f"at least the {dist.num_replicas} replicas")
        print(f"strategy: {dist.name}, {dist.num_replicas} replica(s) on {dist.num_workers} "
              f"worker(s); global batch {cfg.batch_size} "
              f"({cfg.batch_size / dist.num_replicas:g} per replica)"
              + (f"; {plan.why}" if plan.why else ""))
    distribute = dist.record(cfg.batch_size) if dist is not None else {
        "strategy": "none", "num_replicas": 1, "num_workers": 1,
        "global_batch_size": cfg.batch_size, "per_replica_batch_size": cfg.batch_size}
    if not resume and chief:
        _write_config(out, cfg, ds, info, frames, size, pretrained, sampling, augment,
                      train_clips, val_clips, note, distribute)
    if note:
        print(note)

    if precision != "float32":
        print(f"precision: {precision} (variables and logits stay float32)")
    if info.frame_backbone and pretrained == "none" and cfg.freeze_backbone:
        print(f"warning: {cfg.model} with a frozen, randomly initialised frame CNN: its "
              "features carry almost no signal; use ImageNet weights (--pretrained) or "
              "--train-backbone", file=sys.stderr)
    def build(pretrained=pretrained):
        return create_model(cfg.model, len(ds.classes), frames=frames, size=size,
                            pretrained=pretrained, weights_url=cfg.weights_url,
                            freeze_backbone=cfg.freeze_backbone, precision=precision,
                            frame_backbone=cfg.frame_backbone, conv_impl=cfg.conv_impl)

    # the model, its optimizer and their variables live in the strategy's scope
    scope = dist.strategy.scope() if dist is not None else contextlib.nullcontext()
    initial = None
    if dist is not None:
        # a strategy creates variables in its own graphs, which draw other random numbers:
        # every worker starts from the single-process initial weights of --seed instead
        tf_keras.utils.set_random_seed(cfg.seed)
        initial = build().get_weights()
    with scope:
        tf_keras.utils.set_random_seed(cfg.seed)
        model = build()
        if initial is not None:
            model.set_weights(initial)
            del initial
        if dist is not None and dist.num_replicas > 1:
            from vidaction.train.distribute import sync_batch_norm

            if synced := sync_batch_norm(model):
                print(f"batch norm: statistics over the global batch ({synced} layer(s) "
                      f"synchronised across the {dist.num_replicas} replicas)")
        optimizer = tf_keras.optimizers.Adam(lr)
        if precision == "mixed_float16":  # small float16 gradients would flush to zero
            optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
        loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        slow = {}
        if cfg.unfreeze_top:
            slow_vars = unfreeze_top_blocks(model, cfg.unfreeze_top)
            slow["slow_optimizer"] = tf_keras.optimizers.Adam(lr * cfg.backbone_lr_scale)
            print(f"fine-tuning the last {cfg.unfreeze_top} backbone block(s): "
                  f"{len(slow_vars)} variables at lr {lr * cfg.backbone_lr_scale:g}")
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, **slow,
                               epoch=tf.Variable(0, dtype=tf.int64),
                               best_val_loss=tf.Variable(math.inf, dtype=tf.float64),
                               best_epoch=tf.Variable(0, dtype=tf.int64),
                               wait=tf.Variable(0, dtype=tf.int64),
                               history=tf.Variable(json.dumps({"epochs": []})))
    last_dir, best_dir = out / "checkpoints" / "last", out / "checkpoints" / "best"
    initial_epoch = 0
    if resume and chief:
        initial_epoch = _restore(ckpt, model, last_dir, best_dir, cfg, changes,
                                 plain=build if distributed else None)
    elif resume:  # a non-chief worker reads the chief's last epoch, and repairs nothing
        from vidaction.train.distribute import restore_readonly

        initial_epoch = restore_readonly(ckpt, last_dir)
    worker_temp = None
    if chief:
        # Two of each: a damaged newest checkpoint falls back one epoch (train.resume).
        last = tf.train.CheckpointManager(ckpt, str(last_dir), max_to_keep=2)
        best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(best_dir),
                                          max_to_keep=2)
    else:
        from vidaction.train.distribute import WorkerTemp

        worker_temp = WorkerTemp(out, dist.worker)
        last = tf.train.CheckpointManager(ckpt, str(worker_temp.path / "last"), 1)
        best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                          str(worker_temp.path / "best"), 1)
    if initial_epoch < cfg.epochs:  # each session's strategy, in the history
        history = json.loads(ckpt.history.numpy().decode())
        history["sessions"] = [*history.get("sessions", []),
                               {"from_epoch": initial_epoch + 1, **distribute}]
        ckpt.history.assign(json.dumps(history))

    record = _Recorder(out, run_config, cfg) if resume and chief else None
    skips = SkipLog()
    keypoints = info.inputs == "keypoints"  # skeleton models: keypoint windows (train.pose)
    parts = split_model(model) if cfg.uses_feature_cache and not keypoints else None
    if distributed and parts is not None:
        parts = None
        print(f"strategy {dist.name}: backbone features are not cached (every worker would "
              "compute them all); the frozen backbone runs in every step")
    dist_steps = {}
    if keypoints:
        from vidaction.train.pose import keypoint_datasets

        fit_model = model
        train_ds, val_ds, n_train, stats = keypoint_datasets(
            cfg, train_clips, val_clips, ds.classes, frames, initial_epoch, skips, progress)
        print(stats)
    elif parts is not None:
        fit_model, train_ds, val_ds, feature_steps, stats = _feature_datasets(
            parts, cfg, sampling, train_clips, val_clips, initial_epoch, skips, progress)
        fit_model.compile(optimizer=optimizer, loss=model.loss, metrics=["accuracy"])
        print(f"frozen backbone: training the head on cached features ({stats})")
    elif distributed:
        from vidaction.train.distribute import clip_dataset_fn

        fit_model = model
        if cfg.unfreeze_top:
            with scope:
                fit_model = TwoRates(model, slow_vars, slow["slow_optimizer"])
                fit_model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        train_fn, n_steps = clip_dataset_fn(
            train_clips, sampling, True, cfg.batch_size, cfg.seed,
            (initial_epoch, max(cfg.epochs, initial_epoch + 1)), dist.num_replicas,
            cfg.clip_cache, augment, skips)
        val_fn, val_steps = clip_dataset_fn(val_clips, sampling, False, cfg.batch_size,
                                            cfg.seed, (0, 1), dist.num_replicas,
                                            cfg.clip_cache, None, skips)
        if not n_steps:
            raise UserError(f"{ds.root}: {len(train_clips)} training clips, fewer than the "
                            f"{dist.num_replicas} replicas")
        creator = tf_keras.utils.experimental.DatasetCreator
        train_ds, val_ds = creator(train_fn), creator(val_fn)
        dist_steps = {"steps_per_epoch": n_steps, "validation_steps": val_steps}
    else:
        fit_model = model
        if cfg.unfreeze_top:
            fit_model = TwoRates(model, slow_vars, slow["slow_optimizer"])
            fit_model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        train_ds = make_dataset(train_clips, sampling, training=True,
                                batch_size=cfg.batch_size, seed=cfg.seed + initial_epoch,
                                cache_dir=cfg.clip_cache, augment=augment, skips=skips)
        val_ds = make_dataset(val_clips, sampling, training=False, batch_size=cfg.batch_size,
                              cache_dir=cfg.clip_cache, skips=skips)
    steps = dist_steps.get("steps_per_epoch") or math.ceil(len(train_clips) / cfg.batch_size)
    guard = ReadGuard(ds.root, train_clips, val_clips, skips)
    callbacks = [
        Progress(steps, cfg.epochs, progress and chief),
        *([tf_keras.callbacks.TensorBoard(str(out / "tensorboard"), profile_batch=0)]
          if chief else []),
        guard,
        FiniteLoss(lr),
        Keeper(out, ckpt, last, best, patience, skips, before_commit=record,
               worker_temp=worker_temp),
    ]
    if resume and initial_epoch < cfg.epochs and int(ckpt.wait.numpy()) >= patience:
        print(f"early stopping ended this run after epoch {initial_epoch} (patience "
              f"{patience}); a larger --patience continues it")
    if initial_epoch < cfg.epochs and int(ckpt.wait.numpy()) < patience:
        # The feature dataset holds all remaining epochs back to back (see feature_dataset).
        per_epoch = {"steps_per_epoch": feature_steps} if parts is not None else dist_steps
        try:
            fit_model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs,
                          initial_epoch=initial_epoch, callbacks=callbacks, verbose=0,
                          **per_epoch)
        except ValueError:  # Keras: "Empty logs" when not one training batch came
            if guard.train_batches:
                raise
            raise _unreadable(ds.root, "training", train_clips, skips) from None
        except (tf.errors.UnavailableError, tf.errors.AbortedError,
                tf.errors.CancelledError, tf.errors.DeadlineExceededError,
                tf.errors.InternalError) as e:
            if not distributed or (isinstance(e, tf.errors.InternalError)
                                   and "ollective" not in str(e)):
                raise
            from vidaction.train.distribute import lost_worker

            raise lost_worker(e) from None
        finally:
            if worker_temp is not None:
                worker_temp.remove()
    if dist is not None:
        from vidaction.train.distribute import finish

        # the chief alone saves the model, from the checkpoints, outside the strategy
        model = finish(dist, build, last_dir)
        if model is None:  # a non-chief worker: nothing of the run is its to write
            return

    _restore_best(model, best_dir, int(ckpt.best_epoch.numpy()))
    save_model(model, out / "model")
    if record is not None and record.pending:  # no epoch trained: record the changes now
        record()
    write_history(out, json.loads(ckpt.history.numpy().decode()))  # as the checkpoint says
    if skips.total:
        print(f"skipped {len(skips.counts)} unreadable file(s) during training; "
              f"see {folder.path / 'history.json'}")
    print(f"best epoch {int(ckpt.best_epoch.numpy())} "
          f"(val_loss {float(ckpt.best_val_loss.numpy()):.4f}); model saved in "
          f"{folder.path / 'model'}")
