// deltaprop engine: shared vocabulary.
//
// Size legend, used by every kernel (the design's equations, batch-major):
//   N  rows of a batch (samples)        I  fan-in of a layer       O  fan-out of a layer
//   M, K  GEMM sizes: C (M x Ncols) = op(A) (M x K) . op(B) (K x Ncols)
// Every matrix is row-major; `ld*` is the distance in elements between two rows.
// Kernels take outputs first, then inputs, then sizes, then options (llm.c's order).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#define DP_HAVE_FORK 1  // fork, pthread_atfork, getpid: the guards below, process_mutex.hpp
#endif

#include "contention.hpp"

namespace dp {

using idx = std::ptrdiff_t;

#if defined(__GNUC__) || defined(__clang__)
#define DP_RESTRICT __restrict__
#else
#define DP_RESTRICT
#endif

// Function multiversioning for the elementwise and small-product loops outside the GEMM's
// micro-kernels (which have their own translation units per instruction set): the compiler builds
// each marked function for baseline x86-64, x86-64-v3 (AVX2) and x86-64-v4 (AVX-512), and the
// loader picks the best this CPU runs. The wheel stays portable; the loops run 4 to 8 values per
// instruction instead of SSE2's 2 to 4. Callees a clone inlines are compiled for its target; any
// it calls out of line stay baseline, so no AVX-512 copy of a shared inline function can be the
// one the linker keeps. With -ffp-contract=off (CMakeLists.txt) every clone rounds exactly as the
// baseline does. Only the small-product loops of gemm.cpp differ by clone: they take as many
// values to a vector as one register holds (8, 4 or 2 float64; 16, 8 or 4 float32), so their
// sums are split into that many lanes, and their last bits can differ between CPUs of different
// vector widths (DELTAPROP_ISA picks only the GEMM's micro-kernels).
#if defined(DELTAPROP_HAVE_AVX512) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(DELTAPROP_NO_ISA_CLONES)
#define DP_ISA_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#define DP_HAVE_ISA_CLONES 1
#else
#define DP_ISA_CLONES
#define DP_HAVE_ISA_CLONES 0
#endif

// Below this much work a parallel region costs more than it saves (waking the team and its
// barriers take microseconds), so small layers stay on one thread. Measured on 2 cores: an
// elementwise pass gains from a second thread from about 256k elements, a matrix product from
// about a million multiply-adds (each packed product passes several barriers).
constexpr idx kParallelMinElements = idx(1) << 18;
constexpr idx kParallelMinMultiplyAdds = idx(1) << 20;
// A training step is costlier to split product by product than a product on its own: each
// product's output is read next by the loss, the optimizer or the next layer, partly from the
// other core's cache. Whole fits on 2 cores (batch 200, hidden layer products of 1.3M, 3.3M,
// 6.6M, 13M multiply-adds) ran 1.02x, 1.11x, 1.46x, 1.53x faster split so: a step smaller than
// this splits its rows instead (mlp.hpp's half steps), or runs on one thread.
constexpr idx kStepParallelMinMultiplyAdds = idx(1) << 22;

// Threads to use for `work` units: 1 below `min_work`, else the caller's count.
inline int threads_for(idx work, int n_threads, idx min_work = kParallelMinElements) {
    return (work < min_work || n_threads < 1) ? 1 : n_threads;
}

// The thread count a caller gets when it asks for "the default" (0): OpenMP's own,
// which honours OMP_NUM_THREADS and threadpoolctl limits.
inline int default_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Whether this thread is one of a team of several (an active OpenMP parallel region).
inline bool in_parallel_region() {
#ifdef _OPENMP
    return omp_in_parallel() != 0;
#else
    return false;
#endif
}

// This thread's index inside a parallel region (0 outside one).
inline int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// The size of this thread's team (1 outside a parallel region).
inline int team_size() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// The most threads a caller may ask for; more is refused at the boundary.
constexpr int kMaxThreads = 1024;

// Processors OpenMP can use, asked once: libgomp answers with a sched_getaffinity system call,
// which at a few calls per layer was most of an online (batch-1) training step.
inline int processors() {
#ifdef _OPENMP
    static const int count = omp_get_num_procs();
    return count;
#else
    return 1;
#endif
}

// Fork safety. GNU OpenMP keeps the threads of a team for the next parallel region, and fork()
// copies only the thread that calls it: in a child of a process whose threads have started, the
// first parallel region waits forever for threads that do not exist (libgomp has no fork
// handler; multiprocessing's default start method on Linux is fork). So the first team arms a
// handler that marks every child forked after it, and in a marked process resolve_threads, where
// every call's thread count comes from, gives one thread: the same results (they never depend
// on the thread count), no team. A child forked before any team, or started by spawn or
// forkserver, keeps its threads.
inline bool& forked_after_team() {
    static bool forked = false;  // written only in a child, before it runs anything else
    return forked;
}
#ifdef DP_HAVE_FORK
extern "C" inline void dp_mark_forked_child() { forked_after_team() = true; }
#endif

// Called before each parallel region starts a team of several threads.
inline void arm_fork_guard() {
#ifdef DP_HAVE_FORK
    static const bool armed = pthread_atfork(nullptr, nullptr, dp_mark_forked_child) == 0;
    (void)armed;
#endif
}

// The threads a call uses: the caller's count (0: the default), never more than the processors,
// and one in a child forked after a team (above). Compute-bound loops gain nothing from more
// threads than cores, and a count the system cannot create would make libgomp end the process.
// Results do not depend on the thread count.
inline int resolve_threads(int n_threads) {
    if (forked_after_team()) return 1;
    const int wanted = n_threads > 0 ? n_threads : default_threads();
    return wanted < 1 ? 1 : (wanted > processors() ? processors() : wanted);
}

// Every parallel region: `alone()` on the calling thread when n_threads is 1 or the cores are
// busy (contention.hpp), else `each(clock)` on every thread of a team of n_threads, each thread
// putting its shares of the work through timed_share so the gate can judge the region.
// One thread skips OpenMP entirely: entering a construct costs about a microsecond even when it
// ends up serial, which would dominate small layers and online (batch-1) training.
template <typename Alone, typename Each>
void team_region(int n_threads, Alone&& alone, Each&& each) {
    const Region region = n_threads > 1 ? contention().begin() : Region::serial;
    if (region == Region::serial) {
        alone();
        return;
    }
    arm_fork_guard();
    RegionClock clock(region == Region::timed_team);
#pragma omp parallel num_threads(n_threads)
    each(clock);
    clock.record();
}

// One thread's share of a team region's work (a worksharing loop ending in `nowait`), its CPU
// time added to the region's clock: the share, not the barrier wait after it.
template <typename Work>
void timed_share(RegionClock& clock, Work&& work) {
    const std::int64_t start = clock.share_start();
    work();
    clock.add_share(start, team_size());
}

// body(i) for i in [0, count), split into contiguous static chunks over n_threads (team_region).
// `body` must not throw.
template <typename Body>
void parallel_for(idx count, int n_threads, Body&& body) {
    team_region(
        count > 1 ? n_threads : 1, [&] { for (idx i = 0; i < count; ++i) body(i); },
        [&](RegionClock& clock) {
            timed_share(clock, [&] {
#pragma omp for schedule(static) nowait
                for (idx i = 0; i < count; ++i) body(i);
            });
        });
}

// body(begin, end) once per thread over contiguous ranges splitting [0, count) (one call with the
// whole range when serial). For elementwise loops over several arrays: a per-element lambda hides
// from the compiler that the arrays do not overlap, so it runs them one element at a time, while
// a range can be handed to a function whose pointers are DP_RESTRICT, and vectorises.
template <typename Body>
void parallel_ranges(idx count, int n_threads, Body&& body) {
    if (n_threads <= 1) {
        body(idx(0), count);
        return;
    }
    parallel_for(n_threads, n_threads, [&](idx part) {
        body(count * part / n_threads, count * (part + 1) / n_threads);
    });
}

// y[begin:end] += a . x[begin:end]
template <typename T>
DP_ISA_CLONES void axpy_range(T* DP_RESTRICT y, const T* DP_RESTRICT x, idx begin, idx end, T a) {
    for (idx e = begin; e < end; ++e) y[e] += a * x[e];
}

// y += x over count values (a half step's gradients into the other half's, a bias's rows).
template <typename T>
DP_ISA_CLONES void add_into(T* DP_RESTRICT y, const T* DP_RESTRICT x, idx count) {
    for (idx i = 0; i < count; ++i) y[i] += x[i];
}

// True when no value is NaN or inf: those, and only those, have every exponent bit set. An OR of
// integer comparisons has no branch and no floating-point arithmetic, so it vectorises (a scan
// that stops at the first bad value does not, and cost a fifth of a mid-sized product). Built per
// instruction set: SSE2 has no 64-bit compare, so its float64 scan runs one value at a time, which
// was a third of a small network's predict.
template <typename T>
DP_ISA_CLONES bool all_finite(const T* p, idx count) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
    Bits bad = 0;
    for (idx e = 0; e < count; ++e) {
        Bits b;
        std::memcpy(&b, p + e, sizeof b);
        bad |= Bits((b & exponent) == exponent);
    }
    return bad == 0;
}

}  // namespace dp
