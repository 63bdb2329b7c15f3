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
