// A linear model's mini-batch objective (see cpp/src/kernels/linear_objective.cpp): checks,
// then the kernel without the GIL. Called once per mini-batch, so the checks stay cheap: no
// copies, no temporaries, one pass over the batch's indices (and labels) for their bounds.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "array_checks.hpp"
#include "fastgd/divergence.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/linear_objective.hpp"
#include "fastgd/norms.hpp"
#include "register.hpp"
#include "step_plan.hpp"

namespace fastgd::bindings {
namespace {

LinearLoss loss_kind(const std::string& name) {
    if (name == "squared_error") return LinearLoss::squared_error;
    if (name == "huber") return LinearLoss::huber;
    if (name == "log_loss") return LinearLoss::log_loss;
    if (name == "hinge") return LinearLoss::hinge;
    if (name == "softmax_cross_entropy") return LinearLoss::softmax_cross_entropy;
    if (name == "hinge_ovr") return LinearLoss::hinge_ovr;
    throw py::value_error("loss must be 'squared_error', 'huber', 'log_loss', 'hinge', 'softmax_cross_entropy' or "
                          "'hinge_ovr', got '" + name + "'");
}

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// A float array of X's dtype (check_array's checks) with the given shape.
py::array float_array(const py::handle& obj, const char* name, bool writeable, const py::array& X,
                      std::initializer_list<py::ssize_t> shape, const char* expected) {
    if (check_array(obj, name, writeable) != static_cast<int>(X.itemsize()))
        throw py::type_error(std::string(name) + ": dtype " + py::str(obj.attr("dtype")).cast<std::string>() +
                             " does not match X dtype " + py::str(X.dtype()).cast<std::string>() +
                             " (no silent casts)");
    py::array a = py::reinterpret_borrow<py::array>(obj);
    bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
    py::ssize_t k = 0;
    for (const py::ssize_t s : shape) same = same && a.shape(k++) == s;
    if (!same) throw py::value_error(std::string(name) + ": shape " + shape_of(a) + ", expected " + expected);
    return a;
}

// A C-contiguous native int64 1-D array of n elements (indices or labels).
const std::int64_t* int64_array(const py::handle& obj, const char* name, std::optional<py::ssize_t> n) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    const py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<std::int64_t>()) && !a.dtype().equal(py::dtype::of<std::int64_t>()))
        throw py::type_error(std::string(name) + ": dtype " + py::str(a.dtype()).cast<std::string>() +
                             " is not supported; pass int64 (np.intp)");
    if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + ": array is not C-contiguous");
    if (a.ndim() != 1 || (n && a.shape(0) != *n))
        throw py::value_error(std::string(name) + ": shape " + shape_of(a) + ", expected (" +
                              (n ? std::to_string(*n) : std::string("n")) + ",)");
    return static_cast<const std::int64_t*>(a.data());
}

// The rows' standardization: None, or a (3, d) array of X's dtype, rows centre, centre_lo
// and inv_scale (see fastgd/linear_objective.hpp); its data pointer, or null.
const void* row_scaling_of(const py::object& obj, const py::array& X) {
    if (obj.is_none()) return nullptr;
    const std::string sd = "(3, " + std::to_string(X.shape(1)) + ") (centre, centre_lo, inv_scale; X.shape[1])";
    return float_array(obj, "row_scaling", false, X, {3, X.shape(1)}, sd.c_str()).data();
}

// The outputs a loss takes (W's rows): K >= 2 for the multiclass losses, K >= 1 for the
// regression ones (multi-output), else K = 1. The requirement ("K >= 2"...) when K does not
// meet it, else "".
std::string unmet_outputs(LinearLoss loss, py::ssize_t K) {
    if (is_multiclass(loss)) return K >= 2 ? "" : "K >= 2";
    if (is_multi_output(loss)) return K >= 1 ? "" : "K >= 1";
    return K == 1 ? "" : "K = 1";
}

// The targets of a scalar loss, of X's dtype: (n_total,) for K = 1, else (n_total, K) (one
// column per output; also accepted for K = 1).
const void* targets_of(const py::object& yo, const py::array& X, py::ssize_t K) {
    const py::ssize_t n_total = X.shape(0);
    const bool two_d = py::isinstance<py::array>(yo) && py::reinterpret_borrow<py::array>(yo).ndim() == 2;
    if (!two_d && K == 1) {
        const std::string nt = "(" + std::to_string(n_total) + ",) (X.shape[0])";
        return float_array(yo, "y", false, X, {n_total}, nt.c_str()).data();
    }
    const std::string nk = "(" + std::to_string(n_total) + ", " + std::to_string(K) + ") (X.shape[0], K)";
    return float_array(yo, "y", false, X, {n_total, K}, nk.c_str()).data();
}

// An option per output: a number for every output (into `value`; returns null), or a
// C-contiguous float64 array of K values (returns its data; the caller's argument keeps it).
const double* per_output(const py::object& obj, const char* name, py::ssize_t K, double& value) {
    if (!py::isinstance<py::array>(obj)) {
        value = obj.cast<double>();
        return nullptr;
    }
    const py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<double>>(obj) || !(a.flags() & py::array::c_style) || a.ndim() != 1 ||
        a.shape(0) != K)
        throw py::value_error(std::string(name) + ": expected a number or a C-contiguous float64 array of shape (" +
                              std::to_string(K) + ",) (one per output), got " + py::str(a.dtype()).cast<std::string>() +
                              " of shape " + shape_of(a));
    value = 0.0;
    return static_cast<const double*>(a.data());
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
    LinearObjectiveOptions o{loss_kind(loss_name), 0, 0.0, l2, 0.0};
    const int size = check_array(Xo, "X", false);
    const py::array X = py::reinterpret_borrow<py::array>(Xo);
    if (X.ndim() != 2) throw py::value_error("X: shape " + shape_of(X) + ", expected (n_samples, n_features)");
    const py::ssize_t n_total = X.shape(0), d = X.shape(1);
    check_array(Wo, "W", false);
    const py::array Wa = py::reinterpret_borrow<py::array>(Wo);
    if (Wa.ndim() != 2 || Wa.shape(0) < 1) throw py::value_error("W: shape " + shape_of(Wa) + ", expected (K, d)");
    const py::ssize_t K = Wa.shape(0);
    const std::string kd = "(" + std::to_string(K) + ", " + std::to_string(d) + ") (K, X.shape[1])";
    const std::string k1 = "(" + std::to_string(K) + ",) (K = W.shape[0])";
    const py::array W = float_array(Wo, "W", false, X, {K, d}, kd.c_str());
    const py::array b = float_array(bo, "b", false, X, {K}, k1.c_str());
    const py::array gW = float_array(gWo, "grad_W", true, X, {K, d}, kd.c_str());
    const py::array gb = float_array(gbo, "grad_b", true, X, {K}, k1.c_str());
    o.K = static_cast<std::size_t>(K);
    const bool multiclass = is_multiclass(o.loss);
    if (const std::string need = unmet_outputs(o.loss, K); !need.empty())
        throw py::value_error("W: loss '" + loss_name + "' needs " + need + (need == "K = 1" ? " row" : " rows") +
                              ", got " + std::to_string(K));
    o.l1_k = per_output(l1_o, "l1", K, o.l1);
    o.delta_k = per_output(delta_o, "delta", K, o.delta);
    const std::string nt = "(" + std::to_string(n_total) + ",) (X.shape[0])";
    const std::int64_t* labels = nullptr;
    const void* y = nullptr;
    if (multiclass) labels = int64_array(yo, "y", n_total);
    else y = targets_of(yo, X, K);
    const void* sw = swo.is_none() ? nullptr : float_array(swo, "sample_weight", false, X, {n_total}, nt.c_str()).data();
    const void* scaling = row_scaling_of(scaling_o, X);

    // The batch: rows[start:stop] of the index array, or X's rows start..stop.
    const std::int64_t* rows = rows_o.is_none() ? nullptr : int64_array(rows_o, "rows", std::nullopt);
    const py::ssize_t limit = rows ? py::reinterpret_borrow<py::array>(rows_o).shape(0) : n_total;
    const py::ssize_t end = stop.value_or(limit);
    if (start < 0 || end < start || end > limit)
        throw py::value_error("start, stop: need 0 <= start <= stop <= " + std::to_string(limit) + " (the length of " +
                              (rows ? "rows" : "X") + "), got " + std::to_string(start) + ", " + std::to_string(end));
    if (rows) {
        rows += start;
        for (py::ssize_t i = 0; i < end - start; ++i)
            if (rows[i] < 0 || rows[i] >= n_total)
                throw py::value_error("rows: index " + std::to_string(rows[i]) + " at position " +
                                      std::to_string(start + i) + " is out of range for X with " +
                                      std::to_string(n_total) + " rows");
    }
    if (labels) {
        for (py::ssize_t i = 0; i < end - start; ++i) {
            const std::int64_t c = labels[rows ? rows[i] : start + i];
            if (c < 0 || c >= K)
                throw py::value_error("y: label " + std::to_string(c) + " is out of range for K = " +
                                      std::to_string(K) + " classes (labels are 0..K-1)");
        }
    }
    const auto n = static_cast<std::size_t>(end - start);
    const auto begin = static_cast<std::size_t>(rows ? 0 : start);
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

// What fastgd.train does per mini-batch, for a run of batches: the objective, the gradient's
// 2-norm, train's divergence checks, then the optimizer's step through its plan
// (step, the same call Optimizer.step makes), and train's running sums for the epoch's
// loss. The same operations in the same order as the Python loop, so the same bits; only the
// interpreter's work per batch is gone. Stops before stepping on a batch that needs the Python
// loop (a loss or norm that is not finite, an exploding norm, a step refused under nonfinite="error"):
// train then takes that batch itself, recomputing the same objective.
template <class T> struct EpochArgs {
    LinearBatch<T> batch;  // X, y, labels, weights, rows (the epoch's permutation or null)
    const T* W;
    const T* b;
    T* gW;
    T* gb;
    std::size_t n_total, bs, n_grad;
    const std::int64_t* batches;
    std::size_t first, count;
    const double* batch_weight;  // per batch index, or null: the batch's size
};

struct EpochSums {
    double loss_sum, weight_sum, plain_sum, gnorm, first_gnorm;  // first_gnorm: NaN = not yet
    std::size_t done;
};

// With sync (data-parallel training), sync(grads, loss, weight) runs between the gradient and
// the step, with the GIL: DistributedOptimizer.synchronize_step, which sums the gradient buffer
// over the ranks in place and returns the global batch's (loss, weight, gradient norm), the
// same numbers on every rank; the checks and the sums then use those, as train's loop does.
template <class T>
void run_batches(const KernelSet<T>& k, const EpochArgs<T>& a, const LinearObjectiveOptions& o,
                 StepPlan& plan, const py::object& grads, double explode_factor, const py::object& sync,
                 EpochSums& s) {
    const bool local = sync.is_none();
    for (std::size_t i = a.first; i < a.first + a.count; ++i) {
        const auto kb = static_cast<std::size_t>(a.batches[i]);
        const std::size_t start = kb * a.bs, stop = std::min(start + a.bs, a.n_total);
        LinearBatch<T> bt = a.batch;
        bt.n = stop - start;
        if (bt.rows != nullptr) bt.rows += start;
        else bt.begin = start;
        if (i + 1 < a.first + a.count) {  // the next batch's rows, for the kernel to fetch ahead
            const std::size_t next = static_cast<std::size_t>(a.batches[i + 1]) * a.bs;
            bt.next_n = std::min(next + a.bs, a.n_total) - next;
            if (a.batch.rows != nullptr) bt.next_rows = a.batch.rows + next;
            else bt.next_begin = next;
        }
        double value = 0.0, gnorm = 0.0;
        {
            py::gil_scoped_release release;  // raw buffers of arrays the caller's arguments hold
            value = k.linear_objective(bt, a.W, a.b, o, a.gW, a.gb);
            if (local) {
                // As fastgd.clip.total_norm of the one gradient buffer (the same kernel and sums).
                const T* g = a.gW;
                const double sq = k.norm_power_sum(&g, &a.n_grad, 1, NormKind::two, 2.0);
                gnorm = norm_from_power_sum(combine_power_sums(sq, 0.0, NormKind::two), NormKind::two, 2.0);
            }
        }
        double bw = a.batch_weight != nullptr ? a.batch_weight[kb] : static_cast<double>(stop - start);
        if (!local) {
            const py::tuple global = sync(grads, value, bw);
            value = global[0].cast<double>();
            bw = global[1].cast<double>();
            gnorm = global[2].cast<double>();
        }
        // train's divergence rule: train's Python step takes a batch where it fires.
        if (divergence(value, gnorm, s.first_gnorm, explode_factor) != Divergence::none) return;
        const bool first = std::isnan(s.first_gnorm);
        if (step(plan, grads)) return;  // the Python loop raises the error
        if (first) s.first_gnorm = gnorm;
        s.loss_sum += value * bw;
        s.weight_sum += bw;
        s.plain_sum += value;
        s.gnorm = gnorm;
        ++s.done;
    }
}

py::tuple linear_batches(const std::string& loss_name, const py::object& Xo, const py::object& yo,
                         const py::object& theta_o, const py::object& grad_o, py::ssize_t K,
                         const py::object& swo, const py::object& order_o, const py::object& batches_o,
                         py::ssize_t first, py::ssize_t batch_size, const py::object& batch_weight_o, double l2,
                         const py::object& l1_o, const py::object& delta_o, StepPlan& plan, const py::object& grads,
                         py::tuple sums, std::optional<double> first_gnorm, std::optional<double> explode_factor,
                         const py::object& sync, std::optional<py::ssize_t> n_rows, const py::object& scaling_o) {
    LinearObjectiveOptions o{loss_kind(loss_name), 0, 0.0, l2, 0.0};
    const int size = check_array(Xo, "X", false);
    const py::array X = py::reinterpret_borrow<py::array>(Xo);
    if (X.ndim() != 2) throw py::value_error("X: shape " + shape_of(X) + ", expected (n_samples, n_features)");
    const py::ssize_t n_total = X.shape(0), d = X.shape(1);
    const bool multiclass = is_multiclass(o.loss);
    if (const std::string need = unmet_outputs(o.loss, K); !need.empty())
        throw py::value_error("K: loss '" + loss_name + "' needs " + need + ", got " + std::to_string(K));
    o.K = static_cast<std::size_t>(K);
    o.l1_k = per_output(l1_o, "l1", K, o.l1);
    o.delta_k = per_output(delta_o, "delta", K, o.delta);
    const py::ssize_t n_theta = K * (d + 1);
    const std::string th = "(" + std::to_string(n_theta) + ",) (K * (X.shape[1] + 1))";
    const py::array theta = float_array(theta_o, "theta", false, X, {n_theta}, th.c_str());
    const py::array grad = float_array(grad_o, "grad", true, X, {n_theta}, th.c_str());
    const std::string nt = "(" + std::to_string(n_total) + ",) (X.shape[0])";
    const std::int64_t* labels = nullptr;
    const void* y = nullptr;
    if (multiclass) {
        labels = int64_array(yo, "y", n_total);
        for (py::ssize_t i = 0; i < n_total; ++i)
            if (labels[i] < 0 || labels[i] >= K)
                throw py::value_error("y: label " + std::to_string(labels[i]) + " is out of range for K = " +
                                      std::to_string(K) + " classes (labels are 0..K-1)");
    } else {
        y = targets_of(yo, X, K);
    }
    const void* sw = swo.is_none() ? nullptr : float_array(swo, "sample_weight", false, X, {n_total}, nt.c_str()).data();
    const void* scaling = row_scaling_of(scaling_o, X);
    if (!sync.is_none() && !PyCallable_Check(sync.ptr()))
        throw py::type_error("sync: expected a callable or None, got " +
                             py::str(py::type::of(sync).attr("__name__")).cast<std::string>());
    // The samples an epoch visits: X's rows, or (data-parallel, a short shard padded) the
    // length of order, which then repeats rows.
    const py::ssize_t n_epoch = n_rows.value_or(n_total);
    if (n_epoch < 1 || (order_o.is_none() && n_epoch != n_total))
        throw py::value_error("n_rows: need " + std::string(order_o.is_none() ? "n_rows = X.shape[0] = " +
                              std::to_string(n_total) + " without order" : "n_rows >= 1") + ", got " +
                              std::to_string(n_epoch));
    const std::int64_t* order = order_o.is_none() ? nullptr : int64_array(order_o, "order", n_epoch);
    if (order)
        for (py::ssize_t i = 0; i < n_epoch; ++i)
            if (order[i] < 0 || order[i] >= n_total)
                throw py::value_error("order: index " + std::to_string(order[i]) + " at position " + std::to_string(i) +
                                      " is out of range for X with " + std::to_string(n_total) + " rows");
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1, got " + std::to_string(batch_size));
    const py::ssize_t n_batches = (n_epoch + batch_size - 1) / batch_size;
    const std::int64_t* batches = int64_array(batches_o, "batches", std::nullopt);
    const py::ssize_t count = py::reinterpret_borrow<py::array>(batches_o).shape(0);
    if (first < 0 || first > count)
        throw py::value_error("first: need 0 <= first <= len(batches) = " + std::to_string(count) + ", got " +
                              std::to_string(first));
    for (py::ssize_t i = first; i < count; ++i)
        if (batches[i] < 0 || batches[i] >= n_batches)
            throw py::value_error("batches: batch " + std::to_string(batches[i]) + " at position " + std::to_string(i) +
                                  " is out of range (" + std::to_string(n_batches) + " batches of " +
                                  std::to_string(batch_size) + ")");
    const double* batch_weight = nullptr;
    if (!batch_weight_o.is_none()) {
        const py::array bw = py::reinterpret_borrow<py::array>(batch_weight_o);
        if (!py::isinstance<py::array_t<double>>(batch_weight_o) || !(bw.flags() & py::array::c_style) ||
            bw.ndim() != 1 || bw.shape(0) != n_batches)
            throw py::value_error("batch_weight: expected a C-contiguous float64 array of shape (" +
                                  std::to_string(n_batches) + ",)");
        batch_weight = static_cast<const double*>(bw.data());
    }
    if (sums.size() != 3) throw py::value_error("sums: expected (loss_sum, weight_sum, plain_sum)");
    EpochSums s{sums[0].cast<double>(), sums[1].cast<double>(), sums[2].cast<double>(),
                std::numeric_limits<double>::quiet_NaN(), first_gnorm.value_or(std::numeric_limits<double>::quiet_NaN()),
                0};
    const double explode = explode_factor.value_or(std::numeric_limits<double>::infinity());
    const auto go = [&](const auto* X_, const auto* y_, const auto* sw_, const auto& kernels) {
        using T = std::remove_const_t<std::remove_pointer_t<decltype(X_)>>;
        T* g = static_cast<T*>(const_cast<void*>(grad.data()));
        const T* w = static_cast<const T*>(theta.data());
        const std::size_t kd = static_cast<std::size_t>(K * d);
        LinearBatch<T> batch{X_, static_cast<std::size_t>(d), order, 0, 0, y_, labels, sw_};
        set_scaling(batch, scaling);
        const EpochArgs<T> a{batch, w, w + kd, g, g + kd, static_cast<std::size_t>(n_epoch), static_cast<std::size_t>(batch_size),
                             static_cast<std::size_t>(n_theta), batches, static_cast<std::size_t>(first),
                             static_cast<std::size_t>(count - first), batch_weight};
        run_batches(kernels, a, o, plan, grads, explode, sync, s);
    };
    const KernelTable& k = active_kernels();
    if (size == 4)
        go(static_cast<const float*>(X.data()), static_cast<const float*>(y), static_cast<const float*>(sw), k.f32);
    else
        go(static_cast<const double*>(X.data()), static_cast<const double*>(y), static_cast<const double*>(sw), k.f64);
    return py::make_tuple(static_cast<py::ssize_t>(s.done), py::make_tuple(s.loss_sum, s.weight_sum, s.plain_sum),
                          s.gnorm, std::isnan(s.first_gnorm) ? py::object(py::none()) : py::object(py::float_(s.first_gnorm)));
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
