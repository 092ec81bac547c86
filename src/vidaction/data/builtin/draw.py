"""Drawing: background, camera, figure, props and nuisances; `render_clip` makes one clip."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from vidaction.data.builtin.actions import _sitting, pose_at
from vidaction.data.builtin.actors import Actor
from vidaction.data.builtin.body import (
    _L_ANKLE,
    _R_ANKLE,
    JOINT_NAMES,
    Pose,
    _Body,
    _body,
    _plant,
    _view,
    skeleton,
)
from vidaction.data.builtin.scene import ClipParams

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
