// What each benchmark file registers for one level, dtype, size and thread count; main
// (bench_main.cpp) walks the groups in an order that reuses the arrays of one size.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace fastgd_bench {

// The same-bytes loops the rules and clipping modes are set against (bandwidth_loops.hpp).
inline const std::vector<std::string>& bound_patterns() {
    static const std::vector<std::string> p = {"r2w1", "r3w2", "r4w3", "r1", "r1w1", "r1+r1w1", "r1+r4w3"};
    return p;
}

template <class T> void register_rules(const std::string& level, std::size_t n, int threads);
template <class T> void register_clipping(const std::string& level, std::size_t n, int threads);

}  // namespace fastgd_bench
