// The arguments that the linear models' kernels share, dense or sparse: the loss and its
// options, the targets, labels and weights, and the epoch loop's batches (see linear.cpp and
// sparse_linear.cpp). Checked once per call, with messages that name the argument.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "fastgd/linear_objective.hpp"
#include "pybind11.hpp"

namespace fastgd::bindings {

LinearLoss loss_kind(const std::string& name);
std::string shape_of(const py::array& a);

// A float array of X's dtype (check_array's checks) with the given shape. (For sparse X, `X`
// is its data array: the values' dtype is X's.)
py::array float_array(const py::handle& obj, const char* name, bool writeable, const py::array& X,
                      std::initializer_list<py::ssize_t> shape, const char* expected);

// A C-contiguous native int64 1-D array of n elements (indices or labels).
const std::int64_t* int64_array(const py::handle& obj, const char* name, std::optional<py::ssize_t> n);

// The outputs a loss takes (W's rows): K >= 2 for the multiclass losses, K >= 1 for the
// regression ones (multi-output), else K = 1. The requirement ("K >= 2"...) when K does not
// meet it, else "".
std::string unmet_outputs(LinearLoss loss, py::ssize_t K);

// The targets of a scalar loss, of X's dtype: (n_total,) for K = 1, else (n_total, K) (one
// column per output; also accepted for K = 1).
const void* targets_of(const py::object& yo, const py::array& X, py::ssize_t n_total, py::ssize_t K);

// An option per output: a number for every output (into `value`; returns null), or a
// C-contiguous float64 array of K values (returns its data; the caller's argument keeps it).
const double* per_output(const py::object& obj, const char* name, py::ssize_t K, double& value);

// What a linear loss reads of the data besides X: the options (loss, K, l2, l1, delta), and
// the targets (y, of X's dtype) or labels (int64, each checked in [0, K)), and the weights.
struct LinearTargets {
    LinearObjectiveOptions options;
    const std::int64_t* labels = nullptr;
    const void* y = nullptr;
    const void* sample_weight = nullptr;
};
// `X` gives the dtype; n_total its rows. `K_name`: the argument K comes from, for its message.
LinearTargets linear_targets(const std::string& loss_name, py::ssize_t K, const char* K_name, const py::object& yo,
                             const py::object& swo, const py::array& X, py::ssize_t n_total, double l2,
                             const py::object& l1_o, const py::object& delta_o, bool check_labels);

// One mini-batch objective call's arguments besides X (linear_objective and
// sparse_linear_objective): W (K x d), b, grad_W and grad_b of X's dtype (`X`: an array of
// it), the targets, and the batch: rows[start:stop] of an index array, or X's rows
// start..stop; each index and label checked.
struct ObjectiveArgs {
    py::array W, b, gW, gb;
    py::ssize_t K;
    LinearTargets targets;
    const std::int64_t* rows;  // rows + start, or null: X's rows begin..begin + n
    std::size_t begin, n;
};
ObjectiveArgs objective_args(const std::string& loss_name, const py::array& X, py::ssize_t n_total, py::ssize_t d,
                             const py::object& yo, const py::object& Wo, const py::object& bo, const py::object& gWo,
                             const py::object& gbo, const py::object& rows_o, py::ssize_t start,
                             std::optional<py::ssize_t> stop, const py::object& swo, double l2,
                             const py::object& l1_o, const py::object& delta_o);

// Row indices rows[start:stop] checked against n_total rows; returns rows + start.
const std::int64_t* checked_rows(const py::object& rows_o, py::ssize_t start, py::ssize_t end, py::ssize_t n_total,
                                 const char* name);

}  // namespace fastgd::bindings
