// Column statistics of a (rows, cols) C-contiguous matrix in one read: per column the weighted
// mean and variance (in double), and the positions of the first NaN and the first infinity.
//
// The rows are taken in blocks of `block_rows` (the last one shorter). A block's moments
// depend on its rows only; blocks of positive weight are merged in row order by Chan, Golub
// and LeVeque's formulas, in the form fastgd.streaming.RunningMoments merges them:
//
//     W = Wa + Wb,  delta = mb - ma,  m = ma + delta * (Wb / W),
//     v = max(((Wa * va + Wb * vb) + (delta * delta) * (Wa * Wb / W)) / W, 0),
//
// so that the whole matrix at once, or its blocks one call each merged by RunningMoments, give
// the same bits, for any thread count.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgd {

struct ColumnStats {
    // The total weight of the blocks of positive weight (0: mean and var are left as given).
    double weight;
    // Flat indices (row * cols + col) of the first NaN and of the first infinity; -1 if none.
    std::int64_t first_nan;
    std::int64_t first_inf;
};

// X (rows, cols), w (rows) or null for weights of 1 (the same bits as weights of 1), block_rows
// >= 1; mean and var (cols) are written.
template <class T>
using ColumnStatsFn = ColumnStats (*)(const T* X, std::size_t rows, std::size_t cols, const double* w,
                                      std::size_t block_rows, double* mean, double* var);

// The flat indices of the first NaN and of the first infinity among x[0..n), -1 if none.
template <class T>
using FindNonfiniteFn = void (*)(const T* x, std::size_t n, std::int64_t* first_nan, std::int64_t* first_inf);

}  // namespace fastgd

namespace fastgd {

// Per column of a CSR matrix (n_rows x d: row r's values data[p] at columns indices[p], p in
// [indptr[r], indptr[r + 1]), nnz values in all), implicit zeros included: the
// weighted mean and variance in double, by the corrected two-pass algorithm over the whole
// matrix. Pass one: per column the weighted sum of the stored values, their weight and how
// many rows of positive weight store it; mean0 = sum / W. Pass two: the stored values'
// weighted deviations from mean0, summed and squared; the implicit zeros deviate by -mean0
// with the weight the column does not store (exactly 0 where every row of positive weight
// stores the column, else W less the stored weight), so
//
//     shift = (sum_stored w (x - mean0) - missing * mean0) / W,
//     var = max((sum_stored w (x - mean0)^2 + missing * mean0^2 - W * shift^2) / W, 0),
//     mean = mean0 + shift.
//
// w: n_rows weights (>= 0), or null for weights of 1. units: null, or d values that divide
// each column's values first (the result is then in those units). Rows of zero weight are
// skipped. Returns W, the total weight (0: mean and var are not written). One thread. A row
// whose extent leaves [0, nnz) or decreases, or a column index outside [0, d), throws
// std::out_of_range (naming the row) before pass two.
template <class T, class I>
double sparse_column_moments(const T* data, const I* indices, const I* indptr, std::size_t n_rows, std::size_t d,
                             std::size_t nnz, const double* w, const double* units, double* mean, double* var);

}  // namespace fastgd
