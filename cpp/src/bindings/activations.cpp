// Fused element-wise steps of MLP layers (see cpp/src/kernels/activations.cpp).
#include <cstdint>
#include <string>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "register.hpp"

namespace fastgd::bindings {
namespace {

int activation_kind(const std::string& name) {
    if (name == "relu") return 0;
    if (name == "tanh") return 1;
    if (name == "sigmoid") return 2;
    if (name == "gelu") return 3;
    throw py::value_error("activation must be 'relu', 'tanh', 'sigmoid' or 'gelu', got '" + name + "'");
}

template <class T> T* ptr(const py::array& a) { return static_cast<T*>(const_cast<void*>(a.data())); }

// A 1-D array of `size`-byte floats with one element per column of `m` (axis 1), or per row
// (axis 0): a bias gradient or per-sample weights.
py::array row_array(const py::object& o, const char* name, int size, const py::array& m, bool writeable,
                    int axis = 1) {
    if (check_array(o, name, writeable) != size)
        throw py::type_error(std::string(name) + ": dtype " + py::str(o.attr("dtype")).cast<std::string>() +
                             " does not match " + (size == 4 ? "float32" : "float64") + " (no silent casts)");
    const py::array a = py::reinterpret_borrow<py::array>(o);
    if (a.ndim() != 1 || a.shape(0) != m.shape(axis))
        throw py::value_error(std::string(name) + ": must be 1-D with " + std::to_string(m.shape(axis)) + " elements");
    return a;
}

}  // namespace

void register_activations(py::module_& m) {
    m.def(
        "gather_rows_",
        [](py::object xo, py::object outo, py::object rowso, std::size_t first, py::object meano,
           py::object scaleo) {
            const int size = check_array(xo, "X", false);
            const py::array X = py::reinterpret_borrow<py::array>(xo);
            if (check_array(outo, "out", true) != size)
                throw py::type_error("out: dtype does not match X's (no silent casts)");
            const py::array out = py::reinterpret_borrow<py::array>(outo);
            if (X.ndim() != 2 || out.ndim() != 2 || X.shape(1) != out.shape(1))
                throw py::value_error("X and out must be 2-D with the same number of columns");
            const auto n_in = static_cast<std::size_t>(X.shape(0)), n = static_cast<std::size_t>(out.shape(0)),
                       cols = static_cast<std::size_t>(X.shape(1));
            const char* x0 = static_cast<const char*>(X.data());
            const char* o0 = static_cast<const char*>(out.data());
            const std::size_t xb = n_in * cols * size, ob = n * cols * size;
            if (xb && ob && x0 < o0 + ob && o0 < x0 + xb) throw py::value_error("out must not overlap X");
            const std::int64_t* rows = nullptr;
            py::array r;
            if (!rowso.is_none()) {
                if (!py::isinstance<py::array>(rowso)) throw py::type_error("rows must be a NumPy array of int64");
                r = py::reinterpret_borrow<py::array>(rowso);
                if (!r.dtype().is(py::dtype::of<std::int64_t>()))
                    throw py::type_error("rows: dtype " + py::str(r.dtype()).cast<std::string>() + ", expected int64");
                if (r.ndim() != 1 || static_cast<std::size_t>(r.shape(0)) != n || !(r.flags() & py::array::c_style))
                    throw py::value_error("rows must be C-contiguous, 1-D, with out.shape[0] = " + std::to_string(n) +
                                          " elements");
                rows = static_cast<const std::int64_t*>(r.data());
                for (std::size_t i = 0; i < n; ++i)
                    if (rows[i] < 0 || static_cast<std::size_t>(rows[i]) >= n_in)
                        throw py::index_error("rows: " + std::to_string(rows[i]) + " at " + std::to_string(i) +
                                              " is out of range for X of " + std::to_string(n_in) + " rows");
            } else if (first > n_in || n > n_in - first) {
                throw py::index_error("rows first.." + std::to_string(first + n) + " are out of range for X of " +
                                      std::to_string(n_in) + " rows");
            }
            if (meano.is_none() != scaleo.is_none()) throw py::value_error("give both mean and scale, or neither");
            py::array mean, scale;
            if (!meano.is_none()) {
                mean = row_array(meano, "mean", 8, X, false);
                scale = row_array(scaleo, "scale", 8, X, false);
            }
            const double* mp = meano.is_none() ? nullptr : static_cast<const double*>(mean.data());
            const double* sp = meano.is_none() ? nullptr : static_cast<const double*>(scale.data());
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // raw buffers of arrays the arguments keep alive
            if (size == 4) k.f32.gather_rows(ptr<float>(X), cols, rows, first, n, mp, sp, ptr<float>(out));
            else k.f64.gather_rows(ptr<double>(X), cols, rows, first, n, mp, sp, ptr<double>(out));
        },
        "out[r] <- X[rows[r]] (rows None: X[first + r]) for every row r of out, in one pass; with mean and "
        "scale (float64, per column), (x - mean) / scale in float64, rounded once to X's dtype.",
        py::arg("X"), py::arg("out"), py::arg("rows") = py::none(), py::arg("first") = 0,
        py::arg("mean") = py::none(), py::arg("scale") = py::none());

    m.def(
        "bias_relu_",
        [](py::object ho, py::object bo, py::object ao) {
            const int size = check_array(ho, "h", true);
            const py::array h = py::reinterpret_borrow<py::array>(ho);
            const py::array b = py::reinterpret_borrow<py::array>(bo), a = py::reinterpret_borrow<py::array>(ao);
            if (h.ndim() != 2) throw py::value_error("h must be 2-D (samples, units), got " + std::to_string(h.ndim()) + "-D");
            check_array(ao, "a", true, &h, "h");
            if (check_array(bo, "b", false) != size)
                throw py::type_error("b: dtype " + py::str(b.dtype()).cast<std::string>() + " does not match h dtype " +
                                     py::str(h.dtype()).cast<std::string>() + " (no silent casts)");
            if (b.ndim() != 1 || b.shape(0) != h.shape(1))
                throw py::value_error("b: must be 1-D with h.shape[1] = " + std::to_string(h.shape(1)) + " elements");
            const auto rows = static_cast<std::size_t>(h.shape(0)), cols = static_cast<std::size_t>(h.shape(1));
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // raw buffers of arrays the arguments keep alive
            if (size == 4) k.f32.bias_relu(ptr<float>(h), ptr<float>(b), ptr<float>(a), rows, cols);
            else k.f64.bias_relu(ptr<double>(h), ptr<double>(b), ptr<double>(a), rows, cols);
        },
        "h <- h + b (per row); a <- max(h, 0). In place, one pass.", py::arg("h"),
        py::arg("b"), py::arg("a"));

    m.def(
        "bias_add_",
        [](py::object ho, py::object bo) {
            const int size = check_array(ho, "h", true);
            const py::array h = py::reinterpret_borrow<py::array>(ho);
            if (h.ndim() != 2) throw py::value_error("h must be 2-D (samples, units), got " + std::to_string(h.ndim()) + "-D");
            const py::array b = row_array(bo, "b", size, h, false);
            const auto rows = static_cast<std::size_t>(h.shape(0)), cols = static_cast<std::size_t>(h.shape(1));
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // as above
            if (size == 4) k.f32.bias_add(ptr<float>(h), ptr<float>(b), rows, cols);
            else k.f64.bias_add(ptr<double>(h), ptr<double>(b), rows, cols);
        },
        "h <- h + b (per row), in place, one pass, no temporary.", py::arg("h"), py::arg("b"));

    m.def(
        "activation_grad_",
        [](const std::string& activation, py::object dobj, py::object h, py::object a, py::object t, double c,
           double kk, py::object gbo) {
            const int kind = activation_kind(activation);
            const int size = check_array(dobj, "d", true);
            const py::array d = py::reinterpret_borrow<py::array>(dobj);
            const bool need_h = kind == 0 || kind == 3, need_a = kind == 1 || kind == 2, need_t = kind == 3;
            auto get = [&](const py::object& o, const char* name, bool needed) -> py::array {
                if (!needed) return d;  // unused by this activation
                if (o.is_none()) throw py::value_error(std::string(name) + " is required for activation '" + activation + "'");
                check_array(o, name, false, &d, "d");
                return py::reinterpret_borrow<py::array>(o);
            };
            const py::array ha = get(h, "h", need_h), aa = get(a, "a", need_a), ta = get(t, "t", need_t);
            const auto n = static_cast<std::size_t>(d.size());
            const KernelTable& k = active_kernels();
            if (!gbo.is_none()) {
                if (d.ndim() != 2) throw py::value_error("d must be 2-D (samples, units) with gb, got " + std::to_string(d.ndim()) + "-D");
                const py::array gb = row_array(gbo, "gb", size, d, true);
                const auto rows = static_cast<std::size_t>(d.shape(0)), cols = static_cast<std::size_t>(d.shape(1));
                py::gil_scoped_release release;  // as above
                if (size == 4)
                    k.f32.activation_grad_colsum(kind, ptr<float>(d), ptr<float>(ha), ptr<float>(aa), ptr<float>(ta), rows,
                                                 cols, c, kk, ptr<float>(gb));
                else
                    k.f64.activation_grad_colsum(kind, ptr<double>(d), ptr<double>(ha), ptr<double>(aa), ptr<double>(ta),
                                                 rows, cols, c, kk, ptr<double>(gb));
                return;
            }
            py::gil_scoped_release release;  // as above
            if (size == 4) k.f32.activation_grad(kind, ptr<float>(d), ptr<float>(ha), ptr<float>(aa), ptr<float>(ta), n, c, kk);
            else k.f64.activation_grad(kind, ptr<double>(d), ptr<double>(ha), ptr<double>(aa), ptr<double>(ta), n, c, kk);
        },
        "d <- d * f'(.) in place, one pass: relu from h, tanh and sigmoid from a, gelu from h and t. "
        "With gb (d 2-D): also gb <- d.sum(axis=0) (the bias gradient), in the same pass.",
        py::arg("activation"), py::arg("d"), py::arg("h") = py::none(), py::arg("a") = py::none(),
        py::arg("t") = py::none(), py::arg("c") = 0.0, py::arg("k") = 0.0, py::arg("gb") = py::none());

    m.def(
        "softmax_cross_entropy_grad_",
        [](py::object zo, py::object yo, py::object dobj, py::object wo, py::object gbo, double scale) {
            const int size = check_array(zo, "z", false);
            const py::array z = py::reinterpret_borrow<py::array>(zo);
            if (z.ndim() != 2 || z.shape(1) < 1)
                throw py::value_error("z must be 2-D (samples, classes) with at least one class");
            check_array(dobj, "d", true, &z, "z");
            const py::array d = py::reinterpret_borrow<py::array>(dobj);
            const auto rows = static_cast<std::size_t>(z.shape(0)), K = static_cast<std::size_t>(z.shape(1));
            if (!py::isinstance<py::array>(yo))
                throw py::type_error("y must be a NumPy array of int64 labels");
            const py::array y = py::reinterpret_borrow<py::array>(yo);
            if (!y.dtype().is(py::dtype::of<std::int64_t>()))
                throw py::type_error("y: dtype " + py::str(y.dtype()).cast<std::string>() + ", expected int64 labels");
            if (y.ndim() != 1 || static_cast<std::size_t>(y.shape(0)) != rows)
                throw py::value_error("y must be 1-D with z.shape[0] = " + std::to_string(rows) + " labels");
            if (!(y.flags() & py::array::c_style)) throw py::value_error("y must be C-contiguous");
            const auto* labels = static_cast<const std::int64_t*>(y.data());
            for (std::size_t r = 0; r < rows; ++r)
                if (labels[r] < 0 || static_cast<std::size_t>(labels[r]) >= K)
                    throw py::value_error("y: label " + std::to_string(labels[r]) + " at " + std::to_string(r) +
                                          " is not in [0, " + std::to_string(K) + ")");
            const py::array w = wo.is_none() ? d : row_array(wo, "w", size, z, false, 0);
            const py::array gb = gbo.is_none() ? d : row_array(gbo, "gb", size, z, true);
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // as above
            if (size == 4)
                return k.f32.softmax_xent_grad(ptr<float>(z), labels, wo.is_none() ? nullptr : ptr<float>(w),
                                               ptr<float>(d), gbo.is_none() ? nullptr : ptr<float>(gb), rows, K, scale);
            return k.f64.softmax_xent_grad(ptr<double>(z), labels, wo.is_none() ? nullptr : ptr<double>(w),
                                           ptr<double>(d), gbo.is_none() ? nullptr : ptr<double>(gb), rows, K, scale);
        },
        "Softmax cross-entropy of logits z (n, K) at int64 labels y, in one pass: d <- (softmax(z) - onehot(y)) "
        "* scale * w per row (d may be z; w None: 1), gb <- d.sum(axis=0) if given; returns "
        "sum_r w_r (logsumexp(z_r) - z_r[y_r]).",
        py::arg("z"), py::arg("y"), py::arg("d"), py::arg("w") = py::none(), py::arg("gb") = py::none(),
        py::arg("scale") = 1.0);

    m.def(
        "gelu_inner_",
        [](py::object ho, py::object uo, double c, double kk) {
            const int size = check_array(ho, "h", false);
            const py::array h = py::reinterpret_borrow<py::array>(ho);
            check_array(uo, "u", true, &h, "h");
            const py::array u = py::reinterpret_borrow<py::array>(uo);
            const auto n = static_cast<std::size_t>(h.size());
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // as above
            if (size == 4) k.f32.gelu_inner(ptr<float>(h), ptr<float>(u), n, c, kk);
            else k.f64.gelu_inner(ptr<double>(h), ptr<double>(u), n, c, kk);
        },
        "u <- c (h + k h^3), one pass.", py::arg("h"), py::arg("u"), py::arg("c"), py::arg("k"));

    m.def(
        "gelu_outer_",
        [](py::object ho, py::object to, py::object ao) {
            const int size = check_array(ho, "h", false);
            const py::array h = py::reinterpret_borrow<py::array>(ho);
            check_array(to, "t", false, &h, "h");
            check_array(ao, "a", true, &h, "h");
            const py::array t = py::reinterpret_borrow<py::array>(to), a = py::reinterpret_borrow<py::array>(ao);
            const auto n = static_cast<std::size_t>(h.size());
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // as above
            if (size == 4) k.f32.gelu_outer(ptr<float>(h), ptr<float>(t), ptr<float>(a), n);
            else k.f64.gelu_outer(ptr<double>(h), ptr<double>(t), ptr<double>(a), n);
        },
        "a <- h (1 + t) / 2, one pass.", py::arg("h"), py::arg("t"), py::arg("a"));
}

}  // namespace fastgd::bindings
