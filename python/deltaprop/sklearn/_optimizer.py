"""The stochastic solvers' state between epochs, with scikit-learn's surface (an estimator's
``_optimizer`` with ``learning_rate``; sklearn/neural_network/_stochastic_optimizers.py, 1.9):
the learning-rate schedule, which moves once per epoch, and what happens when training stops
improving. The steps themselves run in the engine (``_backend``), on ``state``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._typing import FloatArray
from . import _backend

# The estimator parameters each solver's optimizer is made from, in its constructor's order
SETTINGS = {"sgd": ("learning_rate_init", "learning_rate", "momentum", "nesterovs_momentum",
                    "power_t"),
            "adam": ("learning_rate_init", "beta_1", "beta_2", "epsilon")}


class SGDOptimizer:
    """SGD with momentum, Nesterov's by default, in scikit-learn's convention (the learning
    rate inside the velocity). Schedules: "constant"; "invscaling", lr = lr0 / (t + 1)^power_t
    with t the training samples seen, set after each epoch; "adaptive", lr ÷ 5 whenever
    training stops improving, until lr ≤ 1e-6."""

    def __init__(self, params: Sequence[FloatArray], learning_rate_init: float = 0.1,
                 lr_schedule: str = "constant", momentum: float = 0.9, nesterov: bool = True,
                 power_t: float = 0.5) -> None:
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        kind = "nesterov" if nesterov else "sgd"
        self.state = _backend.new_optimizer_state(params, kind)

    def made_from(self) -> dict[str, Any]:
        """The estimator's parameters this optimizer was made from (new_optimizer's)."""
        return {"solver": "sgd", **dict(zip(SETTINGS["sgd"], (
            self.learning_rate_init, self.lr_schedule, self.momentum, self.nesterov,
            self.power_t)))}

    def settings(self, batch_size: int, alpha: float,
                 clip_norm: float) -> _backend.EpochSettings:
        return _backend.EpochSettings(batch_size=batch_size, lr=self.learning_rate,
                                      momentum=self.momentum, alpha=alpha, clip_norm=clip_norm)

    def learning_rates(self, epochs: int, n_samples: int, time_step: int) -> list[float]:
        """The learning rates of the next ``epochs`` epochs of ``n_samples`` rows each, as
        iteration_ends would set them between epochs (``time_step`` rows seen so far)."""
        if self.lr_schedule != "invscaling":  # adaptive moves only when training stalls
            return [self.learning_rate] * epochs
        return [self.learning_rate] + [self._invscaling(time_step + e * n_samples)
                                       for e in range(1, epochs)]

    def _invscaling(self, time_step: int) -> float:
        return float(self.learning_rate_init) / float((time_step + 1) ** self.power_t)

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = self._invscaling(time_step)

    def trigger_stopping(self, msg: str, verbose: object) -> bool:
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False


class AdamOptimizer:
    """Adam in scikit-learn's form: step size lr0·√(1 − β2^t)/(1 − β1^t) with t counted in
    batches, ε added after the bias corrections. ``learning_rate`` is the last step's size."""

    def __init__(self, params: Sequence[FloatArray], learning_rate_init: float = 0.001,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8) -> None:
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.state = _backend.new_optimizer_state(params, "adam")

    def made_from(self) -> dict[str, Any]:
        return {"solver": "adam", **dict(zip(SETTINGS["adam"], (
            self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)))}

    @property
    def t(self) -> int:
        return self.state.t

    def settings(self, batch_size: int, alpha: float,
                 clip_norm: float) -> _backend.EpochSettings:
        return _backend.EpochSettings(batch_size=batch_size, lr=self.learning_rate_init,
                                      beta_1=self.beta_1, beta_2=self.beta_2,
                                      epsilon=self.epsilon, alpha=alpha, clip_norm=clip_norm)

    def learning_rates(self, epochs: int, n_samples: int, time_step: int) -> list[float]:
        """Adam's base rate for each of the next ``epochs`` epochs (its steps scale it)."""
        return [float(self.learning_rate_init)] * epochs

    def iteration_ends(self, time_step: int) -> None:
        t = self.state.t
        if t > 0:
            self.learning_rate = (self.learning_rate_init * math.sqrt(1 - self.beta_2**t)
                                  / (1 - self.beta_1**t))

    def trigger_stopping(self, msg: str, verbose: object) -> bool:
        if verbose:
            print(msg + " Stopping.")
        return True


def new_optimizer(params: Sequence[FloatArray],
                  settings: Mapping[str, Any]) -> SGDOptimizer | AdamOptimizer:
    """A fresh optimizer for the engine's ``params`` from an estimator's parameters
    (``settings``: get_params(), or a saved optimizer's made_from)."""
    solver = settings["solver"]
    kind = SGDOptimizer if solver == "sgd" else AdamOptimizer
    return kind(params, *(settings[name] for name in SETTINGS[solver]))
