"""What runs between epochs besides scikit-learn's own rules: the user's per-epoch callback
(which may stop training), scikit-learn 1.9's callbacks (sklearn.callback, SLEP023: the fit is
the root task, each epoch a subtask) and a tqdm progress bar (tqdm is an optional dependency)."""

from __future__ import annotations

from typing import Any

try:  # scikit-learn >= 1.9 (whose _fit_context, around fit, manages the callbacks' context)
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # older scikit-learn: no callback framework to take part in
    class CallbackSupportMixin:  # type: ignore[no-redef]
        pass

__all__ = ["CallbackSupportMixin", "EpochHooks"]


class EpochHooks:
    """``callback(estimator)`` after each epoch (each iteration of lbfgs), with the fitted
    attributes up to date (``n_iter_``, ``loss_curve_``, ``validation_scores_``, ...); a True
    return stops training as convergence would. Callbacks set with ``set_callbacks`` get
    ``on_fit_task_begin`` and ``on_fit_task_end`` for the fit and for each epoch; an epoch's end
    hook returning True stops training too. ``progress=True`` shows a bar over ``max_iter``
    epochs (iterations)."""

    # estimator: a BaseMLP (typed Any: it subclasses scikit-learn's untyped classes)
    def __init__(self, estimator: Any, X: Any, y: Any, sample_weight: Any,
                 incremental: bool, given_weight: Any) -> None:
        """``sample_weight``: the rows' weights in the objective (class_weight's included), which
        each epoch's callbacks get; ``given_weight``: the fit's own sample_weight, which the
        fit's get (as LogisticRegression hands them: a score of the whole fit is the user's)."""
        self.estimator = estimator
        self.bar: Any = None
        self.context: Any = None
        self.epoch_context: Any = None
        if getattr(estimator, "_skl_callbacks", None):
            # the targets as the user gave them (labels, not the network's encoding), for
            # callbacks that score
            y = estimator._decode_targets(y)
            y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
            self.data, self.fit_data = (
                dict(X=X, y=y, metadata=None if w is None else {"sample_weight": w})
                for w in (sample_weight, given_weight))
            self.context = estimator._init_callback_context(
                max_subtasks=1 if incremental else estimator.max_iter)
            self.context.call_on_fit_task_begin(estimator=estimator, **self.fit_data)
        if estimator.progress and not incremental:
            try:
                from tqdm.auto import tqdm
            except ImportError as error:
                raise ImportError("progress=True needs tqdm: pip install tqdm "
                                  "(or deltaprop[progress])") from error
            self.bar = tqdm(total=estimator.max_iter, desc=type(estimator).__name__,
                            unit="iteration" if estimator.solver == "lbfgs" else "epoch",
                            leave=False)

    @property
    def idle(self) -> bool:
        """True when nothing runs between epochs: no callback, no progress bar."""
        return self.bar is None and self.between_chunks

    @property
    def between_chunks(self) -> bool:
        """True when what runs between epochs can wait for the end of a chunk of them: no
        callback (the progress bar moves by a chunk at a time, epochs_done)."""
        return self.context is None and self.estimator.callback is None

    def epochs_done(self, epochs: int) -> None:
        """A chunk of ``epochs`` epochs that ran in the engine: the bar moves past them."""
        if self.bar is not None and epochs:
            self._show_progress(epochs)

    def _fitted(self) -> dict[str, list[Any]]:
        coefs, intercepts, learned = self.estimator._parameters_copy()
        return {"coefs_": coefs, "intercepts_": intercepts, "activation_params_": learned}

    def epoch_begin(self) -> None:
        if self.context is not None:
            self.epoch_context = self.context.subcontext(task_name="epoch")
            self.epoch_context.call_on_fit_task_begin(
                estimator=self.estimator, reconstruction_attributes=self._fitted, **self.data)

    def epoch_end(self) -> bool:
        est = self.estimator
        stop = False
        if self.epoch_context is not None:
            stop = self.epoch_context.call_on_fit_task_end(
                estimator=est, reconstruction_attributes=self._fitted, **self.data)
            self.epoch_context = None
        if self.bar is not None:
            self._show_progress(1)
        if est.callback is not None and est.callback(est):
            stop = True
        return bool(stop)

    def _show_progress(self, epochs: int) -> None:
        est = self.estimator
        postfix = {"loss": f"{est.loss_:.4g}"}
        if getattr(est, "validation_scores_", None):  # (lbfgs has none)
            postfix["val"] = f"{est.validation_scores_[-1]:.4g}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(epochs)

    def fit_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.epoch_context is not None:  # interrupted inside an epoch
            self.epoch_context.call_on_fit_task_end(estimator=self.estimator)
        if self.context is not None:
            self.context.call_on_fit_task_end(estimator=self.estimator,
                                              reconstruction_attributes=self._fitted,
                                              **self.fit_data)
