// The GIL around the engine's work: released while a kernel runs, taken back after, in a way
// that survives the interpreter's exit.
//
// While Python 3.9 to 3.13 finalizes, a daemon thread that asks for the GIL is ended with
// pthread_exit, which unwinds the thread's C++ frames (glibc's "forced unwind"). pybind11's
// gil_scoped_release asks in its destructor, which is noexcept, so a daemon thread training when
// the main thread returned aborted the whole process ("terminate called without an active
// exception"); and unwinding on through pybind11's frames would drop references without the GIL.
// Such a thread is parked instead: it sleeps, without the GIL and holding whatever it holds,
// until the process ends, as Python 3.14 leaves its daemon threads.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <thread>

namespace dp::bind {

[[noreturn]] inline void park_until_exit() {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// PyEval_RestoreThread and PyGILState_Ensure are C: the one exception that can leave them is the
// forced unwind (abi::__forced_unwind). It is caught with `...` (a reference to it would bind to
// no object, which UBSan reports), and a handler of it must not return: this one never does.
inline void restore_thread(PyThreadState* state) noexcept {
    try {
        PyEval_RestoreThread(state);
    } catch (...) {
        park_until_exit();
    }
}

inline PyGILState_STATE ensure_gil() noexcept {
    try {
        return PyGILState_Ensure();
    } catch (...) {
        park_until_exit();
    }
}

// The GIL released for this scope (pybind11's gil_scoped_release, parked at exit as above).
class ReleasedGil {
  public:
    ReleasedGil() : state_(PyEval_SaveThread()) {}
    ~ReleasedGil() { restore_thread(state_); }
    ReleasedGil(const ReleasedGil&) = delete;
    ReleasedGil& operator=(const ReleasedGil&) = delete;

  private:
    PyThreadState* state_;
};

// The GIL held for this scope by a thread that released it (a training call asking whether
// Ctrl-C was pressed), parked at exit as above.
class HeldGil {
  public:
    HeldGil() : state_(ensure_gil()) {}
    ~HeldGil() { PyGILState_Release(state_); }
    HeldGil(const HeldGil&) = delete;
    HeldGil& operator=(const HeldGil&) = delete;

  private:
    PyGILState_STATE state_;
};

}  // namespace dp::bind
