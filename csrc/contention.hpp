// Busy cores: when to stop splitting work over threads.
//
// A parallel region is fork-join: it ends when its slowest thread ends. When another process
// competes for the cores, the scheduler takes one team member off its core now and then, and
// every other member waits for it (libgomp's waiting threads spin first, taking the core from
// the very thread they wait for). Beside one busy process on 2 cores, a breast_cancer fit on 2
// threads took 254 ms (one fit 2.5 s) against 46 ms on one thread, digits 744 against 225.
//
// So parallel regions are timed (one in 8, below): the wall time from the region's start to
// its end against the CPU time its threads spent on their shares of the work (each thread's
// own clock, so a thread taken off its core adds nothing, and waiting at a barrier is left
// out). When the wall time is the longer (by more than a sleeping thread takes to wake), one
// thread would have done the whole region sooner: the cores are busy, and for a while every
// region runs on the calling thread alone. The while starts at 2 ms and doubles each time the
// region that tries the team again loses too, up to 1 s; a region that wins resets it. Builds
// with and without this, alternated: 2-thread fits beside one busy process took 49-58 against
// 66-200 ms (breast_cancer), 207-214 against 577-1105 (digits), 1.9-2.2 against 3.6-5.6 s (an
// epoch of 20 000 x 784 rows through (512, 512)), about their 1-thread times; on idle cores
// the same within noise. Results never depend on the thread count: this changes times only.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace dp {

// Nanoseconds of this thread's CPU time (what it ran, not what it waited). Without a
// per-thread clock the gate has nothing to compare: every region then counts as a win.
#ifdef CLOCK_THREAD_CPUTIME_ID
constexpr bool kThreadClock = true;
inline std::int64_t thread_cpu_ns() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return std::int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}
#else
constexpr bool kThreadClock = false;
inline std::int64_t thread_cpu_ns() { return 0; }
#endif

inline std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

// What a parallel region does: run on the calling thread alone (busy cores), run its team, or
// run its team and be timed. A thread's CPU clock is a system call (0.6 us in a VM), a few
// percent of a small step's region, so one region in kSampleEvery is timed, and every region
// that tries its team again after a wait.
enum class Region { serial, team, timed_team };

class ContentionGate {
  public:
    static constexpr std::int64_t kFirstWait = 2000000, kLongestWait = 1000000000;
    // How much longer than its CPU time a region may take and still win: a team's thread that
    // slept since the last region takes tens of microseconds to wake, which a region of a
    // small step (50 us) pays whenever it follows a pause, while a busy core costs whole
    // scheduler slices, milliseconds.
    static constexpr std::int64_t kSlack = 200000;
    static constexpr std::int64_t kSampleEvery = 8;

    Region begin() {
        const std::int64_t until = serial_until_.load(std::memory_order_relaxed);
        if (until != 0) {  // a region lost lately: wait, then try the team again, timed
            if (wall_ns() >= until) return Region::timed_team;
            serial_regions_.fetch_add(1, std::memory_order_relaxed);
            return Region::serial;
        }
        return regions_.fetch_add(1, std::memory_order_relaxed) % kSampleEvery == 0 ? Region::timed_team
                                                                                      : Region::team;
    }

    // A timed region's verdict: its wall time against its threads' CPU time on their shares.
    void record(std::int64_t wall, std::int64_t cpu) {
        if (wall <= cpu + kSlack) {
            wait_.store(kFirstWait, std::memory_order_relaxed);
            serial_until_.store(0, std::memory_order_relaxed);
            return;
        }
        const std::int64_t wait = wait_.load(std::memory_order_relaxed);
        serial_until_.store(wall_ns() + wait, std::memory_order_relaxed);
        wait_.store(std::min(2 * wait, kLongestWait), std::memory_order_relaxed);
        lost_regions_.fetch_add(1, std::memory_order_relaxed);
    }

    std::int64_t lost_regions() const { return lost_regions_.load(std::memory_order_relaxed); }
    std::int64_t serial_regions() const { return serial_regions_.load(std::memory_order_relaxed); }
    std::int64_t wait() const { return wait_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::int64_t> serial_until_{0}, wait_{kFirstWait}, regions_{0};
    std::atomic<std::int64_t> lost_regions_{0}, serial_regions_{0};
};

// One gate for the process: busy cores are the machine's, whichever network meets them.
inline ContentionGate& contention() {
    static ContentionGate gate;
    return gate;
}

// The timing of one parallel region the gate asked to time: started before the team forks;
// each thread adds the CPU time of its share; record() after the join gives the gate its
// verdict. A team that came out a single thread says nothing. (Untimed, it does nothing.)
class RegionClock {
  public:
    explicit RegionClock(bool timed) : timed_(timed && kThreadClock), start_(timed_ ? wall_ns() : 0) {}
    std::int64_t share_start() const { return timed_ ? thread_cpu_ns() : 0; }
    void add_share(std::int64_t start, int team) {
        if (!timed_) return;
        cpu_.fetch_add(thread_cpu_ns() - start, std::memory_order_relaxed);
        if (team > 1) several_.store(true, std::memory_order_relaxed);
    }
    void record() {
        if (timed_ && several_.load(std::memory_order_relaxed)) contention().record(wall_ns() - start_, cpu_.load());
    }

  private:
    const bool timed_;
    const std::int64_t start_;
    std::atomic<std::int64_t> cpu_{0};
    std::atomic<bool> several_{false};
};

}  // namespace dp
