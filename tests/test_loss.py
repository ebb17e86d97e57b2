"""The output layers and their losses in C++ (csrc/loss.hpp) against the reference, which
test_reference_losses.py checks against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DTYPES, THREADS, assert_close, needs_sklearn_1_7

import deltaprop as dp
from deltaprop import reference as ref

PAIRS = [(output, loss) for output, losses in ref.LOSSES.items() for loss in losses]


def targets(rng, output, shape):
    if output == "softmax":
        return np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    if output == "sigmoid":
        return rng.integers(0, 2, shape).astype(float)
    if output == "exp":
        return rng.poisson(2.0, shape).astype(float)
    return rng.standard_normal(shape)


@pytest.mark.parametrize("output, loss", PAIRS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (600, 5)])
def test_loss_matches_reference(rng, output, loss, dtype, threads, weighted, shape):
    Z = (rng.standard_normal(shape) * 2).astype(dtype)
    Y = targets(rng, output, shape).astype(dtype)
    weights = rng.uniform(0, 3, shape[0]) if weighted else None
    if weighted:
        weights[0] = 1.0  # never all zero
    for mean, clip in ((False, False), (True, False), (False, True)):
        kwargs = dict(loss=loss, sample_weight=weights, huber_delta=0.7, mean_over_outputs=mean,
                      clip_probabilities=clip)
        got = dp.ops.output_loss_delta(Z, Y, output, n_threads=threads, **kwargs)
        want = ref.output_loss_delta(Z, Y, output, **kwargs)
        assert got[0] == pytest.approx(want[0], rel=1e-10 if dtype == np.float64 else 1e-5)
        for a, b, what in zip(got[1:], want[1:], ["A", "dZ"]):
            assert a.dtype == dtype
            assert_close(a, b, what=what)
    assert_close(dp.ops.output_forward(Z, output), ref.output_forward(Z, output), what="output")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, outputs", [("sigmoid", 1), ("sigmoid", 3), ("softmax", 4)])
@pytest.mark.parametrize("weighted", [False, True])
@needs_sklearn_1_7
def test_clipped_log_losses_are_scikit_learns(rng, dtype, output, outputs, weighted):
    """clip_probabilities reports scikit-learn's own log losses (its drop-in's loss curve), on
    logits from mild to far past saturation: probabilities clipped to [eps, 1 − eps] before the
    log, the logistic's taken from the rounded p; the gradient stays A − Y."""
    sk_base = pytest.importorskip("sklearn.neural_network._base")
    scales = np.array([0.5, 5, 20, 40, 800], dtype)
    Z = (rng.standard_normal((200, outputs)) * np.repeat(scales, 40)[:, None]).astype(dtype)
    Y = targets(rng, output, Z.shape).astype(dtype)
    w = rng.uniform(0.1, 3, len(Z)) if weighted else None
    probabilities = Z.copy()
    sk_base.ACTIVATIONS["logistic" if output == "sigmoid" else "softmax"](probabilities)  # in place
    name = "binary_log_loss" if output == "sigmoid" else "log_loss"
    want = sk_base.LOSS_FUNCTIONS[name](Y, probabilities, sample_weight=w)
    exact = dp.ops.output_loss_delta(Z, Y, output, sample_weight=w)
    assert exact[0] > want * 1.5  # rows wrong far past -log eps: the clip matters here
    for backend in (dp.ops, ref):
        loss, A, dZ = backend.output_loss_delta(Z, Y, output, sample_weight=w,
                                                clip_probabilities=True)
        # scikit-learn sums its float32 terms in float32
        assert loss == pytest.approx(want, rel=1e-12 if dtype == np.float64 else 1e-5)
        assert_close(dZ, exact[2])


@pytest.mark.parametrize("output, loss", PAIRS)
def test_loss_is_bitwise_the_same_for_any_thread_count(rng, output, loss):
    Z, Y = rng.standard_normal((5000, 4)), targets(rng, output, (5000, 4))
    w = rng.uniform(0.5, 2, 5000)
    one, two = (dp.ops.output_loss_delta(Z, Y, output, loss=loss, sample_weight=w, n_threads=t)
                for t in (1, 2))
    assert one[0] == two[0]
    np.testing.assert_array_equal(one[2], two[2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_extreme_logits_give_finite_losses(dtype, output):
    big = 1e4 if dtype == np.float32 else 1e6
    Z = np.array([[big, -big, 0.0], [-big, big, 1.0]], dtype=dtype)
    Y = np.array([[0, 1, 0], [1, 0, 0]], dtype=dtype)
    loss, A, dZ = dp.ops.output_loss_delta(Z, Y, output)
    assert np.isfinite(loss) and loss > big / 2  # confidently wrong: about big per row
    assert np.isfinite(A).all() and np.isfinite(dZ).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_exponentials_over_their_whole_range(dtype):
    # Softmax takes e^x of x = z - max z <= 0 with its own vectorised exp (csrc/exp_lanes.hpp):
    # within a few ulp of NumPy's over every gap from 0 to past the smallest subnormal, both
    # halves of the split 2^k, rows of any length, and 0 at -inf, NaN at NaN.
    eps = np.finfo(dtype).eps
    tiny = np.finfo(dtype).smallest_subnormal
    top = 800 if dtype == np.float64 else 110
    x = -np.linspace(0, top, 200_003).astype(dtype)
    Z = np.stack([np.zeros_like(x), x], axis=1)  # rows [0, x]: a = (1, e^x) / (1 + e^x)
    A = dp.ops.output_forward(Z, "softmax")
    e = np.exp(x.astype(np.float64))
    want = np.stack([1 / (1 + e), e / (1 + e)], axis=1)
    normal = want >= np.finfo(dtype).tiny
    np.testing.assert_allclose(A[normal], want[normal], rtol=4 * eps, atol=0)
    # Subnormal results keep fewer bits: within a few of the smallest one.
    np.testing.assert_allclose(A[~normal], want[~normal], rtol=0, atol=4 * tiny)
    for width in (1, 2, 7, 8, 9, 33):  # rows' ends inside and across vectors
        Zw = np.random.default_rng(width).uniform(-30, 30, (37, width)).astype(dtype)
        assert_close(dp.ops.output_forward(Zw, "softmax"), ref.output_forward(Zw, "softmax"))
    special = np.array([[0.0, -np.inf, -1.0], [np.nan, 0.0, -1.0]], dtype=dtype)
    A = dp.ops.output_forward(special, "softmax", check_finite=False)
    assert A[0, 1] == 0 and np.isfinite(A[0]).all() and np.isnan(A[1]).all()


def row_losses(Z, Y, output):
    """Each row's loss on its own (the C++ returns their mean)."""
    return np.array([dp.ops.output_loss_delta(Z[i:i + 1], Y[i:i + 1], output,
                                              check_finite=False)[0] for i in range(len(Z))])


def test_softmax_log_sum_exp_over_its_range():
    # The log-sum-exp takes log(1 + r) of the row's sum 1 + r (r the terms but the max's) with
    # its own vectorised log (csrc/log_lanes.hpp): 1 + r = 1 + e^x from 1 to 2 across sqrt(2)
    # (where its reduction moves to the next power of 2), and w - 1 + e^x for rows of w zeros
    # and one x, up to 4096. Through log1p, r keeps its digits however small.
    eps = np.finfo(np.float64).eps
    x = np.concatenate([-np.linspace(0, 40, 1201), np.log(np.sqrt(2) - 1) + np.arange(-8, 9) * eps])
    Z = np.stack([np.zeros_like(x), x], axis=1)
    got = row_losses(Z, np.tile([1.0, 0.0], (len(x), 1)), "softmax")  # loss = lse - 0
    np.testing.assert_allclose(got, np.logaddexp(0, x), rtol=3 * eps, atol=0)
    for width in (2, 3, 5, 8, 100, 181, 1024, 4096):
        x = np.array([0.0, -0.3, -1.0, -5.0])
        Z = np.zeros((len(x), width))
        Z[:, 1] = x
        Y = np.zeros_like(Z)
        Y[:, 0] = 1
        want = np.log1p((width - 2) + np.exp(x))
        np.testing.assert_allclose(row_losses(Z, Y, "softmax"), want, rtol=2 * eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernels_", [dp.ops, ref])
def test_log_losses_keep_their_digits_where_the_logits_are_large(kernels_, dtype):
    # The losses are summed as (max − z_k) + log Σ e^(z − max) and (max(z, 0) − y z) +
    # log(1 + e^-|z|): the other way round, a large logit cancelled the small loss out (logits
    # of 1e16 gave 2 for log 3, a label matching z = 30 kept 1.3% of e^-30's digits, and in
    # float32 the sum 1 + e^-30 was 1, a loss of 0).
    tail = np.log1p(np.exp(-30.0))
    cases = [("softmax", [1e16, 1e16, 1e16], [1, 0, 0], np.log(3)),
             ("softmax", [-1e30, -1e30], [0, 1], np.log(2)),
             ("softmax", [1030.0, 1000.0], [1, 0], tail),
             ("softmax", [30.0, 0.0], [1, 0], tail),
             ("sigmoid", [30.0], [1], tail),
             ("sigmoid", [-30.0], [0], tail),
             ("sigmoid", [-700.0], [0], np.exp(-700.0))]
    for output, z, y, want in cases:
        Z, Y = np.array([z], dtype), np.array([y], dtype)
        loss = kernels_.output_loss_delta(Z, Y, output)[0]
        rel = 4 * float(np.finfo(dtype).eps)
        assert loss == pytest.approx(want, rel=rel, abs=0), (output, z, y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_output_and_binary_log_loss_over_their_range(dtype):
    # sigmoid(z) and the loss softplus(z) - y z take e^-|z| and log(1 + e^-|z|) vectorised
    # across rows (csrc/loss.hpp, logistic_values): within a few ulp of SciPy's expit and of
    # NumPy's logaddexp from -700 to 700, either label, and NaN staying NaN.
    from scipy.special import expit

    eps = np.finfo(dtype).eps
    z = np.concatenate([np.linspace(-700, 700, 1401), [0.0, 1e-300, -1e-300, 1e-9, -1e-9, 36.7]])
    z = z.astype(dtype)
    zd = z.astype(np.float64)
    A = dp.ops.output_forward(z[:, None], "sigmoid")[:, 0]
    want = expit(zd)
    normal = want >= np.finfo(dtype).tiny
    np.testing.assert_allclose(A[normal], want[normal], rtol=4 * eps, atol=0)
    tiny = np.finfo(dtype).smallest_subnormal
    np.testing.assert_allclose(A[~normal], want[~normal], rtol=0, atol=4 * tiny)
    for label in (0.0, 1.0):
        got = row_losses(z[:, None], np.full((len(z), 1), label, dtype), "sigmoid")
        want = np.logaddexp(0, zd) - label * zd
        # in double whatever the dtype; y z cancels softplus(z)'s max(z, 0) part, an ulp of |z|
        bound = 4 * np.finfo(np.float64).eps * np.maximum(1, np.abs(zd))
        assert (np.abs(got - want) <= bound).all()
    special = np.array([[np.nan], [np.inf], [-np.inf]], dtype)
    A = dp.ops.output_forward(special, "sigmoid", check_finite=False)[:, 0]
    assert np.isnan(A[0]) and A[1] == 1 and A[2] == 0
    assert np.isnan(row_losses(special[:1], np.ones((1, 1), dtype), "sigmoid")[0])


def test_huber_and_absolute_error_at_their_kinks():
    Z = np.array([[1.0, 2.0, 0.5]])
    Y = np.array([[0.0, 2.0, 1.0]])  # residuals 1, 0, -0.5
    loss, _, dZ = dp.ops.output_loss_delta(Z, Y, "identity", loss="huber", huber_delta=1.0)
    assert loss == pytest.approx(0.5 + 0 + 0.125)  # |r| = delta exactly: the squared branch
    np.testing.assert_array_equal(dZ, [[1.0, 0.0, -0.5]])
    loss, _, dZ = dp.ops.output_loss_delta(Z, Y, "identity", loss="absolute_error")
    assert loss == pytest.approx(1.5)
    np.testing.assert_array_equal(dZ, [[1.0, 0.0, -1.0]])  # sign(0) = 0


def test_zero_weight_rows_do_not_count(rng):
    Z, Y = rng.standard_normal((6, 3)), np.eye(3)[[0, 1, 2, 0, 1, 2]]
    w = np.array([1.0, 2.0, 0.0, 1.0, 0.0, 3.0])
    loss, _, dZ = dp.ops.output_loss_delta(Z, Y, sample_weight=w)
    kept = w > 0
    sub_loss, _, sub_dZ = dp.ops.output_loss_delta(Z[kept], Y[kept], sample_weight=w[kept])
    assert loss == pytest.approx(sub_loss, rel=1e-14)
    np.testing.assert_array_equal(dZ[~kept], 0)
    assert_close(dZ[kept], sub_dZ)


@pytest.mark.parametrize("kernels_", ["cpp", "numpy"])
def test_a_zero_weight_row_with_an_infinite_loss_is_absent(kernels_):
    """exp(800) overflows to inf in the Poisson loss of the row weighted 0: no NaN leaks."""
    f = dp.ops.output_loss_delta if kernels_ == "cpp" else ref.output_loss_delta
    Z, Y = np.array([[800.0], [0.5]]), np.array([[1.0], [2.0]])
    with np.errstate(over="ignore"):
        loss, _, dZ = f(Z, Y, "exp", sample_weight=[0.0, 1.0])
    assert loss == pytest.approx(np.exp(0.5) - 2 * 0.5 + (2 * np.log(2) - 2))  # half deviance
    np.testing.assert_array_equal(dZ[0], 0)
    assert np.isfinite(dZ).all()
