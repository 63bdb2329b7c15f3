// What every benchmark file shares: the sizes and thread counts to run, the arrays (one set,
// reused from benchmark to benchmark), the process-wide settings a benchmark changes, and the
// way bytes are counted.
#pragma once
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "fastgd/runtime.hpp"

namespace fastgd_bench {

// Arrays a benchmark may use: parameter, gradient and up to three state arrays.
inline constexpr int kArrays = 5;

inline double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class T> const char* dtype_name() { return sizeof(T) == 4 ? "f32" : "f64"; }

// A dtype, size and thread count: "<dtype>/n:<n>/omp:<threads>". The bandwidth of a loop
// is kept under "<pattern>/<group>".
inline std::string group_name(const char* dtype, std::size_t n, int threads) {
    return std::string(dtype) + "/n:" + std::to_string(n) + "/omp:" + std::to_string(threads);
}

// A kernel benchmark's name: "<kind>/<kernel>/<dtype>/<level>/n:<n>/omp:<threads>".
inline std::string kernel_name(const char* kind, const char* kernel, const char* dtype, const std::string& level,
                               std::size_t n, int threads) {
    return std::string(kind) + "/" + kernel + "/" + dtype + "/" + level + "/n:" + std::to_string(n) +
           "/omp:" + std::to_string(threads);
}

// Sizes 1e3..1e7 by default. FASTGD_BENCH_MAX_SIZE (e.g. 1e8) raises or lowers the largest:
// 1e8 float64 elements need 4 GB for the five arrays.
inline std::vector<std::size_t> sizes() {
    double max_size = 1e7;
    if (const char* env = std::getenv("FASTGD_BENCH_MAX_SIZE"); env && *env) max_size = std::atof(env);
    std::vector<std::size_t> v;
    for (double n = 1e3; n <= max_size * 1.0001; n *= 10) v.push_back(static_cast<std::size_t>(n));
    return v;
}

// 1 and the most OpenMP offers (2 on a 2-core machine).
inline std::vector<int> thread_counts() {
    std::vector<int> v = {1};
    fastgd::set_num_threads(0);
    if (fastgd::openmp_enabled() && fastgd::get_num_threads() > 1) v.push_back(fastgd::get_num_threads());
    return v;
}

// Sets the level and the thread count for one benchmark and puts back the process-wide
// settings when it ends (an empty level leaves the level alone). With more than one thread the parallel threshold is 0, so every size
// takes the parallel path; with one thread no size does.
struct Use {
    std::size_t threshold = fastgd::get_parallel_threshold();
    std::size_t chunk = fastgd::get_chunk_elements();
    Use(const std::string& level, int threads);
    ~Use() {
        fastgd::set_parallel_threshold(threshold);
        fastgd::set_chunk_elements(chunk);
        fastgd::set_num_threads(0);
    }
};

// Bytes an update rule must move per element: parameter read + write, gradient read, each
// state array read + write.
inline std::int64_t rule_bytes(std::size_t itemsize, int states) {
    return static_cast<std::int64_t>(itemsize) * (3 + 2 * states);
}

// The one set of arrays. Allocated in 2 MB-aligned blocks with transparent huge pages requested (as
// NumPy does for large arrays), freed when another size or dtype is asked for, and refilled
// with the same values whenever a different benchmark (`owner`, its name) takes it, so that no benchmark starts
// from the state another one left behind.
class Pool {
public:
    template <class T> T* const* get(std::size_t n, const std::string& owner) {
        if (n != n_ || sizeof(T) != itemsize_) {
            release();
            const std::size_t bytes = round_up(n * sizeof(T) + kArrays * kStagger);
            for (int k = 0; k < kArrays; ++k) {
                blocks_[k] = std::aligned_alloc(kAlign, bytes);
                if (!blocks_[k]) std::abort();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
                if (bytes >= kAlign) madvise(blocks_[k], bytes, MADV_HUGEPAGE);
#endif
                arrays_[k] = static_cast<char*>(blocks_[k]) + k * kStagger;
            }
            n_ = n;
            itemsize_ = sizeof(T);
            owner_.clear();
        }
        if (owner != owner_) {
            fill(static_cast<T*>(arrays_[0]), n, 1.0, 0.0);     // parameter: [-1, 1)
            fill(static_cast<T*>(arrays_[1]), n, 1e-3, 0.0);    // gradient: [-1e-3, 1e-3)
            for (int k = 2; k < kArrays; ++k)                   // states: (0, 2e-6), valid for
                fill(static_cast<T*>(arrays_[k]), n, 1e-6, 1e-6);  // every rule's sqrt
            owner_ = owner;
        }
        return reinterpret_cast<T* const*>(arrays_);
    }
    ~Pool() { release(); }

private:
    static constexpr std::size_t kAlign = std::size_t{2} << 20;
    // Array k starts k * kStagger bytes into its block: arrays that all started at the same
    // address modulo 4 KB would make each store look like it might feed the next load of
    // another array (4K aliasing), which stalls loops that interleave loads and stores.
    static constexpr std::size_t kStagger = 832;
    static std::size_t round_up(std::size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }
    template <class T> static void fill(T* a, std::size_t n, double scale, double offset) {
        std::uint64_t x = 0x9E3779B97F4A7C15ull;
        for (std::size_t i = 0; i < n; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const double u = static_cast<double>(x >> 11) * 0x1.0p-52 - 1.0;  // [-1, 1)
            a[i] = static_cast<T>(offset + scale * u);
        }
    }
    void release() {
        for (int k = 0; k < kArrays; ++k) {
            std::free(blocks_[k]);
            blocks_[k] = arrays_[k] = nullptr;
        }
        n_ = itemsize_ = 0;
    }
    void* blocks_[kArrays] = {};
    void* arrays_[kArrays] = {};
    std::size_t n_ = 0, itemsize_ = 0;
    std::string owner_;
};

Pool& pool();

// Registers fn(state, name) as benchmark `name`, timed in microseconds of real (wall-clock)
// time, or of the time fn reports with SetIterationTime. With repetitions, a "min" aggregate
// (for counters too: the smallest value) joins mean, median and stddev.
template <class F> benchmark::internal::Benchmark* add(const std::string& name, F fn, bool manual_time = false) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), [name, fn](benchmark::State& s) { fn(s, name); });
    if (manual_time) b->UseManualTime();
    else b->UseRealTime();
    // Next to mean, median and stddev: the best repetition, which a noisy neighbour slows least.
    b->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
    return b->Unit(benchmark::kMicrosecond);
}

// Median of the samples a bandwidth loop recorded for `key`, measuring it first if nothing
// has (see bandwidth_loops.hpp); bytes per second.
double bandwidth(const std::string& key);

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Counters every kernel benchmark reports: bytes_per_second and items_per_second; frac_bound,
// the median time per call of the loop that moves the same bytes, run after every call of
// the kernel, over the kernel's median time per call; frac_stream, the kernel's bandwidth
// over the better of the copy and triad loops of the same group (run just before it).
inline void report(benchmark::State& state, const std::vector<double>& kernel_seconds,
                   const std::vector<double>& bound_seconds, std::size_t n, std::int64_t bytes_per_element,
                   const std::string& group) {
    const auto items = static_cast<double>(state.iterations()) * static_cast<double>(n);
    state.SetItemsProcessed(static_cast<std::int64_t>(items));
    state.SetBytesProcessed(static_cast<std::int64_t>(items) * bytes_per_element);
    const double kernel = median(kernel_seconds);
    const double rate = static_cast<double>(n) * static_cast<double>(bytes_per_element) / kernel;
    const double stream = std::max(bandwidth("copy/" + group), bandwidth("triad/" + group));
    state.counters["frac_stream"] = rate / stream;
    state.counters["frac_bound"] = median(bound_seconds) / kernel;
}

}  // namespace fastgd_bench
