// The shared state of the benchmarks: the array pool and the bandwidth the loops measured.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bandwidth_loops.hpp"
#include "bench_common.hpp"
#include "fastgd/kernel_table.hpp"

namespace fastgd_bench {
namespace {

struct Samples {
    std::int64_t iterations = 0;
    std::vector<double> values;
};

std::map<std::string, Samples>& samples() {
    static std::map<std::string, Samples> m;
    return m;
}

std::map<std::string, std::function<void()>>& measures() {
    static std::map<std::string, std::function<void()>> m;
    return m;
}

}  // namespace

Use::Use(const std::string& level, int threads) {
    if (!level.empty()) fastgd::set_active_level(level);
    fastgd::set_num_threads(threads);
    fastgd::set_parallel_threshold(threads > 1 ? 0 : static_cast<std::size_t>(-1));
}

Pool& pool() {
    static Pool p;
    return p;
}

void record_bandwidth(const std::string& key, std::int64_t iterations, double bytes_per_second) {
    Samples& s = samples()[key];
    if (iterations > s.iterations) {
        s.iterations = iterations;
        s.values.clear();
    }
    if (iterations == s.iterations) s.values.push_back(bytes_per_second);
}

void register_measure(const std::string& key, std::function<void()> measure) { measures()[key] = std::move(measure); }

double bandwidth(const std::string& key) {
    auto it = samples().find(key);
    if (it == samples().end() || it->second.values.empty()) {
        const auto m = measures().find(key);
        if (m == measures().end()) {
            std::fprintf(stderr, "no bandwidth loop registered for %s\n", key.c_str());
            std::abort();
        }
        m->second();
        it = samples().find(key);
    }
    std::vector<double> v = it->second.values;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
}

}  // namespace fastgd_bench
