# Types of deltaprop._core, the C++/OpenMP extension (csrc/bindings/). Written by hand and kept
# in step with the extension by tests/test_stub.py, which compares every exported name, every
# function's parameter names and the Engine classes' members.
#
# At run time every argument is checked by the bindings (a wrong type is a TypeError naming the
# argument, never a silent conversion); these types say what is accepted. Arrays of one call
# share a dtype, float32 or float64, which _F ties to the dtype of the result.

from collections.abc import Sequence
from types import ModuleType
from typing import Any, Generic, Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt

from .activations import Activation

_F = TypeVar("_F", np.float32, np.float64)
_Array = npt.NDArray[np.float32] | npt.NDArray[np.float64]
_ActivationArg = str | Activation

ACTIVATIONS: list[str]
OUTPUTS: list[str]
openmp: int | None  # _OPENMP, the date of the OpenMP specification (None: built without)
compiler: str  # the compiler's __VERSION__

def default_threads() -> int: ...
def build_info() -> dict[str, Any]: ...
def threads_used(n_threads: int = 0) -> int: ...
def contention_info() -> dict[str, float]: ...
def _contention_record(wall_ns: int, cpu_ns: int) -> None: ...
def legacy_shuffled_orders(key: npt.NDArray[np.uint32], pos: int, start: npt.NDArray[np.int64],
                           epochs: int) -> tuple[npt.NDArray[np.int64], int]: ...
def mt19937_state_views(bit_generator: np.random.MT19937,
                        ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]: ...

class _Ops(ModuleType):
    """deltaprop._core.ops, a submodule. A single stub file cannot declare a submodule, so it is
    typed as an instance of this class, whose static methods are the module's functions."""

    @staticmethod
    def gemm(A: npt.NDArray[_F], B: npt.NDArray[_F], trans_a: bool = False, trans_b: bool = False,
             alpha: float = 1.0, beta: float = 0.0, out: npt.NDArray[_F] | None = None, *,
             n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def dense_forward(X: npt.NDArray[_F], W: npt.NDArray[_F], b: npt.NDArray[_F],
                      activation: _ActivationArg = "relu", grad_at_zero: float = 0.0, *,
                      n_threads: int = 0, check_finite: bool = True,
                      ) -> tuple[npt.NDArray[_F], npt.NDArray[_F]]: ...
    @staticmethod
    def dense_backward(dZ: npt.NDArray[_F], X: npt.NDArray[_F], *, n_threads: int = 0,
                       check_finite: bool = True) -> tuple[npt.NDArray[_F], npt.NDArray[_F]]: ...
    @staticmethod
    def delta_propagate(dZ: npt.NDArray[_F], W: npt.NDArray[_F], Z_prev: npt.NDArray[_F],
                        activation: _ActivationArg = "relu", grad_at_zero: float = 0.0, *,
                        n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def activation_forward(Z: npt.NDArray[_F], activation: _ActivationArg = "relu", *,
                           n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def activation_backward(dA: npt.NDArray[_F], Z: npt.NDArray[_F],
                            activation: _ActivationArg = "relu", grad_at_zero: float = 0.0, *,
                            n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def activation_derivative(Z: npt.NDArray[_F], activation: _ActivationArg = "relu",
                              grad_at_zero: float = 0.0, *, n_threads: int = 0,
                              check_finite: bool = True) -> npt.NDArray[_F]: ...
    # op "param_gradients" returns {name: gradient}; the other ops an array like Z
    @overload
    @staticmethod
    def learned_activation(op: Literal["forward", "derivative", "backward"], Z: npt.NDArray[_F],
                           dA: npt.NDArray[_F] | None, activation: _ActivationArg,
                           params: Sequence[npt.NDArray[_F]], *, n_threads: int = 0,
                           check_finite: bool = True) -> npt.NDArray[_F]: ...
    @overload
    @staticmethod
    def learned_activation(op: Literal["param_gradients"], Z: npt.NDArray[_F],
                           dA: npt.NDArray[_F] | None, activation: _ActivationArg,
                           params: Sequence[npt.NDArray[_F]], *, n_threads: int = 0,
                           check_finite: bool = True) -> dict[str, npt.NDArray[_F]]: ...
    @staticmethod
    def output_loss_delta(Z: npt.NDArray[_F], Y: npt.NDArray[_F], output: str = "softmax", *,
                          loss: str | None = None, sample_weight: npt.ArrayLike | None = None,
                          huber_delta: float = 1.0, mean_over_outputs: bool = False,
                          clip_probabilities: bool = False,
                          n_threads: int = 0, check_finite: bool = True,
                          ) -> tuple[float, npt.NDArray[_F], npt.NDArray[_F]]: ...
    @staticmethod
    def output_forward(Z: npt.NDArray[_F], output: str = "softmax", *, n_threads: int = 0,
                       check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def dropout_stream(seed: int, epoch: int, batch: int, layer: int) -> int: ...
    @staticmethod
    def dropout_mask(shape: Sequence[int], rate: float, seed: int, epoch: int, batch: int,
                     layer: int, *, n_threads: int = 0) -> npt.NDArray[np.bool_]: ...
    @staticmethod
    def dropout_forward(A: npt.NDArray[_F], mask: npt.NDArray[np.bool_], rate: float, *,
                        n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def dropout_backward(dA: npt.NDArray[_F], mask: npt.NDArray[np.bool_], rate: float, *,
                         n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def alpha_dropout_forward(A: npt.NDArray[_F], mask: npt.NDArray[np.bool_], rate: float, *,
                              n_threads: int = 0, check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def alpha_dropout_backward(dA: npt.NDArray[_F], mask: npt.NDArray[np.bool_], rate: float, *,
                               n_threads: int = 0,
                               check_finite: bool = True) -> npt.NDArray[_F]: ...
    @staticmethod
    def alpha_dropout_coefficients(rate: float) -> tuple[float, float, float]: ...
    @staticmethod
    def sgd_momentum_step(p: npt.NDArray[_F], v: npt.NDArray[_F], g: npt.NDArray[_F], lr: float,
                          momentum: float = 0.0, *, n_threads: int = 0,
                          check_finite: bool = True) -> None: ...
    @staticmethod
    def nesterov_step(p: npt.NDArray[_F], v: npt.NDArray[_F], g: npt.NDArray[_F], lr: float,
                      momentum: float, *, n_threads: int = 0,
                      check_finite: bool = True) -> None: ...
    @staticmethod
    def adam_step(p: npt.NDArray[_F], m: npt.NDArray[_F], v: npt.NDArray[_F], g: npt.NDArray[_F],
                  t: int, lr: float, beta_1: float = 0.9, beta_2: float = 0.999,
                  epsilon: float = 1e-8, *, n_threads: int = 0,
                  check_finite: bool = True) -> float: ...
    @staticmethod
    def add_l2(g: npt.NDArray[_F], W: npt.NDArray[_F], alpha: float, n: float, *,
               n_threads: int = 0, check_finite: bool = True) -> None: ...
    @staticmethod
    def clip_by_global_norm(grads: Sequence[_Array], max_norm: float, *, n_threads: int = 0,
                            check_finite: bool = True) -> float: ...
    @staticmethod
    def shuffle_order(n: int, seed: int, epoch: int) -> npt.NDArray[np.int64]: ...
    @staticmethod
    def get_isa() -> str: ...
    @staticmethod
    def set_isa(isa: str) -> None: ...
    @staticmethod
    def available_isas() -> list[str]: ...
    @staticmethod
    def gemm_tile(dtype: str) -> tuple[int, int]: ...
    @staticmethod
    def fma_peak_gflops(dtype: str = "float32", seconds: float = 0.2) -> float: ...

ops: _Ops

# The engine behind deltaprop.MLP, one class per dtype with the same members (typed once, in
# _Engine, which does not exist at run time). Parameters, gradients and optimizer state are flat
# lists of arrays of the engine's dtype, per layer W_l, b_l, then the learned parameters of hidden
# layer l's activation; the written ones are updated in place.
_Params = Sequence[npt.NDArray[_F]]
# X: dense rows, or a CSR matrix's (data, indices, indptr, n_columns), indices int32 or int64
_X = npt.NDArray[_F] | tuple[npt.NDArray[_F], npt.NDArray[Any], npt.NDArray[Any], int]


class _Engine(Generic[_F]):
    def __init__(self, layer_sizes: Sequence[int],
                 activations: _ActivationArg | Sequence[_ActivationArg] = "relu",
                 output: str = "softmax", loss: str | None = None, *,
                 residual: bool | Sequence[bool] | None = None, huber_delta: float = 1.0,
                 loss_mean_over_outputs: bool = False, loss_clip_probabilities: bool = False,
                 dropout: float | Sequence[float] | None = None, alpha_dropout: bool = False,
                 n_threads: int = 0) -> None: ...
    @property
    def n_threads(self) -> int: ...
    @n_threads.setter
    def n_threads(self, value: int) -> None: ...
    @property
    def layer_sizes(self) -> list[int]: ...
    def forward(self, params: _Params[_F], X: _X[_F]) -> npt.NDArray[_F]: ...
    def evaluate(self, params: _Params[_F], X: _X[_F], Y: npt.NDArray[_F],
                 sample_weight: npt.ArrayLike | None = None) -> tuple[float, npt.NDArray[_F]]: ...
    def score(self, outputs: npt.NDArray[_F], Y: npt.NDArray[_F],
              sample_weight: npt.ArrayLike | None = None, one_class: bool = False) -> float: ...
    def loss_and_gradients(self, params: _Params[_F], X: _X[_F], Y: npt.NDArray[_F],
                           grads: _Params[_F],
                           sample_weight: npt.ArrayLike | None = None) -> float: ...
    def train_epoch(self, params: _Params[_F], state1: _Params[_F], state2: _Params[_F] | None,
                    X: _X[_F], Y: npt.NDArray[_F],
                    sample_weight: npt.ArrayLike | None = None, *,
                    order: npt.NDArray[np.int64] | None = None, batch_size: int, lr: float,
                    momentum: float = 0.0, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                    optimizer: str = "sgd", beta_1: float = 0.9, beta_2: float = 0.999,
                    epsilon: float = 1e-8, alpha: float = 0.0, clip_norm: float = 0.0,
                    step: int = 0,
                    health: npt.NDArray[np.float64] | None = None) -> tuple[float, int]: ...
    def train_epochs(self, params: _Params[_F], state1: _Params[_F], state2: _Params[_F] | None,
                     X: _X[_F], Y: npt.NDArray[_F],
                     sample_weight: npt.ArrayLike | None = None, *,
                     orders: npt.NDArray[np.int64] | None = None,
                     shuffle_state: tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32],
                                          npt.NDArray[np.int64]] | None = None,
                     lrs: npt.NDArray[np.float64], losses: npt.NDArray[np.float64],
                     batch_size: int, momentum: float = 0.0, seed: int = 0, epoch: int = 0,
                     optimizer: str = "sgd", beta_1: float = 0.9, beta_2: float = 0.999,
                     epsilon: float = 1e-8, alpha: float = 0.0, clip_norm: float = 0.0,
                     step: int = 0, tol: float = 0.0, n_iter_no_change: float = ...,
                     best_loss: float = ..., no_improvement_count: int = 0,
                     held_out: tuple[_X[_F], npt.NDArray[_F], npt.ArrayLike | None,
                                     _Params[_F], npt.NDArray[np.float64],
                                     npt.NDArray[np.float64], bool] | None = None,
                     best_score: float = ..., health: npt.NDArray[np.float64] | None = None,
                     ) -> tuple[int, str, float, int, int, BaseException | None]: ...
    def health(self, params: _Params[_F], X: _X[_F], Y: npt.NDArray[_F],
               sample_weight: npt.ArrayLike | None = None,
               lr: float = 0.01, alpha: float = 0.0) -> npt.NDArray[np.float64]: ...

class Engine_float32(_Engine[np.float32]): ...
class Engine_float64(_Engine[np.float64]): ...
