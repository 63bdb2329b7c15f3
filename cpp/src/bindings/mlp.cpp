// A ReLU network's training step in one call (cpp/include/fastgd/mlp_step.hpp).
#include <cstdint>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "fastgd/mlp_step.hpp"
#include "register.hpp"

namespace fastgd::bindings {
namespace {

template <class T> T* data(const py::array& a) { return static_cast<T*>(const_cast<void*>(a.data())); }

// A float32 array of `count` elements or more (C order, writeable if asked).
py::array f32_array(const py::handle& o, const char* name, bool writeable, std::size_t count, bool exact) {
    if (check_array(o, name, writeable) != 4) throw py::type_error(std::string(name) + " must be float32");
    const py::array a = py::reinterpret_borrow<py::array>(o);
    const auto size = static_cast<std::size_t>(a.size());
    if (exact ? size != count : size < count)
        throw py::value_error(std::string(name) + ": " + std::to_string(size) + " elements, expected " +
                              (exact ? "" : "at least ") + std::to_string(count));
    return a;
}

// A 1-D C-ordered array of `n` elements of dtype T (labels, row numbers, per-feature statistics).
template <class T> py::array vector_of(const py::handle& o, const char* name, std::size_t n) {
    if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + " must be a NumPy array");
    const py::array a = py::reinterpret_borrow<py::array>(o);
    if (!a.dtype().is(py::dtype::of<T>()))
        throw py::type_error(std::string(name) + ": dtype " + py::str(a.dtype()).cast<std::string>() + ", expected " +
                             py::str(py::dtype::of<T>()).cast<std::string>());
    if (a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != n || !(a.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous and 1-D with " + std::to_string(n) +
                              " elements");
    return a;
}

bool overlap(const py::array& a, const py::array& b) {
    const char *a0 = static_cast<const char*>(a.data()), *b0 = static_cast<const char*>(b.data());
    const auto na = static_cast<std::size_t>(a.nbytes()), nb = static_cast<std::size_t>(b.nbytes());
    return na && nb && a0 < b0 + nb && b0 < a0 + na;
}

}  // namespace

void register_mlp(py::module_& m) {
    m.def(
        "mlp_train_step_",
        [](std::uintptr_t gemm_address, bool gemm_ilp64, const std::vector<std::int64_t>& sizes, py::object thetao,
           py::object grado, py::object grad2o, py::object Xo, py::object rowso, std::size_t first, py::object meano,
           py::object scaleo, py::object labelso, py::object wo, py::object scratcho, std::size_t split,
           int threads) {
            if (gemm_address == 0) throw py::value_error("gemm: no SGEMM address");
            if (sizes.size() < 2) throw py::value_error("sizes: at least an input and an output layer");
            std::size_t n_params = 0;
            for (std::size_t i = 0; i < sizes.size(); ++i) {
                if (sizes[i] < 1) throw py::value_error("sizes: every layer needs at least one unit");
                if (i) n_params += static_cast<std::size_t>((sizes[i - 1] + 1) * sizes[i]);
            }
            const std::size_t L = sizes.size() - 1, cols = static_cast<std::size_t>(sizes[0]);
            const py::array theta = f32_array(thetao, "theta", false, n_params, true);
            const py::array grad = f32_array(grado, "grad", true, n_params, true);
            const py::array grad2 = f32_array(grad2o, "grad2", true, n_params, true);
            if (!py::isinstance<py::array>(labelso)) throw py::type_error("labels must be a NumPy array of int64");
            const auto n = static_cast<std::size_t>(py::reinterpret_borrow<py::array>(labelso).size());
            const py::array labels = vector_of<std::int64_t>(labelso, "labels", n);
            if (n == 0 || split == 0 || split > n)
                throw py::value_error("a batch of at least one row, split in 1.." + std::to_string(n));
            const auto* lp = data<std::int64_t>(labels);
            for (std::size_t r = 0; r < n; ++r)
                if (lp[r] < 0 || lp[r] >= sizes[L])
                    throw py::value_error("labels: " + std::to_string(lp[r]) + " at " + std::to_string(r) +
                                          " is not in [0, " + std::to_string(sizes[L]) + ")");
            if (check_array(Xo, "X", false) != 4) throw py::type_error("X must be float32");
            const py::array X = py::reinterpret_borrow<py::array>(Xo);
            if (X.ndim() != 2 || static_cast<std::size_t>(X.shape(1)) != cols)
                throw py::value_error("X must be 2-D with sizes[0] = " + std::to_string(cols) + " columns");
            const auto n_in = static_cast<std::size_t>(X.shape(0));
            py::array rows;
            if (!rowso.is_none()) {
                rows = vector_of<std::int64_t>(rowso, "rows", n);
                const auto* rp = data<std::int64_t>(rows);
                for (std::size_t r = 0; r < n; ++r)
                    if (rp[r] < 0 || static_cast<std::size_t>(rp[r]) >= n_in)
                        throw py::index_error("rows: " + std::to_string(rp[r]) + " at " + std::to_string(r) +
                                              " is out of range for X of " + std::to_string(n_in) + " rows");
            } else if (first > n_in || n > n_in - first) {
                throw py::index_error("rows first.." + std::to_string(first + n) + " are out of range for X of " +
                                      std::to_string(n_in) + " rows");
            }
            if (meano.is_none() != scaleo.is_none()) throw py::value_error("give both mean and scale, or neither");
            py::array mean, scale;
            if (!meano.is_none()) mean = vector_of<double>(meano, "mean", cols), scale = vector_of<double>(scaleo, "scale", cols);
            py::array w;
            if (!wo.is_none()) w = f32_array(wo, "w", false, n, true);
            const py::array scratch =
                f32_array(scratcho, "scratch", true, n * mlp_scratch_per_row(sizes.data(), L), false);
            // The arrays written must be apart from each other and from those read.
            const py::array* written[] = {&grad, &grad2, &scratch};
            for (const py::array* a : written)
                for (const py::array* b : {&theta, &grad, &grad2, &scratch, &X})
                    if (a != b && overlap(*a, *b)) throw py::value_error("grad, grad2 and scratch must not overlap "
                                                                         "each other, theta or X");
            Gemm gemm;
            if (gemm_ilp64) gemm.f64 = reinterpret_cast<Sgemm64>(gemm_address);
            else gemm.f32 = reinterpret_cast<Sgemm32>(gemm_address);
            MlpBatch batch;
            batch.X = data<float>(X);
            batch.rows = rowso.is_none() ? nullptr : data<std::int64_t>(rows);
            batch.first = first;
            batch.n = n;
            batch.mean = meano.is_none() ? nullptr : data<double>(mean);
            batch.scale = meano.is_none() ? nullptr : data<double>(scale);
            batch.labels = lp;
            batch.w = wo.is_none() ? nullptr : data<float>(w);
            float* const grads[2] = {data<float>(grad), data<float>(grad2)};
            py::gil_scoped_release release;  // raw buffers of arrays the arguments keep alive
            return mlp_train_step(gemm, sizes.data(), L, data<float>(theta), grads, batch, split, data<float>(scratch),
                                  threads);
        },
        "A ReLU network's training step with a softmax cross-entropy output (float32), forward and backward in "
        "one call, the products by the CBLAS sgemm at gemm_address (64-bit integers if gemm_ilp64): the batch "
        "(labels, optional w) is X's rows (or first, first + 1, ...), standardized by mean and scale if given; "
        "rows [0, split) write their gradient into grad, rows [split, n) into grad2 (on two threads if threads "
        ">= 2), then grad += grad2. theta and the gradients: all weights, then all biases. Returns the loss "
        "summed over the batch; the gradient is of the mean.",
        py::arg("gemm_address"), py::arg("gemm_ilp64"), py::arg("sizes"), py::arg("theta"), py::arg("grad"),
        py::arg("grad2"), py::arg("X"), py::arg("rows"), py::arg("first"), py::arg("mean"), py::arg("scale"),
        py::arg("labels"), py::arg("w"), py::arg("scratch"), py::arg("split"), py::arg("threads"));

    m.def(
        "mlp_scratch_per_row",
        [](const std::vector<std::int64_t>& sizes) {
            if (sizes.size() < 2) throw py::value_error("sizes: at least an input and an output layer");
            return mlp_scratch_per_row(sizes.data(), sizes.size() - 1);
        },
        "Floats of scratch per batch row that mlp_train_step_ needs.", py::arg("sizes"));

    m.def(
        "sgemm_",
        [](std::uintptr_t gemm_address, bool gemm_ilp64, py::object ao, py::object bo, py::object co) {
            if (gemm_address == 0) throw py::value_error("gemm: no SGEMM address");
            const py::array a = f32_array(ao, "a", false, 0, false), b = f32_array(bo, "b", false, 0, false);
            const py::array c = f32_array(co, "c", true, 0, false);
            if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2 || a.shape(1) != b.shape(0) ||
                c.shape(0) != a.shape(0) || c.shape(1) != b.shape(1))
                throw py::value_error("a (m, k), b (k, n) and c (m, n) must be 2-D");
            if (overlap(c, a) || overlap(c, b)) throw py::value_error("c must not overlap a or b");
            if (a.size() == 0 || b.size() == 0) throw py::value_error("a and b must not be empty");
            Gemm gemm;
            if (gemm_ilp64) gemm.f64 = reinterpret_cast<Sgemm64>(gemm_address);
            else gemm.f32 = reinterpret_cast<Sgemm32>(gemm_address);
            const auto m_ = static_cast<std::size_t>(a.shape(0)), k = static_cast<std::size_t>(a.shape(1)),
                       n = static_cast<std::size_t>(b.shape(1));
            py::gil_scoped_release release;  // as above
            gemm(false, false, m_, n, k, data<float>(a), k, data<float>(b), n, data<float>(c), n);
        },
        "c <- a @ b (float32, C order) by the CBLAS sgemm at gemm_address: to check an address before use.",
        py::arg("gemm_address"), py::arg("gemm_ilp64"), py::arg("a"), py::arg("b"), py::arg("c"));
}

}  // namespace fastgd::bindings
