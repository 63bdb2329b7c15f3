// A linear model's mini-batch objective (see cpp/src/kernels/linear_objective.cpp): checks,
// then the kernel without the GIL. Called once per mini-batch, so the checks stay cheap: no
// copies, no temporaries, one pass over the batch's indices (and labels) for their bounds.
#include <cstdint>
#include <optional>
#include <string>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/linear_objective.hpp"
#include "register.hpp"

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
                        const py::object& swo, double l2, double l1, double delta) {
    LinearObjectiveOptions o{loss_kind(loss_name), 0, delta, l2, l1};
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
    if (multiclass ? K < 2 : K != 1)
        throw py::value_error("W: loss '" + loss_name + "' needs " + (multiclass ? "K >= 2 rows" : "K = 1 row") +
                              ", got " + std::to_string(K));
    const std::string nt = "(" + std::to_string(n_total) + ",) (X.shape[0])";
    const std::int64_t* labels = nullptr;
    const void* y = nullptr;
    if (multiclass) labels = int64_array(yo, "y", n_total);
    else y = float_array(yo, "y", false, X, {n_total}, nt.c_str()).data();
    const void* sw = swo.is_none() ? nullptr : float_array(swo, "sample_weight", false, X, {n_total}, nt.c_str()).data();

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
        const LinearBatch<float> batch{static_cast<const float*>(X.data()), static_cast<std::size_t>(d), rows, begin,
                                       n, static_cast<const float*>(y), labels, static_cast<const float*>(sw)};
        return run(k.f32, batch, W, b, o, gW, gb);
    }
    const LinearBatch<double> batch{static_cast<const double*>(X.data()), static_cast<std::size_t>(d), rows, begin,
                                    n, static_cast<const double*>(y), labels, static_cast<const double*>(sw)};
    return run(k.f64, batch, W, b, o, gW, gb);
}

}  // namespace

void register_linear(py::module_& m) {
    m.def("linear_objective", &linear_objective,
          "A linear model's mini-batch objective in one pass over the batch's rows: returns the weighted mean\n"
          "loss plus l2/2 |W|^2 + l1 |W|_1 and writes grad_W = (1/n) sum s_i dl_i/dz x_i^T + l2 W and\n"
          "grad_b = (1/n) sum s_i dl_i/dz. The batch is rows[start:stop] (indices into X) or, without rows,\n"
          "X[start:stop]; read in place.",
          py::arg("loss"), py::arg("X"), py::arg("y"), py::arg("W"), py::arg("b"), py::arg("grad_W"),
          py::arg("grad_b"), py::arg("rows") = py::none(), py::arg("start") = 0, py::arg("stop") = py::none(),
          py::arg("sample_weight") = py::none(), py::arg("l2") = 0.0, py::arg("l1") = 0.0, py::arg("delta") = 1.0);
}

}  // namespace fastgd::bindings
