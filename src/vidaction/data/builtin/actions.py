"""Actions: the pose of the body over time, one function per class.

A new action is one function here under `@cyclic(...)` (a repeated movement: it takes the
phase of the current cycle, 0..1) or `@one_shot(...)` (a single movement: it takes its
progress, 0 before it starts and 1 after it ends). The decorator registers it under the
function's name with how many repetitions a clip holds and where the camera stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vidaction.data.builtin.scene import ClipParams


@dataclass(frozen=True)
class Action:
    """One registered class: its pose function and how clips of it are drawn."""

    name: str
    pose: Callable[[float, ClipParams], Pose]
    cyclic: bool
    reps: tuple[int, int] = (1, 1)  # repetitions over a clip (at 3 s a natural tempo)
    # Where the camera stands (degrees off the front): forward movements read best from the
    # side, sideways ones from the front.
    view: tuple[float, float] = (15, 55)


ACTIONS: dict[str, Action] = {}


def _register(cyclic_: bool, reps: tuple[int, int], view: tuple[float, float]):
    def deco(fn):
        ACTIONS[fn.__name__] = Action(fn.__name__, fn, cyclic_, reps, view)
        return fn
    return deco


def cyclic(reps: tuple[int, int] = (1, 1), view: tuple[float, float] = (15, 55)):
    """Register a repeated action: `fn(phase, params) -> Pose`."""
    return _register(True, reps, view)


def one_shot(view: tuple[float, float] = (15, 55)):
    """Register a single movement: `fn(progress, params) -> Pose`."""
    return _register(False, (1, 1), view)


# Angles in degrees. A segment's direction is given by (abduction a, flexion f):
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


@cyclic(reps=(2, 4), view=(0, 40))
def jumping_jacks(ph: float, p: ClipParams) -> Pose:
    s = _up_down(ph)
    arm = 8 + 160 * s
    leg = 3 + 16 * s
    return Pose(r_arm=(arm, 0), r_fore=(arm + 8 * s, 0), l_arm=(arm, 0), l_fore=(arm + 8 * s, 0),
                r_thigh=(leg, 0), r_shin=(leg, 0), l_thigh=(leg, 0), l_shin=(leg, 0),
                hop=0.035 * abs(math.sin(2 * math.pi * ph)))


@cyclic(reps=(2, 3), view=(30, 70))
def squats(ph: float, p: ClipParams) -> Pose:
    s = _up_down(ph)
    pitch = 40 * s
    arm = (6 - 2 * s, 85 * s - pitch * 0.4)
    fore = (4 - 4 * s, 8 + 80 * s - pitch * 0.4)
    style = getattr(p, "arm_style", "swing")
    if style == "forward":  # held level in front, whatever the lean
        arm = fore = (5, 88 - pitch)
    elif style == "clasped":  # hands together in front of the chest
        arm, fore = (14, 52), (-62, 98)
    elif style == "hips":  # elbows out, hands on the hips
        arm, fore = (30, -20), (-40, 25)
    thigh, shin = (6 + 4 * s, 95 * s), (4 + 2 * s, -35 * s)
    return Pose(pitch=pitch, r_arm=arm, r_fore=fore, l_arm=arm, l_fore=fore,
                r_thigh=thigh, r_shin=shin, l_thigh=thigh, l_shin=shin)


@cyclic(reps=(4, 7), view=(0, 45))
def wave_one_hand(ph: float, p: ClipParams) -> Pose:
    w = math.sin(2 * math.pi * ph)
    wave = ((115, 10), (165 + 28 * w, 10))
    pose = Pose()
    if p.side > 0:
        pose.l_arm, pose.l_fore = wave
    else:
        pose.r_arm, pose.r_fore = wave
    return pose


@cyclic(reps=(4, 7), view=(5, 40))
def clap(ph: float, p: ClipParams) -> Pose:
    s = _up_down(ph) ** 0.6  # 0 = hands together, 1 = apart
    arm = (14 + 40 * s, 52 - 10 * s)
    fore = (-62 + 95 * s, 98 - 10 * s)
    return Pose(r_arm=arm, r_fore=fore, l_arm=arm, l_fore=fore)


@cyclic(reps=(2, 4), view=(35, 70))
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


@cyclic(reps=(2, 3), view=(35, 75))
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


@cyclic(reps=(2, 4))
def arm_circles(ph: float, p: ClipParams) -> Pose:
    f = 360 * ph * (1 if p.side > 0 else -1)
    arm = (12, f)
    return Pose(r_arm=arm, r_fore=(12, f + 5), l_arm=arm, l_fore=(12, f + 5))


@cyclic(reps=(1, 2), view=(40, 80))
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


@one_shot(view=(30, 70))
def sit_down(s: float, p: ClipParams) -> Pose:
    return _sitting(s)


@one_shot(view=(30, 70))
def stand_up(s: float, p: ClipParams) -> Pose:
    return _sitting(1 - s)


def _arms_up(s: float) -> Pose:
    a = 6 + 166 * s
    return Pose(r_arm=(a, 10 * math.sin(math.pi * s)), l_arm=(a, 10 * math.sin(math.pi * s)),
                r_fore=(a + 4, 8 * (1 - s)), l_fore=(a + 4, 8 * (1 - s)))


@one_shot()
def raise_arms(s: float, p: ClipParams) -> Pose:
    return _arms_up(s)


@one_shot()
def lower_arms(s: float, p: ClipParams) -> Pose:
    return _arms_up(1 - s)


@one_shot(view=(0, 45))
def turn_left(s: float, p: ClipParams) -> Pose:
    # Centred on the clip's view: left and right turns sweep the same range of facings in
    # opposite orders, so a single frame cannot tell them apart.
    pose = Pose(yaw=(90 + 90 * p.amount) * (s - 0.5))
    swing = 12 * math.sin(math.pi * s)
    pose.r_arm, pose.l_arm = (6, swing), (6, -swing)
    return pose


@one_shot(view=(0, 45))
def turn_right(s: float, p: ClipParams) -> Pose:
    pose = turn_left(s, p)
    pose.yaw = -pose.yaw
    return pose


def _held(ph: float, hold: float) -> float:
    """The cycle phase with `hold` of it spent still at phases 0 and 0.5 (the extremes of
    the up-down movements): a pause at the top and at the bottom of each repetition."""
    if hold <= 0:
        return ph
    half, q = divmod(ph, 0.5)
    h = hold / 2  # per extreme, half of it on either side
    return half * 0.5 + min(max((q - h / 2) / (0.5 - h), 0.0), 1.0) * 0.5


def pose_at(class_name: str, u: float, p: ClipParams) -> Pose:
    """Pose at clip time u in [0, 1)."""
    act = ACTIONS.get(class_name)
    if act is None:
        raise ValueError(f"unknown built-in class {class_name!r}; known: "
                         f"{', '.join(sorted(ACTIONS))}")
    if act.cyclic:
        w = p.tempo_wobble / (2 * math.pi) * (
            math.sin(2 * math.pi * u + p.wobble_phase) - math.sin(p.wobble_phase))
        ph = (p.phase + p.reps * (u + w * 0.3)) % 1.0
        return act.pose(_held(ph, getattr(p, "hold", 0.0)), p)
    s = _smooth((u - p.t_start) / max(p.t_end - p.t_start, 1e-3))
    return act.pose(s, p)



# The old names: the repeated and one-shot actions by name.
CYCLIC: dict[str, Callable] = {n: a.pose for n, a in ACTIONS.items() if a.cyclic}
ONE_SHOT: dict[str, Callable] = {n: a.pose for n, a in ACTIONS.items() if not a.cyclic}
