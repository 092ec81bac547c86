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

One module per idea: actors (who), actions (the poses over time: a new class is one function
there), scene (everything else that varies between clips), body (kinematics and view), draw
(pixels, `render_clip`) and render (the dataset on disk).
"""

from vidaction.data.builtin.actions import (
    ACTIONS,
    CYCLIC,
    ONE_SHOT,
    Pose,
    cyclic,
    one_shot,
    pose_at,
)
from vidaction.data.builtin.actors import Actor, sample_actor
from vidaction.data.builtin.body import JOINT_NAMES, skeleton
from vidaction.data.builtin.draw import render_clip
from vidaction.data.builtin.render import (
    BUILTIN_CLASSES,
    FORMAT_VERSION,
    N_ACTORS,
    SPLITS,
    _plan,
    preview_dataset,
    render_dataset,
)
from vidaction.data.builtin.scene import VARIATIONS, ClipParams, sample_params

__all__ = [
    "ACTIONS", "BUILTIN_CLASSES", "CYCLIC", "FORMAT_VERSION", "JOINT_NAMES", "N_ACTORS",
    "ONE_SHOT", "SPLITS", "VARIATIONS", "Actor", "ClipParams", "Pose", "_plan", "cyclic",
    "one_shot", "pose_at", "preview_dataset", "render_clip", "render_dataset", "sample_actor",
    "sample_params", "skeleton",
]
