"""Ready-made ReActNet and DyBNN models. Installed as ``larq_dybnn.zoo``.

All builders take larq-zoo's keyword-only arguments (`input_shape`, `input_tensor`,
`weights`, `include_top`, `num_classes`).
"""

from larq_dybnn.zoo.reactnet_18 import DyBNNReActNet18, ReActNet18
from larq_dybnn.zoo.reactnet_a import DyBNNReActNetA, ReActNetA
from larq_dybnn.zoo.resnet import ResNet18
from larq_dybnn.zoo.tiny import TinyDyBNN
from larq_dybnn.zoo.catalog import CATALOG, ModelSpec, build_model, is_binary, is_dynamic, model_spec
from larq_dybnn.zoo.weights import register_weights, registered_weights
from larq_dybnn.zoo.blocks import DEFAULT_REDUCTION

__all__ = [
    "DEFAULT_REDUCTION",
    "ReActNetA",
    "DyBNNReActNetA",
    "ReActNet18",
    "DyBNNReActNet18",
    "TinyDyBNN",
    "ResNet18",
    "CATALOG",
    "ModelSpec",
    "build_model",
    "is_binary",
    "is_dynamic",
    "model_spec",
    "preprocess_input",
    "decode_predictions",
    "register_weights",
    "registered_weights",
]


def __getattr__(name: str):
    # larq-zoo's ImageNet helpers, imported on first use: larq_zoo imports Keras 3
    # (`keras.applications`) and tensorflow-datasets, 1.5 s that `import larq_dybnn`
    # and the commands that build no model should not pay.
    if name in ("preprocess_input", "decode_predictions"):
        import larq_zoo

        return getattr(larq_zoo, name)
    if name in ("MODELS", "SPECS"):  # deprecated (the catalog warns)
        from larq_dybnn.zoo import catalog

        return getattr(catalog, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
