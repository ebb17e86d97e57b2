// The GIL around the engine's work: released while a kernel runs, taken back after, in a way
// that survives the interpreter's exit.
//
// While Python 3.9 to 3.13 finalizes, a daemon thread that asks for the GIL is ended with
// pthread_exit, which unwinds the thread's C++ frames (glibc's "forced unwind"). pybind11's
// gil_scoped_release asks in its destructor, which is noexcept, so a daemon thread training when
// the main thread returned aborted the whole process ("terminate called without an active
// exception"); and unwinding on through pybind11's frames would drop references without the GIL.
// Such a thread is parked instead: it sleeps, without the GIL and holding whatever it holds,
// until the process ends, as Python 3.14 leaves its daemon threads. The forced unwind arrives as
// the C++ exception abi::__forced_unwind; a handler of it must not return, and this one does not.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <thread>

#if defined(__GLIBCXX__)
#include <cxxabi.h>
#define DP_FORCED_UNWIND 1
#endif

namespace dp::bind {

[[noreturn]] inline void park_until_exit() {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// f(), which may block on the GIL; if Python ends the thread there, the thread parks.
template <typename F>
auto unless_ending(F&& f) noexcept {
#ifdef DP_FORCED_UNWIND
    try {
        return f();
    } catch (abi::__forced_unwind&) {
        park_until_exit();
    }
#else
    return f();
#endif
}

// The GIL released for this scope (pybind11's gil_scoped_release, parked at exit as above).
class ReleasedGil {
  public:
    ReleasedGil() : state_(PyEval_SaveThread()) {}
    ~ReleasedGil() {
        unless_ending([this] { PyEval_RestoreThread(state_); });
    }
    ReleasedGil(const ReleasedGil&) = delete;
    ReleasedGil& operator=(const ReleasedGil&) = delete;

  private:
    PyThreadState* state_;
};

// The GIL held for this scope by a thread that released it (a training call asking whether
// Ctrl-C was pressed), parked at exit as above.
class HeldGil {
  public:
    HeldGil() : state_(unless_ending([] { return PyGILState_Ensure(); })) {}
    ~HeldGil() { PyGILState_Release(state_); }
    HeldGil(const HeldGil&) = delete;
    HeldGil& operator=(const HeldGil&) = delete;

  private:
    PyGILState_STATE state_;
};

}  // namespace dp::bind
