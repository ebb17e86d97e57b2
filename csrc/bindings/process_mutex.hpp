// A mutex that knows which process holds it. fork() copies a locked mutex but not the thread
// that holds it, so in the child it stays locked for good: a model training in one thread when
// another thread forked (multiprocessing's default on Linux) made every call on that model in the
// child wait forever. Here such a call fails at once instead.
#pragma once

#include <atomic>
#include <mutex>
#include <stdexcept>

#include "../common.hpp"

namespace dp::bind {

class ProcessMutex {
  public:
    // Holds the mutex for its lifetime.
    class Guard {
      public:
        explicit Guard(ProcessMutex& m) : m_(m) {}
        ~Guard() {
            m_.holder_.store(0);  // before the unlock: 0 is "free, or being taken"
            m_.mutex_.unlock();
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;

      private:
        ProcessMutex& m_;
    };

    // Waits for the mutex, or throws std::runtime_error when a thread of the process this one
    // was forked from holds it: that thread does not exist here, so it would never let go.
    Guard lock() {
        const long self = process_id();
        if (!mutex_.try_lock()) {
            const long holder = holder_.load();
            if (holder != 0 && holder != self)
                throw std::runtime_error(
                    "this model was in use by another thread when the process was forked, so it "
                    "stays locked here (fork copies no threads) and may be half-updated: use it in "
                    "the parent, or start child processes with the 'spawn' or 'forkserver' method");
            mutex_.lock();
        }
        holder_.store(self);
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

    std::mutex mutex_;
    std::atomic<long> holder_{0};  // the holder's process id; 0 while free (or being taken)
};

}  // namespace dp::bind
