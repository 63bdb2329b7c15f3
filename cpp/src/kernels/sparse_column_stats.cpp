// Column moments of a CSR matrix (fastgd/column_stats.hpp). Compiled once: each stored value
// is an indexed add into its column's sums, scalar work at every level.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "csr_kernels.hpp"
#include "fastgd/column_stats.hpp"
#include "prefetch.hpp"

namespace fastgd {

template <class T, class I>
double sparse_column_moments(const T* data, const I* indices, const I* indptr, std::size_t n_rows, std::size_t d,
                             std::size_t nnz, const double* w, const double* units, double* mean, double* var) {
    double total = 0.0;
    std::size_t n_positive = 0;
    for (std::size_t r = 0; r < n_rows; ++r) {
        const double wr = w != nullptr ? w[r] : 1.0;
        if (wr > 0.0) total += wr, ++n_positive;
    }
    if (!(total > 0.0)) return 0.0;
    const auto value = [&](std::size_t p, std::size_t j) {
        return units != nullptr ? double(data[p]) / units[j] : double(data[p]);
    };
    // The columns are met in random order, each a likely miss: the column of the value this
    // far ahead is asked for (rows are visited in order, so their values are consecutive).
    constexpr std::size_t kAhead = 16;
    const auto ahead = [&](const auto* cols, I p) {
        const auto q = static_cast<std::size_t>(p) + kAhead;
        if (q < nnz) {
            const auto j = static_cast<std::size_t>(indices[q]);
            if (j < d) prefetch_line(cols + j);
        }
    };
    // Pass one: per column the sum, the stored weight and count, side by side (one line per
    // stored value: the columns are met in random order); and the structure checked (before
    // pass two relies on it).
    struct Stored {
        double sum, weight;
        std::uint64_t count;
    };
    std::vector<Stored> st(d, Stored{0.0, 0.0, 0});
    for (std::size_t r = 0; r < n_rows; ++r) {
        if (!sound_extent(indptr[r], indptr[r + 1], nnz)) bad_extent(r, indptr[r], indptr[r + 1], nnz);
        const double wr = w != nullptr ? w[r] : 1.0;
        if (!(wr > 0.0)) continue;
        for (I p = indptr[r]; p < indptr[r + 1]; ++p) {
            const auto j = static_cast<std::size_t>(indices[p]);
            if (j >= d) bad_column(indices[p], r, d);
            ahead(st.data(), p);
            Stored& c = st[j];
            c.sum += wr * value(static_cast<std::size_t>(p), j);
            c.weight += wr;
            ++c.count;
        }
    }
    // Pass two: the stored values' deviations from the first mean, summed and squared.
    struct Deviations {
        double mean0, sum, sq;
    };
    std::vector<Deviations> dv(d);
    for (std::size_t j = 0; j < d; ++j) dv[j] = Deviations{st[j].sum / total, 0.0, 0.0};
    for (std::size_t r = 0; r < n_rows; ++r) {
        const double wr = w != nullptr ? w[r] : 1.0;
        if (!(wr > 0.0)) continue;
        for (I p = indptr[r]; p < indptr[r + 1]; ++p) {
            const auto j = static_cast<std::size_t>(indices[p]);
            ahead(dv.data(), p);
            Deviations& c = dv[j];
            const double e = value(static_cast<std::size_t>(p), j) - c.mean0;
            c.sum += wr * e;
            c.sq += (wr * e) * e;
        }
    }
    for (std::size_t j = 0; j < d; ++j) {
        // The implicit zeros' weight: whole numbers without weights (exact); with weights, by
        // difference, and exactly 0 where every row of positive weight stores the column.
        double missing;
        if (w == nullptr) missing = static_cast<double>(n_positive - st[j].count);
        else missing = st[j].count == n_positive ? 0.0 : std::max(total - st[j].weight, 0.0);
        const double m0 = dv[j].mean0;
        const double shift = (dv[j].sum - missing * m0) / total;
        const double m2 = dv[j].sq + (missing * (m0 * m0) - total * (shift * shift));
        var[j] = std::max(m2 / total, 0.0);
        mean[j] = m0 + shift;
    }
    return total;
}

#define FASTGD_SPARSE_MOMENTS(T, I)                                                                              \
    template double sparse_column_moments<T, I>(const T*, const I*, const I*, std::size_t, std::size_t, std::size_t, \
                                                const double*, const double*, double*, double*);
FASTGD_CSR_TYPES(FASTGD_SPARSE_MOMENTS)
#undef FASTGD_SPARSE_MOMENTS

}  // namespace fastgd
