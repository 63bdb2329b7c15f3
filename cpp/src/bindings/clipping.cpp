// Gradient clipping: the global p-norm of many arrays, and in-place scale and clamp.
#include <cmath>
#include <string>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/norms.hpp"
#include "register.hpp"

namespace fastgd::bindings {

void register_clipping(py::module_& m) {
    m.def(
        "total_norm",
        [](py::object arrays, double norm_type) {
            if (!(norm_type > 0.0))
                throw py::value_error("norm_type must be > 0 (1, 2, inf or any p > 0), got " + std::to_string(norm_type));
            const ArrayList a = gather_arrays(arrays, "grads", false);
            const NormKind kind = norm_kind(norm_type);
            const KernelTable& k = active_kernels();
            double s32 = 0.0, s64 = 0.0;
            {
                // Safe without the GIL: raw buffers of arrays that `a` keeps referenced.
                py::gil_scoped_release release;
                s32 = k.f32.norm_power_sum(a.f32.data(), a.f32_sizes.data(), a.f32.size(), kind, norm_type);
                s64 = k.f64.norm_power_sum(a.f64.data(), a.f64_sizes.data(), a.f64.size(), kind, norm_type);
            }
            return norm_from_power_sum(combine_power_sums(s32, s64, kind), kind, norm_type);
        },
        "The p-norm of all arrays taken together (as one concatenated vector).", py::arg("grads"),
        py::arg("norm_type") = 2.0);

    m.def(
        "scale_",
        [](py::object arrays, double factor) {
            const ArrayList a = gather_arrays(arrays, "grads", true);
            // torch always multiplies by the clamped coefficient; by 1.0 no bit changes, so
            // the checks run (a read-only array is still refused) but nothing is written.
            if (factor == 1.0) return;
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // as in total_norm
            k.f32.scale(a.f32.data(), a.f32_sizes.data(), a.f32.size(), factor);
            k.f64.scale(a.f64.data(), a.f64_sizes.data(), a.f64.size(), factor);
        },
        "x <- x * factor for every array, in place.", py::arg("grads"), py::arg("factor"));

    m.def(
        "clamp_",
        [](py::object arrays, double clip_value) {
            if (!(clip_value > 0.0)) throw py::value_error("clip_value must be > 0, got " + std::to_string(clip_value));
            const ArrayList a = gather_arrays(arrays, "grads", true);
            const KernelTable& k = active_kernels();
            py::gil_scoped_release release;  // as in total_norm
            k.f32.clamp(a.f32.data(), a.f32_sizes.data(), a.f32.size(), clip_value);
            k.f64.clamp(a.f64.data(), a.f64_sizes.data(), a.f64.size(), clip_value);
        },
        "x <- clamp(x, -clip_value, clip_value) for every array, in place.", py::arg("grads"), py::arg("clip_value"));
}

}  // namespace fastgd::bindings
