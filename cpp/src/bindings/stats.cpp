// Column statistics of a matrix in one read, and the finite check of an array
// (fastgd/column_stats.hpp).
#include <cstdint>
#include <string>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "register.hpp"

namespace fastgd::bindings {
namespace {

template <class T> const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }

std::size_t element_count(const py::array& a) {
    std::size_t n = 1;
    for (py::ssize_t i = 0; i < a.ndim(); ++i) n *= static_cast<std::size_t>(a.shape(i));
    return n;
}

}  // namespace

void register_stats(py::module_& m) {
    m.def(
        "column_moments",
        [](py::object xo, py::object wo, py::object block_rows_o) {
            const int size = check_array(xo, "X", false);
            const py::array X = py::reinterpret_borrow<py::array>(xo);
            if (X.ndim() != 2) throw py::value_error("X must be 2-D (samples, features), got " + std::to_string(X.ndim()) + "-D");
            const auto rows = static_cast<std::size_t>(X.shape(0)), cols = static_cast<std::size_t>(X.shape(1));
            py::array w;  // (a default py::array is an empty array, not a null handle)
            const bool weighted = !wo.is_none();
            if (weighted) {
                if (check_array(wo, "sample_weight", false) != 8)
                    throw py::type_error("sample_weight must be float64 (no silent casts)");
                w = py::reinterpret_borrow<py::array>(wo);
                if (w.ndim() != 1 || static_cast<std::size_t>(w.shape(0)) != rows)
                    throw py::value_error("sample_weight must be 1-D with X.shape[0] = " + std::to_string(rows) +
                                          " elements");
            }
            std::size_t block_rows = rows;
            if (!block_rows_o.is_none()) {
                const auto b = block_rows_o.cast<long long>();
                if (b < 1) throw py::value_error("block_rows must be >= 1, got " + std::to_string(b));
                block_rows = static_cast<std::size_t>(b);
            }
            py::array_t<double> mean(static_cast<py::ssize_t>(cols)), var(static_cast<py::ssize_t>(cols));
            double* mp = mean.mutable_data();
            double* vp = var.mutable_data();
            const double* wp = weighted ? cptr<double>(w) : nullptr;
            const KernelTable& k = active_kernels();
            ColumnStats s{};
            {
                // Safe without the GIL: raw buffers of arrays the arguments and locals keep alive.
                py::gil_scoped_release release;
                s = size == 4 ? k.f32.column_stats(cptr<float>(X), rows, cols, wp, block_rows, mp, vp)
                              : k.f64.column_stats(cptr<double>(X), rows, cols, wp, block_rows, mp, vp);
            }
            if (!(s.weight > 0.0)) {
                for (std::size_t j = 0; j < cols; ++j) mp[j] = vp[j] = NAN;
            }
            return py::make_tuple(s.weight, mean, var, s.first_nan, s.first_inf);
        },
        "Per column of X (rows, cols) in one read: (weight, mean, var, first_nan, first_inf): the\n"
        "weighted mean and variance (float64) over blocks of block_rows rows (None: one block)\n"
        "merged by Chan et al.'s formulas in row order, the same bits for any thread count; the\n"
        "total weight of the blocks of positive weight (0: mean and var are NaN); the flat indices\n"
        "of the first NaN and the first infinity, -1 if none.",
        py::arg("X"), py::arg("sample_weight") = py::none(), py::arg("block_rows") = py::none());

    m.def(
        "find_nonfinite",
        [](py::object ao) {
            const int size = check_array(ao, "a", false);
            const py::array a = py::reinterpret_borrow<py::array>(ao);
            const std::size_t n = element_count(a);
            std::int64_t nan = -1, inf = -1;
            const KernelTable& k = active_kernels();
            {
                py::gil_scoped_release release;  // as in column_moments
                if (size == 4) k.f32.find_nonfinite(cptr<float>(a), n, &nan, &inf);
                else k.f64.find_nonfinite(cptr<double>(a), n, &nan, &inf);
            }
            return py::make_tuple(nan, inf);
        },
        "(first_nan, first_inf): the flat indices of the first NaN and the first infinity of a\n"
        "C-contiguous float32/float64 array, -1 if none. Reads it once; allocates nothing.",
        py::arg("a"));
}

}  // namespace fastgd::bindings
