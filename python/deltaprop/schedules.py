"""Learning-rate schedules for MLP.fit: the learning rate of each epoch. The formulas are the
reference's (reference/optim.py); this holds the one bit of state a schedule has, scikit-learn's
adaptive counter of epochs without improvement."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .reference.optim import adaptive_lr, cosine_lr, invscaling_lr, step_lr
from .validation import check_int, check_name, check_real

SCHEDULES = ("constant", "invscaling", "step", "cosine", "adaptive")
OPTIONS = {"constant": (), "invscaling": ("power_t",), "step": ("step_size", "gamma"),
           "cosine": ("lr_min",), "adaptive": ("tol", "n_iter_no_change")}


class Schedule:
    """lr(epoch) for epoch = 0, 1, ... of one fit call, and end_of_epoch(loss) -> stop?

    constant   lr0
    invscaling lr0 / (t + 1)^power_t, t the samples seen before the epoch (scikit-learn's)
    step       lr0 · gamma^⌊epoch / step_size⌋, a decay: gamma in [0, 1] (a larger one would
               grow the rate past float's range within a fit)
    cosine     lr_min + ½(lr0 − lr_min)(1 + cos(π · epoch / epochs)): from lr0 toward lr_min,
               which the epoch after the last would reach (PyTorch's CosineAnnealingLR)
    adaptive   lr0 while the loss improves by at least tol; after more than n_iter_no_change
               epochs without, lr / 5, and stop once lr ≤ 1e-6 (scikit-learn's)
    """

    @classmethod
    def from_options(cls, name: str, lr0: float, options: Mapping[str, Any] | None, *,
                     epochs: int, n_samples: int) -> Schedule:
        """The schedule ``name`` with fit's ``schedule_options``: a dict of the settings that
        schedule takes, and no others (a setting it ignores would be a silent mistake)."""
        name = check_name(name, "lr_schedule", SCHEDULES)
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise TypeError(f"schedule_options must be a dict, got {type(options).__name__}")
        unknown = [key for key in options if key not in OPTIONS[name]]
        if unknown:
            takes = ", ".join(OPTIONS[name]) or "no options"
            raise ValueError(f"schedule_options {unknown[0]!r} is not a setting of the {name!r} "
                             f"schedule, which takes {takes}")
        return cls(name, lr0, epochs=epochs, n_samples=n_samples, **options)

    def __init__(self, name: str, lr0: float, *, epochs: int, n_samples: int,
                 power_t: float = 0.5, step_size: int = 10, gamma: float = 0.1,
                 lr_min: float = 0.0, tol: float = 1e-4, n_iter_no_change: int = 10) -> None:

        self.name = check_name(name, "lr_schedule", SCHEDULES)
        self.lr0, self.epochs, self.n_samples = lr0, max(epochs, 1), n_samples
        self.power_t = check_real(power_t, "power_t", 0.0)
        self.step_size = check_int(step_size, "step_size")
        self.gamma = check_real(gamma, "gamma", 0.0, 1.0)
        self.lr_min = check_real(lr_min, "lr_min", 0.0, lr0)
        self.tol = check_real(tol, "tol", 0.0)
        self.n_iter_no_change = check_int(n_iter_no_change, "n_iter_no_change")
        self.current, self.best, self.bad_epochs = lr0, math.inf, 0

    def lr(self, epoch: int) -> float:
        if self.name == "invscaling":
            return invscaling_lr(self.lr0, epoch * self.n_samples, self.power_t)
        if self.name == "step":
            return step_lr(self.lr0, epoch, self.step_size, self.gamma)
        if self.name == "cosine":
            return cosine_lr(self.lr0, epoch, self.epochs, self.lr_min)
        return self.current  # constant, adaptive

    def end_of_epoch(self, loss: float) -> bool:
        """Records the epoch's loss; True when the adaptive schedule says stop."""
        if self.name != "adaptive":
            return False
        self.bad_epochs = self.bad_epochs + 1 if loss > self.best - self.tol else 0
        self.best = min(self.best, loss)
        self.current, self.bad_epochs, stop = adaptive_lr(self.current, self.bad_epochs,
                                                          self.n_iter_no_change)
        return stop
