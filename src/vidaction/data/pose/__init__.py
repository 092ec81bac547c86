"""Human pose keypoints from official pose models (MoveNet, BlazePose) on LiteRT: feature
extraction at the data stage, cached per video like decoded clips."""

from vidaction.data.pose.cache import cached_keypoints, keypoints_key
from vidaction.data.pose.estimate import MIN_SCORE, Keypoints, PoseTracker, estimate_video
from vidaction.data.pose.joints import (
    BLAZEPOSE_EDGES,
    BLAZEPOSE_JOINTS,
    BLAZEPOSE_MIRROR_PAIRS,
    EDGES,
    JOINTS,
    MIRROR_PAIRS,
    MODELS,
    edges,
    joint_names,
    mirror_pairs,
    to_coco17,
)
from vidaction.data.pose.litert import PoseModelError
from vidaction.data.pose.weights import WEIGHTS, resolve_weights

__all__ = [
    "BLAZEPOSE_EDGES", "BLAZEPOSE_JOINTS", "BLAZEPOSE_MIRROR_PAIRS", "EDGES", "JOINTS",
    "MIN_SCORE", "MIRROR_PAIRS", "MODELS", "WEIGHTS", "Keypoints", "PoseModelError",
    "PoseTracker", "cached_keypoints", "edges", "estimate_video", "joint_names",
    "keypoints_key", "mirror_pairs", "resolve_weights", "to_coco17",
]
