// A linear model's mini-batch objective (see cpp/src/kernels/linear_objective.cpp): checks,
// then the kernel without the GIL. Called once per mini-batch, so the checks stay cheap: no
// copies, no temporaries, one pass over the batch's indices (and labels) for their bounds.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "array_checks.hpp"
#include "batch_loop.hpp"
#include "linear_args.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/linear_objective.hpp"
#include "fastgd/norms.hpp"
#include "register.hpp"
#include "step_plan.hpp"

namespace fastgd::bindings {
namespace {

// The rows' standardization: None, or a (3, d) array of X's dtype, rows centre, centre_lo
// and inv_scale (see fastgd/linear_objective.hpp); its data pointer, or null.
const void* row_scaling_of(const py::object& obj, const py::array& X) {
    if (obj.is_none()) return nullptr;
    const std::string sd = "(3, " + std::to_string(X.shape(1)) + ") (centre, centre_lo, inv_scale; X.shape[1])";
    return float_array(obj, "row_scaling", false, X, {3, X.shape(1)}, sd.c_str()).data();
}


// Points a batch at its standardization (rows of a (3, d) array), or leaves it unscaled.
template <class T> void set_scaling(LinearBatch<T>& batch, const void* scaling) {
    if (scaling == nullptr) return;
    const T* s = static_cast<const T*>(scaling);
    batch.centre = s;
    batch.centre_lo = s + batch.d;
    batch.inv_scale = s + 2 * batch.d;
}

template <class T>
double run(const KernelSet<T>& k, const LinearBatch<T>& batch, const py::array& W, const py::array& b,
           const LinearObjectiveOptions& o, const py::array& gW, const py::array& gb) {
    const T* w = static_cast<const T*>(W.data());
    const T* bb = static_cast<const T*>(b.data());
    T* gw = static_cast<T*>(const_cast<void*>(gW.data()));
    T* gbb = static_cast<T*>(const_cast<void*>(gb.data()));
    py::gil_scoped_release release;  // raw buffers of arrays the arguments keep alive
    return k.linear_objective(batch, w, bb, o, gw, gbb);
}

double linear_objective(const std::string& loss_name, const py::object& Xo, const py::object& yo,
                        const py::object& Wo, const py::object& bo, const py::object& gWo, const py::object& gbo,
                        const py::object& rows_o, py::ssize_t start, std::optional<py::ssize_t> stop,
                        const py::object& swo, double l2, const py::object& l1_o, const py::object& delta_o,
                        const py::object& scaling_o) {
    const int size = check_array(Xo, "X", false);
    const py::array X = py::reinterpret_borrow<py::array>(Xo);
    if (X.ndim() != 2) throw py::value_error("X: shape " + shape_of(X) + ", expected (n_samples, n_features)");
    const py::ssize_t n_total = X.shape(0), d = X.shape(1);
    const ObjectiveArgs a = objective_args(loss_name, X, n_total, d, yo, Wo, bo, gWo, gbo, rows_o, start, stop, swo,
                                           l2, l1_o, delta_o);
    const LinearObjectiveOptions& o = a.targets.options;
    const std::int64_t* labels = a.targets.labels;
    const void* y = a.targets.y;
    const void* sw = a.targets.sample_weight;
    const void* scaling = row_scaling_of(scaling_o, X);
    const std::int64_t* rows = a.rows;
    const std::size_t n = a.n, begin = a.begin;
    const py::array &W = a.W, &b = a.b, &gW = a.gW, &gb = a.gb;
    const KernelTable& k = active_kernels();
    if (size == 4) {
        LinearBatch<float> batch{static_cast<const float*>(X.data()), static_cast<std::size_t>(d), rows, begin,
                                 n, static_cast<const float*>(y), labels, static_cast<const float*>(sw)};
        set_scaling(batch, scaling);
        return run(k.f32, batch, W, b, o, gW, gb);
    }
    LinearBatch<double> batch{static_cast<const double*>(X.data()), static_cast<std::size_t>(d), rows, begin,
                              n, static_cast<const double*>(y), labels, static_cast<const double*>(sw)};
    set_scaling(batch, scaling);
    return run(k.f64, batch, W, b, o, gW, gb);
}

// -- many mini-batches in one call ----------------------------------------------------------

py::tuple linear_batches(const std::string& loss_name, const py::object& Xo, const py::object& yo,
                         const py::object& theta_o, const py::object& grad_o, py::ssize_t K,
                         const py::object& swo, const py::object& order_o, const py::object& batches_o,
                         py::ssize_t first, py::ssize_t batch_size, const py::object& batch_weight_o, double l2,
                         const py::object& l1_o, const py::object& delta_o, StepPlan& plan, const py::object& grads,
                         py::tuple sums, std::optional<double> first_gnorm, std::optional<double> explode_factor,
                         const py::object& sync, std::optional<py::ssize_t> n_rows, const py::object& scaling_o) {
    const int size = check_array(Xo, "X", false);
    const py::array X = py::reinterpret_borrow<py::array>(Xo);
    if (X.ndim() != 2) throw py::value_error("X: shape " + shape_of(X) + ", expected (n_samples, n_features)");
    const py::ssize_t n_total = X.shape(0), d = X.shape(1);
    const LinearTargets t = linear_targets(loss_name, K, "K", yo, swo, X, n_total, l2, l1_o, delta_o, true);
    const py::ssize_t n_theta = K * (d + 1);
    const std::string th = "(" + std::to_string(n_theta) + ",) (K * (X.shape[1] + 1))";
    const py::array theta = float_array(theta_o, "theta", false, X, {n_theta}, th.c_str());
    const py::array grad = float_array(grad_o, "grad", true, X, {n_theta}, th.c_str());
    const void* scaling = row_scaling_of(scaling_o, X);
    EpochArgs ea = epoch_args(n_total, order_o, n_rows, batches_o, first, batch_size, batch_weight_o, sums,
                              first_gnorm, explode_factor, sync);
    const EpochBatches& e = ea.batches;
    const auto go = [&](auto* X_, const auto& kernels) {
        using T = std::remove_const_t<std::remove_pointer_t<decltype(X_)>>;
        T* g = static_cast<T*>(const_cast<void*>(grad.data()));
        const T* w = static_cast<const T*>(theta.data());
        const std::size_t kd = static_cast<std::size_t>(K * d);
        LinearBatch<T> batch{X_, static_cast<std::size_t>(d), e.order, 0, 0, static_cast<const T*>(t.y), t.labels,
                             static_cast<const T*>(t.sample_weight)};
        set_scaling(batch, scaling);
        const auto objective = [&](const BatchSpan& span, bool local) {
            LinearBatch<T> bt = batch;
            bt.n = span.stop - span.start;
            if (bt.rows != nullptr) bt.rows += span.start;
            else bt.begin = span.start;
            if (span.next_stop > span.next_start) {
                bt.next_n = span.next_stop - span.next_start;
                if (batch.rows != nullptr) bt.next_rows = batch.rows + span.next_start;
                else bt.next_begin = span.next_start;
            }
            double value = 0.0, gnorm = 0.0;
            py::gil_scoped_release release;  // raw buffers of arrays the caller's arguments hold
            value = kernels.linear_objective(bt, w, w + kd, t.options, g, g + kd);
            if (local) gnorm = gradient_norm(g, static_cast<std::size_t>(n_theta));
            return std::pair<double, double>{value, gnorm};
        };
        run_batches(e, objective, [&] { return step(plan, grads).has_value(); }, grads, ea.explode, sync, ea.sums);
    };
    const KernelTable& k = active_kernels();
    if (size == 4) go(static_cast<const float*>(X.data()), k.f32);
    else go(static_cast<const double*>(X.data()), k.f64);
    return epoch_result(ea.sums);
}

}  // namespace

void register_linear(py::module_& m) {
    m.def("linear_batches", &linear_batches,
          "fastgd.train's loop over mini-batches for a linear model, in one call: for each batch index k of\n"
          "batches[first:], the objective of rows k*batch_size.. (or order[k*batch_size:...]), the gradient's norm,\n"
          "train's divergence checks, and one optimizer step through its plan. Stops before a batch that needs\n"
          "the Python loop. Returns (batches done, (loss_sum, weight_sum, plain_sum), last grad norm, first grad\n"
          "norm or None). theta = [W.ravel(), b] and grad likewise, flat.\n"
          "Data-parallel: sync(grads, loss, weight) -> (loss, weight, grad norm), called between each batch's\n"
          "gradient and its step (DistributedOptimizer.synchronize_step: the gradients summed over the ranks\n"
          "in place, the global batch's numbers); n_rows: the samples of an epoch, len(order) (a short shard\n"
          "padded with repeated rows), by default X.shape[0].\n"
          "row_scaling, l1, delta and y's shape: as linear_objective's.",
          py::arg("loss"), py::arg("X"), py::arg("y"), py::arg("theta"), py::arg("grad"), py::arg("K"),
          py::arg("sample_weight"), py::arg("order"), py::arg("batches"), py::arg("first"), py::arg("batch_size"),
          py::arg("batch_weight"), py::arg("l2"), py::arg("l1"), py::arg("delta"), py::arg("plan"), py::arg("grads"),
          py::arg("sums"), py::arg("first_gnorm"), py::arg("explode_factor"), py::arg("sync") = py::none(),
          py::arg("n_rows") = py::none(), py::arg("row_scaling") = py::none());

    m.def("linear_objective", &linear_objective,
          "A linear model's mini-batch objective in one pass over the batch's rows: returns the weighted mean\n"
          "loss plus l2/2 |W|^2 + l1 |W|_1 and writes grad_W = (1/n) sum s_i dl_i/dz x_i^T + l2 W and\n"
          "grad_b = (1/n) sum s_i dl_i/dz. The batch is rows[start:stop] (indices into X) or, without rows,\n"
          "X[start:stop]; read in place.\n"
          "Multi-output regression (squared_error, huber with W of K >= 1 rows): y of shape (n, K), a row's loss\n"
          "the sum of its K outputs'; l1 and delta may then be float64 arrays of K values, one per output.\n"
          "row_scaling: None, or a (3, d) array of X's dtype (centre, centre_lo, inv_scale): the rows are then\n"
          "standardized as they are read, x' = ((x - centre) - centre_lo) * inv_scale, with no copy of X; W,\n"
          "grad_W and the penalties are those of the standardized features.",
          py::arg("loss"), py::arg("X"), py::arg("y"), py::arg("W"), py::arg("b"), py::arg("grad_W"),
          py::arg("grad_b"), py::arg("rows") = py::none(), py::arg("start") = 0, py::arg("stop") = py::none(),
          py::arg("sample_weight") = py::none(), py::arg("l2") = 0.0, py::arg("l1") = 0.0, py::arg("delta") = 1.0,
          py::arg("row_scaling") = py::none());
}

}  // namespace fastgd::bindings
