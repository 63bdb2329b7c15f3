// The shuffled epoch's permutation (fastgd/permutation.hpp), written into a caller's buffer.
#include <cstdint>
#include <string>

#include "fastgd/permutation.hpp"
#include "register.hpp"

namespace fastgd::bindings {

void register_shuffling(py::module_& m) {
    m.def(
        "permutation_",
        [](std::uint64_t seed, py::object outo) {
            if (!py::isinstance<py::array>(outo)) throw py::type_error("out must be a NumPy array of int64");
            py::array out = py::reinterpret_borrow<py::array>(outo);
            if (!out.dtype().is(py::dtype::of<std::int64_t>()))
                throw py::type_error("out: dtype " + py::str(out.dtype()).cast<std::string>() +
                                     ", expected int64 (no silent casts)");
            if (out.ndim() != 1 || !(out.flags() & py::array::c_style))
                throw py::value_error("out must be 1-D and C-contiguous");
            if (!out.writeable()) throw py::value_error("out must be writeable");
            auto* p = static_cast<std::int64_t*>(out.mutable_data());
            const auto n = static_cast<std::size_t>(out.shape(0));
            {
                // Safe without the GIL: the raw buffer of an array the argument keeps alive.
                py::gil_scoped_release release;
                random_permutation(seed, p, n);
            }
        },
        "out <- a uniformly random permutation of 0..len(out)-1 determined by seed (a 64-bit\n"
        "unsigned integer): xoshiro256++ seeded by splitmix64, Lemire's unbiased bounded draws,\n"
        "an inside-out Fisher-Yates shuffle. The same bits on every CPU; reads nothing of out.",
        py::arg("seed"), py::arg("out"));
}

}  // namespace fastgd::bindings
