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
    `weight_decay` argument is not scaled (the recipe's decay is a loss term).

    The config records the scaled variables by name, so the optimizer of a model
    saved with `model.save` and loaded again scales the same variables: an optimizer
    made from a config finds them by name when it is built for the model's
    variables, and refuses a name that matches none or several of them.

    Arguments:
        learning_rate: a float or a learning-rate schedule, as for Adam.
        multiplier: the factor of the scaled variables' steps (> 0).
        scaled_variables: the variables whose steps are scaled (for example
            `larq_dybnn.hyper_weights(model)`).
        scaled_variable_names: instead of `scaled_variables`, their names
            (`variable.name`), found among the variables the optimizer is built
            for; this is what the config holds.
        **kwargs: Adam's other arguments.

    Raises:
        ValueError: for a `multiplier` that is not a positive number, for both
            `scaled_variables` and `scaled_variable_names`, and (when built) for a
            name of `scaled_variable_names` that matches no variable or several.
    """

    def __init__(
        self,
        learning_rate=0.001,
        *,
        multiplier: float = 1.0,
        scaled_variables: Sequence[tf.Variable] = (),
        scaled_variable_names: Sequence[str] = (),
        **kwargs,
    ):
        super().__init__(learning_rate, **kwargs)
        self.multiplier = _checks.positive_float("multiplier", multiplier)
        if len(scaled_variables) and len(scaled_variable_names):
            raise ValueError("Give `scaled_variables` or `scaled_variable_names`, not both.")
        if isinstance(scaled_variable_names, str):
            raise ValueError("`scaled_variable_names` must be a sequence of names, "
                             f"got the string {scaled_variable_names!r}.")
        self._scaled = {self._var_key(variable) for variable in scaled_variables}
        self._scaled_names = (tuple(variable.name for variable in scaled_variables)
                              or tuple(scaled_variable_names))
        self._names_to_find = tuple(scaled_variable_names)

    @property
    def scaled_count(self) -> int:
        """How many variables have scaled steps (for names, once built)."""
        return len(self._scaled)

    def build(self, var_list):
        super().build(var_list)
        if not self._names_to_find:
            return
        by_name: dict[str, list] = {}
        for variable in var_list:
            by_name.setdefault(variable.name, []).append(variable)
        for name in self._names_to_find:
            found = by_name.get(name, [])
            if len(found) != 1:
                raise ValueError(
                    f"`scaled_variable_names`: {name!r} matches "
                    f"{'no variable' if not found else f'{len(found)} variables'} of the "
                    f"{len(var_list)} the optimizer is built for.")
            self._scaled.add(self._var_key(found[0]))
        self._names_to_find = ()

    def update_step(self, gradient, variable):
        if self.multiplier == 1.0 or self._var_key(variable) not in self._scaled:
            return super().update_step(gradient, variable)
        before = variable.read_value()
        super().update_step(gradient, variable)
        # Adam moved the variable by -lr * m / (sqrt(v) + eps); make it multiplier times that.
        variable.assign(before + self.multiplier * (variable - before))

    def get_config(self) -> dict:
        return {**super().get_config(), "multiplier": self.multiplier,
                "scaled_variable_names": list(self._scaled_names)}
