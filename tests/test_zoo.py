"""Zoo models: architecture, shapes, op counts, ablations, saving and bad input."""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_weights

from larq_dybnn import DynamicPReLU, DynamicSign, mac_counts
from larq_dybnn.zoo import DyBNNReActNet18, DyBNNReActNetA, ReActNet18, ReActNetA

BUILDERS = [ReActNetA, DyBNNReActNetA, ReActNet18, DyBNNReActNet18]
SMALL = {"imagenet": (32, 32, 3), "cifar": (16, 16, 3)}


def _ids(builder):
    return builder.__name__


def _binary_convs(model):
    return [
        layer for layer in model.layers
        if isinstance(layer, lq.layers.QuantConv2D)
        and isinstance(layer.input_quantizer, DynamicSign)
    ]


def _hyper_macs_expected(model) -> int:
    """Sum of C * max(C // r, 8) * (1 + heads) over the model's dynamic layers."""
    total = 0
    for layer in model.layers:
        for part, heads in ((getattr(layer, "input_quantizer", None), 1), (layer, 2)):
            dynamic = getattr(part, "dynamic_threshold", None) or getattr(
                part, "dynamic_shifts", None
            )
            if dynamic and (part is not layer or isinstance(layer, DynamicPReLU)):
                channels = part.hyper.channels
                total += channels * max(channels // part.hyper.reduction, 8) * (1 + heads)
    return total


@pytest.fixture(scope="module")
def full_size():
    """Each zoo model at 224x224 with its defaults, built once per test worker: the
    architecture tests below only read them."""
    built = {}

    def get(builder):
        if builder not in built:
            built[builder] = builder(input_shape=(224, 224, 3))
        return built[builder]

    return get


@pytest.fixture(scope="module")
def cifar_quarter():
    """Each zoo model for CIFAR-10 at width 0.25 (32x32, 10 classes), built once per
    test worker for the tests that compare weight names or save and load it."""
    built = {}

    def get(builder):
        if builder not in built:
            built[builder] = builder(input_shape=(32, 32, 3), num_classes=10,
                                     width_multiplier=0.25, stem="cifar")
        return built[builder]

    return get


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
@pytest.mark.parametrize("builder", BUILDERS, ids=_ids)
def test_output_shape(builder, stem):
    model = builder(input_shape=SMALL[stem], num_classes=7, width_multiplier=0.25, stem=stem)
    assert model.output_shape == (None, 7)
    assert model(np.zeros((2, *SMALL[stem]), np.float32)).shape == (2, 7)


@pytest.mark.parametrize(
    "builder, stem, size, expected",
    [
        (ReActNetA, "imagenet", 64, (None, 2, 2, 256)),
        (ReActNetA, "cifar", 32, (None, 2, 2, 256)),
        (DyBNNReActNetA, "imagenet", 96, (None, 3, 3, 256)),
        (ReActNet18, "imagenet", 64, (None, 2, 2, 128)),
        (ReActNet18, "cifar", 32, (None, 4, 4, 128)),
        (DyBNNReActNet18, "cifar", 32, (None, 4, 4, 128)),
    ],
)
def test_feature_shape_without_top(builder, stem, size, expected):
    model = builder(
        input_shape=(size, size, 3), include_top=False, width_multiplier=0.25, stem=stem
    )
    assert model.output_shape == expected


@pytest.mark.parametrize("builder", BUILDERS, ids=_ids)
def test_without_top_accepts_any_spatial_size(builder):
    model = builder(input_shape=(None, None, 3), include_top=False, width_multiplier=0.25)
    assert model(np.zeros((1, 64, 96, 3), np.float32)).shape[1:3] == (2, 3)


@pytest.mark.parametrize("builder", BUILDERS, ids=_ids)
def test_input_tensor(builder):
    tensor = tf.keras.Input((32, 32, 3), name="my_images")
    model = builder(input_tensor=tensor, num_classes=5, width_multiplier=0.25, stem="cifar")
    assert model.inputs[0] is tensor
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize(
    "builder, binary, float_macs",
    [(ReActNetA, 4_816_896_000, 11_862_016), (ReActNet18, 1_676_279_808, 137_793_536)],
    ids=["ReActNetA", "ReActNet18"],
)
def test_op_counts_at_224_match_the_papers(builder, binary, float_macs, full_size):
    static = full_size(builder)
    assert mac_counts(static) == {1: binary, 32: float_macs}
    dynamic = full_size(DyBNNReActNetA if builder is ReActNetA else DyBNNReActNet18)
    counts = mac_counts(dynamic)
    assert counts[1] == binary
    assert counts[32] - float_macs == _hyper_macs_expected(dynamic) > 0


@pytest.mark.parametrize(
    "builder, binary_convs, blocks",
    [(ReActNetA, 26, 13), (ReActNet18, 16, 16)],
    ids=["ReActNetA", "ReActNet18"],
)
def test_architecture(builder, binary_convs, blocks, full_size):
    model = full_size(builder)
    convs = _binary_convs(model)
    assert len(convs) == binary_convs
    for conv in convs:
        assert isinstance(conv.kernel_quantizer, lq.quantizers.MagnitudeAwareSign)
        assert isinstance(conv.kernel_constraint, lq.constraints.WeightClip)
        assert conv.pad_values == 1.0 and conv.padding == "same" and not conv.use_bias
        assert not conv.input_quantizer.dynamic_threshold
        assert conv.input_quantizer.estimator == "approx_sign"
    prelus = [l for l in model.layers if isinstance(l, DynamicPReLU)]
    assert len(prelus) == binary_convs and not any(p.dynamic_shifts for p in prelus)
    assert model.get_layer("logits").input_shape[-1] == (1024 if builder is ReActNetA else 512)
    block_names = {c.name.rsplit("_", 1)[0] for c in convs}  # e.g. block3, stage2_block4
    assert len(block_names) == blocks


def test_reactnet_a_channels_and_strides(full_size):
    model = full_size(ReActNetA)
    outputs = [model.get_layer(f"block{i}_prelu1x1").output_shape for i in range(1, 14)]
    assert [shape[-1] for shape in outputs] == [
        64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024,
    ]
    assert [shape[1] for shape in outputs] == [112, 56, 56, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7]
    assert model.get_layer("stem_conv").strides == (2, 2)
    assert model.get_layer("block2_pool").pool_size == (2, 2)


def test_reactnet_18_stem_and_shortcuts(full_size):
    model = full_size(ReActNet18)
    assert model.get_layer("stem_conv").kernel_size == (7, 7)
    assert model.get_layer("stem_pool").output_shape == (None, 56, 56, 64)
    shortcuts = [l.name for l in model.layers if l.name.endswith("_shortcut_conv")]
    assert shortcuts == [f"stage{s}_block1_shortcut_conv" for s in (2, 3, 4)]
    assert not isinstance(model.get_layer("stage2_block1_shortcut_conv"), lq.layers.QuantConv2D)
    cifar = ReActNet18(input_shape=(32, 32, 3), include_top=False, stem="cifar")
    assert cifar.get_layer("stem_conv").kernel_size == (3, 3)
    assert "stem_pool" not in [l.name for l in cifar.layers]


def test_doubling_block_equals_two_convs_concatenated(rng):
    """block1 (32 -> 64): one C->2C conv + BN = the official two C->C convs + BNs."""
    model = ReActNetA(input_shape=(32, 32, 3), include_top=False, stem="cifar")
    randomize_weights(model, seed=8)
    block_input = model.get_layer("block1_prelu3x3").output
    sub = tf.keras.Model(model.input, [block_input, model.get_layer("block1_add1x1").output])
    x = rng.normal(size=(2, 32, 32, 3)).astype(np.float32)
    features, merged = (t.numpy() for t in sub(x))
    conv, bn = model.get_layer("block1_conv1x1"), model.get_layer("block1_bn1x1")
    kernel = conv.kernel.numpy()
    halves = []
    for half in (slice(0, 32), slice(32, 64)):
        twin = lq.layers.QuantConv2D(
            32, 1, use_bias=False, input_quantizer=DynamicSign(dynamic_threshold=False),
            kernel_quantizer="magnitude_aware_sign", kernel_constraint="weight_clip",
        )
        twin(features)
        twin.set_weights([kernel[..., half], conv.input_quantizer.threshold.numpy()])
        twin_bn = tf.keras.layers.BatchNormalization(epsilon=bn.epsilon)
        twin_bn(twin(features))
        twin_bn.set_weights([w.numpy()[half] for w in bn.weights])
        halves.append(twin_bn(twin(features), training=False).numpy() + features)
    np.testing.assert_allclose(merged, np.concatenate(halves, axis=-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "builder", [DyBNNReActNetA, DyBNNReActNet18], ids=_ids
)
@pytest.mark.parametrize("dynamic, sign, prelu", [
    ("both", True, True), ("sign", True, False), ("prelu", False, True), ("none", False, False),
])
def test_dynamic_ablations(builder, dynamic, sign, prelu):
    model = builder(input_shape=(32, 32, 3), width_multiplier=0.25, stem="cifar",
                    dynamic=dynamic, reduction=4)
    quantizers = [c.input_quantizer for c in _binary_convs(model)]
    prelus = [l for l in model.layers if isinstance(l, DynamicPReLU)]
    assert all(q.dynamic_threshold == sign for q in quantizers)
    assert all(p.dynamic_shifts == prelu for p in prelus)
    assert all(q.reduction == 4 for q in quantizers)


@pytest.mark.parametrize(
    "static, dynamic", [(ReActNetA, DyBNNReActNetA), (ReActNet18, DyBNNReActNet18)],
    ids=["ReActNetA", "ReActNet18"],
)
def test_dybnn_differs_only_in_threshold_layers(static, dynamic, cifar_quarter):
    kwargs = dict(input_shape=(32, 32, 3), num_classes=10, width_multiplier=0.25, stem="cifar")
    a, b = cifar_quarter(static), cifar_quarter(dynamic)
    assert [(l.name, type(l)) for l in a.layers[1:]] == [(l.name, type(l)) for l in b.layers[1:]]
    shapes = lambda m: {w.name: w.shape for w in m.weights if "hyper_function" not in w.name}
    assert shapes(a) == shapes(b)
    assert not any("hyper_function" in w.name for w in a.weights)
    none = dynamic(dynamic="none", **kwargs)
    assert none.count_params() == a.count_params()


@pytest.mark.parametrize("builder", BUILDERS, ids=_ids)
def test_real_valued_weights_option_keeps_layer_names(builder, cifar_quarter):
    binary = cifar_quarter(builder)
    real = builder(input_shape=(32, 32, 3), num_classes=10, width_multiplier=0.25,
                   stem="cifar", binary_weights=False)
    assert [w.name for w in binary.weights] == [w.name for w in real.weights]
    assert all(c.kernel_quantizer is None for c in _binary_convs(real))
    assert mac_counts(real).get(1, 0) == 0  # real weights: no binary MACs


@pytest.mark.parametrize(
    "builder, filename",
    # Every builder in the native format; H5 for the dynamic models. SavedModel (slow
    # to write for deep models) is covered on small models by test_saving.py.
    [(b, "m.keras") for b in BUILDERS]
    + [(DyBNNReActNetA, "m.h5"), (DyBNNReActNet18, "m.h5")],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_save_load_round_trip(builder, filename, tmp_path, rng, cifar_quarter):
    model = cifar_quarter(builder)
    randomize_weights(model, seed=6, scale=0.3)  # the same values for every format
    x = rng.normal(size=(3, 32, 32, 3)).astype(np.float32)
    # Direct calls: the same inference outputs as predict, without tracing a function.
    expected = model(x, training=False).numpy()
    path = tmp_path / filename
    model.save(path, save_format="tf" if filename == "saved_model" else None)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), expected)


@pytest.mark.parametrize("builder", BUILDERS, ids=_ids)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (32, 32, 1)}, "3 \\(RGB\\) channels"),
        ({"input_shape": (32, 32, 4), "include_top": False}, "3 \\(RGB\\) channels"),
        ({"input_shape": (16, 16, 3)}, "at least 32x32"),
        ({"input_shape": (None, None, 3)}, "include_top"),
        ({"input_shape": (32, 32)}, "\\(height, width, channels\\)"),
        ({"stem": "mnist"}, "`stem`"),
        ({"num_classes": 0}, "`num_classes`"),
        ({"width_multiplier": 0}, "`width_multiplier`"),
        ({"weights": "no-such-weights"}, "registered"),
    ],
)
def test_bad_input_raises_value_error(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


@pytest.mark.parametrize("builder", [DyBNNReActNetA, DyBNNReActNet18], ids=_ids)
@pytest.mark.parametrize(
    "kwargs, argument",
    [({"dynamic": "all"}, "dynamic"), ({"reduction": 0}, "reduction"),
     ({"output_bound": -1.0}, "output_bound")],
)
def test_bad_dynamic_arguments(builder, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        builder(input_shape=(32, 32, 3), stem="cifar", **kwargs)


def test_cifar_stem_minimum_sizes():
    ReActNet18(input_shape=(8, 8, 3), stem="cifar", width_multiplier=0.25)
    with pytest.raises(ValueError, match="at least 8x8"):
        ReActNet18(input_shape=(4, 4, 3), stem="cifar")
    with pytest.raises(ValueError, match="at least 16x16"):
        ReActNetA(input_shape=(8, 8, 3), stem="cifar")
