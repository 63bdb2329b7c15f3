// google-benchmark of fastgd's update kernels, called directly through the kernel table
// (no Python, no argument checks): Adam and SGD (no momentum) on float32, at a few sizes, for
// every instruction-set level this CPU supports, on 1 thread and on 2 threads
// ("omp:N" in the names).
//
//   bench_kernels                                  # every benchmark
//   bench_kernels --benchmark_filter='adam.*avx2'  # a subset
//   bench_kernels --benchmark_min_time=0.1         # shorter runs
//
// bytes_per_second counts what the rule must move per element (parameter read + write,
// gradient read, each state array read + write): 28 bytes for Adam, 12 for SGD. The 2-thread
// runs set the parallel threshold to 0, so every size takes the parallel path.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "fastgd/kernel_table.hpp"
#include "fastgd/runtime.hpp"

namespace {

using fastgd::TensorRef;

struct Buffers {
    std::vector<float> param, grad, state0, state1;
    explicit Buffers(std::size_t n) : param(n), grad(n), state0(n, 0.0f), state1(n, 0.0f) {
        std::mt19937 rng(42);
        std::normal_distribution<float> dist(0.0f, 1.0f);
        for (std::size_t i = 0; i < n; ++i) {
            param[i] = dist(rng);
            grad[i] = 1e-3f * dist(rng);
        }
    }
    TensorRef<float> ref() {
        TensorRef<float> t;
        t.param = param.data();
        t.grad = grad.data();
        t.state[0] = state0.data();
        t.state[1] = state1.data();
        t.size = param.size();
        return t;
    }
};

// Restores the process-wide settings a benchmark changed, whatever happens.
struct Settings {
    std::size_t threshold = fastgd::get_parallel_threshold();
    ~Settings() {
        fastgd::set_parallel_threshold(threshold);
        fastgd::set_num_threads(0);
    }
};

void use(const std::string& level, int threads) {
    fastgd::set_active_level(level);
    fastgd::set_num_threads(threads);
    if (threads > 1) fastgd::set_parallel_threshold(0);
}

void report(benchmark::State& state, std::size_t n, std::size_t bytes_per_element) {
    const auto items = static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n);
    state.SetItemsProcessed(items);
    state.SetBytesProcessed(items * static_cast<std::int64_t>(bytes_per_element));
}

void bm_adam(benchmark::State& state, std::string level, std::size_t n, int threads) {
    Settings restore;
    use(level, threads);
    Buffers b(n);
    const TensorRef<float> t = b.ref();
    const fastgd::AdamOptions o{1e-3, 0.9, 0.999, 1e-8, 0.0, false, false};
    const fastgd::GradTransform tr{};
    fastgd::StepState st;
    const auto& kernels = fastgd::active_kernels().f32;
    for (auto _ : state) {
        kernels.adam(&t, 1, o, st, tr);
        ++st.step;
        benchmark::DoNotOptimize(b.param.data());
        benchmark::ClobberMemory();
    }
    report(state, n, 4 * (2 + 1 + 2 * 2));
}

void bm_sgd(benchmark::State& state, std::string level, std::size_t n, int threads) {
    Settings restore;
    use(level, threads);
    Buffers b(n);
    TensorRef<float> t = b.ref();
    t.state[0] = t.state[1] = nullptr;
    const fastgd::SgdOptions o{1e-3, 0.0, 0.0, 0.0, false};
    const fastgd::GradTransform tr{};
    fastgd::StepState st;
    const auto& kernels = fastgd::active_kernels().f32;
    for (auto _ : state) {
        kernels.sgd(&t, 1, o, st, tr);
        ++st.step;
        benchmark::DoNotOptimize(b.param.data());
        benchmark::ClobberMemory();
    }
    report(state, n, 4 * (2 + 1));
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

    const std::vector<std::size_t> sizes = {std::size_t{1} << 12, std::size_t{1} << 16, std::size_t{1} << 20,
                                            std::size_t{1} << 24};
    std::vector<int> thread_counts = {1};
    if (fastgd::openmp_enabled()) thread_counts.push_back(2);

    std::printf("fastgd kernels: levels supported here:");
    for (const std::string& level : fastgd::supported_levels()) std::printf(" %s", level.c_str());
    std::printf(" (default parallel threshold %zu elements)\n", fastgd::get_parallel_threshold());

    for (const std::string& level : fastgd::supported_levels()) {
        for (const std::size_t n : sizes) {
            for (const int threads : thread_counts) {
                const std::string suffix =
                    "/" + level + "/n:" + std::to_string(n) + "/omp:" + std::to_string(threads);
                benchmark::RegisterBenchmark(("adam_f32" + suffix).c_str(), bm_adam, level, n, threads)
                    ->UseRealTime()
                    ->Unit(benchmark::kMicrosecond);
                benchmark::RegisterBenchmark(("sgd_f32" + suffix).c_str(), bm_sgd, level, n, threads)
                    ->UseRealTime()
                    ->Unit(benchmark::kMicrosecond);
            }
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
