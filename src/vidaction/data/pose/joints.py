"""Joint names, left/right pairs and skeleton edges of each pose model.

MoveNet gives the 17 COCO keypoints; BlazePose gives 33 landmarks (a superset: see
`COCO_FROM_BLAZEPOSE`). Names and orders are the models' own output orders.
"""

from __future__ import annotations

import numpy as np

JOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

# (left, right) index pairs: a mirror swaps each pair (and negates x).
MIRROR_PAIRS: tuple[tuple[int, int], ...] = tuple((i, i + 1) for i in range(1, 17, 2))

# The MoveNet tutorial's skeleton (KEYPOINT_EDGE_INDS_TO_COLOR).
EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (0, 5), (0, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)

BLAZEPOSE_JOINTS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer", "left_ear", "right_ear",
    "mouth_left", "mouth_right", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

BLAZEPOSE_MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), *((i, i + 1) for i in range(11, 33, 2)))

# MediaPipe's POSE_CONNECTIONS.
BLAZEPOSE_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)

# BlazePose landmark index of each COCO-17 joint, in JOINTS order.
COCO_FROM_BLAZEPOSE: tuple[int, ...] = tuple(BLAZEPOSE_JOINTS.index(n) for n in JOINTS)

MODELS: tuple[str, ...] = ("movenet", "blazepose", "blazepose-full")


def _family(model: str) -> str:
    if model == "movenet":
        return "movenet"
    if model in ("blazepose", "blazepose-full"):
        return "blazepose"
    from vidaction.errors import UserError

    raise UserError(f"unknown pose model {model!r}; choose from {', '.join(MODELS)}")


def joint_names(model: str) -> tuple[str, ...]:
    """The joint names of `model`'s output, in order."""
    return JOINTS if _family(model) == "movenet" else BLAZEPOSE_JOINTS


def mirror_pairs(model: str) -> tuple[tuple[int, int], ...]:
    return MIRROR_PAIRS if _family(model) == "movenet" else BLAZEPOSE_MIRROR_PAIRS


def edges(model: str) -> tuple[tuple[int, int], ...]:
    return EDGES if _family(model) == "movenet" else BLAZEPOSE_EDGES


def to_coco17(points: np.ndarray, model: str) -> np.ndarray:
    """(..., J, 3) keypoints of `model` as the 17 COCO joints (MoveNet's order), so that one
    skeleton model can take either estimator."""
    if _family(model) == "movenet":
        return points
    return points[..., list(COCO_FROM_BLAZEPOSE), :]
