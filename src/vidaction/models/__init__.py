"""Video classifiers: `create_model(name, num_classes)` and the names it knows."""

from vidaction.models.factory import (
    MODELS,
    ModelInfo,
    backbone_of,
    count_params,
    create_model,
    format_model_table,
    list_models,
    load_model,
    model_info,
    save_model,
    unfreeze_top_blocks,
)

__all__ = ["MODELS", "ModelInfo", "backbone_of", "count_params", "create_model",
           "format_model_table", "list_models", "load_model", "model_info", "save_model",
           "unfreeze_top_blocks"]
