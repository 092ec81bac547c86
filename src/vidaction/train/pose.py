"""Training data for the skeleton models: keypoints of every clip, then window batches.

The pose estimator runs once per video (data.pose's cache; later epochs and runs read
arrays), its keypoints are resampled to the skeleton rate, and each epoch draws a fresh
window and augmentation per training clip (data.skeleton). Skeleton augmentation is always
on: it is cheap, and a model trained on rendered figures needs it to meet real people.
"""

from __future__ import annotations

import numpy as np

from vidaction.data.augment import mirror_sensitive
from vidaction.data.skeleton import POSE_FPS, SkeletonAugment, batches
from vidaction.models.pose_run import DEFAULT_STRIDE, samples


def pose_section(cfg, frames: int) -> dict:
    """The "pose" part of a skeleton run's config.json."""
    return {"model": cfg.pose_model, "weights": cfg.pose_weights, "track": True,
            "fps": POSE_FPS, "frames": frames, "stride": DEFAULT_STRIDE}


def clip_keypoints(clips, settings: dict, skips, progress: bool, what: str):
    """Resampled keypoints of each clip, None for an unreadable one (named in `skips`)."""
    from vidaction.data.pose import PoseTracker, cached_keypoints
    from vidaction.io import VideoReadError
    from vidaction.progress import bar as progress_bar

    tracker = None
    out = []
    with progress_bar(total=len(clips), desc=f"keypoints ({what})", unit="video",
                      enabled=progress) as bar:
        for c in clips:
            try:
                if tracker is None:
                    tracker = PoseTracker(settings["model"], settings["weights"],
                                          settings["track"])
                kp = cached_keypoints(c.path, tracker=tracker)
                out.append(samples(kp, settings))
            except VideoReadError as e:  # this video; missing weights end the run (one line)
                skips.add(str(c.path), e.reason)
                out.append(None)
            bar.update()
    return out


def keypoint_datasets(cfg, train_clips, val_clips, classes: list[str], frames: int,
                      initial_epoch: int, skips, progress: bool):
    """(train tf.data, val tf.data, readable train count, a line saying what was done)."""
    from vidaction.train.fit import _unreadable

    settings = {**pose_section(cfg, frames)}
    augment = SkeletonAugment(mirror=not mirror_sensitive(classes))
    got = []
    for clips, what in ((train_clips, "training"), (val_clips, "validation")):
        kps = clip_keypoints(clips, settings, skips, progress, what)
        ok = [i for i, k in enumerate(kps) if k is not None]
        if not ok:
            raise _unreadable(cfg.data, what, clips, skips)
        got.append(([kps[i] for i in ok], np.array([clips[i].label for i in ok])))
    (tk, ty), (vk, vy) = got
    train_ds = batches(tk, ty, frames, cfg.batch_size, cfg.seed + initial_epoch, augment,
                       training=True)
    val_ds = batches(vk, vy, frames, cfg.batch_size, cfg.seed, None, training=False)
    text = (f"skeleton windows of {frames} at {POSE_FPS:g}/s from {settings['model']} "
            f"keypoints; augmentation: rotation, scale, jitter, joint dropout, tempo"
            + (", mirror" if augment.mirror else " (no mirror: the classes include a "
               "left/right pair)"))
    return train_ds, val_ds, len(tk), text
