"""The built-in dataset: rendered people performing actions, written as real video files.

There is no internet here, so the offline default dataset is one we draw ourselves. A small 3-D
skeleton (forward kinematics from joint angles, orthographic camera) is drawn with filled,
antialiased limbs. The classes are chosen so that one frame is not enough: some repeat a motion
(jumping_jacks, squats, ...) and some come in pairs that differ only in direction or order
(sit_down / stand_up, raise_arms / lower_arms, turn_left / turn_right). Do not train with
horizontal flips when turn_left / turn_right are in the class list: a mirrored left turn is a
right turn.

Layout written by `render_dataset`::

    out/classes.txt                       sorted class names, one per line
    out/manifest.json                     render settings + one record per clip
    out/<split>/<class>/<clip>.mp4        H.264, RGB, `size` x `size`
    out/<split>/<class>/<clip>.joints.npy float32 (frames, 17, 2), pixel (x, y), order JOINT_NAMES

Actors (body proportions + clothes) belong to exactly one split, so val/test measure how well a
model generalises to people it has not seen.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from vidaction.io.writer import write_atomic

FORMAT_VERSION = 1

BUILTIN_CLASSES: list[str] = [
    "arm_circles",
    "bow",
    "clap",
    "jumping_jacks",
    "kick",
    "lower_arms",
    "punch",
    "raise_arms",
    "sit_down",
    "squats",
    "stand_up",
    "turn_left",
    "turn_right",
    "wave_one_hand",
]

# Order of the joints in the `.joints.npy` files ("r_" is the figure's own right side).
JOINT_NAMES: list[str] = [
    "head", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "pelvis",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_toe", "l_toe",
]

SPLITS = ("train", "val", "test")
N_ACTORS = 24  # split between train/val/test in the split proportions


# ---------------------------------------------------------------------------------------------
# Parameters


@dataclass
class Actor:
    """A person: proportions and clothes. Held by one split only."""

    id: int
    height: float = 1.0          # multiplies the clip's figure scale
    arm: float = 1.0             # limb-length multipliers
    leg: float = 1.0
    torso: float = 1.0
    shoulders: float = 1.0       # shoulder half-width multiplier
    girth: float = 1.0           # limb/torso thickness multiplier
    head: float = 1.0
    skin: tuple[int, int, int] = (224, 180, 150)
    hair: tuple[int, int, int] = (60, 40, 30)
    shirt: tuple[int, int, int] = (200, 60, 60)
    trousers: tuple[int, int, int] = (50, 60, 110)
    shoes: tuple[int, int, int] = (30, 30, 30)
    long_sleeves: bool = False


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


def _rgb(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> tuple:
    h = float(rng.uniform(0, 180))
    hsv = np.uint8([[[h, rng.uniform(*s) * 255, rng.uniform(*v) * 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def sample_actor(seed: int, actor_id: int) -> Actor:
    """One actor, the same for the same (seed, id) whatever else is rendered."""
    rng = np.random.default_rng([seed, 1, actor_id])
    skins = np.array([[255, 219, 190], [234, 189, 157], [198, 140, 100], [141, 85, 54],
                      [90, 56, 37]], float)
    t = rng.uniform(0, len(skins) - 1)
    i = min(int(t), len(skins) - 2)
    skin = skins[i] * (1 - (t - i)) + skins[i + 1] * (t - i)
    hairs = [(20, 20, 20), (70, 45, 25), (140, 90, 40), (200, 170, 100), (150, 150, 150)]
    trousers = [(40, 60, 110), (30, 30, 35), (170, 150, 110), (90, 90, 95), (60, 80, 50)]
    tr = trousers[rng.integers(len(trousers))] if rng.random() < 0.7 else _rgb(
        rng, (0.3, 0.8), (0.25, 0.7))
    return Actor(
        id=actor_id,
        height=float(rng.uniform(0.9, 1.05)),
        arm=float(rng.uniform(0.92, 1.08)),
        leg=float(rng.uniform(0.92, 1.08)),
        torso=float(rng.uniform(0.92, 1.08)),
        shoulders=float(rng.uniform(0.85, 1.15)),
        girth=float(rng.uniform(0.8, 1.25)),
        head=float(rng.uniform(0.9, 1.1)),
        skin=tuple(int(c) for c in skin),
        hair=hairs[rng.integers(len(hairs))],
        shirt=_rgb(rng, (0.45, 0.95), (0.45, 0.95)),
        trousers=tuple(int(c) for c in tr),
        shoes=tuple(int(c) for c in rng.integers(15, 70, 3)),
        long_sleeves=bool(rng.random() < 0.5),
    )


# Repetitions over a clip for the repeated actions (at 3 s that is a natural tempo).
_REPS = {"jumping_jacks": (2, 4), "squats": (2, 3), "wave_one_hand": (4, 7), "clap": (4, 7),
         "punch": (2, 4), "kick": (2, 3), "arm_circles": (2, 4), "bow": (1, 2)}


# Where the camera stands (degrees off the front): forward movements read best from the side,
# sideways ones from the front.
_VIEW = {"punch": (35, 70), "kick": (35, 75), "bow": (40, 80), "squats": (30, 70),
         "sit_down": (30, 70), "stand_up": (30, 70), "clap": (5, 40), "jumping_jacks": (0, 40),
         "turn_left": (0, 45), "turn_right": (0, 45), "wave_one_hand": (0, 45)}


VARIATIONS = ("full", "low")


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
    `variation="low"` drops the nuisances (see _low_variation); the draws stay the same."""
    p = _sample_params(class_name, seed, actor)
    return _low_variation(p) if variation == "low" else p


def _sample_params(class_name: str, seed: int, actor: Actor | None = None) -> ClipParams:
    rng = np.random.default_rng([seed, 2])
    actor = actor or sample_actor(seed, 0)
    lo, hi = _REPS.get(class_name, (1, 1))
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
        view_yaw=float(rng.choice([-1, 1]) * rng.uniform(*_VIEW.get(class_name, (15, 55)))),
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


# ---------------------------------------------------------------------------------------------
# Poses and actions. Angles in degrees. A segment's direction is given by (abduction a, flexion f):
# a swings it out sideways, f swings it forward; (0, 0) hangs straight down, (180, *) or (0, 180)
# points straight up. Arm angles are relative to the torso (which leans by `pitch`).


@dataclass
class Pose:
    yaw: float = 0.0       # body turn to its own left (on top of the clip's view yaw)
    pitch: float = 0.0     # torso lean forward
    hop: float = 0.0       # lift off the ground, in body heights
    plant: int = 0         # which feet stay in place: 0 both, -1 right, +1 left
    r_arm: tuple = (6.0, 0.0)
    r_fore: tuple = (4.0, 8.0)
    l_arm: tuple = (6.0, 0.0)
    l_fore: tuple = (4.0, 8.0)
    r_thigh: tuple = (3.0, 0.0)
    r_shin: tuple = (2.0, 0.0)
    l_thigh: tuple = (3.0, 0.0)
    l_shin: tuple = (2.0, 0.0)


def _lerp(a, b, s: float):
    if isinstance(a, tuple):
        return tuple(x + (y - x) * s for x, y in zip(a, b, strict=True))
    return a + (b - a) * s


def _up_down(phase: float) -> float:
    """0 -> 1 -> 0 over one cycle, smooth."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * phase)


def _smooth(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return s * s * (3 - 2 * s)


def jumping_jacks(ph: float, p: ClipParams) -> Pose:
    s = _up_down(ph)
    arm = 8 + 160 * s
    leg = 3 + 16 * s
    return Pose(r_arm=(arm, 0), r_fore=(arm + 8 * s, 0), l_arm=(arm, 0), l_fore=(arm + 8 * s, 0),
                r_thigh=(leg, 0), r_shin=(leg, 0), l_thigh=(leg, 0), l_shin=(leg, 0),
                hop=0.035 * abs(math.sin(2 * math.pi * ph)))


def squats(ph: float, p: ClipParams) -> Pose:
    s = _up_down(ph)
    pitch = 40 * s
    arm = (6 - 2 * s, 85 * s - pitch * 0.4)
    fore = (4 - 4 * s, 8 + 80 * s - pitch * 0.4)
    thigh, shin = (6 + 4 * s, 95 * s), (4 + 2 * s, -35 * s)
    return Pose(pitch=pitch, r_arm=arm, r_fore=fore, l_arm=arm, l_fore=fore,
                r_thigh=thigh, r_shin=shin, l_thigh=thigh, l_shin=shin)


def wave_one_hand(ph: float, p: ClipParams) -> Pose:
    w = math.sin(2 * math.pi * ph)
    wave = ((115, 10), (165 + 28 * w, 10))
    pose = Pose()
    if p.side > 0:
        pose.l_arm, pose.l_fore = wave
    else:
        pose.r_arm, pose.r_fore = wave
    return pose


def clap(ph: float, p: ClipParams) -> Pose:
    s = _up_down(ph) ** 0.6  # 0 = hands together, 1 = apart
    arm = (14 + 40 * s, 52 - 10 * s)
    fore = (-62 + 95 * s, 98 - 10 * s)
    return Pose(r_arm=arm, r_fore=fore, l_arm=arm, l_fore=fore)


def punch(ph: float, p: ClipParams) -> Pose:
    guard_arm, guard_fore = (14, 35), (-15, 150)
    out_arm, out_fore = (2, 88), (0, 90)
    lead = ph < 0.5
    local = (ph % 0.5) * 2
    ext = math.sin(math.pi * min(local / 0.6, 1.0)) ** 0.6 if local < 0.6 else 0.0
    a, f = _lerp(guard_arm, out_arm, ext), _lerp(guard_fore, out_fore, ext)
    twist = 14 * ext * (1 if lead else -1) * p.side
    pose = Pose(r_arm=guard_arm, r_fore=guard_fore, l_arm=guard_arm, l_fore=guard_fore,
                yaw=twist, r_thigh=(8, -5), l_thigh=(8, 8), r_shin=(6, -5), l_shin=(6, 0))
    if lead == (p.side > 0):
        pose.l_arm, pose.l_fore = a, f
    else:
        pose.r_arm, pose.r_fore = a, f
    return pose


def kick(ph: float, p: ClipParams) -> Pose:
    # chamber (knee up), extend, retract, stand
    if ph < 0.25:
        s = _smooth(ph / 0.25)
        thigh, shin = (3, 75 * s), (2, -30 * s)
    elif ph < 0.45:
        s = _smooth((ph - 0.25) / 0.2)
        thigh, shin = (3, 75 + 10 * s), (2, -30 + 115 * s)
    elif ph < 0.7:
        s = _smooth((ph - 0.45) / 0.25)
        thigh, shin = (3, 85 - 85 * s), (2, 85 - 85 * s)
    else:
        thigh, shin = (3, 0), (2, 0)
    guard_arm, guard_fore = (18, 30), (-10, 135)
    pose = Pose(r_arm=guard_arm, r_fore=guard_fore, l_arm=guard_arm, l_fore=guard_fore,
                pitch=-8 * (thigh[1] / 85), plant=-p.side)
    if p.side > 0:
        pose.l_thigh, pose.l_shin = thigh, shin
    else:
        pose.r_thigh, pose.r_shin = thigh, shin
    return pose


def arm_circles(ph: float, p: ClipParams) -> Pose:
    f = 360 * ph * (1 if p.side > 0 else -1)
    arm = (12, f)
    return Pose(r_arm=arm, r_fore=(12, f + 5), l_arm=arm, l_fore=(12, f + 5))


def bow(ph: float, p: ClipParams) -> Pose:
    # down, hold, up, rest
    if ph < 0.3:
        s = _smooth(ph / 0.3)
    elif ph < 0.45:
        s = 1.0
    elif ph < 0.75:
        s = 1 - _smooth((ph - 0.45) / 0.3)
    else:
        s = 0.0
    depth = 55 + 25 * p.amount
    return Pose(pitch=depth * s, r_arm=(4, -5 * s), l_arm=(4, -5 * s), r_fore=(3, 0),
                l_fore=(3, 0), r_thigh=(3, -8 * s), l_thigh=(3, -8 * s))


def _sitting(s: float) -> Pose:
    """s = 0 standing, 1 seated; the lean forward peaks in the middle of the movement."""
    lean = 38 * math.sin(math.pi * s) + 8 * s
    thigh = (6 + 6 * s, 90 * s)
    shin = (3 + 3 * s, 0.0)
    arm = (8 - 2 * s, 35 * math.sin(math.pi * s) + 25 * s)
    fore = (2, 10 + 45 * math.sin(math.pi * s) + 45 * s)
    return Pose(pitch=lean, r_thigh=thigh, l_thigh=thigh, r_shin=shin, l_shin=shin,
                r_arm=arm, l_arm=arm, r_fore=fore, l_fore=fore)


def sit_down(s: float, p: ClipParams) -> Pose:
    return _sitting(s)


def stand_up(s: float, p: ClipParams) -> Pose:
    return _sitting(1 - s)


def _arms_up(s: float) -> Pose:
    a = 6 + 166 * s
    return Pose(r_arm=(a, 10 * math.sin(math.pi * s)), l_arm=(a, 10 * math.sin(math.pi * s)),
                r_fore=(a + 4, 8 * (1 - s)), l_fore=(a + 4, 8 * (1 - s)))


def raise_arms(s: float, p: ClipParams) -> Pose:
    return _arms_up(s)


def lower_arms(s: float, p: ClipParams) -> Pose:
    return _arms_up(1 - s)


def turn_left(s: float, p: ClipParams) -> Pose:
    # Centred on the clip's view: left and right turns sweep the same range of facings in
    # opposite orders, so a single frame cannot tell them apart.
    pose = Pose(yaw=(90 + 90 * p.amount) * (s - 0.5))
    swing = 12 * math.sin(math.pi * s)
    pose.r_arm, pose.l_arm = (6, swing), (6, -swing)
    return pose


def turn_right(s: float, p: ClipParams) -> Pose:
    pose = turn_left(s, p)
    pose.yaw = -pose.yaw
    return pose


# Repeated actions take the phase of the current cycle; one-shot actions take the progress of
# their single movement (0 before it starts, 1 after it ends).
CYCLIC: dict[str, Callable[[float, ClipParams], Pose]] = {
    "jumping_jacks": jumping_jacks, "squats": squats, "wave_one_hand": wave_one_hand,
    "clap": clap, "punch": punch, "kick": kick, "arm_circles": arm_circles, "bow": bow,
}
ONE_SHOT: dict[str, Callable[[float, ClipParams], Pose]] = {
    "sit_down": sit_down, "stand_up": stand_up, "raise_arms": raise_arms,
    "lower_arms": lower_arms, "turn_left": turn_left, "turn_right": turn_right,
}


def pose_at(class_name: str, u: float, p: ClipParams) -> Pose:
    """Pose at clip time u in [0, 1)."""
    if class_name in CYCLIC:
        w = p.tempo_wobble / (2 * math.pi) * (
            math.sin(2 * math.pi * u + p.wobble_phase) - math.sin(p.wobble_phase))
        ph = (p.phase + p.reps * (u + w * 0.3)) % 1.0
        return CYCLIC[class_name](ph, p)
    if class_name in ONE_SHOT:
        s = _smooth((u - p.t_start) / max(p.t_end - p.t_start, 1e-3))
        return ONE_SHOT[class_name](s, p)
    raise ValueError(f"unknown built-in class {class_name!r}; known: {', '.join(BUILTIN_CLASSES)}")


# ---------------------------------------------------------------------------------------------
# Skeleton (body heights as units). Body frame: x = figure's left, y = up, z = figure's front.


def _dir(a: float, f: float, side: int) -> np.ndarray:
    a, f = math.radians(a), math.radians(f)
    return np.array([side * math.sin(a), -math.cos(a) * math.cos(f), math.cos(a) * math.sin(f)])


def _pitch(v: np.ndarray, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([v[0], v[1] * c - v[2] * s, v[1] * s + v[2] * c])


@dataclass
class _Body:
    torso: float
    neck: float
    head_r: float
    shoulder_w: float
    hip_w: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    foot: float
    ankle_h: float
    w_arm: float
    w_fore: float
    w_thigh: float
    w_shin: float
    w_torso: float


def _body(a: Actor) -> _Body:
    g = a.girth
    return _Body(torso=0.29 * a.torso, neck=0.045, head_r=0.063 * a.head,
                 shoulder_w=0.1 * a.shoulders, hip_w=0.058 * (0.5 + 0.5 * g),
                 upper_arm=0.165 * a.arm, forearm=0.15 * a.arm, thigh=0.235 * a.leg,
                 shin=0.235 * a.leg, foot=0.06, ankle_h=0.025,
                 w_arm=0.048 * g, w_fore=0.04 * g, w_thigh=0.07 * g, w_shin=0.055 * g,
                 w_torso=0.12 * g)


def skeleton(pose: Pose, b: _Body) -> np.ndarray:
    """Joint positions (17, 3) in the body frame, feet on the ground (y = 0), before the turn."""
    up = _pitch(np.array([0.0, 1.0, 0.0]), pose.pitch)
    pelvis = np.zeros(3)
    neck = pelvis + b.torso * up
    head = neck + (b.neck + b.head_r) * up
    j = {"head": head, "neck": neck, "pelvis": pelvis}
    for side, n in ((-1, "r"), (1, "l")):
        sh = neck - 0.025 * up + np.array([side * b.shoulder_w, 0.0, 0.0])
        arm, fore = getattr(pose, f"{n}_arm"), getattr(pose, f"{n}_fore")
        el = sh + b.upper_arm * _pitch(_dir(*arm, side), pose.pitch)
        wr = el + b.forearm * _pitch(_dir(*fore, side), pose.pitch)
        hip = pelvis + np.array([side * b.hip_w, 0.0, 0.0])
        kn = hip + b.thigh * _dir(*getattr(pose, f"{n}_thigh"), side)
        an = kn + b.shin * _dir(*getattr(pose, f"{n}_shin"), side)
        toe = an + np.array([0.0, -b.ankle_h * 0.6, b.foot])
        j.update({f"{n}_shoulder": sh, f"{n}_elbow": el, f"{n}_wrist": wr, f"{n}_hip": hip,
                  f"{n}_knee": kn, f"{n}_ankle": an, f"{n}_toe": toe})
    pts = np.stack([j[k] for k in JOINT_NAMES])
    pts[:, 1] += b.ankle_h - min(pts[11, 1], pts[14, 1]) + pose.hop
    return pts


_R_ANKLE, _L_ANKLE = JOINT_NAMES.index("r_ankle"), JOINT_NAMES.index("l_ankle")


def _plant(pts: np.ndarray, rest: np.ndarray, plant: int) -> np.ndarray:
    """Shift the body so the planted feet stay where they stand at rest (no sliding)."""
    idx = {0: [_R_ANKLE, _L_ANKLE], -1: [_R_ANKLE], 1: [_L_ANKLE]}[plant]
    d = rest[idx].mean(0) - pts[idx].mean(0)
    pts[:, 0] += d[0]
    pts[:, 2] += d[2]
    return pts


def _view(pts: np.ndarray, yaw: float, elevation: float) -> np.ndarray:
    """Turn by `yaw`, then look down by `elevation`: columns (right, up, towards camera)."""
    q = _yaw(pts, yaw)
    c, s = math.cos(math.radians(elevation)), math.sin(math.radians(elevation))
    out = q.copy()
    out[:, 1] = q[:, 1] * c - q[:, 2] * s
    out[:, 2] = q[:, 1] * s + q[:, 2] * c
    return out


def _yaw(pts: np.ndarray, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    out = pts.copy()
    out[:, 0] = pts[:, 0] * c + pts[:, 2] * s
    out[:, 2] = -pts[:, 0] * s + pts[:, 2] * c
    return out


# ---------------------------------------------------------------------------------------------
# Drawing

_SHIFT = 4
_ONE = 1 << _SHIFT


def _fx(p) -> tuple[int, int]:
    return int(p[0] * _ONE + 0.5), int(p[1] * _ONE + 0.5)


def _capsule(img: np.ndarray, a, b, width: float, color) -> None:
    w = max(int(round(width)), 1)
    cv2.line(img, _fx(a), _fx(b), color, w, cv2.LINE_AA, _SHIFT)
    r = int(round(width / 2 * _ONE))
    cv2.circle(img, _fx(a), r, color, -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(img, _fx(b), r, color, -1, cv2.LINE_AA, _SHIFT)


def _bar(img: np.ndarray, a, b, width: float, color) -> None:
    """A rectangle from a to b: a limb end that should not look rounded."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-6) * width / 2
    quad = np.array([a + n, b + n, b - n, a - n])
    cv2.fillConvexPoly(img, np.round(quad * _ONE).astype(np.int32), color, cv2.LINE_AA, _SHIFT)


def _shade(color, factor: float) -> tuple:
    return tuple(int(min(255, c * factor)) for c in color)


def _background(p: ClipParams, size: int) -> np.ndarray:
    rng = np.random.default_rng([p.seed, 3])
    c = np.array(p.bg_colors, np.float32)
    if p.background == "flat":
        img = np.empty((size, size, 3), np.float32)
        img[:] = c[0]
    elif p.background == "gradient":
        t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
        if rng.random() < 0.5:
            t = t.transpose(1, 0, 2)
        img = np.broadcast_to(c[0] * (1 - t) + c[1] * t, (size, size, 3)).copy()
    elif p.background == "noise":
        g = int(rng.integers(3, 8))
        low = rng.random((g, g, 1)).astype(np.float32)
        t = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]
        img = c[0] * (1 - t) + c[1] * t
        img += rng.normal(0, 6, (size, size, 1)).astype(np.float32)
    else:  # textured: tiles, stripes or a checkerboard, softened
        img = np.empty((size, size, 3), np.float32)
        img[:] = c[0]
        cell = int(max(4, size * rng.uniform(0.06, 0.16)))
        yy, xx = np.mgrid[0:size, 0:size]
        kind = int(rng.integers(3))
        if kind == 0:
            mask = ((yy // cell) + (xx // cell)) % 2 == 0
        elif kind == 1:
            mask = ((xx + yy * rng.uniform(-0.5, 0.5)) // cell) % 2 == 0
        else:  # bricks
            row = yy // cell
            mask = (((xx + (row % 2) * cell) % (2 * cell)) < 2) | (yy % cell < 2)
        img[mask] = c[1]
        img = cv2.GaussianBlur(img, (0, 0), 0.8)
        img += (c[2] - c[0]) * np.linspace(0, 0.5, size, dtype=np.float32)[:, None, None]
    if p.floor:
        top = int(p.ground_y * size - p.scale * size * 0.06)
        fl = np.array(p.floor_color, np.float32)
        shade = np.linspace(0.85, 1.1, size - top, dtype=np.float32)[:, None, None]
        img[top:] = 0.25 * img[top:] + 0.75 * fl * shade
    return np.clip(img, 0, 255).astype(np.uint8)


def _camera(p: ClipParams, size: int, n_frames: int) -> np.ndarray:
    """(T, 2, 3) affine matrices: slow zoom about the centre plus smooth hand-held shake."""
    rng = np.random.default_rng([p.seed, 4])
    t = np.arange(n_frames) / max(n_frames, 1)
    freq = rng.uniform(1.0, 6.0, (2, 3))
    ph = rng.uniform(0, 2 * np.pi, (2, 3))
    shake = np.sin(2 * np.pi * freq[..., None] * t + ph[..., None]).sum(1) / 3 * p.shake * size
    zoom = p.zoom_start + (p.zoom_end - p.zoom_start) * t
    c = size / 2
    m = np.zeros((n_frames, 2, 3), np.float64)
    m[:, 0, 0] = m[:, 1, 1] = zoom
    m[:, 0, 2] = c - zoom * c + shake[0]
    m[:, 1, 2] = c - zoom * c + shake[1]
    return m


def _draw_chair(img, p: ClipParams, seated: np.ndarray, yaw: float, to_px) -> None:
    pel = seated[JOINT_NAMES.index("pelvis")]
    seat_y = pel[1] - 0.03
    front, back = pel[2] + 0.12, pel[2] - 0.1
    corners = []
    for z in (front, back):
        for x in (-0.1, 0.1):
            corners.append([x, seat_y, z])
    c = np.array(corners)
    legs = [(k, np.array([c[k, 0], 0.0, c[k, 2]])) for k in range(4)]
    top = np.array([[-0.1, seat_y + 0.22, back], [0.1, seat_y + 0.22, back]])
    pts = _view(np.vstack([c, [q for _, q in legs], top]), yaw, p.elevation)
    px = to_px(pts)
    col = (95, 70, 45)
    w = max(2.0, 0.025 * p.scale * img.shape[0])
    for k in range(4):
        _capsule(img, px[k], px[4 + k], w, _shade(col, 0.8))
    _capsule(img, px[2], px[8], w, col)
    _capsule(img, px[3], px[9], w, col)
    _capsule(img, px[8], px[9], w * 1.4, col)
    hull = cv2.convexHull(np.array([_fx(q) for q in px[:4]], np.int32))
    cv2.fillConvexPoly(img, hull, _shade(col, 1.2), cv2.LINE_AA, _SHIFT)


def _draw_figure(img, P: np.ndarray, Z: np.ndarray, yaw: float, b: _Body, a: Actor,
                 px_per_unit: float) -> None:
    """P: (17, 2) pixel positions, Z: (17,) depth towards the camera (body heights)."""
    J = {n: i for i, n in enumerate(JOINT_NAMES)}
    items: list[tuple[float, Callable[[], None]]] = []

    def depth_shade(color, z):
        return _shade(color, 1.0 - 0.28 * min(max(-z / 0.12, 0.0), 1.0))

    def limb(j0, j1, width, color, bias=0.0):
        z = (Z[J[j0]] + Z[J[j1]]) / 2
        items.append((z + bias, lambda: _capsule(img, P[J[j0]], P[J[j1]], width * px_per_unit,
                                                 depth_shade(color, z))))

    sleeve = a.shirt if a.long_sleeves else a.skin
    for n in ("r", "l"):
        limb(f"{n}_hip", f"{n}_knee", b.w_thigh, a.trousers)
        limb(f"{n}_knee", f"{n}_ankle", b.w_shin, a.trousers)
        limb(f"{n}_ankle", f"{n}_toe", b.w_shin * 0.8, a.shoes, -0.001)
        limb(f"{n}_shoulder", f"{n}_elbow", b.w_arm, a.shirt, 0.002)
        limb(f"{n}_elbow", f"{n}_wrist", b.w_fore, sleeve, 0.003)
        w = J[f"{n}_wrist"]
        z = Z[w] + 0.004
        items.append((z, lambda w=w, z=z: cv2.circle(
            img, _fx(P[w]), int(b.w_fore * 0.62 * px_per_unit * _ONE),
            depth_shade(a.skin, z), -1, cv2.LINE_AA, _SHIFT)))

    def torso():
        quad = np.array([P[J["r_shoulder"]], P[J["l_shoulder"]], P[J["l_hip"]],
                         P[J["r_hip"]]])
        hull = cv2.convexHull(np.round(quad * _ONE).astype(np.int32))
        cv2.fillConvexPoly(img, hull, a.shirt, cv2.LINE_AA, _SHIFT)
        chest = P[J["neck"]] * 0.85 + P[J["pelvis"]] * 0.15
        _capsule(img, chest, P[J["pelvis"]] * 0.8 + P[J["neck"]] * 0.2,
                 b.w_torso * px_per_unit * 1.25, a.shirt)
        # trousers up to the waist
        up = (P[J["neck"]] - P[J["pelvis"]]) * 0.18
        hips = np.array([P[J["r_hip"]], P[J["l_hip"]]])
        band = np.concatenate([hips - up * 0.4, hips[::-1] + up])
        cv2.fillConvexPoly(img, cv2.convexHull(np.round(band * _ONE).astype(np.int32)),
                           a.trousers, cv2.LINE_AA, _SHIFT)
        _bar(img, P[J["pelvis"]] - up * 0.4, P[J["pelvis"]] + up, b.w_torso * 1.2 * px_per_unit,
             a.trousers)
        for n in ("r", "l"):
            _capsule(img, P[J[f"{n}_shoulder"]], P[J[f"{n}_shoulder"]],
                     b.w_arm * 1.15 * px_per_unit, a.shirt)

    items.append((float(Z[J["pelvis"]] + Z[J["neck"]]) / 2 - 0.001, torso))

    def head():
        h, neck = P[J["head"]], P[J["neck"]]
        r = b.head_r * px_per_unit
        _capsule(img, neck, h * 0.5 + neck * 0.5, b.w_fore * px_per_unit, a.skin)
        fwd = np.array([math.sin(math.radians(yaw)), math.cos(math.radians(yaw))])
        up = h - neck
        up = up / (np.linalg.norm(up) + 1e-6)
        back = np.array([-fwd[0], 0.0]) * r * 0.35 + up * r * 0.25
        if fwd[1] >= 0:  # face visible: hair behind and above the face
            cv2.circle(img, _fx(h + back), int(r * 0.95 * _ONE), a.hair, -1, cv2.LINE_AA,
                       _SHIFT)
            cv2.circle(img, _fx(h), int(r * _ONE), a.skin, -1, cv2.LINE_AA, _SHIFT)
            cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
            for ex in (-0.36, 0.36):
                x, z = ex * cy + 0.9 * sy, -ex * sy + 0.9 * cy
                if z > 0.25:
                    cv2.circle(img, _fx(h + np.array([x * r, r * 0.1])),
                               int(max(r * 0.11, 0.5) * _ONE), (35, 30, 30), -1,
                               cv2.LINE_AA, _SHIFT)
        else:  # seen from behind: mostly hair
            cv2.circle(img, _fx(h), int(r * _ONE), a.skin, -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(img, _fx(h + up * r * 0.12), int(r * 0.97 * _ONE), a.hair, -1,
                       cv2.LINE_AA, _SHIFT)

    items.append((float(Z[J["head"]]), head))
    items.sort(key=lambda it: it[0])
    for _, draw in items:
        draw()


def render_clip(class_name: str, params: ClipParams, size: int = 128,
                n_frames: int = 75) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) RGB uint8 and joints (T, 17, 2) float32 pixel (x, y) of one clip."""
    p, a = params, params.actor
    b = _body(a)
    bg = _background(p, size)
    cam = _camera(p, size, n_frames)
    rng = np.random.default_rng([p.seed, 5])
    px_per_unit = p.scale * a.height * size
    cx, gy = p.center_x * size, p.ground_y * size
    rest = skeleton(Pose(), b)
    seated = _plant(skeleton(_sitting(1.0), b), rest, 0) if class_name in (
        "sit_down", "stand_up") else None
    lut_x = np.arange(256, dtype=np.float32)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    joints = np.empty((n_frames, len(JOINT_NAMES), 2), np.float32)
    prev = None
    for i in range(n_frames):
        u = i / n_frames
        pose = pose_at(class_name, u, p)
        yaw = p.view_yaw + pose.yaw
        body = _plant(skeleton(pose, b), rest, pose.plant)
        pts = _view(body, yaw, p.elevation)
        m = cam[i]

        def to_px(q, m=m):
            uv = np.stack([cx + q[:, 0] * px_per_unit, gy - q[:, 1] * px_per_unit], 1)
            return uv @ m[:, :2].T + m[:, 2]

        P = to_px(pts)
        joints[i] = P
        img = cv2.warpAffine(bg, m, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        # soft shadow on the ground
        ground = body[[_R_ANKLE, _L_ANKLE]].mean(0) * [1, 0, 1]
        foot = to_px(_view(ground[None], yaw, p.elevation))[0]
        sh = img.copy()
        flat = 0.02 + 0.16 * math.sin(math.radians(p.elevation))
        cv2.ellipse(sh, _fx(foot), (int(0.16 * px_per_unit * _ONE),
                                    int(flat * px_per_unit * _ONE)),
                    0, 0, 360, (0, 0, 0), -1, cv2.LINE_AA, _SHIFT)
        cv2.addWeighted(sh, 0.3, img, 0.7, 0, img)
        if seated is not None:
            _draw_chair(img, p, seated, p.view_yaw, to_px)
        distractor = _distractor_drawer(p, u, size)
        if distractor and not p.distractor_front:
            distractor(img)
        _draw_figure(img, P, pts[:, 2], yaw, b, a, px_per_unit)
        if distractor and p.distractor_front:
            distractor(img)
        if p.occluder and p.occluder_window[0] <= u < p.occluder_window[1]:
            s = (u - p.occluder_window[0]) / (p.occluder_window[1] - p.occluder_window[0])
            x = (p.occluder_path[0] + (p.occluder_path[1] - p.occluder_path[0]) * s) * size
            hw = p.occluder_width * size / 2
            cv2.rectangle(img, (int(x - hw), -1), (int(x + hw), size), p.occluder_color, -1)
        if prev is not None and p.blur > 0:
            cv2.addWeighted(img, 1 - p.blur, prev, p.blur, 0, img)
        prev = img
        gain = p.gain * (1 + p.flicker * math.sin(2 * math.pi * 3 * u + p.seed % 7))
        lut = np.clip((lut_x - 128) * p.contrast * gain + 128 * gain, 0, 255).astype(np.uint8)
        out = cv2.LUT(img, lut)
        if p.noise > 0:
            noise = rng.standard_normal((size, size, 1), np.float32) * p.noise
            out = np.clip(out + noise, 0, 255).astype(np.uint8)
        frames[i] = out
    return frames, joints


def _distractor_drawer(p: ClipParams, u: float, size: int):
    if p.distractor == "none":
        return None
    (x0, y0), (x1, y1) = p.distractor_path
    x, y = (x0 + (x1 - x0) * u) * size, (y0 + (y1 - y0) * u) * size
    y -= abs(math.sin(2 * math.pi * 2 * u)) * 0.1 * size if p.distractor == "ball" else 0
    r = p.distractor_size * size / 2

    def draw(img):
        if p.distractor == "ball":
            cv2.circle(img, _fx((x, y)), int(r * _ONE), p.distractor_color, -1, cv2.LINE_AA,
                       _SHIFT)
            cv2.circle(img, _fx((x - r * 0.3, y - r * 0.3)), int(r * 0.3 * _ONE),
                       _shade(p.distractor_color, 1.3), -1, cv2.LINE_AA, _SHIFT)
        else:
            ang = 360 * u * (1 if x1 > x0 else -1)
            box = cv2.boxPoints(((x, y), (2 * r, 2 * r), ang))
            cv2.fillConvexPoly(img, np.round(box * _ONE).astype(np.int32), p.distractor_color,
                               cv2.LINE_AA, _SHIFT)

    return draw


# ---------------------------------------------------------------------------------------------
# The dataset on disk


def _split_counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Largest-remainder rounding; every split with a share gets at least one when n allows."""
    f = np.asarray(fractions, float) / sum(fractions)
    counts = np.floor(f * n).astype(int)
    for i in np.argsort(-(f * n - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    for i in np.flatnonzero((counts == 0) & (f > 0)):
        donor = int(np.argmax(counts))
        if counts[donor] > 1:
            counts[donor] -= 1
            counts[i] += 1
    return [int(c) for c in counts]


def _clip_seed(seed: int, class_name: str, split: int, index: int) -> int:
    ss = np.random.SeedSequence([seed, zlib.crc32(class_name.encode()), split, index])
    return int(ss.generate_state(1)[0])


def _plan(settings: dict) -> tuple[dict[str, list[int]], list[dict]]:
    """Actors per split and one job per clip, all derived from the settings alone."""
    fractions = tuple(settings["splits"])
    n_actors = max(N_ACTORS, sum(1 for f in fractions if f > 0))
    actor_counts = _split_counts(n_actors, fractions)
    actors, start = {}, 0
    for split, k in zip(SPLITS, actor_counts, strict=True):
        actors[split] = list(range(start, start + k))
        start += k
    clip_counts = _split_counts(settings["clips_per_class"], fractions)
    jobs = []
    for ci, cls in enumerate(settings["classes"]):
        for si, (split, k) in enumerate(zip(SPLITS, clip_counts, strict=True)):
            for i in range(k):
                actor = actors[split][(i + ci) % len(actors[split])]
                seed = _clip_seed(settings["seed"], cls, si, i)
                stem = f"{cls}_a{actor:02d}_{i:03d}"
                jobs.append({"split": split, "class": cls, "actor": actor, "seed": seed,
                             "path": f"{split}/{cls}/{stem}.mp4",
                             "joints": f"{split}/{cls}/{stem}.joints.npy"})
    return actors, jobs


def _render_job(job: dict, settings: dict, root: str) -> dict:
    from vidaction.io import write_video

    root_p = Path(root)
    actor = sample_actor(settings["seed"], job["actor"])
    params = sample_params(job["class"], job["seed"], actor,
                           settings.get("variation", "full"))
    n_frames = max(1, round(settings["seconds"] * settings["fps"]))
    video, joints_path = root_p / job["path"], root_p / job["joints"]
    if not (video.exists() and joints_path.exists()):
        frames, joints = render_clip(job["class"], params, settings["size"], n_frames)
        video.parent.mkdir(parents=True, exist_ok=True)
        tmp = joints_path.with_name(f".{joints_path.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, joints)
        os.replace(tmp, joints_path)
        write_video(video, frames, fps=settings["fps"],
                    options={"crf": str(params.crf), "threads": "1", "preset": "veryfast"})
    record = dict(job, frames=n_frames, params=asdict(params))
    record["params"]["actor"] = job["actor"]
    return record


def _clear(out: Path) -> None:
    for name in (*SPLITS, "classes.txt", "manifest.json", ".render.json"):
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def render_dataset(out: Path, classes: list[str] | None = None, clips_per_class: int = 30,
                   size: int = 128, seconds: float = 3.0, fps: int = 25, seed: int = 0,
                   splits: tuple[float, float, float] = (0.6, 0.2, 0.2), progress: bool = True,
                   force: bool = False, workers: int = 1, variation: str = "full") -> Path:
    """Render the built-in dataset into `out`; an existing render of the same settings is
    reused (or finished, if it was interrupted), a different one is only replaced with force."""
    out = Path(out)
    classes = sorted(set(classes or BUILTIN_CLASSES))
    unknown = [c for c in classes if c not in CYCLIC and c not in ONE_SHOT]
    if unknown:
        raise ValueError(f"unknown built-in classes {unknown}; known: {BUILTIN_CLASSES}")
    if len(splits) != 3 or min(splits) < 0 or not sum(splits) > 0:
        raise ValueError(f"splits must be three non-negative fractions (train, val, test), "
                         f"got {splits}")
    settings = {"format": FORMAT_VERSION, "classes": classes,
                "clips_per_class": int(clips_per_class), "size": int(size),
                "seconds": float(seconds), "fps": int(fps), "seed": int(seed),
                "splits": [float(s) for s in splits]}
    if variation not in VARIATIONS:
        raise ValueError(f"variation must be one of {', '.join(VARIATIONS)}, got {variation!r}")
    if variation != "full":  # absent for full, so earlier renders stay valid
        settings["variation"] = variation
    manifest_path, marker = out / "manifest.json", out / ".render.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}
        if old.get("settings") == settings and all(
                (out / c["path"]).exists() and (out / c["joints"]).exists()
                for c in old.get("clips", [])):
            return out
        if not force:
            raise ValueError(
                f"{out} already holds a different built-in dataset (settings "
                f"{old.get('settings')}); choose another folder or pass force=True to replace it")
        _clear(out)
    elif marker.exists():
        try:
            old_settings = json.loads(marker.read_text())
        except ValueError:
            old_settings = None
        if old_settings != settings:
            if not force:
                raise ValueError(f"{out} holds an unfinished render with other settings "
                                 f"({old_settings}); pass force=True to replace it")
            _clear(out)
    elif out.exists() and any(out.iterdir()):
        if not force:
            raise ValueError(f"{out} is not empty and holds no built-in dataset; "
                             f"choose an empty folder or pass force=True")
        _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(marker, json.dumps(settings).encode())

    actors, jobs = _plan(settings)
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="rendering clips", unit="clip", disable=not progress)
    records: list[dict] = []
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for rec in pool.map(_render_job, jobs, [settings] * len(jobs), [str(out)] * len(jobs),
                                chunksize=4):
                records.append(rec)
                bar.update()
    else:
        for job in jobs:
            records.append(_render_job(job, settings, str(out)))
            bar.update()
    bar.close()

    write_atomic(out / "classes.txt", ("\n".join(classes) + "\n").encode())
    manifest = {
        "settings": settings,
        "joint_names": JOINT_NAMES,
        "joints_format": "float32 (frames, joints, 2), pixel (x, y) in the video frame",
        "actors": actors,
        "actor_params": [asdict(sample_actor(seed, i)) for ids in actors.values() for i in ids],
        "clips": records,
    }
    write_atomic(manifest_path, json.dumps(manifest, indent=1).encode())
    marker.unlink(missing_ok=True)
    return out


def _clips_by_class(root: Path) -> dict[str, list[Path]]:
    manifest = root / "manifest.json"
    by_class: dict[str, list[Path]] = {}
    if manifest.exists():
        for c in json.loads(manifest.read_text())["clips"]:
            by_class.setdefault(c["class"], []).append(root / c["path"])
    else:
        from vidaction.io import VIDEO_EXTENSIONS

        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in VIDEO_EXTENSIONS:
                by_class.setdefault(p.parent.name, []).append(p)
    return dict(sorted(by_class.items()))


def preview_dataset(root: Path, out: Path, clips_per_class: int = 3,
                    frames_per_clip: int = 4, tile: int = 96) -> Path:
    """A contact sheet (PNG): one row per class, a few frames of a few clips, to eyeball a
    dataset before training on it."""
    from vidaction.io import probe, read_frames

    root, out = Path(root), Path(out)
    by_class = _clips_by_class(root)
    if not by_class:
        raise ValueError(f"{root}: no videos found")
    label_w, gap = 8 * max(len(c) for c in by_class) + 16, 4
    width = label_w + clips_per_class * (frames_per_clip * tile + gap)
    sheet = np.full((len(by_class) * (tile + gap) + gap, width, 3), 255, np.uint8)
    for r, (cls, paths) in enumerate(by_class.items()):
        y = gap + r * (tile + gap)
        cv2.putText(sheet, cls, (6, y + tile // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
        step = max(1, len(paths) // clips_per_class)
        for k, path in enumerate(paths[::step][:clips_per_class]):
            n = probe(path).frame_count
            idx = np.linspace(0, n - 1, frames_per_clip).round().astype(int).tolist()
            frames = read_frames(path, idx)
            for j, f in enumerate(frames):
                x = label_w + k * (frames_per_clip * tile + gap) + j * tile
                sheet[y:y + tile, x:x + tile] = cv2.resize(f, (tile, tile),
                                                           interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"could not encode {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, png.tobytes())
    return out
