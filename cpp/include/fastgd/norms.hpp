// From sums of |x|^p to a p-norm, and the clipping coefficient, in one place for every caller.
#pragma once
#include <cmath>

#include "fastgd/kernel_table.hpp"

namespace fastgd {
// Internal linkage: these are compiled into every instruction-set level's objects with that
// level's flags, and a shared (weak) copy could let the linker hand the baseline level a
// function built with AVX instructions.
namespace {

// norm_type as torch takes it: 1, 2, inf, or any other p > 0.
inline NormKind norm_kind(double p) {
    if (p == 1.0) return NormKind::one;
    if (p == 2.0) return NormKind::two;
    if (std::isinf(p)) return NormKind::inf;
    return NormKind::general;
}

// Two power sums (or two maxima for the inf-norm) into one; a NaN anywhere stays NaN.
inline double combine_power_sums(double a, double b, NormKind kind) {
    if (kind != NormKind::inf) return a + b;
    return (std::isnan(a) || std::isnan(b)) ? NAN : std::fmax(a, b);
}

// The factor clipping by a global norm multiplies the gradients by (torch's clip_grad_norm_).
inline double clip_coefficient(double max_norm, double norm) { return std::fmin(1.0, max_norm / (norm + 1e-6)); }

inline double norm_from_power_sum(double s, NormKind kind, double p) {
    switch (kind) {
        case NormKind::one:
        case NormKind::inf: return s;
        case NormKind::two: return std::sqrt(s);
        default: return std::pow(s, 1.0 / p);
    }
}

}  // namespace
}  // namespace fastgd
