"""MoViNet A0-A5 from the official tf-models-official code, base (3-D) and stream ((2+1)D).

The backbone and the classifier head are the official `Movinet` and `MovinetClassifier`,
configured exactly as the official Kinetics-600 checkpoints were trained, so those checkpoints
restore into them variable for variable. `create_model` then runs the base models' 3-D
convolutions as exact sums of 2-D ones (movinet_fast, `conv_impl="fast"`), keeping every
variable; `conv_impl="reference"` leaves the official Conv3D.
"""

from __future__ import annotations

from dataclasses import dataclass

import vidaction  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

# Native input resolution of each MoViNet id (official README / paper).
RESOLUTION = {"a0": 172, "a1": 172, "a2": 224, "a3": 256, "a4": 290, "a5": 320}
DEFAULT_FRAMES = 8  # the reference recipe's clip length
KINETICS600 = 600


@dataclass(frozen=True)
class MovinetConfig:
    """Everything that decides the variables of a MoViNet, so a checkpoint fits or not."""

    model_id: str
    stream: bool
    # The quantization-friendly stream variant of the official int8 TFLite files: ReLU6
    # everywhere and no squeeze-excitation (no float checkpoint exists for it).
    relu6: bool = False

    @property
    def variant(self) -> str:
        return "stream" if self.stream else "base"

    @property
    def backbone_kwargs(self) -> dict:
        if not self.stream:
            # The reference's model: full 3-D convolutions, non-causal (official defaults).
            return dict(model_id=self.model_id, causal=False, conv_type="3d", se_type="3d",
                        activation="swish", gating_activation="sigmoid",
                        use_positional_encoding=False)
        if self.relu6:
            # As the official code rebuilds the published int8 stream files.
            return dict(model_id=self.model_id, causal=True, conv_type="2plus1d",
                        se_type="none", activation="relu6", gating_activation="hard_sigmoid",
                        use_positional_encoding=False)
        # The official stream configuration (movinet README, export_saved_model.py):
        # causal, (2+1)D convolutions, hard activations, positional encoding for a3-a5.
        return dict(model_id=self.model_id, causal=True, conv_type="2plus1d",
                    se_type="2plus3d", activation="hard_swish",
                    gating_activation="hard_sigmoid",
                    use_positional_encoding=self.model_id in {"a3", "a4", "a5"})

    @property
    def classifier_activation(self) -> str:
        # The official k600 configs leave the head's activation at 'swish' for both variants;
        # the int8 files' head uses ReLU6 like the rest of them.
        return "relu6" if self.relu6 else "swish"


def config_for(name: str) -> MovinetConfig:
    """The configuration behind a registered MoViNet name ('movinet-a0', 'movinet-a2-stream',
    'movinet-a0-relu6-stream')."""
    parts = name.split("-")
    if parts[0] != "movinet" or len(parts) < 2 or parts[1] not in RESOLUTION:
        raise ValueError(f"{name} is not a MoViNet name")
    return MovinetConfig(parts[1], parts[-1] == "stream", relu6="relu6" in parts[2:])


def build_backbone(cfg: MovinetConfig):
    """The official backbone; external states off, so one clip in, features out."""
    from official.projects.movinet.modeling import movinet

    return movinet.Movinet(**cfg.backbone_kwargs, use_external_states=False)


def build_classifier(backbone, cfg: MovinetConfig, num_classes: int, frames: int | None,
                     size: int | None,
                     dropout_rate: float = 0.0):
    """The official classifier (head: 1x1 conv projection, dropout, 1x1 conv to classes)."""
    import tf_keras
    from official.projects.movinet.modeling import movinet_model

    spec = tf_keras.layers.InputSpec(shape=[None, frames, size, size, 3])
    model = movinet_model.MovinetClassifier(
        backbone, num_classes=num_classes, input_specs={"image": spec},
        activation=cfg.classifier_activation, dropout_rate=dropout_rate, output_states=False)
    return model
