// bench_kernels: every update rule and clipping mode, float32 and float64, at sizes 1e3..1e7
// (FASTGD_BENCH_MAX_SIZE=1e8 adds 1e8), on 1 and N threads, at every instruction-set level
// this CPU supports, each group preceded by the STREAM-like loops it is measured against.
//
//   bench_kernels --benchmark_filter='rule/adam/f32/avx2'
//   bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench_kernels --benchmark_out=kernels.json --benchmark_out_format=json
#include <cstdio>
#include <string>

#include "bandwidth_loops.hpp"
#include "bench_common.hpp"
#include "bench_groups.hpp"
#include "fastgd/kernel_table.hpp"

namespace {

template <class T> void register_dtype() {
    using namespace fastgd_bench;
    for (const std::size_t n : sizes()) {
        for (const int threads : thread_counts()) {
            register_loops<T>(bound_patterns(), n, threads);
            for (const std::string& level : fastgd::supported_levels()) {
                register_rules<T>(level, n, threads);
                register_clipping<T>(level, n, threads);
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    std::fprintf(stderr, "fastgd kernels: levels supported here:");
    for (const std::string& level : fastgd::supported_levels()) std::fprintf(stderr, " %s", level.c_str());
    std::fprintf(stderr, "; chunk %zu elements\n", fastgd::get_chunk_elements());
    benchmark::AddCustomContext("fastgd_levels", [] {
        std::string s;
        for (const std::string& level : fastgd::supported_levels()) s += (s.empty() ? "" : ",") + level;
        return s;
    }());
    benchmark::AddCustomContext("fastgd_chunk_elements", std::to_string(fastgd::get_chunk_elements()));
    register_dtype<float>();
    register_dtype<double>();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
