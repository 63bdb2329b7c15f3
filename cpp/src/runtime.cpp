// Thread count and the serial/parallel threshold shared by every kernel.
#include "fastgd/runtime.hpp"

#include <atomic>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fastgd {
namespace {
std::atomic<int> g_threads{0};
// Below this many elements per call, one thread is faster than waking a team: measured with
// bench/bench_threads.py on a 2-core AVX2 machine (see README, "Performance").
std::atomic<std::size_t> g_threshold{1u << 17};
}  // namespace

int get_num_threads() {
    const int n = g_threads.load(std::memory_order_relaxed);
    if (n > 0) return n;
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) { g_threads.store(n > 0 ? n : 0, std::memory_order_relaxed); }

int threads_for(std::size_t elements) {
    if (elements < g_threshold.load(std::memory_order_relaxed)) return 1;
    return get_num_threads();
}

void set_parallel_threshold(std::size_t elements) { g_threshold.store(elements, std::memory_order_relaxed); }
std::size_t get_parallel_threshold() { return g_threshold.load(std::memory_order_relaxed); }

bool openmp_enabled() {
#if defined(_OPENMP)
    return true;
#else
    return false;
#endif
}

}  // namespace fastgd
