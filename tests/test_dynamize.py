"""`larq_dybnn.dynamize`: the DyBNN twin of a trained static model has identical
outputs, the zoo DyBNN model's weights, saves, loads and converts with every binary
conv still binary; what it cannot convert is an error naming the layer."""

from __future__ import annotations

import collections

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_and_calibrate

import larq_dybnn
from larq_dybnn import DynamicPReLU, DynamicSign, dynamize
from larq_dybnn.initialization import weight_paths
from larq_dybnn.zoo import build_model

ZOO = {"reactnet-18": "dybnn-reactnet-18", "reactnet-a": "dybnn-reactnet-a"}


@pytest.fixture(scope="module")
def trained_like():
    """Each static zoo model at CIFAR x0.25 with trained-like weights, and inputs."""
    x = np.random.default_rng(3).normal(size=(8, 32, 32, 3)).astype(np.float32)
    models = {}
    for name in ("reactnet-18",):
        model = build_model(name, input_shape=(32, 32, 3), num_classes=10,
                            width_multiplier=0.25)
        randomize_and_calibrate(model, x, seed=5)
        models[name] = model
    return models, x


# ReActNet-A's twin (outputs, weights) is checked in test_initialization.py, which
# builds it anyway.
@pytest.mark.parametrize("name, dynamic", [
    ("reactnet-18", "both"), ("reactnet-18", "sign"), ("reactnet-18", "prelu")])
def test_zoo_twin_has_identical_outputs_and_the_dybnn_models_weights(
        trained_like, name, dynamic):
    models, x = trained_like
    static = models[name]
    twin = dynamize(static, dynamic=dynamic, seed=1)
    np.testing.assert_array_equal(twin(x, training=False).numpy(),
                                  static(x, training=False).numpy())
    if dynamic == "both":  # the other variants differ from it only in which layers
        reference = build_model(ZOO[name], input_shape=(32, 32, 3), num_classes=10,
                                width_multiplier=0.25, dynamic=dynamic)
        shapes = {p: tuple(w.shape) for p, (_, w) in weight_paths(reference).items()}
        assert {p: tuple(w.shape) for p, (_, w) in weight_paths(twin).items()} == shapes
    convs = [l for l in twin.layers if isinstance(l, lq.layers.QuantConv2D)]
    prelus = [l for l in twin.layers if isinstance(l, DynamicPReLU)]
    assert all(c.input_quantizer.dynamic_threshold == (dynamic != "prelu") for c in convs)
    assert all(p.dynamic_shifts == (dynamic != "sign") for p in prelus)
    # The static model is unchanged, and the twin trains its hyper functions.
    assert not any(c.input_quantizer.dynamic_threshold for c in static.layers
                   if isinstance(c, lq.layers.QuantConv2D))
    assert any("hyper_function" in w.name for w in twin.trainable_weights)


def test_twin_fine_tunes_saves_loads_and_converts_binary(tmp_path):
    from larq_dybnn.converter import read_operators
    from larq_dybnn.converter.conversion import export_tflite
    from larq_dybnn.converter.binary import check_binary_layers

    model = _own_larq_model()
    x = np.random.default_rng(4).normal(size=(8, 12, 12, 3)).astype(np.float32)
    randomize_and_calibrate(model, x, seed=3)
    twin = dynamize(model, exclude=["head"], reduction=4, seed=0)
    # Ready to fine-tune: the zero output heads get gradients from the loss.
    heads = [w for w in twin.trainable_weights if "head0_kernel" in w.name]
    assert len(heads) == 3 + 1  # three DynamicSigns, one DynamicPReLU
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
            np.arange(len(x)) % 10, twin(x, training=True), from_logits=True))
    gradients = tape.gradient(loss, heads)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in gradients)
    # The converted PReLU's new shifts are both zero, which makes its two heads the
    # same computation (the converter merges them); fine-tuning would part them.
    twin.get_layer("prelu1").zeta.assign(np.full((16,), 0.1, np.float32))
    path = tmp_path / "twin.keras"
    twin.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(),
                                  twin(x, training=False).numpy())
    operators = read_operators(export_tflite(loaded, int8_hyper_weights=False))
    check = check_binary_layers(loaded, operators)
    assert check.ok and check.lce_bconv2d == 3
    ops = collections.Counter(op.name for op in operators)
    static_ops = collections.Counter(op.name for op in read_operators(
        export_tflite(model, int8_hyper_weights=False)))
    # The hyper functions add 2 FC per DynamicSign and 3 per DynamicPReLU, and a MEAN each.
    assert ops["FULLY_CONNECTED"] - static_ops["FULLY_CONNECTED"] == 2 * 3 + 3
    assert ops["LceBconv2d"] == static_ops["LceBconv2d"] == 3


def _own_larq_model(prelu_axes=(1, 2), head_quantizer="approx_sign"):
    inputs = tf.keras.Input((12, 12, 3))
    x = tf.keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = lq.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0,
                              input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip", name="binary1")(x)
    x = tf.keras.layers.BatchNormalization(name="bn1")(x)
    x = tf.keras.layers.PReLU(shared_axes=list(prelu_axes) or None, name="prelu1")(x)
    x = lq.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0,
                              input_quantizer=lq.quantizers.SteSign(clip_value=0.5),
                              kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                              name="binary2")(x)
    x = lq.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0,
                              input_quantizer=DynamicSign(dynamic_threshold=False,
                                                          estimator="ste_sign"),
                              kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                              name="rsign_conv")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = lq.layers.QuantDense(10, input_quantizer=head_quantizer, kernel_quantizer="ste_sign",
                             kernel_constraint="weight_clip", name="head")(x)
    return tf.keras.Model(inputs, x, name="own")


def test_own_larq_model_twin_is_identical_and_keeps_each_estimator():
    model = _own_larq_model()
    x = np.random.default_rng(0).normal(size=(6, 12, 12, 3)).astype(np.float32)
    randomize_and_calibrate(model, x, seed=2)
    twin = dynamize(model, exclude=["head"], reduction=4)
    np.testing.assert_array_equal(twin(x, training=False).numpy(),
                                  model(x, training=False).numpy())
    layers = {l.name: l for l in twin.layers}
    q1, q2, q3 = (layers[n].input_quantizer for n in ("binary1", "binary2", "rsign_conv"))
    assert [(q.estimator, q.clip_value) for q in (q1, q2, q3)] == [
        ("ste_sign", 1.0), ("ste_sign", 0.5), ("ste_sign", 1.0)]
    assert all(q.dynamic_threshold for q in (q1, q2, q3))
    assert isinstance(layers["prelu1"], DynamicPReLU) and layers["prelu1"].dynamic_shifts
    np.testing.assert_array_equal(layers["prelu1"].alpha.numpy(),
                                  model.get_layer("prelu1").alpha.numpy())
    assert type(layers["head"].input_quantizer) is lq.quantizers.ApproxSign  # excluded
    # The same in a model nested inside another one.
    outer = tf.keras.Sequential([tf.keras.Input((12, 12, 3)), model], name="outer")
    nested = dynamize(outer, exclude=["head"], reduction=4)
    np.testing.assert_array_equal(nested(x, training=False).numpy(),
                                  outer(x, training=False).numpy())


@pytest.mark.parametrize("case, match", [
    ("swish", "Layer 'binary1'.*SwishSign.*exclude=\\['binary1'\\]"),
    ("dense", "Layer 'head' \\(QuantDense\\).*rank 2.*exclude=\\['head'\\]"),
    ("prelu_axes", "Layer 'prelu1' \\(PReLU\\).*shared_axes"),
    ("no_prelu", "no PReLU or RPReLU layer.*dynamic='sign'"),
    ("unknown_exclude", "`exclude`.*no layer \\['nope'\\]"),
    ("dynamic", "`dynamic` must be one of"),
    ("subclassed", "'sub' \\(Sub\\) is a subclassed model"),
])
def test_what_cannot_be_converted_is_an_error_naming_the_layer(case, match):
    kwargs = {"exclude": ["head"]}
    if case == "swish":
        model = _own_larq_model()
        layer = model.get_layer("binary1")
        layer.input_quantizer = lq.quantizers.SwishSign()
    elif case == "dense":
        model, kwargs = _own_larq_model(), {}
    elif case == "prelu_axes":
        model = _own_larq_model(prelu_axes=())
    elif case == "no_prelu":
        inputs = tf.keras.Input((8, 8, 3))
        out = lq.layers.QuantConv2D(4, 3, input_quantizer="ste_sign",
                                    kernel_quantizer="ste_sign",
                                    kernel_constraint="weight_clip")(inputs)
        model, kwargs = tf.keras.Model(inputs, out), {}
    elif case == "unknown_exclude":
        model, kwargs = _own_larq_model(), {"exclude": ["nope"]}
    elif case == "dynamic":
        model, kwargs = _own_larq_model(), {"dynamic": "all"}
    else:
        class Sub(tf.keras.Model):
            def call(self, inputs):
                return inputs

        model, kwargs = Sub(name="sub"), {}
        model(np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=match):
        dynamize(model, **kwargs)
    with pytest.raises(TypeError, match="`model` must be a tf.keras.Model"):
        dynamize("model.keras")


def test_public_name():
    assert larq_dybnn.dynamize is dynamize
    assert "dynamize" in larq_dybnn.__all__
