// fastgd.train's divergence rule, the one definition that both of its step kinds apply: the
// linear models' fused epoch (bindings/linear.cpp) between batches, and train's per-step
// Python loop through fastgd._core.divergence (bindings/training.cpp).
#pragma once
#include <cmath>

namespace fastgd {

enum class Divergence { none, loss, grad_norm, exploded };

// Internal linkage, as norms.hpp: no shared copy for a level's objects to pick up.
namespace {

// The verdict on one step, before it is kept. loss: the batch's (global) loss; grad_norm: the
// 2-norm of its (global) gradient; first_grad_norm: that of the run's first kept step, NaN
// before it; explode_factor: how many times the first norm a norm may grow to (+inf: any).
// A first norm of 0 measures no growth.
inline Divergence divergence(double loss, double grad_norm, double first_grad_norm, double explode_factor) {
    if (!std::isfinite(loss)) return Divergence::loss;
    if (!std::isfinite(grad_norm)) return Divergence::grad_norm;
    if (first_grad_norm > 0.0 && grad_norm > explode_factor * first_grad_norm) return Divergence::exploded;
    return Divergence::none;
}

inline const char* divergence_name(Divergence d) {
    switch (d) {
        case Divergence::loss: return "loss";
        case Divergence::grad_norm: return "grad_norm";
        case Divergence::exploded: return "exploded";
        default: return nullptr;
    }
}

}  // namespace
}  // namespace fastgd
