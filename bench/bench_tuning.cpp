// bench_tuning: the sweeps behind two of the library's defaults (cpp/src/runtime.cpp),
// float32, at the best instruction-set level this CPU supports. Every benchmark here is a
// pair of variants called in turns, step after step, and reports the median time per call of
// each, so that a busy spell on a shared machine slows both alike:
//
// 1. The parallel threshold, "tune/threshold/<rule>/gap_us:<g>/n:<n>/omp:<N>": Adam and SGD
//    at 2^10..2^20 elements, 1 thread (one_us) against N threads (many_us);
//    speedup = one_us / many_us. gap_us:0 runs the steps back to back, so the OpenMP workers
//    are still spinning when the next parallel step starts; gap_us:500 keeps the calling
//    thread busy for 500 us before each step (untimed), as the rest of a training step does,
//    long enough for the workers to go to sleep. The threshold belongs where both cross 1.
// 2. The chunk size, "tune/chunk/adam/n:<n>/chunk:<c>/omp:<N>": Adam on N threads at 2^18
//    and 1e7 elements, the default chunk (default_us) against chunks of c elements (chunk_us);
//    vs_default = default_us / chunk_us.
//
// The reported time is the second variant's median per call (manual time).
//
//   bench_tuning --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "fastgd/kernel_table.hpp"

namespace {

using namespace fastgd_bench;

constexpr int kGapsUs[] = {0, 500};
constexpr const char* kRules[] = {"adam", "sgd"};
constexpr int kPairs = 200;  // calls of each variant per repetition

void busy_wait(double seconds) {
    const double end = now() + seconds;
    while (now() < end) {
    }
}

struct Variant {
    int threads;
    std::size_t chunk;
};

// Steps of Adam or SGD on n float32 elements, variants a and b in turns; sets the counters
// <a_name>_us and <b_name>_us (median per call) and <ratio_name> = a / b.
void run_pair(benchmark::State& state, const std::string& owner, bool adam, std::size_t n, double gap_seconds,
              Variant a, Variant b, const char* a_name, const char* b_name, const char* ratio_name) {
    Use use("", 1);
    float* const* arrays = pool().get<float>(n, owner);
    fastgd::TensorRef<float> t;
    t.param = arrays[0];
    t.grad = arrays[1];
    t.state[0] = arrays[2];
    t.state[1] = arrays[3];
    t.size = n;
    const auto& k = fastgd::active_kernels().f32;
    const fastgd::Adam::Options adam_options{1e-3, 0.9, 0.999, 1e-8, 0.0, false, false};
    const fastgd::Sgd::Options sgd_options{1e-3, 0.0, 0.0, 0.0, false};
    fastgd::StepState st;
    st.step = 100;
    const auto step = [&](const Variant& v) {
        fastgd::set_num_threads(v.threads);
        fastgd::set_parallel_threshold(v.threads > 1 ? 0 : static_cast<std::size_t>(-1));
        fastgd::set_chunk_elements(v.chunk);
        if (gap_seconds > 0) busy_wait(gap_seconds);
        const double t0 = now();
        if (adam) k.adam(&t, 1, adam_options, st, {});
        else k.sgd(&t, 1, sgd_options, st, {});
        const double dt = now() - t0;
        ++st.step;
        benchmark::ClobberMemory();
        return dt;
    };
    std::vector<double> ta, tb;
    for (auto _ : state) {
        ta.push_back(step(a));
        tb.push_back(step(b));
        state.SetIterationTime(tb.back());
    }
    const double ma = median(ta), mb = median(tb);
    state.counters[std::string(a_name) + "_us"] = ma * 1e6;
    state.counters[std::string(b_name) + "_us"] = mb * 1e6;
    state.counters[ratio_name] = ma / mb;
    const auto items = static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n);
    state.SetItemsProcessed(items);
    state.SetBytesProcessed(items * rule_bytes(4, adam ? 2 : 0));
}

void register_threshold_sweep(int n_threads) {
    for (const char* rule : kRules) {
        for (const int gap_us : kGapsUs) {
            for (int e = 10; e <= 20; ++e) {
                const std::size_t n = std::size_t{1} << e;
                const bool adam = std::string(rule) == "adam";
                const std::string name = std::string("tune/threshold/") + rule + "/gap_us:" + std::to_string(gap_us) +
                                         "/n:" + std::to_string(n) + "/omp:" + std::to_string(n_threads);
                add(name,
                    [=](benchmark::State& s, const std::string& owner) {
                        run_pair(s, owner, adam, n, gap_us * 1e-6, {1, 0}, {n_threads, 0}, "one", "many", "speedup");
                    },
                    true)
                    ->Iterations(kPairs);
            }
        }
    }
}

void register_chunk_sweep(int n_threads) {
    for (const std::size_t n : {std::size_t{1} << 18, std::size_t{10000000}}) {
        for (int e = 10; e <= 20; ++e) {
            const std::size_t chunk = std::size_t{1} << e;
            const std::string name = "tune/chunk/adam/n:" + std::to_string(n) + "/chunk:" + std::to_string(chunk) +
                                     "/omp:" + std::to_string(n_threads);
            add(name,
                [=](benchmark::State& s, const std::string& owner) {
                    run_pair(s, owner, true, n, 0.0, {n_threads, fastgd::kChunkElements}, {n_threads, chunk},
                             "default", "chunk", "vs_default");
                },
                true)
                ->Iterations(n > 1000000 ? kPairs / 10 : kPairs);
        }
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
    register_threshold_sweep(threads.back());
    register_chunk_sweep(threads.back());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
