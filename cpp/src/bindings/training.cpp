// fastgd.train's divergence rule for its per-step Python loop: the same definition
// (fastgd/divergence.hpp) that the linear models' fused epoch applies in linear.cpp.
#include <limits>
#include <optional>

#include "fastgd/divergence.hpp"
#include "register.hpp"

namespace fastgd::bindings {

void register_training(py::module_& m) {
    m.def(
        "divergence",
        [](double loss, double grad_norm, std::optional<double> first_grad_norm,
           std::optional<double> explode_factor) -> py::object {
            const Divergence d =
                divergence(loss, grad_norm, first_grad_norm.value_or(std::numeric_limits<double>::quiet_NaN()),
                           explode_factor.value_or(std::numeric_limits<double>::infinity()));
            if (d == Divergence::none) return py::none();
            return py::str(divergence_name(d));
        },
        "fastgd.train's verdict on a step before it is kept: None, or 'loss' (the loss is NaN or infinite),\n"
        "'grad_norm' (the gradient norm is), 'exploded' (the norm is over explode_factor times the first kept\n"
        "step's, a positive first_grad_norm; None: no step kept yet; explode_factor None: no limit).",
        py::arg("loss"), py::arg("grad_norm"), py::arg("first_grad_norm"), py::arg("explode_factor"));
}

}  // namespace fastgd::bindings
