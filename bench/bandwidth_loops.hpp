// STREAM-like loops, the yardsticks of the kernel benchmarks: copy (b = a) and triad
// (a = b + s c), and loops that move exactly the bytes of an update rule: a pass "rRwW" reads
// R arrays and writes the first W of them in place, with one multiply-add per element, as a
// rule reads parameter, gradient and states and writes parameter and states. "r1" is a read-
// only sum (the norm pass of clipping), "r1+r4w3" two passes (the norm, then Adam's bytes).
//
// The loops run on the benchmark's own compile flags (the baseline instruction set), split
// over threads the way the kernels are: chunks of fastgd::get_chunk_elements(), dynamic
// schedule. Copy and triad count bytes as STREAM does (each array once per element: 2 and 3);
// the write-allocate read of the array they only write is not counted.
#pragma once
#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"

namespace fastgd_bench {

template <class F> void for_chunks(std::size_t n, int threads, F f) {
    if (threads <= 1) {
        f(std::size_t{0}, n);
        return;
    }
    const std::size_t step = fastgd::get_chunk_elements();
    const auto chunks = static_cast<std::ptrdiff_t>((n + step - 1) / step);
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (std::ptrdiff_t c = 0; c < chunks; ++c) {
        const std::size_t b = static_cast<std::size_t>(c) * step;
        f(b, b + step < n ? b + step : n);
    }
}

// One pass: reads arrays 0..R-1, writes 0..W-1 in place (R = W + 1: array W is the one only
// read, as the gradient is; R = W: no such array). `c` is 1 and `d` 0 at run time, so the
// values never drift, but the compiler cannot know it.
template <class T, int R, int W> void rw_pass(T* const* a, std::size_t n, int threads, T c, T d) {
    static_assert(W <= 4 && (R == W || R == W + 1), "the passes a rule or a clipping mode makes");
    for_chunks(n, threads, [&](std::size_t b, std::size_t e) {
        if constexpr (W == 0) {
            // 8 vectors of partial sums, so that the adds' latency does not bound the loop.
            constexpr std::size_t U = 16 / sizeof(T) * 8;
            T acc[U] = {};
            const T* x = a[0];
            std::size_t i = b;
            for (; i + U <= e; i += U) {
#pragma omp simd
                for (std::size_t j = 0; j < U; ++j) acc[j] += x[i + j];
            }
            for (; i < e; ++i) acc[0] += x[i];
            T s = 0;
            for (std::size_t j = 0; j < U; ++j) s += acc[j];
            benchmark::DoNotOptimize(s);
        } else {
            const T cv = c, dv = d;  // locals: no store can be assumed to change them
            T* const p0 = a[0];
            T* const p1 = W > 1 ? a[1] : nullptr;
            T* const p2 = W > 2 ? a[2] : nullptr;
            T* const p3 = W > 3 ? a[3] : nullptr;
            const T* const g = R > W ? a[W] : nullptr;
#pragma omp simd
            for (std::size_t i = b; i < e; ++i) {
                T gd = dv;
                if constexpr (R > W) gd = g[i] * dv;
                p0[i] = p0[i] * cv + gd;
                if constexpr (W > 1) p1[i] = p1[i] * cv + gd;
                if constexpr (W > 2) p2[i] = p2[i] * cv + gd;
                if constexpr (W > 3) p3[i] = p3[i] * cv + gd;
            }
        }
    });
}

template <class T> void copy_pass(T* const* a, std::size_t n, int threads) {
    const T* x = a[0];
    T* y = a[3];
    for_chunks(n, threads, [&](std::size_t b, std::size_t e) {
#pragma omp simd
        for (std::size_t i = b; i < e; ++i) y[i] = x[i];
    });
}

template <class T> void triad_pass(T* const* a, std::size_t n, int threads, T s) {
    const T* x = a[0];
    const T* z = a[1];
    T* y = a[4];
    for_chunks(n, threads, [&](std::size_t b, std::size_t e) {
#pragma omp simd
        for (std::size_t i = b; i < e; ++i) y[i] = x[i] + s * z[i];
    });
}

// A pattern by name: its passes, and the bytes it counts per element.
struct Pattern {
    std::vector<std::pair<int, int>> passes;  // (reads, writes); (-1, 0) copy, (-2, 0) triad
    int arrays_per_element;
};

inline Pattern parse_pattern(const std::string& name) {
    if (name == "copy") return {{{-1, 0}}, 2};
    if (name == "triad") return {{{-2, 0}}, 3};
    Pattern p{{}, 0};
    std::size_t pos = 0;
    while (pos < name.size()) {
        const std::size_t end = name.find('+', pos);
        const std::string part = name.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        const int r = std::stoi(part.substr(1));
        const std::size_t wpos = part.find('w');
        const int w = wpos == std::string::npos ? 0 : std::stoi(part.substr(wpos + 1));
        p.passes.push_back({r, w});
        p.arrays_per_element += r + w;
        pos = end == std::string::npos ? name.size() : end + 1;
    }
    return p;
}

template <class T> void run_pattern(const Pattern& p, T* const* a, std::size_t n, int threads) {
    volatile T one = 1, zero = 0;  // read once per call: the loops see run-time constants
    const T c = one, d = zero;
    for (const auto& [r, w] : p.passes) {
        switch (r * 10 + w) {
            case -10: copy_pass(a, n, threads); break;
            case -20: triad_pass(a, n, threads, T(0.5)); break;
            case 10: rw_pass<T, 1, 0>(a, n, threads, c, d); break;
            case 11: rw_pass<T, 1, 1>(a, n, threads, c, d); break;
            case 21: rw_pass<T, 2, 1>(a, n, threads, c, d); break;
            case 32: rw_pass<T, 3, 2>(a, n, threads, c, d); break;
            case 43: rw_pass<T, 4, 3>(a, n, threads, c, d); break;
            case 54: rw_pass<T, 5, 4>(a, n, threads, c, d); break;
            default: std::abort();
        }
    }
}

// One iteration of a kernel benchmark: the kernel call, then the loop that moves the same
// bytes on the same arrays and threads, each timed; the kernel's time is the iteration's.
template <class T, class Call>
void time_beside_bound(benchmark::State& state, Call call, const Pattern& bound, T* const* a, std::size_t n,
                       int threads, std::vector<double>& kernel_s, std::vector<double>& bound_s) {
    const double t0 = now();
    call();
    benchmark::ClobberMemory();
    const double t1 = now();
    run_pattern(bound, a, n, threads);
    benchmark::ClobberMemory();
    kernel_s.push_back(t1 - t0);
    bound_s.push_back(now() - t1);
    state.SetIterationTime(kernel_s.back());
}

// Records a loop's bandwidth: only the calls with the most iterations count (google-benchmark
// first runs a few short calls to choose the iteration count), so with --benchmark_repetitions
// the median is over the repetitions.
void record_bandwidth(const std::string& key, std::int64_t iterations, double bytes_per_second);
// Makes bandwidth(key) able to measure the loop itself when its benchmark did not run.
void register_measure(const std::string& key, std::function<void()> measure);

template <class T>
void bm_loop(benchmark::State& state, const std::string& owner, const std::string& pattern_name, std::size_t n,
             int threads) {
    Use use("", threads);
    const Pattern p = parse_pattern(pattern_name);
    T* const* a = pool().get<T>(n, owner);
    const auto t0 = now();
    for (auto _ : state) {
        run_pattern(p, a, n, threads);
        benchmark::ClobberMemory();
    }
    const double seconds = now() - t0;
    const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(n) * sizeof(T) *
                         p.arrays_per_element;
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    record_bandwidth(pattern_name + "/" + group_name(dtype_name<T>(), n, threads), state.iterations(),
                     bytes / seconds);
}

// Registers the loops of `patterns` (copy and triad always) for one dtype, size and thread
// count, as benchmarks "loop/<pattern>/<dtype>/n:<n>/omp:<threads>".
template <class T> void register_loops(std::vector<std::string> patterns, std::size_t n, int threads) {
    patterns.insert(patterns.begin(), {"copy", "triad"});
    for (const std::string& name : patterns) {
        const std::string key = name + "/" + group_name(dtype_name<T>(), n, threads);
        add("loop/" + key, [=](benchmark::State& s, const std::string& owner) { bm_loop<T>(s, owner, name, n, threads); });
        register_measure(key, [name, n, threads] {
            Use use("", threads);
            const Pattern p = parse_pattern(name);
            T* const* a = pool().get<T>(n, "measure");
            std::vector<double> per_call;
            double total = 0;
            for (int r = 0; r < 7 || (total < 0.05 && r < 10000); ++r) {
                const auto t0 = now();
                run_pattern(p, a, n, threads);
                per_call.push_back(now() - t0);
                total += per_call.back();
            }
            std::sort(per_call.begin(), per_call.end());
            const double bytes = static_cast<double>(n) * sizeof(T) * p.arrays_per_element;
            record_bandwidth(name + "/" + group_name(dtype_name<T>(), n, threads), 1,
                             bytes / per_call[per_call.size() / 2]);
        });
    }
}

}  // namespace fastgd_bench
