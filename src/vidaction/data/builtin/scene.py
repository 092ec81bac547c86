"""What varies between clips besides the actor: camera, framing, tempo, background, nuisances."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from vidaction.data.builtin.actions import ACTIONS
from vidaction.data.builtin.actors import Actor, _rgb, sample_actor


@dataclass
class ClipParams:
    """Everything that varies between clips; positions are fractions of the frame size."""

    seed: int
    actor: Actor = field(default_factory=lambda: Actor(id=0))
    view_yaw: float = 30.0       # degrees; sign = which way the figure faces
    elevation: float = 12.0      # degrees the camera looks down
    center_x: float = 0.5
    ground_y: float = 0.9
    scale: float = 0.65          # figure height / frame height
    reps: int = 3                # cycles over the clip (repeated actions)
    phase: float = 0.0           # start phase of the cycle
    tempo_wobble: float = 0.0    # uneven speed, 0 = constant
    wobble_phase: float = 0.0
    t_start: float = 0.25        # one-shot actions: when the movement starts and ends (0..1)
    t_end: float = 0.75
    side: int = 1                # +1 / -1: which hand waves, which arm leads, which leg kicks
    amount: float = 1.0          # action-specific size (turn angle, bow depth, ...) 0..1
    background: str = "flat"     # flat | gradient | noise | textured
    bg_colors: list = field(default_factory=lambda: [[150, 160, 170], [110, 120, 130]])
    floor: bool = True
    floor_color: tuple[int, int, int] = (120, 110, 100)
    gain: float = 1.0            # brightness gain
    contrast: float = 1.0
    flicker: float = 0.0
    shake: float = 0.0           # camera shake amplitude, fraction of frame
    zoom_start: float = 1.0
    zoom_end: float = 1.0
    blur: float = 0.0            # weight of the previous frame (motion blur)
    distractor: str = "none"     # none | ball | box
    distractor_color: tuple[int, int, int] = (230, 200, 40)
    distractor_size: float = 0.08
    distractor_path: list = field(default_factory=lambda: [[0.0, 0.3], [1.0, 0.5]])
    distractor_front: bool = True
    occluder: bool = False
    occluder_color: tuple[int, int, int] = (90, 70, 50)
    occluder_width: float = 0.1
    occluder_path: list = field(default_factory=lambda: [-0.2, 1.2])  # x at clip start/end
    occluder_window: list = field(default_factory=lambda: [0.3, 0.7])
    noise: float = 0.0           # sensor noise sigma in grey levels
    crf: int = 23
    # What real people do that the first figures did not (the "pose" variation draws them;
    # the defaults draw clips as before):
    arm_style: str = "swing"     # squats: swing | forward | clasped | hips
    hold: float = 0.0            # repeated actions: share of each cycle held still at its
    #                              two extremes (pauses at the top and the bottom)


VARIATIONS = ("full", "low", "pose")
ARM_STYLES = ("swing", "forward", "clasped", "hips")


def _low_variation(p: ClipParams) -> ClipParams:
    """The same clip without the nuisances: plain background, steady camera, no distractor,
    occluder, blur, flicker or noise, the figure near the centre at one scale. Actors,
    facing, tempo, repetitions and the action itself still vary. For demos that must train
    from scratch in a minute or two; report scores on it as such."""
    return replace(p, background="flat" if p.background in ("noise", "textured") else
                   p.background, center_x=0.5 + (p.center_x - 0.5) * 0.3,
                   scale=0.7, gain=1.0, contrast=1.0, flicker=0.0, shake=0.0, zoom_start=1.0,
                   zoom_end=1.0, blur=0.0, distractor="none", occluder=False, noise=0.0,
                   crf=min(p.crf, 23))


def sample_params(class_name: str, seed: int, actor: Actor | None = None,
                  variation: str = "full") -> ClipParams:
    """Random per-clip variation from `seed` (and the actor, drawn from the seed if not given).
    `variation="low"` drops the nuisances (see _low_variation), `"pose"` makes the figure
    fill more of the frame and move as real people do (see _pose_variation); the other
    draws stay the same."""
    p = _sample_params(class_name, seed, actor)
    if variation == "pose":
        return _pose_variation(p, class_name)
    return _low_variation(p) if variation == "low" else p


def _pose_variation(p: ClipParams, class_name: str) -> ClipParams:
    """For skeleton models trained on a pose estimator's keypoints: the figure larger in the
    frame (an estimator finds thin rendered arms badly when small), no occluder sliding
    over it (its keypoints would then be noise under a right label), and what real people
    do: squats with the arms held forward, clasped at the chest or on the hips, slow
    repetitions, pauses at the top and bottom. Drawn from their own stream, so the other
    draws are those of the full variation."""
    rng = np.random.default_rng([p.seed, 6])
    style = ARM_STYLES[int(rng.integers(len(ARM_STYLES)))] if class_name == "squats" \
        else "swing"
    hold = float(rng.uniform(0.1, 0.45)) if rng.random() < 0.6 else 0.0
    reps = max(1, round(p.reps * 0.6)) if rng.random() < 0.35 else p.reps
    return replace(p, scale=float(rng.uniform(0.68, 0.85)),
                   ground_y=float(rng.uniform(0.92, 0.97)),
                   center_x=0.5 + (p.center_x - 0.5) * 0.6, occluder=False,
                   arm_style=style, hold=hold, reps=reps)


def _sample_params(class_name: str, seed: int, actor: Actor | None = None) -> ClipParams:
    rng = np.random.default_rng([seed, 2])
    actor = actor or sample_actor(seed, 0)
    act = ACTIONS.get(class_name)
    lo, hi = act.reps if act else (1, 1)
    kind = ["flat", "gradient", "noise", "textured"][int(rng.integers(4))]
    n_bg = 2 if kind != "textured" else 3
    bg = [[int(c) for c in _rgb(rng, (0.05, 0.4), (0.35, 0.9))] for _ in range(n_bg)]
    # One-shot movements: the waits before and after are drawn from the same distribution,
    # so neither end pose of a direction pair is on screen longer than the other.
    dur = float(rng.uniform(0.35, 0.6))
    start = (1.0 - dur) * float(rng.uniform(0.3, 0.7))
    y0, y1 = rng.uniform(0.1, 0.85, 2)
    left_to_right = rng.random() < 0.5
    z0, z1 = (1.0, 1.0) if rng.random() < 0.4 else rng.uniform(1.0, 1.15, 2)
    ow = float(rng.uniform(0.2, 0.5))
    o0 = float(rng.uniform(0.0, 1.0 - ow))
    return ClipParams(
        seed=int(seed),
        actor=actor,
        view_yaw=float(rng.choice([-1, 1]) * rng.uniform(*(act.view if act else (15, 55)))),
        elevation=float(rng.uniform(6, 20)),
        center_x=float(rng.uniform(0.38, 0.62)),
        ground_y=float(rng.uniform(0.87, 0.95)),
        scale=float(rng.uniform(0.55, 0.72)),
        reps=int(rng.integers(lo, hi + 1)),
        phase=float(rng.uniform(0, 1)) if class_name != "bow" else 0.0,
        tempo_wobble=float(rng.uniform(0, 0.5)),
        wobble_phase=float(rng.uniform(0, 2 * math.pi)),
        t_start=start,
        t_end=start + dur,
        side=int(rng.choice([-1, 1])),
        amount=float(rng.uniform(0, 1)),
        background=kind,
        bg_colors=bg,
        floor=bool(rng.random() < 0.6),
        floor_color=_rgb(rng, (0.05, 0.35), (0.25, 0.7)),
        gain=float(rng.uniform(0.8, 1.15)),
        contrast=float(rng.uniform(0.8, 1.1)),
        flicker=float(rng.uniform(0, 0.04)) if rng.random() < 0.3 else 0.0,
        shake=float(rng.uniform(0, 0.012)),
        zoom_start=float(z0),
        zoom_end=float(z1),
        blur=float(rng.uniform(0, 0.35)) if rng.random() < 0.5 else 0.0,
        distractor=["none", "ball", "box"][int(rng.integers(3))],
        distractor_color=_rgb(rng, (0.5, 1.0), (0.5, 1.0)),
        distractor_size=float(rng.uniform(0.05, 0.1)),
        distractor_path=[[-0.1, float(y0)], [1.1, float(y1)]] if left_to_right
        else [[1.1, float(y0)], [-0.1, float(y1)]],
        distractor_front=bool(rng.random() < 0.5),
        occluder=bool(rng.random() < 0.4),
        occluder_color=_rgb(rng, (0.1, 0.6), (0.2, 0.6)),
        occluder_width=float(rng.uniform(0.05, 0.12)),
        occluder_path=[float(v) for v in (rng.uniform(0.1, 0.9, 2))],
        occluder_window=[o0, o0 + ow],
        noise=float(rng.uniform(0, 5)),
        crf=int(rng.integers(18, 29)),
    )
