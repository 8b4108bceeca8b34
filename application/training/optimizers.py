"""Adam with a larger (or smaller) learning rate for chosen variables.

`larq-dybnn train --hyper-lr-multiplier` trains the hyper functions of the dynamic
thresholds and shifts at a multiple of the learning rate: after `dynamize`, the
hyper functions start at exactly zero inside a trained network, and at a
fine-tuning learning rate they barely leave it in a few epochs.

Scaling those variables' gradients would not do it: Adam's step does not depend on
the scale of the gradients. Its step is, however, proportional to the learning rate
(the moment estimates do not depend on it), so `ScaledStepAdam` takes Adam's step
and scales it for the chosen variables: exactly Adam at `multiplier` times the
learning rate for them, and plain Adam for the others. larq's `CaseOptimizer` does
the general case for legacy optimizers only; the recipe uses tf.keras' Adam.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from larq_dybnn import _checks

__all__ = ["ScaledStepAdam"]


class ScaledStepAdam(tf.keras.optimizers.Adam):
    """tf.keras Adam whose steps on `scaled_variables` are `multiplier` times as large.

    For those variables this is Adam with `multiplier` times the learning rate (and
    its schedule); the others are trained by plain Adam. Slots, checkpoints and the
    learning-rate schedule are Adam's own. Weight decay given as Adam's
    `weight_decay` argument is not scaled (the recipe's decay is a loss term). The
    config records `multiplier` but not the variables: an optimizer made again from
    its config scales nothing.

    Arguments:
        learning_rate: a float or a learning-rate schedule, as for Adam.
        multiplier: the factor of the scaled variables' steps (> 0).
        scaled_variables: the variables whose steps are scaled (for example
            `larq_dybnn.hyper_weights(model)`).
        **kwargs: Adam's other arguments.

    Raises:
        ValueError: for a `multiplier` that is not a positive number.
    """

    def __init__(
        self,
        learning_rate=0.001,
        *,
        multiplier: float = 1.0,
        scaled_variables: Sequence[tf.Variable] = (),
        **kwargs,
    ):
        super().__init__(learning_rate, **kwargs)
        self.multiplier = _checks.positive_float("multiplier", multiplier)
        self._scaled = {self._var_key(variable) for variable in scaled_variables}

    @property
    def scaled_count(self) -> int:
        """How many variables have scaled steps."""
        return len(self._scaled)

    def update_step(self, gradient, variable):
        if self.multiplier == 1.0 or self._var_key(variable) not in self._scaled:
            return super().update_step(gradient, variable)
        before = variable.read_value()
        super().update_step(gradient, variable)
        # Adam moved the variable by -lr * m / (sqrt(v) + eps); make it multiplier times that.
        variable.assign(before + self.multiplier * (variable - before))

    def get_config(self) -> dict:
        # The scaled variables are objects of one model; a restored optimizer has none.
        return {**super().get_config(), "multiplier": self.multiplier}
