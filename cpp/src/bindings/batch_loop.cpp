// The linear models' epoch loop: its arguments (batch_loop.hpp).
#include "batch_loop.hpp"

#include <limits>
#include <string>

#include "linear_args.hpp"

namespace fastgd::bindings {

EpochArgs epoch_args(py::ssize_t n_total, const py::object& order_o, std::optional<py::ssize_t> n_rows,
                     const py::object& batches_o, py::ssize_t first, py::ssize_t batch_size,
                     const py::object& batch_weight_o, const py::tuple& sums, std::optional<double> first_gnorm,
                     std::optional<double> explode_factor, const py::object& sync) {
    if (!sync.is_none() && !PyCallable_Check(sync.ptr()))
        throw py::type_error("sync: expected a callable or None, got " +
                             py::str(py::type::of(sync).attr("__name__")).cast<std::string>());
    // The samples an epoch visits: X's rows, or (data-parallel, a short shard padded) the
    // length of order, which then repeats rows.
    const py::ssize_t n_epoch = n_rows.value_or(n_total);
    if (n_epoch < 1 || (order_o.is_none() && n_epoch != n_total))
        throw py::value_error("n_rows: need " + std::string(order_o.is_none() ? "n_rows = X.shape[0] = " +
                              std::to_string(n_total) + " without order" : "n_rows >= 1") + ", got " +
                              std::to_string(n_epoch));
    const std::int64_t* order = order_o.is_none() ? nullptr : int64_array(order_o, "order", n_epoch);
    if (order)
        for (py::ssize_t i = 0; i < n_epoch; ++i)
            if (order[i] < 0 || order[i] >= n_total)
                throw py::value_error("order: index " + std::to_string(order[i]) + " at position " + std::to_string(i) +
                                      " is out of range for X with " + std::to_string(n_total) + " rows");
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1, got " + std::to_string(batch_size));
    const py::ssize_t n_batches = (n_epoch + batch_size - 1) / batch_size;
    const std::int64_t* batches = int64_array(batches_o, "batches", std::nullopt);
    const py::ssize_t count = py::reinterpret_borrow<py::array>(batches_o).shape(0);
    if (first < 0 || first > count)
        throw py::value_error("first: need 0 <= first <= len(batches) = " + std::to_string(count) + ", got " +
                              std::to_string(first));
    for (py::ssize_t i = first; i < count; ++i)
        if (batches[i] < 0 || batches[i] >= n_batches)
            throw py::value_error("batches: batch " + std::to_string(batches[i]) + " at position " + std::to_string(i) +
                                  " is out of range (" + std::to_string(n_batches) + " batches of " +
                                  std::to_string(batch_size) + ")");
    const double* batch_weight = nullptr;
    if (!batch_weight_o.is_none()) {
        const py::array bw = py::reinterpret_borrow<py::array>(batch_weight_o);
        if (!py::isinstance<py::array_t<double>>(batch_weight_o) || !(bw.flags() & py::array::c_style) ||
            bw.ndim() != 1 || bw.shape(0) != n_batches)
            throw py::value_error("batch_weight: expected a C-contiguous float64 array of shape (" +
                                  std::to_string(n_batches) + ",)");
        batch_weight = static_cast<const double*>(bw.data());
    }
    if (sums.size() != 3) throw py::value_error("sums: expected (loss_sum, weight_sum, plain_sum)");
    EpochArgs a;
    a.batches = EpochBatches{static_cast<std::size_t>(n_epoch), static_cast<std::size_t>(batch_size), order, batches,
                             static_cast<std::size_t>(first), static_cast<std::size_t>(count - first), batch_weight};
    a.sums = EpochSums{sums[0].cast<double>(), sums[1].cast<double>(), sums[2].cast<double>(),
                       std::numeric_limits<double>::quiet_NaN(),
                       first_gnorm.value_or(std::numeric_limits<double>::quiet_NaN()), 0};
    a.explode = explode_factor.value_or(std::numeric_limits<double>::infinity());
    return a;
}

py::tuple epoch_result(const EpochSums& s) {
    return py::make_tuple(static_cast<py::ssize_t>(s.done), py::make_tuple(s.loss_sum, s.weight_sum, s.plain_sum),
                          s.gnorm, std::isnan(s.first_gnorm) ? py::object(py::none()) : py::object(py::float_(s.first_gnorm)));
}

}  // namespace fastgd::bindings
