// A mutex that knows which process holds it. fork() copies a locked mutex but not the thread
// that holds it, so in the child it stays locked for good: a model training in one thread when
// another thread forked (multiprocessing's default on Linux) made every call on that model in the
// child wait forever. Here such a call fails at once instead.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "../common.hpp"

namespace dp::bind {

class ProcessMutex {
  public:
    // Thrown by lock() when `interrupted()` says a signal's handler raised while it waited.
    struct Interrupted {};

    // Holds the mutex for its lifetime.
    class Guard {
      public:
        explicit Guard(ProcessMutex& m) : m_(m) {}
        ~Guard() {
            m_.holder_thread_.store(std::thread::id());
            m_.holder_.store(0);  // before the unlock: 0 is "free, or being taken"
            m_.mutex_.unlock();
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;

      private:
        ProcessMutex& m_;
    };

    // Waits for the mutex, asking `interrupted()` every 20 ms while another thread holds it
    // (Ctrl-C must not wait out another thread's training), and throws Interrupted when it says
    // so. Throws std::runtime_error instead of waiting for ever when this very thread holds it
    // (a signal handler using the model that its thread is training), or when a thread of the
    // process this one was forked from does: that thread does not exist here.
    template <typename Asked>
    Guard lock(Asked&& interrupted) {
        const long self = process_id();
        const std::thread::id me = std::this_thread::get_id();
        if (!mutex_.try_lock()) {
            const long holder = holder_.load();
            if (holder != 0 && holder != self)
                throw std::runtime_error(
                    "this model was in use by another thread when the process was forked, so it "
                    "stays locked here (fork copies no threads) and may be half-updated: use it in "
                    "the parent, or start child processes with the 'spawn' or 'forkserver' method");
            if (holder_thread_.load() == me)
                throw std::runtime_error(
                    "this model is busy in this very thread (a signal handler called it while it "
                    "computes), which would wait for itself: use it once the call under way returns");
            while (!mutex_.try_lock_for(std::chrono::milliseconds(20)))
                if (interrupted()) throw Interrupted{};
        }
        holder_.store(self);
        holder_thread_.store(me);
        return Guard(*this);
    }

  private:
    static long process_id() {
#ifdef DP_HAVE_FORK
        return long(getpid());
#else
        return 1;  // no fork here: every holder is this process
#endif
    }

    std::timed_mutex mutex_;
    std::atomic<long> holder_{0};  // the holder's process id; 0 while free (or being taken)
    std::atomic<std::thread::id> holder_thread_{};  // its thread; none while free
};

}  // namespace dp::bind
