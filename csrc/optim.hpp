// Parameter updates.
#pragma once

#include "common.hpp"

namespace dp {

// SGD with momentum, in scikit-learn's convention (learning rate inside the velocity,
// sklearn/neural_network/_stochastic_optimizers.py, SGDOptimizer without Nesterov):
//   v <- momentum . v - lr . g
//   p <- p + v
// With momentum = 0 this is plain SGD, p <- p - lr . g (online training when batches are one row).
template <typename T>
void sgd_momentum_step(T* p, T* v, const T* g, idx count, T lr, T momentum, int n_threads) {
    const int nt = threads_for(count, n_threads);
    parallel_for(count, nt, [&](idx e) {  // split over elements
        v[e] = momentum * v[e] - lr * g[e];
        p[e] += v[e];
    });
}

}  // namespace dp
