// A linear model's mini-batch objective on a CSR matrix (fastgd/sparse_linear.hpp), and the
// epoch loop over it: checks, then the kernel without the GIL. X is read in place through its
// data, indices and indptr arrays (scipy.sparse's CSR layout); the column indices are checked
// by the kernel as it reads them, so a malformed matrix is an error, never a stray read.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "batch_loop.hpp"
#include "fastgd/column_stats.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/norms.hpp"
#include "fastgd/sparse_linear.hpp"
#include "linear_args.hpp"
#include "register.hpp"
#include "step_plan.hpp"

namespace fastgd::bindings {
namespace {

// X's arrays, checked: data (float32/float64, its dtype is X's), indices and indptr (both
// int32 or both int64), C-contiguous and 1-D, of consistent lengths.
struct Csr {
    py::array data, indices, indptr;
    py::ssize_t n_rows = 0, d = 0;
    int value_size = 0;  // 4 or 8 (float32, float64)
    bool wide = false;   // int64 indices
};

py::array csr_part(const py::object& X, const char* attr) {
    if (!py::hasattr(X, attr))
        throw py::type_error("X: expected a scipy.sparse CSR matrix (data, indices, indptr), got " +
                             py::str(py::type::of(X).attr("__name__")).cast<std::string>());
    const py::object a = X.attr(attr);
    if (!py::isinstance<py::array>(a)) throw py::type_error(std::string("X.") + attr + ": expected a numpy.ndarray");
    const py::array arr = py::reinterpret_borrow<py::array>(a);
    if (arr.ndim() != 1 || !(arr.flags() & py::array::c_style))
        throw py::value_error(std::string("X.") + attr + ": expected a C-contiguous 1-D array, got shape " +
                              shape_of(arr));
    return arr;
}

Csr csr_of(const py::object& X) {
    if (py::hasattr(X, "format") && py::str(X.attr("format")).cast<std::string>() != "csr")
        throw py::type_error("X: expected a CSR matrix, got format '" + py::str(X.attr("format")).cast<std::string>() +
                             "' (convert once with X.tocsr())");
    Csr c;
    c.data = csr_part(X, "data");
    c.indices = csr_part(X, "indices");
    c.indptr = csr_part(X, "indptr");
    c.value_size = check_array(c.data, "X.data", false);
    const py::tuple shape = X.attr("shape");
    if (shape.size() != 2) throw py::value_error("X: expected a 2-D matrix");
    c.n_rows = shape[0].cast<py::ssize_t>();
    c.d = shape[1].cast<py::ssize_t>();
    const bool i32 = c.indices.dtype().equal(py::dtype::of<std::int32_t>()) &&
                     c.indptr.dtype().equal(py::dtype::of<std::int32_t>());
    const bool i64 = c.indices.dtype().equal(py::dtype::of<std::int64_t>()) &&
                     c.indptr.dtype().equal(py::dtype::of<std::int64_t>());
    if (!i32 && !i64)
        throw py::type_error("X.indices, X.indptr: dtypes " + py::str(c.indices.dtype()).cast<std::string>() + " and " +
                             py::str(c.indptr.dtype()).cast<std::string>() +
                             "; expected both int32 or both int64 (native byte order)");
    c.wide = i64;
    if (c.indptr.shape(0) != c.n_rows + 1)
        throw py::value_error("X.indptr: " + std::to_string(c.indptr.shape(0)) + " entries for " +
                              std::to_string(c.n_rows) + " rows (expected n_rows + 1)");
    if (c.indices.shape(0) != c.data.shape(0))
        throw py::value_error("X.indices and X.data: lengths " + std::to_string(c.indices.shape(0)) + " and " +
                              std::to_string(c.data.shape(0)) + " differ");
    return c;
}

template <class T, class I> CsrRows<T, I> rows_of(const Csr& c) {
    return CsrRows<T, I>{static_cast<const T*>(c.data.data()), static_cast<const I*>(c.indices.data()),
                         static_cast<const I*>(c.indptr.data()), static_cast<std::size_t>(c.n_rows),
                         static_cast<std::size_t>(c.d), static_cast<std::size_t>(c.data.shape(0))};
}

// f(rows) with X's value and index types.
template <class F> auto with_types(const Csr& c, F&& f) {
    if (c.value_size == 4) {
        if (c.wide) return f(rows_of<float, std::int64_t>(c));
        return f(rows_of<float, std::int32_t>(c));
    }
    if (c.wide) return f(rows_of<double, std::int64_t>(c));
    return f(rows_of<double, std::int32_t>(c));
}

// The per-feature scale of the standardization (None, or d values of X's dtype).
const void* inv_scale_of(const py::object& obj, const py::array& data, py::ssize_t d) {
    if (obj.is_none()) return nullptr;
    const std::string sd = "(" + std::to_string(d) + ",) (X.shape[1])";
    return float_array(obj, "inv_scale", false, data, {d}, sd.c_str()).data();
}

// The kernel, its index errors as ValueError.
template <class T, class I>
double run_kernel(const SparseBatch<T, I>& bt, const T* W, const T* b, const LinearObjectiveOptions& o, T* gW, T* gb,
                  SparseScratch& sc, CompactOut<T>* compact, double weight_scale = 1.0) {
    std::string error;
    double value = 0.0;
    {
        py::gil_scoped_release release;  // raw buffers of arrays the caller's arguments hold
        try {
            value = sparse_linear_objective(bt, W, b, o, gW, gb, sc,
                                            compact != nullptr ? SparseGrad::compact : SparseGrad::dense, compact,
                                            weight_scale);
        } catch (const std::out_of_range& e) {
            error = e.what();
        }
    }
    if (!error.empty()) throw py::value_error(error);
    return value;
}

thread_local SparseScratch call_scratch;

double sparse_linear_objective_py(const std::string& loss_name, const py::object& Xo, const py::object& yo,
                                  const py::object& Wo, const py::object& bo, const py::object& gWo,
                                  const py::object& gbo, const py::object& rows_o, py::ssize_t start,
                                  std::optional<py::ssize_t> stop, const py::object& swo, double l2,
                                  const py::object& l1_o, const py::object& delta_o, const py::object& scale_o,
                                  bool active_only) {
    const Csr c = csr_of(Xo);
    const py::ssize_t n_total = c.n_rows, d = c.d;
    const ObjectiveArgs a = objective_args(loss_name, c.data, n_total, d, yo, Wo, bo, gWo, gbo, rows_o, start, stop,
                                           swo, l2, l1_o, delta_o);
    const LinearTargets& t = a.targets;
    const py::ssize_t K = a.K;
    const void* inv_scale = inv_scale_of(scale_o, c.data, d);
    return with_types(c, [&](const auto& X) {
        using T = std::remove_const_t<std::remove_pointer_t<decltype(X.data)>>;
        using I = std::remove_const_t<std::remove_pointer_t<decltype(X.indices)>>;
        const SparseBatch<T, I> bt{X, a.rows, a.begin, a.n, static_cast<const T*>(t.y), t.labels,
                                   static_cast<const T*>(t.sample_weight), static_cast<const T*>(inv_scale)};
        T* gw = static_cast<T*>(const_cast<void*>(a.gW.data()));
        T* gbb = static_cast<T*>(const_cast<void*>(a.gb.data()));
        CompactOut<T> compact;
        if (active_only) {  // grad_W, zeroed, holds the sums by column (and is zero again after)
            std::fill(gw, gw + static_cast<std::size_t>(K * d), T(0));
            compact.by_column = gw;
        }
        const double value = run_kernel(bt, static_cast<const T*>(a.W.data()), static_cast<const T*>(a.b.data()),
                                        t.options, gw, gbb, call_scratch, active_only ? &compact : nullptr);
        if (active_only) {  // the compact gradient spread over grad_W's zeros: grad_W and grad_b are one flat layout
            const std::size_t kd = static_cast<std::size_t>(K * d);
            for (std::size_t i = 0; i < compact.coords.size(); ++i) {
                const auto q = static_cast<std::size_t>(compact.coords[i]);
                (q < kd ? gw[q] : gbb[q - kd]) = compact.grad[i];
            }
        }
        return value;
    });
}

// The lazy loop's running penalty: sum W^2 and, per output, sum |W|, kept up to date through
// each step's coordinates (recomputed whole at each call, so rounding does not pile up).
struct PenaltySums {
    double sq = 0.0;
    std::vector<double> ab;
};

// Adds (sign 1) or takes out (-1) the weights among a compact batch's values (K x na, then
// the intercepts, which are not penalized), each times `factor` (the stored vector's entries).
template <class T>
void add_weights(PenaltySums& p, const CompactOut<T>& c, std::size_t K, double sign, double factor) {
    const std::size_t na = (c.params.size() - K) / K;
    for (std::size_t k = 0; k < K; ++k) {
        // Four sums in turn: four chains of adds in flight, not one.
        double sq[4] = {0.0, 0.0, 0.0, 0.0}, ab[4] = {0.0, 0.0, 0.0, 0.0};
        const T* v = c.params.data() + k * na;
        std::size_t a = 0;
        for (; a + 4 <= na; a += 4)
            for (std::size_t u = 0; u < 4; ++u) {
                const double w = double(v[a + u]) * factor;
                sq[u] += w * w;
                ab[u] += std::fabs(w);
            }
        for (; a < na; ++a) {
            const double w = double(v[a]) * factor;
            sq[0] += w * w;
            ab[0] += std::fabs(w);
        }
        p.sq += sign * ((sq[0] + sq[1]) + (sq[2] + sq[3]));
        p.ab[k] += sign * ((ab[0] + ab[1]) + (ab[2] + ab[3]));
    }
}

py::tuple sparse_linear_batches(const std::string& loss_name, const py::object& Xo, const py::object& yo,
                                const py::object& theta_o, const py::object& grad_o, py::ssize_t K,
                                const py::object& swo, const py::object& order_o, const py::object& batches_o,
                                py::ssize_t first, py::ssize_t batch_size, const py::object& batch_weight_o,
                                double l2, const py::object& l1_o, const py::object& delta_o, StepPlan& plan,
                                const py::object& grads, py::tuple sums, std::optional<double> first_gnorm,
                                std::optional<double> explode_factor, const py::object& sync,
                                std::optional<py::ssize_t> n_rows, const py::object& scale_o, bool lazy,
                                const py::object& l1_state_o) {
    const Csr c = csr_of(Xo);
    const py::ssize_t n_total = c.n_rows, d = c.d;
    const LinearTargets t = linear_targets(loss_name, K, "K", yo, swo, c.data, n_total, l2, l1_o, delta_o, true);
    const py::ssize_t n_theta = K * (d + 1);
    const std::string th = "(" + std::to_string(n_theta) + ",) (K * (X.shape[1] + 1))";
    const py::array theta = float_array(theta_o, "theta", false, c.data, {n_theta}, th.c_str());
    const py::array grad = float_array(grad_o, "grad", true, c.data, {n_theta}, th.c_str());
    const void* inv_scale = inv_scale_of(scale_o, c.data, d);
    EpochArgs ea = epoch_args(n_total, order_o, n_rows, batches_o, first, batch_size, batch_weight_o, sums,
                              first_gnorm, explode_factor, sync);
    const EpochBatches& e = ea.batches;
    // The lazy L1 penalty's state (Tsuruoka et al. 2009): per weight the penalty applied to it
    // so far, then per output the penalty every weight has been due so far.
    double* l1_state = nullptr;
    const bool l1 = t.options.l1 != 0.0 || t.options.l1_k != nullptr;
    if (lazy && l1) {
        const py::ssize_t n_state = K * d + K;
        if (!py::isinstance<py::array_t<double>>(l1_state_o) ||
            !(py::reinterpret_borrow<py::array>(l1_state_o).flags() & py::array::c_style) ||
            py::reinterpret_borrow<py::array>(l1_state_o).ndim() != 1 ||
            py::reinterpret_borrow<py::array>(l1_state_o).shape(0) != n_state ||
            !py::reinterpret_borrow<py::array>(l1_state_o).writeable())
            throw py::value_error("l1_state: a lazy fit with an L1 term needs a writeable C-contiguous float64 array "
                                  "of K * (X.shape[1] + 1) = " + std::to_string(n_state) + " values");
        l1_state = static_cast<double*>(py::reinterpret_borrow<py::array>(l1_state_o).mutable_data());
    }
    SparseScratch scratch;
    with_types(c, [&](const auto& X) {
        using T = std::remove_const_t<std::remove_pointer_t<decltype(X.data)>>;
        using I = std::remove_const_t<std::remove_pointer_t<decltype(X.indices)>>;
        T* g = static_cast<T*>(const_cast<void*>(grad.data()));
        T* w = static_cast<T*>(const_cast<void*>(theta.data()));
        const std::size_t Ku = static_cast<std::size_t>(K), du = static_cast<std::size_t>(d), kd = Ku * du;
        const LinearObjectiveOptions& o = t.options;
        // Lazy: the L2 term is a decay of every weight at every step, w <- (1 - lr l2) w, then
        // the rule's step on the batch's features from their data gradient. The decay of all
        // d weights costs O(1): the weights are kept as `scale` times theta's entries while the
        // loop runs (scikit-learn's SGD keeps its wscale so), and theta holds the weights
        // themselves again whenever the loop returns.
        LinearObjectiveOptions kernel_options = o;
        if (lazy) kernel_options.l2 = 0.0;
        double scale = 1.0;
        const auto fold_scale = [&] {
            if (scale == 1.0) return;
            for (std::size_t q = 0; q < kd; ++q) w[q] = static_cast<T>(double(w[q]) * scale);
            scale = 1.0;
        };
        struct Folded {
            decltype(fold_scale)& fold;
            ~Folded() { fold(); }
        } folded{fold_scale};
        CompactOut<T> compact;
        if (lazy) {  // the full gradient, unused by lazy steps, holds the kernel's sums by column
            std::fill(g, g + kd, T(0));
            compact.by_column = g;
        }
        PenaltySums pen;  // of theta's entries: the weights' are scale times theirs
        pen.ab.assign(Ku, 0.0);
        if (lazy) {
            py::gil_scoped_release release;
            for (std::size_t q = 0; q < kd; ++q) {
                const double v = double(w[q]);
                pen.sq += v * v;
                pen.ab[q / du] += std::fabs(v);
            }
        }
        const auto penalty = [&] {
            double l1 = 0.0;
            for (std::size_t k = 0; k < Ku; ++k) l1 += (o.l1_k != nullptr ? o.l1_k[k] : o.l1) * pen.ab[k];
            return 0.5 * o.l2 * scale * scale * pen.sq + scale * l1;
        };
        const auto objective = [&](const BatchSpan& span, bool local) {
            SparseBatch<T, I> bt{X,
                                 e.order != nullptr ? e.order + span.start : nullptr,
                                 e.order != nullptr ? 0 : span.start,
                                 span.stop - span.start,
                                 static_cast<const T*>(t.y),
                                 t.labels,
                                 static_cast<const T*>(t.sample_weight),
                                 static_cast<const T*>(inv_scale)};
            if (span.next_stop > span.next_start) {
                bt.next_n = span.next_stop - span.next_start;
                if (e.order != nullptr) bt.next_rows = e.order + span.next_start;
                else bt.next_begin = span.next_start;
            }
            double value = run_kernel(bt, w, w + kd, kernel_options, g, g + kd, scratch, lazy ? &compact : nullptr,
                                      scale);
            double gnorm = 0.0;
            if (lazy) {
                value += penalty();
                // (The gradient is zero off the batch's coordinates.)
                if (local) gnorm = gradient_norm(compact.grad.data(), compact.grad.size());
            } else if (local) {
                py::gil_scoped_release release;
                gnorm = gradient_norm(g, static_cast<std::size_t>(n_theta));
            }
            return std::pair<double, double>{value, gnorm};
        };
        const auto take_step = [&] {
            if (!lazy) return step(plan, grads).has_value();
            const std::size_t n_weights = compact.params.size() - Ku;
            const double next_lr_used = (o.l2 != 0.0 || l1_state != nullptr) ? next_lr(plan, 0) : 0.0;
            const double decay = o.l2 != 0.0 ? 1.0 - next_lr_used * o.l2 : 1.0;
            const double new_scale = scale * decay;
            add_weights(pen, compact, Ku, -1.0, 1.0 / scale);
            if (decay != 1.0)
                for (std::size_t a = 0; a < n_weights; ++a)
                    compact.params[a] = static_cast<T>(double(compact.params[a]) * decay);
            const Coordinates only{compact.coords.data(), compact.coords.size(), compact.params.data(),
                                   compact.grad.data(), n_weights, 1.0 / new_scale,
                                   static_cast<std::size_t>(n_theta)};  // the kernel's positions in theta
            bool was_lazy = false;
            const bool refused = step(plan, grads, &only, &was_lazy).has_value();
            if (!was_lazy || refused) {  // nothing stepped: train's own loop takes this batch
                for (std::size_t a = 0; a < n_weights; ++a)  // (no weight moved)
                    compact.params[a] = static_cast<T>(double(compact.params[a]) / decay);
                add_weights(pen, compact, Ku, 1.0, 1.0 / scale);
                return true;
            }
            scale = new_scale;
            if (l1_state != nullptr) {
                // The cumulative penalty: each weight of the batch is pulled towards zero by
                // what every weight has been due since the start, less what it has had, and
                // stops at zero (an exact zero); scikit-learn's SGD does the same.
                const double lr = next_lr_used;
                double* q = l1_state;
                double* u = l1_state + kd;
                for (std::size_t k = 0; k < Ku; ++k) u[k] += lr * (o.l1_k != nullptr ? o.l1_k[k] : o.l1);
                const std::size_t na = n_weights / Ku;
                for (std::size_t a = 0; a < n_weights; ++a) {
                    const auto qi = static_cast<std::size_t>(compact.coords[a]);
                    const double uk = u[a / na];
                    const double wv = double(compact.params[a]);
                    double nw = wv;
                    if (wv > 0.0) nw = std::max(0.0, wv - (uk + q[qi]));
                    else if (wv < 0.0) nw = std::min(0.0, wv + (uk - q[qi]));
                    q[qi] += nw - wv;
                    compact.params[a] = static_cast<T>(nw);
                    w[qi] = static_cast<T>(nw / scale);
                }
            }
            add_weights(pen, compact, Ku, 1.0, 1.0 / scale);
            if (scale < 1e-9) {  // before the stored entries grow past what T holds: fold the scale in
                pen.sq *= scale * scale;
                for (double& v : pen.ab) v *= scale;
                fold_scale();
            }
            return false;
        };
        run_batches(e, objective, take_step, grads, ea.explode, sync, ea.sums);
    });
    return epoch_result(ea.sums);
}

// A float64 vector argument of n values (None: absent).
const double* float64_vector(const py::object& o, const char* name, py::ssize_t n, const char* what) {
    if (o.is_none()) return nullptr;
    if (check_array(o, name, false) != 8) throw py::type_error(std::string(name) + ": expected float64 (no silent casts)");
    const py::array a = py::reinterpret_borrow<py::array>(o);
    if (a.ndim() != 1 || a.shape(0) != n)
        throw py::value_error(std::string(name) + ": expected shape (" + std::to_string(n) + ",) (" + what + "), got " +
                              shape_of(a));
    return static_cast<const double*>(a.data());
}

py::tuple sparse_column_moments_py(const py::object& Xo, const py::object& wo, const py::object& units_o) {
    const Csr c = csr_of(Xo);
    const double* w = float64_vector(wo, "sample_weight", c.n_rows, "X.shape[0]");
    const double* units = float64_vector(units_o, "units", c.d, "X.shape[1]");
    py::array_t<double> mean(c.d), var(c.d);
    double* mp = mean.mutable_data();
    double* vp = var.mutable_data();
    std::string error;
    const double weight = with_types(c, [&](const auto& X) {
        py::gil_scoped_release release;  // raw buffers of arrays the arguments and locals hold
        try {
            return sparse_column_moments(X.data, X.indices, X.indptr, X.n_rows, X.d, X.nnz, w, units, mp, vp);
        } catch (const std::out_of_range& e) {
            error = e.what();
            return 0.0;
        }
    });
    if (!error.empty()) throw py::value_error(error);
    return py::make_tuple(weight, mean, var);
}

}  // namespace

// csr_first_duplicate for indptr and indices arrays (int32 or int64, the same), already
// checked for shape, monotone rows and columns in [0, d).
py::tuple csr_first_duplicate_py(const py::array& indptr, const py::array& indices, py::ssize_t d) {
    const auto n_rows = static_cast<std::size_t>(indptr.shape(0) - 1);
    std::pair<std::int64_t, std::int64_t> found;
    const auto go = [&](auto tag) {
        using I = decltype(tag);
        const I* ip = static_cast<const I*>(indptr.data());
        const I* ix = static_cast<const I*>(indices.data());
        py::gil_scoped_release release;  // the arrays are the caller's arguments
        found = csr_first_duplicate(ip, ix, n_rows, static_cast<std::size_t>(d));
    };
    const bool i32 = indptr.dtype().equal(py::dtype::of<std::int32_t>()) &&
                     indices.dtype().equal(py::dtype::of<std::int32_t>());
    const bool i64 = indptr.dtype().equal(py::dtype::of<std::int64_t>()) &&
                     indices.dtype().equal(py::dtype::of<std::int64_t>());
    if ((!i32 && !i64) || indptr.ndim() != 1 || indices.ndim() != 1 || !(indptr.flags() & py::array::c_style) ||
        !(indices.flags() & py::array::c_style) || indptr.shape(0) < 1 || d < 0)
        throw py::type_error("indptr, indices: C-contiguous 1-D arrays, both int32 or both int64");
    if (i32) go(std::int32_t{});
    else go(std::int64_t{});
    return py::make_tuple(found.first, found.second);
}

void register_sparse_linear(py::module_& m) {
    m.def("csr_first_duplicate", &csr_first_duplicate_py,
          "(row, column) of the first column index stored twice in one row of a CSR structure, (-1, -1) if\n"
          "none: one pass, with d 32-bit marks. The structure must be sound (monotone indptr from 0, column\n"
          "indices in [0, d)).",
          py::arg("indptr"), py::arg("indices"), py::arg("d"));

    m.def("sparse_column_moments", &sparse_column_moments_py,
          "(weight, mean, var) of each column of a CSR matrix X, implicit zeros included (float64): the\n"
          "corrected two-pass algorithm over the whole matrix (fastgd/column_stats.hpp). sample_weight: None or\n"
          "X.shape[0] float64 weights (rows of weight 0 are skipped); units: None or X.shape[1] float64 values\n"
          "dividing each column first (mean and var then in those units). weight 0: mean and var undefined.",
          py::arg("X"), py::arg("sample_weight") = py::none(), py::arg("units") = py::none());

    m.def("sparse_linear_objective", &sparse_linear_objective_py,
          "linear_objective's objective and gradient for a CSR matrix X (a scipy.sparse csr_matrix or csr_array:\n"
          "its data, indices and indptr arrays, read in place; float32 or float64 values, int32 or int64\n"
          "indices). inv_scale: None, or X.shape[1] values of X's dtype: the model reads x'_j = x_j * inv_scale_j\n"
          "(scale-only standardization). active_only: grad_W is written only at the batch's features (zero\n"
          "elsewhere) and the value is the loss without the penalties.",
          py::arg("loss"), py::arg("X"), py::arg("y"), py::arg("W"), py::arg("b"), py::arg("grad_W"),
          py::arg("grad_b"), py::arg("rows") = py::none(), py::arg("start") = 0, py::arg("stop") = py::none(),
          py::arg("sample_weight") = py::none(), py::arg("l2") = 0.0, py::arg("l1") = 0.0, py::arg("delta") = 1.0,
          py::arg("inv_scale") = py::none(), py::arg("active_only") = false);

    m.def("sparse_linear_batches", &sparse_linear_batches,
          "linear_batches for a CSR matrix X (see sparse_linear_objective). lazy: each step first decays every\n"
          "weight, w <- (1 - lr l2) w (in O(1): the weights are kept as a scalar times theta while the loop runs),\n"
          "then updates only the batch's active features' weights and optimizer state, and the intercepts, by\n"
          "the optimizer's rule on those coordinates alone from their data gradient (its clipping norm theirs).\n"
          "With an L1 term, lazy steps then apply the cumulative penalty (Tsuruoka et al. 2009) to the batch's\n"
          "weights, whose state l1_state keeps (K * (d + 1) float64 values, zeros at the start of a fit).\n"
          "Otherwise every weight steps every batch, as on X.toarray() (L1: train's proximal post_step).",
          py::arg("loss"), py::arg("X"), py::arg("y"), py::arg("theta"), py::arg("grad"), py::arg("K"),
          py::arg("sample_weight"), py::arg("order"), py::arg("batches"), py::arg("first"), py::arg("batch_size"),
          py::arg("batch_weight"), py::arg("l2"), py::arg("l1"), py::arg("delta"), py::arg("plan"), py::arg("grads"),
          py::arg("sums"), py::arg("first_gnorm"), py::arg("explode_factor"), py::arg("sync") = py::none(),
          py::arg("n_rows") = py::none(), py::arg("inv_scale") = py::none(), py::arg("lazy") = false,
          py::arg("l1_state") = py::none());
}

}  // namespace fastgd::bindings
