// The linear models' shared arguments (linear_args.hpp).
#include "linear_args.hpp"

#include "array_checks.hpp"

namespace fastgd::bindings {

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
const void* targets_of(const py::object& yo, const py::array& X, py::ssize_t n_total, py::ssize_t K) {
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

LinearTargets linear_targets(const std::string& loss_name, py::ssize_t K, const char* K_name, const py::object& yo,
                             const py::object& swo, const py::array& X, py::ssize_t n_total, double l2,
                             const py::object& l1_o, const py::object& delta_o, bool check_labels) {
    LinearTargets t;
    LinearObjectiveOptions& o = t.options;
    o = LinearObjectiveOptions{loss_kind(loss_name), 0, 0.0, l2, 0.0};
    if (const std::string need = unmet_outputs(o.loss, K); !need.empty())
        throw py::value_error(std::string(K_name) + ": loss '" + loss_name + "' needs " + need +
                              (std::string(K_name) == "W" ? (need == "K = 1" ? " row" : " rows") : "") + ", got " +
                              std::to_string(K));
    o.K = static_cast<std::size_t>(K);
    o.l1_k = per_output(l1_o, "l1", K, o.l1);
    o.delta_k = per_output(delta_o, "delta", K, o.delta);
    if (is_multiclass(o.loss)) {
        t.labels = int64_array(yo, "y", n_total);
        if (check_labels)
            for (py::ssize_t i = 0; i < n_total; ++i)
                if (t.labels[i] < 0 || t.labels[i] >= K)
                    throw py::value_error("y: label " + std::to_string(t.labels[i]) + " is out of range for K = " +
                                          std::to_string(K) + " classes (labels are 0..K-1)");
    } else {
        t.y = targets_of(yo, X, n_total, K);
    }
    const std::string nt = "(" + std::to_string(n_total) + ",) (X.shape[0])";
    if (!swo.is_none()) t.sample_weight = float_array(swo, "sample_weight", false, X, {n_total}, nt.c_str()).data();
    return t;
}

ObjectiveArgs objective_args(const std::string& loss_name, const py::array& X, py::ssize_t n_total, py::ssize_t d,
                             const py::object& yo, const py::object& Wo, const py::object& bo, const py::object& gWo,
                             const py::object& gbo, const py::object& rows_o, py::ssize_t start,
                             std::optional<py::ssize_t> stop, const py::object& swo, double l2,
                             const py::object& l1_o, const py::object& delta_o) {
    check_array(Wo, "W", false);
    const py::array Wa = py::reinterpret_borrow<py::array>(Wo);
    if (Wa.ndim() != 2 || Wa.shape(0) < 1) throw py::value_error("W: shape " + shape_of(Wa) + ", expected (K, d)");
    const py::ssize_t K = Wa.shape(0);
    const std::string kd = "(" + std::to_string(K) + ", " + std::to_string(d) + ") (K, X.shape[1])";
    const std::string k1 = "(" + std::to_string(K) + ",) (K = W.shape[0])";
    ObjectiveArgs a{float_array(Wo, "W", false, X, {K, d}, kd.c_str()),
                    float_array(bo, "b", false, X, {K}, k1.c_str()),
                    float_array(gWo, "grad_W", true, X, {K, d}, kd.c_str()),
                    float_array(gbo, "grad_b", true, X, {K}, k1.c_str()),
                    K,
                    linear_targets(loss_name, K, "W", yo, swo, X, n_total, l2, l1_o, delta_o, false),
                    nullptr, 0, 0};
    // The batch: rows[start:stop] of the index array, or X's rows start..stop.
    if (!rows_o.is_none()) int64_array(rows_o, "rows", std::nullopt);
    const py::ssize_t limit = rows_o.is_none() ? n_total : py::reinterpret_borrow<py::array>(rows_o).shape(0);
    const py::ssize_t end = stop.value_or(limit);
    if (start < 0 || end < start || end > limit)
        throw py::value_error("start, stop: need 0 <= start <= stop <= " + std::to_string(limit) + " (the length of " +
                              (rows_o.is_none() ? "X" : "rows") + "), got " + std::to_string(start) + ", " +
                              std::to_string(end));
    a.rows = rows_o.is_none() ? nullptr : checked_rows(rows_o, start, end, n_total, "rows");
    if (a.targets.labels) {
        for (py::ssize_t i = 0; i < end - start; ++i) {
            const std::int64_t c = a.targets.labels[a.rows ? a.rows[i] : start + i];
            if (c < 0 || c >= K)
                throw py::value_error("y: label " + std::to_string(c) + " is out of range for K = " +
                                      std::to_string(K) + " classes (labels are 0..K-1)");
        }
    }
    a.n = static_cast<std::size_t>(end - start);
    a.begin = static_cast<std::size_t>(a.rows ? 0 : start);
    return a;
}

const std::int64_t* checked_rows(const py::object& rows_o, py::ssize_t start, py::ssize_t end, py::ssize_t n_total,
                                 const char* name) {
    const std::int64_t* rows = int64_array(rows_o, name, std::nullopt) + start;
    for (py::ssize_t i = 0; i < end - start; ++i)
        if (rows[i] < 0 || rows[i] >= n_total)
            throw py::value_error(std::string(name) + ": index " + std::to_string(rows[i]) + " at position " +
                                  std::to_string(start + i) + " is out of range for X with " +
                                  std::to_string(n_total) + " rows");
    return rows;
}

}  // namespace fastgd::bindings
