// Thread count and the serial/parallel threshold shared by every kernel.
#include "fastgd/runtime.hpp"

#include <atomic>
#include <thread>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__linux__)
#include <cerrno>
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FASTGD_HAVE_ATFORK 1
#endif

namespace fastgd {
namespace {
std::atomic<int> g_threads{0};
// Below this many elements per call (all arrays of the call together), one thread is faster
// than waking a team. Up to one chunk (kChunkElements) a second thread has nothing to do and
// only costs its wake-up; a few chunks up, two threads start to win. The threshold sits at
// the upper end of that break-even band, not at the crossover: when another process holds
// the second core, a 2-thread call waits for an OS time slice, far longer than a second
// thread can save on a call this small. bench/bench_threads.py and bench/bench_tuning.cpp
// measure the crossover (figures in bench/README.md).
std::atomic<std::size_t> g_threshold{1u << 17};
std::atomic<std::size_t> g_chunk{kChunkElements};

// Fork safety. GNU OpenMP keeps its thread team across regions and has no fork handler: a
// child made by fork() after the parent ran a parallel region inherits a team whose threads
// do not exist, and its first parallel region can wait on them forever. So the first call
// that is about to open a region marks the process (g_team_started); a child forked after
// that runs every kernel serially (g_forked_child) and never calls into the OpenMP runtime,
// until set_num_threads asks for a count explicitly. The serial paths of the kernels stay
// out of OpenMP altogether, so they are safe in such a child. Only fastgd's own regions are
// tracked: a child forked after another library ran regions on the same OpenMP runtime (and
// none of fastgd's) keeps OpenMP's setting. A child that never opens a team is not slowed.
std::atomic<bool> g_team_started{false};
std::atomic<bool> g_forked_child{false};

#if defined(FASTGD_HAVE_ATFORK)
void on_fork_child() {
    if (!g_team_started.load(std::memory_order_relaxed)) return;
    g_forked_child.store(true, std::memory_order_relaxed);
    g_threads.store(0, std::memory_order_relaxed);  // the parent's count is not the child's call
}
// Registered once, when the module is loaded.
[[maybe_unused]] const int g_atfork_registered = pthread_atfork(nullptr, nullptr, &on_fork_child);
#endif
}  // namespace

int available_cpus() {
#if defined(__linux__)
    // The affinity mask, not the machine: taskset, cgroup cpusets and batch schedulers give a
    // process fewer CPUs than the machine has. A mask of more than CPU_SETSIZE CPUs needs a
    // larger set (EINVAL says so).
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
    for (int cpus = 2 * CPU_SETSIZE; errno == EINVAL && cpus <= (1 << 22); cpus *= 2) {
        cpu_set_t* big = CPU_ALLOC(cpus);
        if (big == nullptr) break;
        const std::size_t size = CPU_ALLOC_SIZE(cpus);
        const int rc = sched_getaffinity(0, size, big);
        const int n = rc == 0 ? CPU_COUNT_S(size, big) : 0;
        CPU_FREE(big);
        if (rc == 0) return n > 0 ? n : 1;
    }
#endif
    const unsigned hardware = std::thread::hardware_concurrency();  // 0 when unknown
    return hardware > 0 ? static_cast<int>(hardware) : 1;
}

int thread_limit() { return kThreadsPerCpu * available_cpus(); }

int get_num_threads() {
    if (g_forked_child.load(std::memory_order_relaxed)) return 1;
    int n = g_threads.load(std::memory_order_relaxed);
#if defined(_OPENMP)
    if (n <= 0) n = omp_get_max_threads();  // OMP_NUM_THREADS or threadpoolctl's limit, unchecked
#else
    if (n <= 0) n = 1;
#endif
    // Capped here, where every kernel's count comes from: a count far beyond the CPUs
    // (from set_num_threads or OpenMP's own setting) would have OpenMP start that many
    // threads, which exhausts memory or the runtime's limits, and only slows the kernels.
    const int limit = thread_limit();
    return n < limit ? n : limit;
}

void set_num_threads(int n) {
    // An explicit count of 2 or more lifts the fork fallback. 0 (follow OpenMP) keeps it, as
    // asking the OpenMP runtime for its setting is what a forked child must not do; so does 1,
    // so that `with num_threads(1)` in a child does not end in OpenMP's setting.
    g_threads.store(n > 0 ? n : 0, std::memory_order_relaxed);
    if (n > 1) g_forked_child.store(false, std::memory_order_relaxed);
}

int threads_for(std::size_t elements) {
    if (elements < g_threshold.load(std::memory_order_relaxed)) return 1;
    const int n = get_num_threads();
    if (n > 1 && !g_team_started.load(std::memory_order_relaxed)) g_team_started.store(true, std::memory_order_relaxed);
    return n;
}

bool forked_serial() { return g_forked_child.load(std::memory_order_relaxed); }

void set_parallel_threshold(std::size_t elements) { g_threshold.store(elements, std::memory_order_relaxed); }
std::size_t get_parallel_threshold() { return g_threshold.load(std::memory_order_relaxed); }

void set_chunk_elements(std::size_t elements) {
    const std::size_t e = elements == 0 ? kChunkElements : (elements + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
    g_chunk.store(e, std::memory_order_relaxed);
}
std::size_t get_chunk_elements() { return g_chunk.load(std::memory_order_relaxed); }

bool openmp_enabled() {
#if defined(_OPENMP)
    return true;
#else
    return false;
#endif
}

}  // namespace fastgd
