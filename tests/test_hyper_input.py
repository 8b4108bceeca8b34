"""`hyper_input="block"`: one pooling per block. Each DynamicPReLU's hyper function
pools the tensor its block's DynamicSign binarizes, so the converted model computes
one MEAN per block instead of two (cheaper on ARM). It must compute that, save and
load, build in the zoo, convert exactly (float and int8 hyper weights) and be refused
where it means nothing."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_and_calibrate

from larq_dybnn import DynamicPReLU, DynamicSign
from larq_dybnn.zoo import DyBNNReActNet18, DyBNNReActNetA, build_model


def _block_input_prelu(**options) -> tuple[DynamicPReLU, tf.keras.Model]:
    x = tf.keras.Input((4, 4, 16))
    block_input = tf.keras.Input((8, 8, 8))
    layer = DynamicPReLU(reduction=2, min_hidden=4, conditioned_on="block_input", **options)
    return layer, tf.keras.Model([x, block_input], layer([x, block_input]))


def test_the_shifts_come_from_the_pooled_block_input(rng):
    layer, model = _block_input_prelu()
    for weight in layer.weights:
        weight.assign(rng.normal(size=weight.shape).astype(np.float32))
    x = rng.normal(size=(3, 4, 4, 16)).astype(np.float32)
    block_input = rng.normal(size=(3, 8, 8, 8)).astype(np.float32)
    hyper = layer.hyper
    # Pools the 8-channel block input, predicts 16-channel shifts.
    assert hyper.hidden_kernel.shape == (8, 4) and hyper.head_kernels[0].shape == (4, 16)
    hidden = np.maximum(block_input.mean(axis=(1, 2)) @ hyper.hidden_kernel.numpy()
                        + hyper.hidden_bias.numpy(), 0)
    gamma, zeta = (hidden @ hyper.head_kernels[i].numpy() + hyper.head_biases[i].numpy()
                   + offset.numpy() for i, offset in enumerate((layer.gamma, layer.zeta)))
    shifted = x - gamma[:, None, None, :]
    alpha = layer.alpha.numpy()
    expected = np.where(shifted > 0, shifted, alpha * shifted) + zeta[:, None, None, :]
    np.testing.assert_allclose(model([x, block_input]).numpy(), expected,
                               rtol=1e-5, atol=1e-5)
    # The same input with another block input gets other shifts.
    other = model([x, block_input + 1.0]).numpy()
    assert not np.allclose(other, expected)


def test_the_option_is_saved_and_loaded(tmp_path, rng):
    from larq_dybnn.loading import load_model

    layer, model = _block_input_prelu(pool_stride=2)
    assert DynamicPReLU.from_config(layer.get_config()).conditioned_on == "block_input"
    inputs = [rng.normal(size=(2, 4, 4, 16)).astype(np.float32),
              rng.normal(size=(2, 8, 8, 8)).astype(np.float32)]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded(inputs).numpy(), model(inputs).numpy())
    assert loaded.layers[-1].hyper.output_channels == 16


def test_bad_uses_are_refused_with_the_layer_named():
    with pytest.raises(ValueError, match="`conditioned_on` must be one of"):
        DynamicPReLU(conditioned_on="block")
    layer = DynamicPReLU(conditioned_on="block_input", name="act")
    with pytest.raises(ValueError, match="'act'.*\\[input, block_input\\], got one tensor"):
        layer(tf.zeros((1, 4, 4, 8)))
    with pytest.raises(ValueError, match="pools over height and width"):
        DynamicPReLU(conditioned_on="block_input")([tf.zeros((1, 4, 4, 8)), tf.zeros((1, 8))])


def _hyper_owners(model: tf.keras.Model) -> tuple[list, list]:
    signs = [layer.input_quantizer for layer in model.layers
             if isinstance(getattr(layer, "input_quantizer", None), DynamicSign)]
    prelus = [layer for layer in model.layers if isinstance(layer, DynamicPReLU)]
    return signs, prelus


@pytest.mark.parametrize("builder,blocks", [(DyBNNReActNet18, 16), (DyBNNReActNetA, 26)],
                         ids=["reactnet-18", "reactnet-a"])
def test_the_zoo_conditions_every_prelu_on_its_block_input(builder, blocks):
    model = builder(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.125,
                    num_classes=10, hyper_input="block")
    signs, prelus = _hyper_owners(model)
    assert len(signs) == len(prelus) == blocks
    assert {layer.conditioned_on for layer in prelus} == {"block_input"}
    # Each DynamicPReLU's second input is the tensor its block's DynamicSign binarizes.
    convs = {layer.input_quantizer.name: layer for layer in model.layers
             if isinstance(getattr(layer, "input_quantizer", None), DynamicSign)}
    binarized = {id(conv.input) for conv in convs.values()}
    assert all(id(layer.input[1]) in binarized for layer in prelus)
    assert model.get_config()  # serializable
    paper = builder(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.125,
                    num_classes=10)
    assert {layer.conditioned_on for layer in _hyper_owners(paper)[1]} == {"input"}


@pytest.mark.parametrize("stride", [1, 2])
def test_one_pooling_per_block_after_conversion_and_exact_outputs(stride, cifar10_test_batch):
    from larq_dybnn.converter import compare_with_lce, read_operators
    from larq_dybnn.converter.conversion import export_tflite
    from larq_dybnn.converter.int8 import quantize_hyper_weights, round_hyper_weights

    x, _ = cifar10_test_batch
    counts = {}
    for hyper_input in ("layer", "block"):
        model = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.125,
                                num_classes=10, hyper_input=hyper_input,
                                hyper_pool_stride=stride)
        randomize_and_calibrate(model, x[:64], seed=7)
        plain = export_tflite(model, int8_hyper_weights=False)
        counts[hyper_input] = collections.Counter(op.name for op in read_operators(plain))
    # 16 blocks: 32 poolings become 16 (the head pools with AVERAGE_POOL_2D), every
    # binary conv stays binary, the hyper functions keep their FC ops.
    assert counts["layer"]["MEAN"] == 32 and counts["block"]["MEAN"] == 16
    assert counts["block"]["STRIDED_SLICE"] == (16 if stride == 2 else 0)
    assert counts["block"]["LceBconv2d"] == counts["layer"]["LceBconv2d"] == 16
    assert counts["block"]["FULLY_CONNECTED"] == counts["layer"]["FULLY_CONNECTED"]
    # Per sample, as in test_zoo_conversion: a rounding-level flip of one binary
    # activation can make one sample of a deep random DyBNN diverge; a conversion
    # error would make (nearly) all of them differ.
    parity = compare_with_lce(model, plain, x[:64])
    assert parity.top1_agreement >= 0.95 and parity.close_fraction >= 0.9, parity
    # The default export's int8 hyper weights find every hyper kernel, the shifts' too,
    # and compute the model with those kernels rounded.
    quantized, info = quantize_hyper_weights(plain, model)
    assert info.tensors == 16 * 2 + 16 * 3
    assert round_hyper_weights(model) == info.tensors
    rounded = compare_with_lce(model, quantized, x[:64])
    assert rounded.top1_agreement >= 0.95 and rounded.close_fraction >= 0.9, rounded


def test_only_zoo_dybnn_models_take_it():
    from larq_dybnn.training import TrainConfig
    from larq_dybnn.training.config import check_config
    from larq_dybnn.zoo.blocks import HYPER_INPUTS
    from larq_dybnn_cli import HYPER_INPUTS as CLI_HYPER_INPUTS
    from larq_dybnn_cli import build_parser

    assert CLI_HYPER_INPUTS == HYPER_INPUTS
    args = build_parser().parse_args(["train", "--hyper-input", "block"])
    assert args.hyper_input == "block"
    for name in ("reactnet-18", "tiny-dybnn", "resnet-18"):
        with pytest.raises(ValueError, match=f"`hyper_input` needs a zoo DyBNN model.*{name}"):
            build_model(name, input_shape=(32, 32, 3), num_classes=10, hyper_input="block")
        with pytest.raises(ValueError, match="`hyper_input` applies to the zoo DyBNN"):
            check_config(TrainConfig(model=name, hyper_input="block"))
    with pytest.raises(ValueError, match="`hyper_input` must be one of"):
        check_config(TrainConfig(model="dybnn-reactnet-18", hyper_input="blocks"))
    with pytest.raises(ValueError, match="`hyper_input` must be one of"):
        DyBNNReActNet18(input_shape=(32, 32, 3), num_classes=10, hyper_input="blocks")
    model = build_model("dybnn-reactnet-18", input_shape=(32, 32, 3), num_classes=10,
                        width_multiplier=0.125, hyper_input="block")
    assert {layer.conditioned_on for layer in _hyper_owners(model)[1]} == {"block_input"}


def test_a_constant_input_gives_every_sample_the_same_trainable_thresholds(rng):
    from larq_dybnn import HyperFunction

    hyper = HyperFunction(reduction=2, min_hidden=4, constant_input=True,
                          output_initializer="he_normal")
    x = tf.constant(rng.normal(size=(3, 4, 4, 8)).astype(np.float32))
    hyper(x)
    # Every hidden unit active (a ReLU of a random kernel may switch all of them off).
    hyper.hidden_kernel.assign(np.abs(rng.normal(size=(8, 4))).astype(np.float32))
    with tf.GradientTape() as tape:
        (out,) = hyper(x)
        loss = tf.reduce_sum(out ** 2)
    assert out.shape == (1, 1, 1, 8)  # one value per channel, broadcast over the batch
    assert hyper.macs_per_sample() == 0  # folded into constants by conversion
    np.testing.assert_array_equal(hyper(x * 3.0 + 1.0)[0].numpy(), out.numpy())
    gradients = tape.gradient(loss, [hyper.context, hyper.hidden_kernel])
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)
    for layer, kind in ((DynamicSign, "dynamic_threshold"), (DynamicPReLU, "dynamic_shifts")):
        made = layer(reduction=4, conditioned_on="constant")
        assert made.hyper.constant_input and layer.from_config(
            made.get_config()).hyper.constant_input
    with pytest.raises(ValueError, match="`conditioned_on` must be one of"):
        DynamicSign(conditioned_on="block_input")


def test_the_constant_ablation_converts_to_a_static_model(cifar10_test_batch):
    """The same parameters as DyBNN in training; after conversion, no hyper function
    is left: every threshold and shift is a constant, as in static ReActNet."""
    from larq_dybnn.converter import compare_with_lce, read_operators
    from larq_dybnn.converter.conversion import export_tflite
    from larq_dybnn.zoo import ReActNet18

    x, _ = cifar10_test_batch
    model = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.125,
                            num_classes=10, hyper_input="constant")
    signs, prelus = _hyper_owners(model)
    assert {s.conditioned_on for s in signs} == {p.conditioned_on for p in prelus} == {"constant"}
    paper = DyBNNReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.125,
                            num_classes=10)
    contexts = sum(int(np.prod(w.shape)) for w in model.weights if "context" in w.name)
    assert model.count_params() == paper.count_params() + contexts
    from larq_dybnn.initialization import initialize_per_layer

    initialize_per_layer(model, seed=0)  # train's default initialization takes it
    assert all(np.all(w.numpy() == 1) for w in model.weights if "context" in w.name)
    randomize_and_calibrate(model, x[:64], seed=3)
    plain = export_tflite(model, int8_hyper_weights=False)
    ops = collections.Counter(op.name for op in read_operators(plain))
    static = ReActNet18(input_shape=(32, 32, 3), stem="cifar", width_multiplier=0.125,
                        num_classes=10)
    randomize_and_calibrate(static, x[:64], seed=3)
    static_ops = collections.Counter(
        op.name for op in read_operators(export_tflite(static, int8_hyper_weights=False)))
    assert ops["MEAN"] == 0 and ops["FULLY_CONNECTED"] == 1  # the classifier only
    assert ops == static_ops
    parity = compare_with_lce(model, plain, x[:64])
    assert parity.top1_agreement >= 0.95 and parity.close_fraction >= 0.9, parity
