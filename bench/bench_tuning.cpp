// bench_tuning: the sweeps behind two of the library's defaults (cpp/src/runtime.cpp),
// float32, at the best instruction-set level this CPU supports.
//
// 1. The parallel threshold: Adam and SGD at 2^10..2^20 elements on 1 thread and on N,
//    "tune/threshold/<rule>/gap_us:<g>/n:<n>/omp:<t>". The N-thread runs report speedup
//    (1-thread time / N-thread time, medians of the repetitions). gap_us:0 runs steps back to
//    back, so the OpenMP workers are still spinning when the next step starts; gap_us:500
//    keeps the calling thread busy for 500 us between steps (untimed), as the rest of a
//    training step does, long enough for the workers to go to sleep. The threshold should sit
//    where both cross 1.
// 2. The chunk size: Adam at 2^18 and 1e7 elements on N threads over chunks of 2^10..2^20
//    elements, "tune/chunk/adam/n:<n>/chunk:<c>/omp:<t>", with vs_default (time with the
//    default chunk / time with this one).
//
// A summary of both (medians of the repetitions) is printed to stderr at the end.
//
//   bench_tuning --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "fastgd/kernel_table.hpp"

namespace {

using namespace fastgd_bench;

// Items per second of each benchmark, per repetition (the calls with the most iterations).
std::map<std::string, std::pair<std::int64_t, std::vector<double>>> g_rates;

void record(const std::string& key, std::int64_t iterations, double rate) {
    auto& [iters, values] = g_rates[key];
    if (iterations > iters) {
        iters = iterations;
        values.clear();
    }
    if (iterations == iters) values.push_back(rate);
}

bool median_rate(const std::string& key, double& out) {
    const auto it = g_rates.find(key);
    if (it == g_rates.end() || it->second.second.empty()) return false;
    std::vector<double> v = it->second.second;
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    out = v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
    return true;
}

void busy_wait(double seconds) {
    const double end = now() + seconds;
    while (now() < end) {
    }
}

// One Adam or SGD step on n float32 elements; returns the items per second it measured.
void run_steps(benchmark::State& state, const std::string& owner, bool adam, std::size_t n, double gap_seconds) {
    float* const* a = pool().get<float>(n, owner);
    fastgd::TensorRef<float> t;
    t.param = a[0];
    t.grad = a[1];
    t.state[0] = a[2];
    t.state[1] = a[3];
    t.size = n;
    const auto& k = fastgd::active_kernels().f32;
    const fastgd::AdamOptions adam_options{1e-3, 0.9, 0.999, 1e-8, 0.0, false, false};
    const fastgd::SgdOptions sgd_options{1e-3, 0.0, 0.0, 0.0, false};
    fastgd::StepState st;
    st.step = 100;
    double timed = 0;
    for (auto _ : state) {
        const double t0 = now();
        if (adam) k.adam(&t, 1, adam_options, st, {});
        else k.sgd(&t, 1, sgd_options, st, {});
        const double dt = now() - t0;
        timed += dt;
        if (gap_seconds > 0) {
            state.SetIterationTime(dt);
            busy_wait(gap_seconds);
        }
        ++st.step;
        benchmark::ClobberMemory();
    }
    const double items = static_cast<double>(state.iterations()) * static_cast<double>(n);
    state.SetItemsProcessed(static_cast<std::int64_t>(items));
    state.SetBytesProcessed(static_cast<std::int64_t>(items) * rule_bytes(4, adam ? 2 : 0));
    record(owner, state.iterations(), items / timed);
}

std::string threshold_name(const char* rule, int gap_us, std::size_t n, int threads) {
    return std::string("tune/threshold/") + rule + "/gap_us:" + std::to_string(gap_us) + "/n:" + std::to_string(n) +
           "/omp:" + std::to_string(threads);
}

std::string chunk_name(std::size_t n, std::size_t chunk, int threads) {
    return "tune/chunk/adam/n:" + std::to_string(n) + "/chunk:" + std::to_string(chunk) + "/omp:" +
           std::to_string(threads);
}

constexpr int kGapsUs[] = {0, 500};
constexpr const char* kRules[] = {"adam", "sgd"};
constexpr int kGapIterations = 400;

void register_threshold_sweep(int n_threads) {
    for (const char* rule : kRules) {
        for (const int gap_us : kGapsUs) {
            for (int e = 10; e <= 20; ++e) {
                const std::size_t n = std::size_t{1} << e;
                for (const int threads : {1, n_threads}) {
                    const bool adam = std::string(rule) == "adam";
                    auto* b = add(threshold_name(rule, gap_us, n, threads),
                                  [=](benchmark::State& s, const std::string& owner) {
                                      Use use("", threads);
                                      run_steps(s, owner, adam, n, gap_us * 1e-6);
                                      double r1 = 0;
                                      if (threads > 1 && median_rate(threshold_name(rule, gap_us, n, 1), r1))
                                          s.counters["speedup"] = g_rates[owner].second.back() / r1;
                                  },
                                  gap_us > 0);
                    // With a gap only the steps are timed, and a fixed count keeps the gaps
                    // from stretching the run.
                    if (gap_us > 0) b->Iterations(kGapIterations);
                }
            }
        }
    }
}

void register_chunk_sweep(int n_threads) {
    for (const std::size_t n : {std::size_t{1} << 18, std::size_t{10000000}}) {
        std::vector<std::size_t> chunks = {fastgd::kChunkElements};
        for (int e = 10; e <= 20; ++e)
            if ((std::size_t{1} << e) != fastgd::kChunkElements) chunks.push_back(std::size_t{1} << e);
        for (const std::size_t chunk : chunks) {
            add(chunk_name(n, chunk, n_threads), [=](benchmark::State& s, const std::string& owner) {
                Use use("", n_threads);
                fastgd::set_chunk_elements(chunk);
                run_steps(s, owner, true, n, 0.0);
                double r0 = 0;
                if (median_rate(chunk_name(n, fastgd::kChunkElements, n_threads), r0))
                    s.counters["vs_default"] = g_rates[owner].second.back() / r0;
            });
        }
    }
}

void print_summary(int n_threads) {
    std::fprintf(stderr, "\nthreshold sweep: speedup of %d threads over 1 (median items/s ratio)\n", n_threads);
    std::fprintf(stderr, "%10s", "n");
    for (const char* rule : kRules)
        for (const int gap_us : kGapsUs) std::fprintf(stderr, "  %5s gap %3dus", rule, gap_us);
    std::fprintf(stderr, "\n");
    for (int e = 10; e <= 20; ++e) {
        const std::size_t n = std::size_t{1} << e;
        std::fprintf(stderr, "%10zu", n);
        for (const char* rule : kRules) {
            for (const int gap_us : kGapsUs) {
                double r1 = 0, rn = 0;
                if (median_rate(threshold_name(rule, gap_us, n, 1), r1) &&
                    median_rate(threshold_name(rule, gap_us, n, n_threads), rn))
                    std::fprintf(stderr, "  %15.2f", rn / r1);
                else
                    std::fprintf(stderr, "  %15s", "-");
            }
        }
        std::fprintf(stderr, "\n");
    }
    std::fprintf(stderr, "\nchunk sweep: Adam, %d threads, G elements/s (median)\n", n_threads);
    for (const std::size_t n : {std::size_t{1} << 18, std::size_t{10000000}}) {
        std::fprintf(stderr, "  n=%zu:", n);
        for (int e = 10; e <= 20; ++e) {
            double r = 0;
            if (median_rate(chunk_name(n, std::size_t{1} << e, n_threads), r))
                std::fprintf(stderr, " 2^%d=%.2f", e, r * 1e-9);
        }
        std::fprintf(stderr, "\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const std::vector<int> threads = thread_counts();
    if (threads.size() < 2) {
        std::fprintf(stderr, "bench_tuning needs OpenMP and more than one thread\n");
        return 1;
    }
    benchmark::AddCustomContext("fastgd_level", fastgd::active_kernels().name);
    benchmark::AddCustomContext("fastgd_default_threshold", std::to_string(fastgd::get_parallel_threshold()));
    benchmark::AddCustomContext("fastgd_default_chunk", std::to_string(fastgd::kChunkElements));
    register_chunk_sweep(threads.back());
    register_threshold_sweep(threads.back());
    benchmark::RunSpecifiedBenchmarks();
    print_summary(threads.back());
    benchmark::Shutdown();
    return 0;
}
