"""Import the official int8 TFLite MoViNet stream classifiers into the Keras model.

The published Kinetics-600 TFLite files (e.g. MoViNet-A0-Stream int8) are not the float
A0-stream architecture: they are its quantization-friendly variant, ReLU6 everywhere and no
squeeze-excitation, which the official Keras code builds as `se_type='none'`,
`activation='relu6'` (`MovinetConfig(relu6=True)`, registered as movinet-a0-relu6-stream).
Their weights map one to one onto that model's variables:

- the graph's CONV_2D / DEPTHWISE_CONV_2D ops are walked in order (names alone mislead:
  several weight and bias names are `;`-joined and mention other layers); the first part of
  an op's weight name gives the Keras path of its ConvBlock;
- int8 per-channel weights and int32 biases are dequantized with their own scales;
  layouts: conv [O, kh, kw, I], depthwise [1, kh, kw, C] (the temporal convs are depthwise
  too, kh = time), Keras [kh, kw, I, O] and [kh, kw, C, 1];
- batch norm is folded into the conv: each Keras BN becomes the identity plus the folded
  bias, and must stay in inference mode (`freeze_batch_norm`) or the fold breaks;
- the rezero scalars are the constant operand of each block's `rezero` MUL;
- the head conv (480 -> 2048) and the classifier (2048 -> 600) carry real biases.

Every variable of the Keras classifier must receive a value, or the import fails naming
what is missing: a file of another model id or variant never half-loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import vidaction  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from vidaction.errors import VidactionError
from vidaction.models import movinet as mv

# The Keras path of a layer starts at one of these (tensor names carry outer scopes).
_ROOT = re.compile(r"(?:^|/)((?:stem|block\d+_layer\d+|head|classifier_head)(?:/.*)?)$")
_SUFFIX = re.compile(r"_\d+$")
_REZERO = re.compile(r"(?:^|/)(block\d+_layer\d+)/bneck/rezero/")


class TFLiteImportError(VidactionError):
    """A .tflite file that is not an official MoViNet stream classifier of this variant."""


def is_tflite(path: str | Path) -> bool:
    """Whether `path` is a TFLite flatbuffer (file identifier 'TFL3' at bytes 4-8)."""
    p = Path(path).expanduser()
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == b"TFL3"


@dataclass
class ConvWeights:
    """One conv op of the file, dequantized and in the Keras layout."""

    path: str  # Keras ConvBlock path, e.g. block1_layer0/bneck/feature/conv2d_temporal
    depthwise: bool
    kernel: np.ndarray
    bias: np.ndarray


@dataclass
class TFLiteWeights:
    convs: list[ConvWeights] = field(default_factory=list)
    rezero: dict[str, float] = field(default_factory=dict)  # blockX_layerY -> scale
    image_shape: tuple = ()
    num_classes: int = 0


def _keras_path(name: str) -> str | None:
    """The layer path from the model's root, Keras's '_N' suffixes of auto-named layers
    dropped (a second model in one process names its head classifier_head_2)."""
    parts = [_SUFFIX.sub("", c) for c in name.split(";", 1)[0].split("/")]
    m = _ROOT.search("/".join(parts))
    return m.group(1) if m else None


def _dequantize(details: dict, values: np.ndarray) -> np.ndarray:
    q = details["quantization_parameters"]
    scales, zeros = np.asarray(q["scales"], np.float64), np.asarray(q["zero_points"])
    if scales.size == 0:  # not quantized
        return values.astype(np.float32)
    if scales.size == 1:
        return ((values.astype(np.float64) - zeros[0]) * scales[0]).astype(np.float32)
    axis = q["quantized_dimension"]  # conv: 0 (O), depthwise: 3 (C)
    shape = [1] * values.ndim
    shape[axis] = -1
    return ((values.astype(np.float64) - zeros.reshape(shape)) * scales.reshape(shape)
            ).astype(np.float32)


def read_tflite(path: str | Path) -> TFLiteWeights:
    """The conv kernels, biases and rezero scalars of an official MoViNet stream .tflite."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from vidaction.models.litert import quiet_native_stderr

    path = Path(path).expanduser()
    if not is_tflite(path):
        raise TFLiteImportError(f"{path}: not a TFLite model")
    try:
        with quiet_native_stderr():
            # No XNNPack: it packs the constant buffers away; we only read them.
            it = Interpreter(model_path=str(path), experimental_op_resolver_type=(
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    except (ValueError, RuntimeError) as e:
        raise TFLiteImportError(f"{path}: cannot be read ({str(e).splitlines()[0]})") from None
    tensors = {d["index"]: d for d in it.get_tensor_details()}
    ops = it._get_ops_details()  # the graph in execution order (no public equivalent)
    produced = {i for op in ops for i in op["outputs"]}
    inputs = {d["name"]: d for d in it.get_input_details()}
    out = TFLiteWeights()
    image = next((d for n, d in inputs.items() if "image" in n), None)
    if image is None:
        raise TFLiteImportError(f"{path}: no 'image' input; not a MoViNet stream classifier")
    out.image_shape = tuple(int(x) for x in image["shape"])
    for op in ops:
        kind = op["op_name"]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            args = list(op["inputs"])
            if len(args) < 3 or args[2] < 0:
                raise TFLiteImportError(f"{path}: op {op['index']} ({kind}) has no bias")
            w, b = tensors[args[1]], tensors[args[2]]
            key = _keras_path(w["name"])
            if key is None:
                raise TFLiteImportError(f"{path}: op {op['index']} weight {w['name']!r} names "
                                        "no MoViNet layer")
            kernel = _dequantize(w, it.get_tensor(args[1]))  # per output channel
            # conv [O, kh, kw, I] -> [kh, kw, I, O]; depthwise [1, kh, kw, C] -> [kh, kw, C, 1]
            kernel = np.transpose(kernel, (1, 2, 3, 0))
            bias = _dequantize(b, it.get_tensor(args[2]))
            out.convs.append(ConvWeights(key, kind == "DEPTHWISE_CONV_2D", kernel, bias))
        elif kind == "MUL":
            names = [tensors[o]["name"] for o in op["outputs"]]
            m = next((_REZERO.search(n) for n in names if _REZERO.search(n)), None)
            if m is None:
                continue
            const = [i for i in op["inputs"] if i >= 0 and i not in produced
                     and tensors[i]["name"] not in inputs]
            if len(const) != 1:
                raise TFLiteImportError(f"{path}: rezero op {op['index']} has no constant")
            value = _dequantize(tensors[const[0]], it.get_tensor(const[0]))
            if np.ptp(value) > 1e-6 * max(1.0, float(np.abs(value).max())):
                raise TFLiteImportError(f"{path}: rezero op {op['index']} is not a scalar")
            out.rezero[m.group(1)] = float(value.reshape(-1)[0])
    if out.convs:
        out.num_classes = int(out.convs[-1].kernel.shape[-1])
    return out


def _strip(var_name: str) -> str | None:
    return _keras_path(var_name.rsplit(":", 1)[0])


def assign(classifier, weights: TFLiteWeights, source: str = "the .tflite file") -> None:
    """Fill every variable of an official `MovinetClassifier` (ReLU6, no SE, stream) with
    `weights`; BN layers become identity + folded bias. All or nothing: raises naming the
    first variables left without a value or of the wrong shape."""
    variables = {}
    for v in classifier.weights:
        key = _strip(v.name)
        if key is None or key in variables:
            raise TFLiteImportError(f"{classifier.name}: variable {v.name} has no unique "
                                    "MoViNet path")
        variables[key] = v
    blocks = {k.rsplit("/", 2)[0]: k for k in variables
              if k.endswith("/kernel") or k.endswith("/depthwise_kernel")}
    pending = []  # (variable, value): nothing is assigned until everything fits
    used: set[str] = set()
    for conv in weights.convs:
        owners = [b for b in blocks if conv.path == b or conv.path.startswith(b + "/")]
        if not owners:
            raise TFLiteImportError(f"{source}: conv {conv.path} has no layer in "
                                    f"{classifier.name}; is it another model id?")
        block = max(owners, key=len)
        if block in used:
            raise TFLiteImportError(f"{source}: two convs map to {block}")
        used.add(block)
        kvar = variables[blocks[block]]
        if blocks[block].endswith("depthwise_kernel") != conv.depthwise:
            raise TFLiteImportError(f"{source}: {block} is depthwise in one model only")
        if tuple(kvar.shape) != conv.kernel.shape:
            raise TFLiteImportError(f"{source}: {block} kernel {conv.kernel.shape}, the model "
                                    f"wants {tuple(kvar.shape)}; is it another model id?")
        pending.append((kvar, conv.kernel))
        inner = blocks[block].rsplit("/", 1)[0]
        bias = variables.get(inner + "/bias")
        bns = sorted({k.rsplit("/", 1)[0] for k in variables
                      if k.startswith(block + "/") and k.endswith("/moving_mean")})
        if bias is not None and not bns:
            pending.append((bias, conv.bias))
        elif len(bns) == 1 and bias is None:
            bn = bns[0]
            n = conv.bias.shape[0]
            eps = _bn_epsilon(classifier, variables[bn + "/moving_mean"])
            # (x - 0) / sqrt(1 + eps) * sqrt(1 + eps) + bias: the identity plus the bias
            pending += [(variables[bn + "/moving_mean"], np.zeros(n, np.float32)),
                        (variables[bn + "/moving_variance"], np.ones(n, np.float32)),
                        (variables[bn + "/gamma"], np.full(n, np.sqrt(1 + eps), np.float32)),
                        (variables[bn + "/beta"], conv.bias)]
        else:
            raise TFLiteImportError(f"{classifier.name}: {block} has {len(bns)} batch norms "
                                    f"and {'a' if bias is not None else 'no'} bias")
    for block, value in weights.rezero.items():
        var = variables.get(f"{block}/scale")
        if var is None:
            raise TFLiteImportError(f"{source}: rezero of {block} has no variable")
        pending.append((var, np.float32(value)))
    for var, value in pending:
        if tuple(var.shape) != np.shape(value):
            raise TFLiteImportError(f"{source}: {var.name} is {tuple(var.shape)}, the file "
                                    f"gives {np.shape(value)}")
    filled = {id(v) for v, _ in pending}
    missing = [v.name for v in classifier.weights if id(v) not in filled]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise TFLiteImportError(f"{source}: {len(missing)} of {len(classifier.weights)} "
                                f"variables of the model get no value ({shown}); is it "
                                "another model id or variant?")
    for var, value in pending:
        var.assign(value)


def _bn_epsilon(classifier, moving_mean) -> float:
    import tf_keras

    for layer in classifier.submodules:
        if isinstance(layer, tf_keras.layers.BatchNormalization) and \
                any(w is moving_mean for w in layer.weights):
            return float(layer.epsilon)
    raise TFLiteImportError(f"no batch norm owns {moving_mean.name}")


def freeze_batch_norm(model) -> int:
    """Keep every BatchNormalization of `model` in inference mode (trainable=False is
    inference mode in Keras): the folded biases hold only as long as the statistics stay
    0 / 1. Returns how many layers."""
    import tf_keras

    n = 0
    for layer in model.submodules:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.trainable = False
            n += 1
    return n


def check_file(path: str | Path, cfg: mv.MovinetConfig) -> TFLiteWeights:
    """Read `path` and check it fits `cfg` before the (slow) build: right input size."""
    weights = read_tflite(path)
    if not weights.convs:
        raise TFLiteImportError(f"{path}: no convolutions; not a MoViNet classifier")
    want = mv.RESOLUTION[cfg.model_id]
    if len(weights.image_shape) != 5 or weights.image_shape[1] != 1:
        raise TFLiteImportError(f"{path}: takes {weights.image_shape}, not one frame at a "
                                "time; only the stream .tflite files can be imported")
    if weights.image_shape[2] != want:
        raise TFLiteImportError(f"{path}: takes {weights.image_shape[2]} px frames, MoViNet-"
                                f"{cfg.model_id.upper()} {want} px; is it another model id?")
    return weights


def load_backbone(backbone, cfg: mv.MovinetConfig, path: str | Path,
                  weights: TFLiteWeights | None = None):
    """Fill `backbone` (official Movinet, ReLU6 / no SE) from the file, through a classifier
    of the file's classes on it; returns that classifier (Kinetics-600 head included)."""
    if not cfg.relu6:
        raise TFLiteImportError(f"{path}: the official TFLite files are the ReLU6, no-SE "
                                "variant; use the movinet-*-relu6-stream model")
    weights = weights or check_file(path, cfg)
    k600 = mv.build_classifier(backbone, cfg, weights.num_classes, None, None)
    assign(k600, weights, str(path))
    return k600


def kinetics_model(path: str | Path, frames: int | None = None, size: int | None = None,
                   model_id: str = "a0"):
    """The file's whole classifier (its own 600-class head) as a `create_model`-style Keras
    model: clip uint8/float 0..255 (batch, frames, size, size, 3) -> logits. Works with
    `vidaction.models.stream.stream_model(model, 'movinet-a0-relu6-stream', size)`."""
    import json

    import tf_keras

    cfg = mv.MovinetConfig(model_id, True, relu6=True)
    backbone = mv.build_backbone(cfg)
    weights = check_file(path, cfg)
    classifier = load_backbone(backbone, cfg, path, weights)
    size = size or mv.RESOLUTION[model_id]
    clip = tf_keras.Input((frames, size, size, 3), name="clip")
    x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(clip)
    # A fresh classifier object wrapping the same layers would lose the head; call it as is.
    model = tf_keras.Model(clip, classifier(x), name=f"movinet_{model_id}_relu6_stream_k600")
    freeze_batch_norm(model)
    model.vidaction_config = json.dumps(dict(
        name=f"movinet-{model_id}-relu6-stream", num_classes=weights.num_classes,
        frames=frames, size=size, freeze_backbone=True, dropout_rate=0.0))
    return model
