"""plot_loss_curve(): the training loss per epoch, and the validation loss beside it when early
stopping held a validation set out (matplotlib is an optional dependency)."""

from __future__ import annotations

from typing import Any


class PlotMixin:
    # set by the estimator this is mixed into
    solver: str
    loss_curve_: list[float]
    validation_loss_curve_: list[float] | None

    def plot_loss_curve(self, ax: Any = None) -> Any:
        """Draws ``loss_curve_`` (and ``validation_loss_curve_``) against the epoch on ``ax``
        (None: a new figure's axes: matplotlib's Axes) and returns the axes."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        if getattr(self, "loss_curve_", None) is None:
            raise AttributeError(f"solver={self.solver!r} records no loss curve; the stochastic "
                                 f"solvers 'sgd' and 'adam' do")
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError("plot_loss_curve needs matplotlib: pip install matplotlib "
                              "(or deltaprop[plot])") from error
        if ax is None:
            ax = plt.figure().add_subplot()
        epochs = range(1, len(self.loss_curve_) + 1)
        ax.plot(epochs, self.loss_curve_, label="training loss")
        if getattr(self, "validation_loss_curve_", None):
            ax.plot(epochs, self.validation_loss_curve_, label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(type(self).__name__)
        ax.legend()
        return ax
