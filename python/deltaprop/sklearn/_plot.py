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
        from ..plot import _pyplot, draw_loss_curve

        plt = _pyplot()
        if ax is None:
            ax = plt.figure().add_subplot()
        draw_loss_curve(ax, self.loss_curve_, getattr(self, "validation_loss_curve_", None),
                        type(self).__name__)
        return ax
