"""The model summary reports truthful MACs for DyBNN layers."""

from __future__ import annotations

import larq as lq
import pytest
import tensorflow as tf

import larq_dybnn
from larq_dybnn import DynamicPReLU, DynamicSign, mac_counts


def _conv_model(input_quantizer, *, prelu=None, channels=64, size=16):
    inputs = tf.keras.Input((size, size, channels))
    x = lq.layers.QuantConv2D(
        channels, 3, padding="same", pad_values=1.0, input_quantizer=input_quantizer,
        kernel_quantizer="magnitude_aware_sign", kernel_constraint="weight_clip",
        use_bias=False,
    )(inputs)
    if prelu is not None:
        x = prelu(x)
    return tf.keras.Model(inputs, x)


@pytest.mark.parametrize("reduction, hidden", [(16, 8), (4, 16)])
def test_dynamic_sign_keeps_binary_macs_and_adds_only_hyper_macs(reduction, hidden):
    reference = mac_counts(_conv_model("ste_sign"))
    dynamic = mac_counts(_conv_model(DynamicSign(reduction=reduction)))
    conv_macs = 3 * 3 * 64 * 64 * 16 * 16
    assert reference == {1: conv_macs}
    assert dynamic[1] == conv_macs
    assert dynamic[32] == 64 * hidden * 2  # FC1 + FC2, once per sample


def test_static_threshold_adds_no_macs():
    assert mac_counts(_conv_model(DynamicSign(dynamic_threshold=False))) == {
        1: 3 * 3 * 64 * 64 * 16 * 16
    }


def test_dynamic_prelu_is_counted():
    counts = mac_counts(_conv_model("ste_sign", prelu=DynamicPReLU(reduction=16)))
    assert counts[32] == 64 * 8 * 3


def test_larq_summary_overcounts_and_ours_does_not():
    """Documents why larq_dybnn.summary exists: Larq bills hyper weights per pixel."""
    model = _conv_model(DynamicSign(reduction=16))
    larq_lines, our_lines = [], []
    lq.models.summary(model, print_fn=larq_lines.append)
    larq_dybnn.summary(model, print_fn=our_lines.append)
    larq_text, our_text = "\n".join(larq_lines), "\n".join(our_lines)
    fake = (64 + 64 * 8 + 8 * 64) * 16 * 16  # threshold + FC kernels, per pixel
    assert str(fake) in larq_text
    assert str(64 * 8 * 2) in our_text and str(fake) not in our_text
    assert "1-bit MACs" in our_text and "32-bit MACs" in our_text
    assert str(3 * 3 * 64 * 64 * 16 * 16) in our_text


def test_summary_rejects_bad_input():
    with pytest.raises(TypeError, match="`model`"):
        larq_dybnn.summary("not a model")
    with pytest.raises(ValueError, match="not been built"):
        larq_dybnn.summary(tf.keras.Sequential([tf.keras.layers.Dense(2)]))
