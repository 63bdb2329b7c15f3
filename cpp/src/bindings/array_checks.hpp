// Turning Python lists of NumPy arrays into kernel TensorRefs, in place or not at all: every
// check runs before any kernel writes, and a failed check names the argument and index.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fastgd/tensor_ref.hpp"
#include "pybind11.hpp"

namespace fastgd::bindings {

// The arrays of one call, split by dtype (a group may mix float32 and float64 parameters).
struct Batch {
    std::vector<TensorRef<float>> f32;
    std::vector<TensorRef<double>> f64;
    // References that keep every array alive while the kernel runs without the GIL, even if
    // another thread empties the caller's lists meanwhile. Released with the GIL held.
    std::vector<py::object> keep;
};

// A named list of state arrays, aligned with params ("exp_avg", [...]).
using NamedArrays = std::pair<const char*, py::object>;

// params: writeable C-contiguous float32/float64 arrays; grads: same dtype and shape as their
// parameter, C-contiguous (read-only is fine); each state list: like grads, and writeable.
Batch gather(const py::object& params, const py::object& grads, const std::vector<NamedArrays>& states);

// A list of arrays for the clipping functions (mixed dtypes allowed); when they are written,
// no two may share memory.
struct ArrayList {
    std::vector<float*> f32;
    std::vector<std::size_t> f32_sizes;
    std::vector<double*> f64;
    std::vector<std::size_t> f64_sizes;
    std::vector<py::object> keep;  // as Batch::keep
};
ArrayList gather_arrays(const py::object& arrays, const char* name, bool writeable);

// The arrays a call writes must not share memory: an element in two of them would be updated
// twice. Each array is taken by its byte range [start, end); ranges that only touch (a[:10]
// and a[10:20]) are fine, as are empty arrays, unless one array is given twice. Arrays the
// per-array checks refuse (not NumPy arrays, not C-contiguous) are left to those checks.
// add_written names each array "<list>[i]", or with a key "<list>[i]['<key>']", i counted
// from `first`.
struct Written {
    std::uintptr_t start, end;
    PyObject* array;
    const char* list;
    std::size_t index;
    const char* key;
    std::size_t order;  // its place among the arrays added, for naming two in that order
};
void add_written(std::vector<Written>& out, const py::handle& arrays, const char* list, std::size_t first = 0,
                 const char* key = nullptr);
// ValueError naming two arrays that share memory. O(n log n) in the number of arrays: sorted
// by start, each is compared with the furthest end before it.
void require_disjoint(std::vector<Written>& arrays);

// One array: a native float32/float64 ndarray, C-contiguous, writeable if asked, and with the
// dtype and shape of `like` when given. Returns its element size (4 or 8).
int check_array(const py::handle& obj, const std::string& name, bool writeable, const py::array* like = nullptr,
                const std::string& like_name = "");

}  // namespace fastgd::bindings
