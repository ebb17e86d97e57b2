// Activations with learned parameters, forward beside backward (reference/activations.py is the
// readable twin). Parameters are per unit j (one array of O values each) except a learnable
// swish's beta, one per layer; params[k] is the k-th array in Activation.param_names order.
//   prelu  f = z > 0 ? z : a_j z                      f' = z > 0 ? 1 : a_j    df/da = min(z, 0)
//          (He et al. 2015; f'(0) = a_j, as leaky_relu)
//   swish  f = z s, s = sigmoid(beta z)              f' = s (1 + beta z (1 - s))
//          (Ramachandran et al. 2017)                 df/dbeta = z^2 s (1 - s)
//   acon   f = d z s + p2 z, d = p1 - p2, s = sigmoid(beta d z)   (ACON-C, Ma et al. 2021)
//          f' = d s (1 + beta d z (1 - s)) + p2
//          df/dp1 = z s (1 + beta d z (1 - s)),  df/dp2 = z - df/dp1,  df/dbeta = (d z)^2 s (1 - s)
// Parameter gradients are dC/dtheta_j = sum_n dA[n, j] df/dtheta(z[n, j]): the units are split
// into one contiguous range per thread and each column is summed in row order in float64, so the
// sums do not depend on the thread count.
#pragma once

#include <vector>

#include "activations.hpp"

namespace dp {

inline int learned_param_count(const ActivationSpec& f) {
    if (!is_learned(f)) return 0;
    return f.kind == Activation::acon ? 3 : 1;
}

inline idx learned_param_size(const ActivationSpec& f, idx units) {
    return f.kind == Activation::swish ? 1 : units;
}

// Activation.param_names: the k-th learned parameter's name.
inline const char* learned_param_name(const ActivationSpec& f, int k) {
    if (f.kind == Activation::prelu) return "slope";
    if (f.kind == Activation::swish) return "beta";
    return k == 0 ? "p1" : (k == 1 ? "p2" : "beta");
}

// body(n, j, e) over the N x O elements, the units split in contiguous ranges over threads;
// `begin(part, j0, j1)` and `end(part)` bracket each thread's range.
template <typename Body>
void for_units(idx N, idx O, int n_threads, Body&& body) {
    const int nt = threads_for(N * O, n_threads);
    parallel_for(nt, nt, [&](idx part) {
        const idx j0 = O * part / nt, j1 = O * (part + 1) / nt;
        for (idx n = 0; n < N; ++n)
            for (idx j = j0; j < j1; ++j) body(n, j, n * O + j);
    });
}

// A = f(Z) for an N x O layer; A may alias Z.
template <typename T>
void learned_forward(T* A, const T* Z, idx N, idx O, const ActivationSpec& f, const T* const* params,
                     int n_threads) {
    switch (f.kind) {
        case Activation::prelu:
            for_units(N, O, n_threads, [&](idx, idx j, idx e) { A[e] = Z[e] > T(0) ? Z[e] : params[0][j] * Z[e]; });
            break;
        case Activation::swish: {
            const T beta = params[0][0];
            for_units(N, O, n_threads, [&](idx, idx, idx e) { A[e] = Z[e] * sigmoid(beta * Z[e]); });
            break;
        }
        default: {  // acon
            const T *p1 = params[0], *p2 = params[1], *beta = params[2];
            for_units(N, O, n_threads, [&](idx, idx j, idx e) {
                const T d = p1[j] - p2[j], z = Z[e];
                A[e] = d * z * sigmoid(beta[j] * d * z) + p2[j] * z;
            });
        }
    }
}

// D = f'(Z) (the health statistics read it; the backward below fuses it with dA).
template <typename T>
void learned_derivative(T* D, const T* Z, idx N, idx O, const ActivationSpec& f, const T* const* params,
                        int n_threads) {
    switch (f.kind) {
        case Activation::prelu:
            for_units(N, O, n_threads, [&](idx, idx j, idx e) { D[e] = Z[e] > T(0) ? T(1) : params[0][j]; });
            break;
        case Activation::swish: {
            const T beta = params[0][0];
            for_units(N, O, n_threads, [&](idx, idx, idx e) {
                const T s = sigmoid(beta * Z[e]);
                D[e] = s * (T(1) + beta * Z[e] * (T(1) - s));
            });
            break;
        }
        default: {  // acon
            const T *p1 = params[0], *p2 = params[1], *beta = params[2];
            for_units(N, O, n_threads, [&](idx, idx j, idx e) {
                const T d = p1[j] - p2[j], z = Z[e], s = sigmoid(beta[j] * d * z);
                D[e] = d * s * (T(1) + beta[j] * d * z * (T(1) - s)) + p2[j];
            });
        }
    }
}

// dZ = dA . f'(Z) and param_grads[k][j] = sum_n dA[n, j] df/dtheta_k; dZ may alias dA.
template <typename T>
void learned_backward(T* dZ, T* const* param_grads, const T* dA, const T* Z, idx N, idx O,
                      const ActivationSpec& f, const T* const* params, int n_threads) {
    const int count = learned_param_count(f);
    std::vector<double> sums(static_cast<size_t>(count * O), 0.0);  // [k * O + j]
    double* S = sums.data();
    switch (f.kind) {
        case Activation::prelu: {
            const T* a = params[0];
            for_units(N, O, n_threads, [&](idx, idx j, idx e) {
                const T z = Z[e], g = dA[e];
                S[j] += double(g) * double(std::min(z, T(0)));
                dZ[e] = g * (z > T(0) ? T(1) : a[j]);
            });
            break;
        }
        case Activation::swish: {
            const T beta = params[0][0];
            for_units(N, O, n_threads, [&](idx, idx j, idx e) {
                const T z = Z[e], g = dA[e], s = sigmoid(beta * z);
                S[j] += double(g) * double(z * z * (s * (T(1) - s)));
                dZ[e] = g * (s * (T(1) + beta * z * (T(1) - s)));
            });
            break;
        }
        default: {  // acon
            const T *p1 = params[0], *p2 = params[1], *beta = params[2];
            for_units(N, O, n_threads, [&](idx, idx j, idx e) {
                const T d = p1[j] - p2[j], z = Z[e], g = dA[e], s = sigmoid(beta[j] * d * z);
                const T dp1 = z * s * (T(1) + beta[j] * d * z * (T(1) - s));
                S[j] += double(g) * double(dp1);
                S[O + j] += double(g) * double(z - dp1);
                S[2 * O + j] += double(g) * double((d * z) * (d * z) * (s * (T(1) - s)));
                dZ[e] = g * (d * s * (T(1) + beta[j] * d * z * (T(1) - s)) + p2[j]);
            });
        }
    }
    if (f.kind == Activation::swish) {  // one beta per layer: the total over the units, in order
        double total = 0;
        for (idx j = 0; j < O; ++j) total += S[j];
        param_grads[0][0] = T(total);
        return;
    }
    for (int k = 0; k < count; ++k)
        for (idx j = 0; j < O; ++j) param_grads[k][j] = T(S[k * O + j]);
}

}  // namespace dp
