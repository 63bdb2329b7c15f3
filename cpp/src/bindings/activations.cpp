// Fused element-wise steps of MLP layers (see cpp/src/kernels/activations.cpp).
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

}  // namespace

void register_activations(py::module_& m) {
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
        "activation_grad_",
        [](const std::string& activation, py::object dobj, py::object h, py::object a, py::object t, double c,
           double kk) {
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
            py::gil_scoped_release release;  // as above
            if (size == 4) k.f32.activation_grad(kind, ptr<float>(d), ptr<float>(ha), ptr<float>(aa), ptr<float>(ta), n, c, kk);
            else k.f64.activation_grad(kind, ptr<double>(d), ptr<double>(ha), ptr<double>(aa), ptr<double>(ta), n, c, kk);
        },
        "d <- d * f'(.) in place, one pass: relu from h, tanh and sigmoid from a, gelu from h and t.",
        py::arg("activation"), py::arg("d"), py::arg("h") = py::none(), py::arg("a") = py::none(),
        py::arg("t") = py::none(), py::arg("c") = 0.0, py::arg("k") = 0.0);

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
