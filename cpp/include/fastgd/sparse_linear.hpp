// The objective of a linear model over one mini-batch of a sparse data set (CSR), in one pass
// over the nonzeros of the batch's rows, read in place: z = W x + b, the loss, dloss/dz and
// the gradient. The losses, options and conventions are those of the dense kernel
// (fastgd/linear_objective.hpp); only the reading of X differs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "fastgd/linear_objective.hpp"

namespace fastgd {

// A CSR matrix of n_rows x d: row r's nonzeros are data[p], at columns indices[p], for p in
// [indptr[r], indptr[r + 1]). Index type I: int32 or int64 (scipy's two).
template <class T, class I> struct CsrRows {
    const T* data;
    const I* indices;
    const I* indptr;
    std::size_t n_rows;
    std::size_t d;
    std::size_t nnz;
};

// The batch: rows `rows[0..n)` (indices into X) or, with rows == nullptr, the range
// [begin, begin + n). Targets, labels and weights are indexed like X's rows, as in LinearBatch.
// Standardized (inv_scale != nullptr): the model sees x'_j = x_j inv_scale_j, scale only (no
// centring: a centred sparse row would be dense).
template <class T, class I> struct SparseBatch {
    CsrRows<T, I> X;
    const std::int64_t* rows;
    std::size_t begin;
    std::size_t n;
    const T* y;
    const std::int64_t* labels;
    const T* sample_weight;
    const T* inv_scale = nullptr;
    // The batch that follows, if known (next_n > 0): its rows by index or from next_begin.
    // Only a hint: the kernel asks the memory for its rows while it works on this batch.
    const std::int64_t* next_rows = nullptr;
    std::size_t next_begin = 0;
    std::size_t next_n = 0;
};

// Work space kept from batch to batch (a call per batch allocates nothing once it has grown).
struct SparseScratch {
    // Compact mode: a bit per feature, set while the batch has met it (clear between batches),
    // and the batch's features in the order of their first nonzero.
    std::vector<std::uint64_t> seen;
    std::vector<std::int64_t> active;
    std::vector<std::size_t> row_start;  // per row of the batch: its first nonzero's index among the batch's
    std::vector<double> coef;            // per row and output: s_i / n * dl/dz
    std::vector<double> z;               // compact mode: a block of rows' outputs
    struct BlockSums {
        double loss, weight;
    };
    std::vector<BlockSums> sums;  // per block of rows: its weighted loss and weight
};

// Gradient modes. dense: grad_W is written whole, (1/n) sum_i c_i x_i^T + l2 W, as the dense
// kernel writes it. compact: the batch's parameters and gradient at its active features only,
// as vectors of K * n_active + K values (output k of active feature a at k * n_active + a,
// then the K intercepts): W and b gathered into `params`, the gradient (the data term and
// l2 W) into `grad`, and their positions in a flat [W.ravel(), b] into `coords`; the value is
// the loss alone (the caller knows the penalty). grad_W and grad_b are not written then.
// weight_scale (compact mode): W holds the weights divided by it (a weight vector kept as a
// scalar times a vector, for a decay of every weight in O(1)); the gathered `params` are the
// weights themselves. Dense mode shares a batch's rows out to the threads; compact mode runs
// on one thread (a batch's work there is a few microseconds of dependent loads, less than a
// hand-off to a second thread costs).
enum class SparseGrad : int { dense = 0, compact = 1 };

template <class T> struct CompactOut {
    std::vector<T> params, grad;
    std::vector<std::int64_t> coords;
    // The caller's K x d values, all zero, that a call leaves zero: the gradient's data term by
    // column, which a batch's rows add into at its features and its compact gradient takes
    // out again (the lazy loop lends its full gradient buffer, unused then).
    T* by_column = nullptr;
};

// Returns  sum_i s_i l_i / sum_i s_i  (+ the penalties in dense mode) and writes grad_W
// (K x d) and grad_b (K) as the dense kernel does, or in compact mode `out`; scratch.active
// then lists the batch's features. Throws std::out_of_range (message: the row and the bad
// index) for a column index outside [0, d) or a row whose indptr does not increase, before
// writing any gradient. The rows' z in double, each row alone; the gradient summed in row
// order into T: the same bits for any thread count.
template <class T, class I>
double sparse_linear_objective(const SparseBatch<T, I>& batch, const T* W, const T* b,
                               const LinearObjectiveOptions& options, T* grad_W, T* grad_b,
                               SparseScratch& scratch, SparseGrad mode, CompactOut<T>* out = nullptr,
                               double weight_scale = 1.0);

// The first column stored twice in one row of a CSR structure (rows [0, n_rows), column
// indices in [0, d), indptr monotone: checked before), as (row, column); (-1, -1) if none. One
// pass over the indices with a mark per column (d 32-bit marks).
template <class I>
std::pair<std::int64_t, std::int64_t> csr_first_duplicate(const I* indptr, const I* indices, std::size_t n_rows,
                                                          std::size_t d);

}  // namespace fastgd
