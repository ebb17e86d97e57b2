"""What runs between epochs besides scikit-learn's own rules: the user's per-epoch callback
(which may stop training) and a tqdm progress bar (tqdm is an optional dependency)."""

from __future__ import annotations


class EpochHooks:
    """``callback(estimator)`` after each epoch, with the fitted attributes up to date
    (``n_iter_``, ``loss_curve_``, ``validation_scores_``, ...); a True return stops training
    as convergence would. ``progress=True`` shows a bar over ``max_iter`` epochs."""

    def __init__(self, estimator, incremental):
        self.estimator = estimator
        self.bar = None
        if estimator.progress and not incremental:
            try:
                from tqdm.auto import tqdm
            except ImportError as error:
                raise ImportError("progress=True needs tqdm: pip install tqdm "
                                  "(or deltaprop[progress])") from error
            self.bar = tqdm(total=estimator.max_iter, desc=type(estimator).__name__,
                            unit="epoch", leave=False)

    def epoch_end(self) -> bool:
        est = self.estimator
        if self.bar is not None:
            postfix = {"loss": f"{est.loss_:.4g}"}
            if est.validation_scores_:
                postfix["val"] = f"{est.validation_scores_[-1]:.4g}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)
        return bool(est.callback(est)) if est.callback is not None else False

    def fit_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
