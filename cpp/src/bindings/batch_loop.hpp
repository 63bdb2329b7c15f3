// fastgd.train's loop over mini-batches for a linear model, in one call (linear_batches and
// sparse_linear_batches): for each batch, the objective, the gradient's 2-norm, train's
// divergence checks, then the optimizer's step through its plan (step, the same call
// Optimizer.step makes), and train's running sums for the epoch's loss. The same operations
// in the same order as the Python loop, so the same bits; only the interpreter's work per
// batch is gone. Stops before stepping on a batch that needs the Python loop (a loss or norm
// that is not finite, an exploding norm, a step refused under nonfinite="error"): train then
// takes that batch itself, recomputing the same objective.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

#include "fastgd/divergence.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/norms.hpp"
#include "pybind11.hpp"

namespace fastgd::bindings {

// The epoch's batches: batch index kb is positions kb*bs .. of the epoch's n_epoch samples
// (of `order`, or rows in order without it), visited for kb in batches[first:first + count].
struct EpochBatches {
    std::size_t n_epoch, bs;
    const std::int64_t* order;  // null: rows in order
    const std::int64_t* batches;
    std::size_t first, count;
    const double* batch_weight;  // per batch index, or null: the batch's size
};

struct EpochSums {
    double loss_sum, weight_sum, plain_sum, gnorm, first_gnorm;  // first_gnorm: NaN = not yet
    std::size_t done;
};

// The loop's own arguments, checked (their messages name them): order, n_rows, batches,
// first, batch_size, batch_weight, sums, first_gnorm, explode_factor, sync.
struct EpochArgs {
    EpochBatches batches;
    EpochSums sums;
    double explode;
};
EpochArgs epoch_args(py::ssize_t n_total, const py::object& order_o, std::optional<py::ssize_t> n_rows,
                     const py::object& batches_o, py::ssize_t first, py::ssize_t batch_size,
                     const py::object& batch_weight_o, const py::tuple& sums, std::optional<double> first_gnorm,
                     std::optional<double> explode_factor, const py::object& sync);

// The loop's result for Python: (batches done, (loss_sum, weight_sum, plain_sum), last grad
// norm, first grad norm or None).
py::tuple epoch_result(const EpochSums& s);

// A batch of the loop: positions [start, stop) of the epoch (rows order[start:stop], or the
// rows themselves), and the next batch's, if any (next_stop > next_start), for prefetching.
struct BatchSpan {
    std::size_t start, stop, next_start, next_stop;
};

// A gradient buffer's 2-norm, as fastgd.clip.total_norm of it (the same kernel and sums: the
// norm train's Python loop computes). Needs no GIL.
template <class T> double gradient_norm(const T* g, std::size_t n) {
    const KernelTable& kt = active_kernels();
    double sq;
    if constexpr (sizeof(T) == 4) sq = kt.f32.norm_power_sum(&g, &n, 1, NormKind::two, 2.0);
    else sq = kt.f64.norm_power_sum(&g, &n, 1, NormKind::two, 2.0);
    return norm_from_power_sum(combine_power_sums(sq, 0.0, NormKind::two), NormKind::two, 2.0);
}

// objective(span, local) -> (value, gradient 2-norm), called with the GIL (it releases it
// around its kernels; the norm is only needed when local). take_step() -> true where the
// step refused (the Python loop raises the error).
// With sync (data-parallel training), sync(grads, loss, weight) runs between the gradient and
// the step, with the GIL: DistributedOptimizer.synchronize_step, which sums the gradient buffer
// over the ranks in place and returns the global batch's (loss, weight, gradient norm), the
// same numbers on every rank; the checks and the sums then use those, as train's loop does.
template <class Objective, class TakeStep>
void run_batches(const EpochBatches& e, Objective&& objective, TakeStep&& take_step, const py::object& grads,
                 double explode_factor, const py::object& sync, EpochSums& s) {
    const bool local = sync.is_none();
    for (std::size_t i = e.first; i < e.first + e.count; ++i) {
        const auto kb = static_cast<std::size_t>(e.batches[i]);
        BatchSpan span{kb * e.bs, std::min(kb * e.bs + e.bs, e.n_epoch), 0, 0};
        if (i + 1 < e.first + e.count) {  // the next batch's rows, for the kernel to fetch ahead
            span.next_start = static_cast<std::size_t>(e.batches[i + 1]) * e.bs;
            span.next_stop = std::min(span.next_start + e.bs, e.n_epoch);
        }
        auto [value, gnorm] = objective(span, local);
        double bw = e.batch_weight != nullptr ? e.batch_weight[kb] : static_cast<double>(span.stop - span.start);
        if (!local) {
            const py::tuple global = sync(grads, value, bw);
            value = global[0].cast<double>();
            bw = global[1].cast<double>();
            gnorm = global[2].cast<double>();
        }
        // train's divergence rule: train's Python step takes a batch where it fires.
        if (divergence(value, gnorm, s.first_gnorm, explode_factor) != Divergence::none) return;
        const bool first = std::isnan(s.first_gnorm);
        if (take_step()) return;  // the Python loop raises the error
        if (first) s.first_gnorm = gnorm;
        s.loss_sum += value * bw;
        s.weight_sum += bw;
        s.plain_sum += value;
        s.gnorm = gnorm;
        ++s.done;
    }
}

}  // namespace fastgd::bindings
