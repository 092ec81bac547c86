"""One `create_model` over plain factory functions, timm style: a dict from name to factory.

Every model takes a clip batch (batch, frames, H, W, 3) of RGB pixel values 0..255, uint8 or
float (what the data pipeline emits), and returns logits (batch, num_classes). The scaling to
[0, 1] that MoViNet was trained on happens inside the model, in a standard Rescaling layer, so
a saved model needs no preprocessing code next to it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import vidaction  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from vidaction.errors import UserError
from vidaction.models import movinet as mv
from vidaction.models.cnn_rnn import cnn_rnn_factory
from vidaction.models.frame_baseline import frame_baseline_factory
from vidaction.models.integrity import checkpoint_damage
from vidaction.models.pose_tcn import pose_factory
from vidaction.models.r2plus1d import r2plus1d_factory
from vidaction.models.rgb_diff import rgb_diff_factory


@dataclass(frozen=True)
class ModelInfo:
    """What `vidaction models` shows about one name."""

    name: str
    size: int
    frames: int
    pretrained: bool
    description: str
    weights: str = "k600"  # what --pretrained auto fetches (shown by `vidaction models`)
    patience: int = 3  # default early-stopping patience
    resize: str = "letterbox"  # default frame fitting (SamplingConfig.resize)
    frame_backbone: str | None = None  # per-frame CNN models: the default --frame-backbone
    lr: float = 1e-3  # default Adam learning rate
    # What --frames and --size may be (checked before a run folder is touched: check_input).
    min_frames: int = 1
    min_size: int = 16
    max_frames: int = 512
    max_size: int = 1024
    # What the model reads: "rgb" clips (batch, frames, H, W, 3), or "keypoints" windows
    # (batch, frames, 17, 3) of a pose estimator's x, y (pixels) and score (pose_tcn).
    inputs: str = "rgb"

    @property
    def params(self) -> int:
        """Parameters with a 600-class head, counted on first use (building costs seconds)."""
        return count_params(self.name)


def _movinet_factory(model_id: str, stream: bool, relu6: bool = False):
    cfg = mv.MovinetConfig(model_id, stream, relu6=relu6)

    def factory(num_classes: int, frames: int, size: int, pretrained: str,
                weights_url: str | None, cache_dir, freeze_backbone: bool, dropout_rate: float):
        import tf_keras

        from vidaction.models import tflite_import as tfi

        if relu6 and pretrained == "auto":
            # No float checkpoint exists for this variant: its weights are the official
            # int8 TFLite file (fetched, cached and checked as for `predict kinetics600`).
            from vidaction.models import kinetics

            pretrained = str(kinetics.fetch_model(kinetics.CLASSIFIERS[kinetics.KINETICS600],
                                                  url=weights_url, cache_dir=cache_dir))
        imported = pretrained != "none" and tfi.is_tflite(pretrained)
        if imported or (relu6 and pretrained != "none"):
            if not imported:
                raise UserError(f"--pretrained {pretrained}: {model_name(cfg)} takes the "
                                "official int8 TFLite file (--pretrained auto fetches it) "
                                "or a local copy of it, not a checkpoint")
            if not relu6:
                raise UserError(f"--pretrained {pretrained}: an official TFLite file is the "
                                "ReLU6, no squeeze-excitation variant; use --model "
                                f"{model_name(mv.MovinetConfig(model_id, True, relu6=True))}")
            weights = tfi.check_file(pretrained, cfg)  # before the slow build
            backbone = mv.build_backbone(cfg)
            tfi.load_backbone(backbone, cfg, pretrained, weights)
        elif pretrained != "none":
            from vidaction.models import pretrained as pt

            # Fetch and unpack before the slow build, so a bad URL or file fails at once.
            with tempfile.TemporaryDirectory(prefix="vidaction-weights-") as work:
                prefix = pt.resolve(pretrained, cfg, weights_url, cache_dir, Path(work))
                backbone = mv.build_backbone(cfg)
                pt.load_movinet_backbone(backbone, cfg, prefix)
        else:
            backbone = mv.build_backbone(cfg)
        classifier = mv.build_classifier(backbone, cfg, num_classes, frames, size,
                                         dropout_rate=dropout_rate)
        backbone.trainable = not freeze_backbone
        if imported:  # batch norm is folded into the imported biases: inference mode only
            tfi.freeze_batch_norm(backbone)
        clip = tf_keras.Input((frames, size, size, 3), name="clip")
        x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(clip)
        logits = classifier(x)
        variant = ("relu6_" if relu6 else "") + cfg.variant
        return tf_keras.Model(clip, logits, name=f"movinet_{model_id}_{variant}")

    return factory


def model_name(cfg: mv.MovinetConfig) -> str:
    """The registered name of a MoViNet configuration (inverse of movinet.config_for)."""
    return (f"movinet-{cfg.model_id}" + ("-relu6" if cfg.relu6 else "")
            + ("-stream" if cfg.stream else ""))



_DESCRIPTIONS = {
    False: "MoViNet-{u} base: 3-D convs, non-causal (the reference's model), Kinetics-600",
    True: "MoViNet-{u} stream: causal (2+1)D convs, fast on CPU, Kinetics-600",
}

MODELS: dict[str, Callable] = {}
_INFO: dict[str, ModelInfo] = {}
for _stream in (False, True):
    for _id, _res in mv.RESOLUTION.items():
        _name = f"movinet-{_id}" + ("-stream" if _stream else "")
        MODELS[_name] = _movinet_factory(_id, _stream)
        # min_size 32: the backbone halves the frame five times; below 32 every stage
        # after the stem sees one pixel.
        _INFO[_name] = ModelInfo(_name, _res, mv.DEFAULT_FRAMES, True,
                                 _DESCRIPTIONS[_stream].format(u=_id.upper()), min_size=32)

# The quantization-friendly A0 stream (ReLU6, no squeeze-excitation): the architecture of the
# official int8 TFLite file, whose Kinetics-600 weights `--pretrained PATH.tflite` imports.
_name = "movinet-a0-relu6-stream"
MODELS[_name] = _movinet_factory("a0", True, relu6=True)
_INFO[_name] = ModelInfo(_name, 172, mv.DEFAULT_FRAMES, True,
                         "MoViNet-A0 stream, ReLU6, no SE: the official int8 TFLite's "
                         "Kinetics-600 weights; pick this for int8 deployment (its int8 "
                         "export runs as fast as the official file)",
                         weights="k600-tflite", min_size=32)

# Trained from scratch (no pretrained weights): SPEC.md, Models 2.
MODELS["r2plus1d"] = r2plus1d_factory
# lr 1e-4 (the reference's): at 1e-3 its layer-normalised blocks diverge in the first epoch
# and it stays at chance.
_INFO["r2plus1d"] = ModelInfo("r2plus1d", 224, 10, False,
                              "(2+1)D ResNet, widths 16-128, layer norm; from scratch", lr=1e-4)

# Not in the reference: the quick from-scratch model (the demo's).
MODELS["rgb-diff"] = rgb_diff_factory
_INFO["rgb-diff"] = ModelInfo("rgb-diff", 48, 8, False,
                              "frame differences stacked in time order -> small 2-D CNN; "
                              "fast from scratch", min_frames=2)

# A frozen ImageNet CNN per frame (SPEC.md, Models 3 and 4); --frame-backbone picks the CNN.
MODELS["cnn-rnn"] = cnn_rnn_factory
_INFO["cnn-rnn"] = ModelInfo("cnn-rnn", 224, 20, True,
                             "frame CNN features -> GRU(16) -> GRU(8), padding masked",
                             weights="imagenet", resize="crop", frame_backbone="inceptionv3")
MODELS["frame-baseline"] = frame_baseline_factory
_INFO["frame-baseline"] = ModelInfo("frame-baseline", 224, 10, True,
                                    "frame CNN -> dense, averaged over time and space",
                                    weights="imagenet", patience=2,
                                    frame_backbone="efficientnetb0")


# Skeleton models (issue 18): windows of pose keypoints at 10 frames/s, not pixels; `size`
# is the pose estimator's input side (MoveNet Lightning: 192), recorded, not used.
for _kind, _desc in (("stats", "pose keypoints -> per-window joint statistics -> MLP; "
                               "trains in seconds"),
                     ("tcn", "pose keypoints -> temporal conv + joint statistics -> MLP")):
    MODELS[f"pose-{_kind}"] = pose_factory(_kind)
    _INFO[f"pose-{_kind}"] = ModelInfo(f"pose-{_kind}", 192, 24, False, _desc, patience=8,
                                       min_frames=3, max_frames=600, inputs="keypoints")


def backbone_of(model):
    """The MoViNet backbone inside a `create_model` model (to freeze, cache or inspect it)."""
    from official.projects.movinet.modeling import movinet_model

    for layer in model.layers:
        if isinstance(layer, movinet_model.MovinetClassifier):
            return layer.backbone
    raise UserError(f"{model.name} has no MoViNet backbone")


def unfreeze_top_blocks(model, n: int) -> list:
    """Make the last `n` MoViNet blocks (and the backbone's final conv) trainable and return
    their variables. Batch-norm layers stay frozen: their statistics would drift on the
    small batches fine-tuning uses."""
    import tf_keras

    backbone = backbone_of(model)
    blocks = sorted({ly.name.split("_")[0] for ly in backbone.layers
                     if ly.name.startswith("block")}, key=lambda b: int(b[5:]))
    if not 1 <= n <= len(blocks):
        raise UserError(f"--unfreeze-top must be between 1 and {len(blocks)} for {model.name}")
    top = set(blocks[-n:]) | {"head"}
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = layer.name.split("_")[0] in top
        for sub in layer.submodules:
            if isinstance(sub, tf_keras.layers.BatchNormalization):
                sub.trainable = False
    return [v for v in backbone.trainable_variables]


def list_models() -> list[ModelInfo]:
    """Every name `create_model` accepts, in listing order."""
    return list(_INFO.values())


def resolve_model_name(name: str) -> str:
    """The listed spelling of a model name typed in any case ("MoViNet-A0" ->
    "movinet-a0"); an unknown one is refused with the nearest names and the list."""
    from vidaction.names import resolve_name

    return resolve_name(name, _INFO, "model")


def model_info(name: str) -> ModelInfo:
    if name not in _INFO:
        name = resolve_model_name(name)
    return _INFO[name]


def check_input(name: str, frames: int, size: int) -> None:
    """Refuse frames per clip and a frame side `name` cannot take, as a flag error (the
    per-frame CNN's own minimum is resolve_frame_backbone's). 16 px is the least the
    from-scratch models take, rgb-diff needs two frames to take a difference of; the
    maxima are typo guards: past them one clip batch no longer fits in memory."""
    info = model_info(name)
    if not info.min_size <= size <= info.max_size:
        raise UserError(f"--size {size}: {name} takes frames of {info.min_size}x"
                        f"{info.min_size} to {info.max_size}x{info.max_size} pixels")
    if not info.min_frames <= frames <= info.max_frames:
        raise UserError(f"--frames {frames}: {name} takes {info.min_frames} to "
                        f"{info.max_frames} frames per clip")


def create_model(name: str, num_classes: int, *, frames: int | None = None,
                 size: int | None = None, pretrained: str = "none",
                 weights_url: str | None = None, cache_dir: str | Path | None = None,
                 freeze_backbone: bool = True, dropout_rate: float = 0.0,
                 precision: str = "float32", frame_backbone: str | None = None,
                 conv_impl: str = "fast"):
    """Build `name` with a fresh head for `num_classes`.

    `pretrained`: "none" (random init), "auto" (download the official Kinetics-600 checkpoint,
    or `weights_url`, into the cache) or a local tarball / checkpoint folder / prefix.
    `freeze_backbone` applies whatever the weights: only the head trains when it is set.
    `precision`: "float32", or a Keras mixed policy ("mixed_float16" for GPUs,
    "mixed_bfloat16"): layers compute in 16 bits, variables and the logits stay float32.
    `frame_backbone`: the per-frame ImageNet CNN of cnn-rnn / frame-baseline (None: the
    model's default); their `pretrained` is "auto" (ImageNet .h5), "none" or a local .h5.
    `conv_impl` (MoViNet): "fast" runs the base models' 3-D convolutions as exact sums of 2-D
    ones (movinet_fast; same variables, TFLite-convertible), "reference" as official Conv3D.
    """
    info = model_info(name)
    if num_classes < 1:
        raise UserError(f"num_classes must be at least 1, got {num_classes}")
    frames = frames or info.frames
    size = size or info.size
    if pretrained not in ("none", "auto") and not Path(pretrained).expanduser().exists() \
            and not Path(str(pretrained) + ".index").exists():
        raise UserError(f"--pretrained: {pretrained} is neither 'none', 'auto' nor an "
                        "existing tarball or checkpoint")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if conv_impl not in CONV_IMPLS:
        raise UserError(f"unknown conv_impl {conv_impl!r}; choose from {', '.join(CONV_IMPLS)}")
    extra = {}
    frame_backbone = resolve_frame_backbone(name, frame_backbone, size)
    check_input(name, frames, size)
    if frame_backbone:
        extra["frame_backbone"] = frame_backbone
    with _dtype_policy(precision):
        model = MODELS[name](num_classes, frames, size, str(pretrained), weights_url,
                             cache_dir, freeze_backbone, dropout_rate, **extra)
        if precision != "float32":
            model = _float32_logits(model)
    if name.startswith("movinet"):
        from vidaction.models.movinet_fast import set_conv_impl

        set_conv_impl(model, conv_impl)
        extra["conv_impl"] = conv_impl
    # What `load_model` needs to rebuild it; a str, so Keras does not track it.
    config = dict(name=name, num_classes=num_classes, frames=frames, size=size,
                  freeze_backbone=freeze_backbone, dropout_rate=dropout_rate, **extra)
    if precision != "float32":  # absent for float32, so older model.json files still load
        config["precision"] = precision
    model.vidaction_config = json.dumps(config)
    return model


def resolve_frame_backbone(name: str, frame_backbone: str | None, size: int) -> str | None:
    """The per-frame CNN `name` uses (None for the other models), checked against `size`:
    `train` calls it before it makes the run folder, so a mistake leaves nothing behind."""
    info = model_info(name)
    if not info.frame_backbone:
        if frame_backbone:
            raise UserError(f"--frame-backbone applies to the per-frame CNN models, not {name}")
        return None
    from vidaction.models.frame_cnn import backbone_spec

    backbone = frame_backbone or info.frame_backbone
    backbone_spec(backbone, size)
    return backbone


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
CONV_IMPLS = ("fast", "reference")  # MoViNet: 2-D form (movinet_fast) or official Conv3D


@contextlib.contextmanager
def _dtype_policy(precision: str):
    """Layers take the global Keras policy when they are built; set it only for this build
    so one mixed-precision model does not change every model made after it."""
    import tf_keras

    before = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(before)


def _float32_logits(model):
    """Softmax and the loss want float32 logits; 16-bit ones overflow or lose classes."""
    import tf_keras

    logits = tf_keras.layers.Activation("linear", dtype="float32",
                                        name="logits_float32")(model.output)
    return tf_keras.Model(model.input, logits, name=model.name)


def resolve_precision(precision: str) -> str:
    """`auto`: mixed float16 when a GPU is visible (tensor cores), else float32 (16-bit
    math is slower than float32 on most CPUs)."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


@functools.cache
def count_params(name: str) -> int:
    """Parameters of `name` with the 600-class Kinetics head (what the checkpoint holds)."""
    import tf_keras

    # Parameters do not depend on the frame size; InceptionV3 accepts nothing under 75.
    # Nor on the frames, but for rgb-diff, whose first convolution reads all of them.
    info = model_info(name)
    size = 75 if info.frame_backbone else 32
    frames = info.frames if name == "rgb-diff" or info.inputs == "keypoints" else 1
    model = create_model(name, mv.KINETICS600, frames=frames, size=size, freeze_backbone=False)
    return int(sum(tf_keras.backend.count_params(w) for w in model.weights))


def format_model_table(with_params: bool = True) -> str:
    """The `vidaction models` listing; parameter counts build every model once (slow)."""
    rows = [("name", "input", "frames", "params", "pretrained", "description")]
    for m in list_models():
        params = f"{count_params(m.name) / 1e6:.2f}M" if with_params else "-"
        rows.append((m.name, f"{m.size}x{m.size}", str(m.frames), params,
                     m.weights if m.pretrained else "no", m.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1]
             for r in rows]
    from vidaction.models.kinetics import format_classifier_table

    lines += ["", "pretrained classifiers (no training: `vidaction predict NAME VIDEO`, "
              "`vidaction stream NAME --source SRC`):", format_classifier_table()]
    return "\n".join(lines)


def save_model(model, path: str | Path) -> Path:
    """Save a `create_model` model as a folder: model.json (how to build it) + weights.

    Plain weights rather than a Keras SavedModel: the official MoViNet classes do not
    round-trip through Keras serialization (.keras and .h5 fail, SavedModel takes minutes
    and breaks for the stream variant). The folder is written under a temporary name and
    renamed, so an interrupted save never leaves a half-written model at `path`.
    """
    config = getattr(model, "vidaction_config", None)
    if config is None:
        raise UserError("save_model takes models made by vidaction.models.create_model")
    from vidaction.io.writer import atomic_folder, is_write_failure, write_error

    path = Path(path)
    with atomic_folder(path) as tmp:  # also cleans what a killed save left beside it
        try:
            model.save_weights(str(tmp / "weights"))
        except Exception as e:  # TensorFlow's own error for a full disk
            if not is_write_failure(e):
                raise
            raise write_error(e, path / "weights") from None
        (tmp / "model.json").write_text(config + "\n")
    return path


def load_model(path: str | Path):
    """Rebuild a model saved by `save_model` and load its weights (every variable must match).

    A folder without model.json is taken for a Keras SavedModel / .keras file (fine for
    models of stock layers such as r2plus1d).
    """
    path = Path(path)
    if not (path / "model.json").is_file() and path.exists():
        import tf_keras
        from official.projects.movinet.modeling import movinet, movinet_model  # noqa: F401

        return tf_keras.models.load_model(str(path), compile=False)
    try:
        config = json.loads((path / "model.json").read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a saved vidaction model ({e})") from None
    damage = checkpoint_damage(path / "weights")  # before the model build (seconds)
    if damage:
        raise UserError(f"{path / 'weights'}: damaged, cannot be read ({damage}); retrain, "
                        "or train --resume if the run's checkpoints are intact")
    model = create_model(config.pop("name"), config.pop("num_classes"), pretrained="none",
                         **config)
    status = model.load_weights(str(path / "weights"))
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise UserError(f"{path / 'weights'}: does not fit the model in model.json "
                        f"({str(e).splitlines()[0][:160]})") from None
    # A checkpoint restore skips what Keras does after loading .h5/.keras weights: layers
    # that compute with tensors derived from their variables (Normalization in EfficientNet)
    # must refresh them.
    for layer in model.submodules:
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()
    status.expect_partial()  # optimizer slots saved with a compiled model are not needed
    return model
