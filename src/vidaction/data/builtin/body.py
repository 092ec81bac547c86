"""The body: forward kinematics from a Pose to 3-D joints, and the camera's view of them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidaction.data.builtin.actions import Pose
from vidaction.data.builtin.actors import Actor

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

# Body heights as units. Body frame: x = figure's left, y = up, z = figure's front.


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
