// A linear model's mini-batch objective over CSR rows (fastgd/sparse_linear.hpp). Compiled
// once, not per instruction-set level: each nonzero is an indexed load of W and an indexed
// add into the gradient, scalar work at every level (a row holds tens of nonzeros at columns
// all over W, which no vector unit gathers faster than the loads it replaces).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastgd/kernel_table.hpp"
#include "fastgd/runtime.hpp"
#include "fastgd/sparse_linear.hpp"
#include "csr_kernels.hpp"
#include "prefetch.hpp"

namespace fastgd {
namespace {

// Rows per block of the forward pass: each block's loss sums are added in block order.
constexpr std::size_t kRowBlock = 64;

// A nonzero's work counted as this many elements of an update rule's for the parallel
// threshold (an indexed load or add misses L1 often: a few times an element of a rule).
constexpr std::size_t kWorkPerNonzero = 4;

template <class T, class I> std::size_t row_of(const SparseBatch<T, I>& bt, std::size_t i) {
    return bt.rows != nullptr ? static_cast<std::size_t>(bt.rows[i]) : bt.begin + i;
}

// Row r's loss and dl/dz_k (into g, K values) at outputs z, for the scalar losses (K = 1, or
// K regression outputs each with its own target) and the multiclass ones: the dense kernel's
// formulas, in double.
template <class T>
double row_loss(const LinearObjectiveOptions& o, const double* z, const T* y, std::int64_t label, double* g) {
    const std::size_t K = o.K;
    switch (o.loss) {
        case LinearLoss::squared_error: {
            double l = 0.0;
            for (std::size_t k = 0; k < K; ++k) {
                const double r = z[k] - double(y[k]);
                g[k] = r;
                l += 0.5 * r * r;
            }
            return l;
        }
        case LinearLoss::huber: {
            double l = 0.0;
            for (std::size_t k = 0; k < K; ++k) {
                const double delta = o.delta_k != nullptr ? o.delta_k[k] : o.delta;
                const double r = z[k] - double(y[k]), a = std::fabs(r);
                g[k] = std::min(delta, std::max(-delta, r));  // the data second: NaN stays NaN
                l += a > delta ? delta * (a - 0.5 * delta) : 0.5 * r * r;
            }
            return l;
        }
        case LinearLoss::log_loss: {
            // log(1 + e^z) = max(z, 0) + log1p(e^-|z|); sigmoid from the same e^-|z|.
            const double zz = z[0], e = std::exp(-std::fabs(zz));
            const double p = zz > 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            g[0] = p - double(y[0]);
            return (std::max(zz, 0.0) + std::log1p(e)) - double(y[0]) * zz;
        }
        case LinearLoss::hinge: {
            const double s = double(y[0]) > 0.0 ? 1.0 : -1.0, m = 1.0 - s * z[0];
            g[0] = m > 0.0 ? -s : 0.0;
            return m > 0.0 ? m : 0.0;
        }
        case LinearLoss::softmax_cross_entropy: {
            double m = z[0];
            for (std::size_t k = 1; k < K; ++k) m = std::max(m, z[k]);
            double sum = 0.0;
            for (std::size_t k = 0; k < K; ++k) sum += (g[k] = std::exp(z[k] - m));
            for (std::size_t k = 0; k < K; ++k) g[k] /= sum;
            g[label] -= 1.0;
            return (std::log(sum) + m) - z[label];
        }
        default: {  // hinge_ovr
            double l = 0.0;
            for (std::size_t k = 0; k < K; ++k) {
                const double s = static_cast<std::int64_t>(k) == label ? 1.0 : -1.0, mk = 1.0 - s * z[k];
                g[k] = mk > 0.0 ? -s : 0.0;
                l += mk > 0.0 ? mk : 0.0;
            }
            return l;
        }
    }
}

// Each row's extent checked, and its first nonzero's index among the batch's into
// scratch.row_start.
template <class T, class I>
void check_rows(const SparseBatch<T, I>& bt, SparseScratch& sc) {
    const CsrRows<T, I>& X = bt.X;
    sc.row_start.resize(bt.n + 1);
    std::size_t nnz = 0;
    for (std::size_t i = 0; i < bt.n; ++i) {
        const std::size_t r = row_of(bt, i);
        const I p0 = X.indptr[r], p1 = X.indptr[r + 1];
        if (!sound_extent(p0, p1, X.nnz)) bad_extent(r, p0, p1, X.nnz);
        sc.row_start[i] = nnz;
        nnz += static_cast<std::size_t>(p1 - p0);
        prefetch_line(X.indices + p0);  // read next
        prefetch_line(X.data + p0);
    }
    sc.row_start[bt.n] = nnz;
}

// The next batch's rows, asked for while this one is computed: first where each row starts
// (indptr, and its target and weight), at this batch's start; then, at its end, the row's
// nonzeros, whose place the first hint has brought in.
template <class T, class I> std::size_t next_row(const SparseBatch<T, I>& bt, std::size_t i) {
    return bt.next_rows != nullptr ? static_cast<std::size_t>(bt.next_rows[i]) : bt.next_begin + i;
}

template <class T, class I> void prefetch_next_starts(const SparseBatch<T, I>& bt, std::size_t width) {
    for (std::size_t i = 0; i < bt.next_n; ++i) {
        const std::size_t r = next_row(bt, i);
        prefetch_line(bt.X.indptr + r);
        if (bt.labels != nullptr) prefetch_line(bt.labels + r);
        else prefetch_line(bt.y + r * width);
        if (bt.sample_weight != nullptr) prefetch_line(bt.sample_weight + r);
    }
}

// Asks for every line of row r's indices and values, from the first nonzero's to the last's.
template <class T, class I> void prefetch_row_lines(const CsrRows<T, I>& X, std::size_t r) {
    const I p0 = X.indptr[r], p1 = X.indptr[r + 1];
    if (!sound_extent(p0, p1, X.nnz) || p1 == p0) return;  // (checked when it is read)
    for (I p = p0; p < p1; p += 64 / sizeof(I)) prefetch_line(X.indices + p);
    prefetch_line(X.indices + (p1 - 1));
    for (I p = p0; p < p1; p += 64 / sizeof(T)) prefetch_line(X.data + p);
    prefetch_line(X.data + (p1 - 1));
}

template <class T, class I> void prefetch_next_rows(const SparseBatch<T, I>& bt) {
    for (std::size_t i = 0; i < bt.next_n; ++i) prefetch_row_lines(bt.X, next_row(bt, i));
}

// Rows this far ahead of the one being computed (in this batch or the next) are asked for
// while it is: the random order of an epoch's rows makes each row a miss to memory, and this
// many in flight hide its latency (their indptr entries were asked for a batch earlier).
constexpr std::size_t kRowsAhead = 8;

// Asks for the lines of row i of the batch, or past its end of the next batch's.
template <class T, class I> void prefetch_row(const SparseBatch<T, I>& bt, std::size_t i) {
    std::size_t r;
    if (i < bt.n) r = row_of(bt, i);
    else if (i - bt.n < bt.next_n) r = next_row(bt, i - bt.n);
    else return;
    prefetch_row_lines(bt.X, r);
}

// Every column index of the batch's rows in [0, d) (dense mode: checked before the threads
// read W at them; compact mode checks each as its row is read).
template <class T, class I> void check_columns(const SparseBatch<T, I>& bt) {
    const CsrRows<T, I>& X = bt.X;
    for (std::size_t i = 0; i < bt.n; ++i) {
        const std::size_t r = row_of(bt, i);
        for (I p = X.indptr[r]; p < X.indptr[r + 1]; ++p)
            if (static_cast<std::size_t>(X.indices[p]) >= X.d) bad_column(X.indices[p], r, X.d);
    }
}

using Sums = SparseScratch::BlockSums;

// Row r's loss l added to s with the row's weight s_r, and its K values dl/dz in c turned into
// its gradient coefficients s_r / n * dl/dz (0 for a zero weight, whose loss counts for
// nothing).
template <class T, class I>
void weigh_row(const SparseBatch<T, I>& bt, std::size_t r, double l, std::size_t K, double inv_n, double* c,
               Sums& s) {
    const double w = bt.sample_weight != nullptr ? double(bt.sample_weight[r]) : 1.0;
    if (w != 0.0) {
        s.loss += w * l;
        s.weight += w;
    }
    for (std::size_t k = 0; k < K; ++k) c[k] = w != 0.0 ? w * inv_n * c[k] : 0.0;
}

// Row r's loss at outputs z, added to s with the row's weight, and its gradient coefficients
// into c (weigh_row), one row at a time.
template <class T, class I>
void row_coefficients(const SparseBatch<T, I>& bt, const LinearObjectiveOptions& o, const double* z, std::size_t r,
                      double inv_n, double* c, Sums& s) {
    const std::size_t K = o.K;
    const bool multiclass = is_multiclass(o.loss);
    const double l = row_loss(o, z, multiclass ? nullptr : bt.y + r * K, multiclass ? bt.labels[r] : 0, c);
    weigh_row(bt, r, l, K, inv_n, c, s);
}

// Rows [i0, i1) of the batch (at most kRowBlock), their outputs at z (row i's K values at
// z + (i - i0) K): their weighted losses, added in row order, and their coefficients into
// coef + i K. One output of a scalar loss goes through the level's vector kernel, as the dense
// kernel computes it (a libm exp and log1p per row cost more than the rest of a short row:
// a lazy fit on RCV1-shaped data 1.065x faster); other losses row by row.
template <class T, class I>
Sums block_coefficients(const SparseBatch<T, I>& bt, const LinearObjectiveOptions& o, const double* z,
                        std::size_t i0, std::size_t i1, double inv_n, double* coef) {
    Sums s{0.0, 0.0};
    if (o.K != 1 || is_multiclass(o.loss)) {
        for (std::size_t i = i0; i < i1; ++i)
            row_coefficients(bt, o, z + (i - i0) * o.K, row_of(bt, i), inv_n, coef + i * o.K, s);
        return s;
    }
    constexpr std::size_t kPadded = kRowBlock + 64 / sizeof(double);  // whole vectors of any level
    alignas(64) double zd[kPadded] = {}, yd[kPadded] = {}, l[kPadded], g[kPadded];
    const std::size_t m = i1 - i0;
    for (std::size_t q = 0; q < m; ++q) {
        zd[q] = z[q];
        yd[q] = double(bt.y[row_of(bt, i0 + q)]);
    }
    active_kernels().f64.scalar_losses(o, o.delta_k != nullptr ? o.delta_k[0] : o.delta, zd, yd, l, g, m);
    for (std::size_t q = 0; q < m; ++q) {
        coef[i0 + q] = g[q];
        weigh_row(bt, row_of(bt, i0 + q), l[q], 1, inv_n, coef + i0 + q, s);
    }
    return s;
}

// Row r's outputs z[k] = b[k] + sum over its nonzeros p of term(p, k * d + j, j) (j the
// nonzero's column, k * d + j its weight's position in W), in double; b null: the sums alone.
// One output: two sums in turn, then added (two chains of adds in flight, not one).
template <class T, class I, class Term>
void row_outputs(const CsrRows<T, I>& X, std::size_t r, std::size_t K, const T* b, double* z, Term&& term) {
    for (std::size_t k = 0; k < K; ++k) z[k] = b != nullptr ? double(b[k]) : 0.0;
    const I p0 = X.indptr[r], p1 = X.indptr[r + 1];
    if (K == 1) {
        double z0 = 0.0, z1 = 0.0;
        I p = p0;
        for (; p + 1 < p1; p += 2) {
            const auto j0 = static_cast<std::size_t>(X.indices[p]), j1 = static_cast<std::size_t>(X.indices[p + 1]);
            z0 += term(p, j0, j0);
            z1 += term(p + 1, j1, j1);
        }
        if (p < p1) {
            const auto j0 = static_cast<std::size_t>(X.indices[p]);
            z0 += term(p, j0, j0);
        }
        z[0] += z0 + z1;
    } else {
        for (I p = p0; p < p1; ++p) {
            const auto j = static_cast<std::size_t>(X.indices[p]);
            for (std::size_t k = 0; k < K; ++k) z[k] += term(p, k * X.d + j, j);
        }
    }
}

// A row's features' entries of the arrays a pass reads and writes at them (output 0), asked
// for one row before the row is computed: with many features (hashed text, 2**20) those
// entries are misses to the last-level cache, in the order of the row's indices; asked for
// together, they arrive together (one row ahead: a fit 1.3x faster there; two or four rows
// ahead, 1.1x).
constexpr std::size_t kFeaturesAhead = 1;
// ... when W and the sums (2 d values) pass this size; below it (RCV1's 47,236
// features in float32) they stay in the level-2 cache, and the hints only cost (1.15x slower).
constexpr std::size_t kNearBytes = std::size_t(1) << 20;

// f(j) for each column index of row r that lies in [0, d).
template <class T, class I, class F> void for_row_features(const SparseBatch<T, I>& bt, std::size_t r, F&& f) {
    const I p0 = bt.X.indptr[r], p1 = bt.X.indptr[r + 1];
    if (!sound_extent(p0, p1, bt.X.nnz)) return;  // checked when it is read
    for (I p = p0; p < p1; ++p) {
        const auto j = static_cast<std::size_t>(bt.X.indices[p]);
        if (j < bt.X.d) f(j);
    }
}

// Compact mode, on one thread, in two passes over the batch's rows. First each row's z, its
// loss and coefficient: the rows' loads are independent, so one row's wait for memory
// overlaps the next's (with each row's terms added right after its z, each row waited for
// its own loss first: 1.2x slower). Unscaled features: z = b + weight_scale sum_j W_j x_j,
// the stored entries' sum times the scale (a product and two conversions less per nonzero
// than each weight scaled and rounded: a fit 1.03x faster); with feature scales, each
// weight as compact mode gathers it (times weight_scale, rounded to T) times its scale. Then
// the rows' terms added into out.by_column in row order (zero before the batch; a feature
// met for the first time is listed in scratch.active), the rows now in cache. With
// weight_scale 1, the values and the order of every sum of the dense mode's forward and
// backward, at the batch's features only. Rows' extents are checked before (check_rows); a
// column index out of range throws before W is read at it.
template <class T, class I>
void compact_rows(const SparseBatch<T, I>& bt, const T* W, const T* b, const LinearObjectiveOptions& o,
                  SparseScratch& sc, CompactOut<T>& out, double inv_n, double weight_scale) {
    const CsrRows<T, I>& X = bt.X;
    const std::size_t K = o.K, d = X.d;
    const bool rescaled = weight_scale != 1.0;
    const T* inv_scale = bt.inv_scale;
    if (sc.seen.size() != (d + 63) / 64) sc.seen.assign((d + 63) / 64, 0u);
    std::uint64_t* seen = sc.seen.data();
    T* acc = out.by_column;
    sc.active.resize(sc.row_start[bt.n]);
    std::int64_t* active = sc.active.data();
    std::size_t na = 0;
    // What the forward pass multiplies x_j by: the weight (as compact mode gathers it, rounded
    // to T), times the feature's scale.
    const auto weight = [&](std::size_t q, std::size_t j) {
        T w = rescaled ? static_cast<T>(double(W[q]) * weight_scale) : W[q];
        if (inv_scale != nullptr) w = w * inv_scale[j];
        return w;
    };
    sc.z.resize(kRowBlock * K);  // a block's rows' outputs
    const bool far = 2 * d * sizeof(T) > kNearBytes;
    // A column index out of range stops the batch: the sums its earlier rows added are taken
    // out again (zero, as the next batch needs them).
    try {
        for (std::size_t i = 0; i < bt.n; ++i) {
            double* zp = sc.z.data() + (i % kRowBlock) * K;
            prefetch_row(bt, i + kRowsAhead);
            if (far && i + kFeaturesAhead < bt.n)
                for_row_features(bt, row_of(bt, i + kFeaturesAhead), [&](std::size_t j) {
                    prefetch_line(W + j);
                    if (inv_scale != nullptr) prefetch_line(inv_scale + j);
                });
            const std::size_t r = row_of(bt, i);
            if (inv_scale == nullptr) {
                row_outputs(X, r, K, static_cast<const T*>(nullptr), zp, [&](I p, std::size_t q, std::size_t j) {
                    if (j >= d) bad_column(X.indices[p], r, d);  // before W is read at it
                    return double(W[q]) * double(X.data[p]);
                });
                for (std::size_t k = 0; k < K; ++k) zp[k] = double(b[k]) + weight_scale * zp[k];
            } else {
                row_outputs(X, r, K, b, zp, [&](I p, std::size_t q, std::size_t j) {
                    if (j >= d) bad_column(X.indices[p], r, d);  // before W is read at it
                    return double(weight(q, j)) * double(X.data[p]);
                });
            }
            if ((i + 1) % kRowBlock == 0 || i + 1 == bt.n)
                sc.sums[i / kRowBlock] =
                    block_coefficients(bt, o, sc.z.data(), i / kRowBlock * kRowBlock, i + 1, inv_n, sc.coef.data());
        }
        for (std::size_t i = 0; i < bt.n; ++i) {
            const std::size_t r = row_of(bt, i);
            const I p0 = X.indptr[r], p1 = X.indptr[r + 1];
            const I* idx = X.indices;
            const T* val = X.data;
            const double* c = sc.coef.data() + i * K;
            if (far && i + kFeaturesAhead < bt.n)
                for_row_features(bt, row_of(bt, i + kFeaturesAhead), [&](std::size_t j) {
                    prefetch_line(seen + (j >> 6));
                    prefetch_line(acc + j);
                });
            // The row's terms (its indices checked above), added to sums that compact_outputs
            // leaves at zero. A feature is new to the batch where its bit is clear (a bit per
            // feature: d / 8 bytes, which stay in cache; compact_outputs clears them): a coin
            // toss the branch predictor would lose, so the list entry is written either way and
            // the count moved for a new one.
            for (I p = p0; p < p1; ++p) {
                const auto j = static_cast<std::size_t>(idx[p]);
                const std::uint64_t bit = std::uint64_t(1) << (j & 63), word = seen[j >> 6];
                seen[j >> 6] = word | bit;
                active[na] = static_cast<std::int64_t>(j);
                na += (word & bit) == 0;
                for (std::size_t k = 0; k < K; ++k) acc[k * d + j] += static_cast<T>(c[k] * double(val[p]));
            }
        }
    } catch (...) {
        for (std::size_t a = 0; a < na; ++a) {
            const auto j = static_cast<std::size_t>(active[a]);
            seen[j >> 6] = 0;
            for (std::size_t k = 0; k < K; ++k) acc[k * d + j] = T(0);
        }
        throw;
    }
    sc.active.resize(na);
}

// The compact outputs from out.by_column: the active features' weights (times weight_scale,
// rounded to T), their gradient (times their scale, plus l2 times the weight) and positions,
// then the intercepts with gradient sum_i c_i.
template <class T>
void compact_outputs(SparseScratch& sc, const T* W, const T* b, const T* inv_scale, const LinearObjectiveOptions& o,
                     std::size_t d, std::size_t n, double weight_scale, CompactOut<T>& out) {
    const std::size_t K = o.K, na = sc.active.size();
    out.params.resize(K * na + K);
    out.grad.resize(K * na + K);
    out.coords.resize(K * na + K);
    const T l2 = static_cast<T>(o.l2);
    const std::int64_t* active = sc.active.data();
    std::uint64_t* seen = sc.seen.data();
    for (std::size_t a = 0; a < na; ++a) seen[static_cast<std::size_t>(active[a]) >> 6] = 0;  // for the next batch
    for (std::size_t k = 0; k < K; ++k) {
        T* pk = out.params.data() + k * na;
        T* gk = out.grad.data() + k * na;
        std::int64_t* qk = out.coords.data() + k * na;
        T* acc = out.by_column + k * d;
        for (std::size_t a = 0; a < na; ++a) {
            const auto j = static_cast<std::size_t>(active[a]);
            const std::size_t q = k * d + j;
            const T w = weight_scale == 1.0 ? W[q] : static_cast<T>(double(W[q]) * weight_scale);
            T g = acc[j];
            acc[j] = T(0);  // zero again for the next batch
            if (inv_scale != nullptr) g *= inv_scale[j];
            if (o.l2 != 0.0) g += l2 * w;
            pk[a] = w;
            gk[a] = g;
            qk[a] = static_cast<std::int64_t>(q);
        }
    }
    for (std::size_t k = 0; k < K; ++k) {
        double sb = 0.0;
        for (std::size_t i = 0; i < n; ++i) sb += sc.coef[i * K + k];
        out.params[K * na + k] = b[k];
        out.grad[K * na + k] = static_cast<T>(sb);
        out.coords[K * na + k] = static_cast<std::int64_t>(K * d + k);
    }
}

// Rows [i0, i1) of the batch (dense mode, one block of rows): z from W (K x d; with inv_scale,
// times x's scale) into z, then the losses and the gradient coefficients c (s_i / n dl/dz, 0
// for a zero weight, whose loss counts for nothing) into coef.
template <class T, class I>
Sums forward(const SparseBatch<T, I>& bt, const T* W, const T* b, const LinearObjectiveOptions& o, double inv_n,
             std::size_t i0, std::size_t i1, double* coef, double* z) {
    const CsrRows<T, I>& X = bt.X;
    const std::size_t K = o.K;
    const T* inv_scale = bt.inv_scale;
    const auto x_of = [&](I p, std::size_t j) { return inv_scale != nullptr ? X.data[p] * inv_scale[j] : X.data[p]; };
    for (std::size_t i = i0; i < i1; ++i)
        row_outputs(X, row_of(bt, i), K, b, z + (i - i0) * K,
                    [&](I p, std::size_t q, std::size_t j) { return double(W[q]) * double(x_of(p, j)); });
    return block_coefficients(bt, o, z, i0, i1, inv_n, coef);
}

// g[k, j] += c_ik x_ij over the batch's rows in order, for the columns j in [j0, j1) of g
// (K x d), dense mode.
template <class T, class I>
void backward(const SparseBatch<T, I>& bt, const double* coef, std::size_t K, T* g, std::size_t j0, std::size_t j1) {
    const CsrRows<T, I>& X = bt.X;
    const std::size_t d = X.d;
    const bool all = j0 == 0 && j1 == d;
    for (std::size_t i = 0; i < bt.n; ++i) {
        const std::size_t r = row_of(bt, i);
        const double* c = coef + i * K;
        for (I p = X.indptr[r]; p < X.indptr[r + 1]; ++p) {
            const auto j = static_cast<std::size_t>(X.indices[p]);
            if (!all && (j < j0 || j >= j1)) continue;
            for (std::size_t k = 0; k < K; ++k) g[k * d + j] += static_cast<T>(c[k] * double(X.data[p]));
        }
    }
}

int threads_for_batch(std::size_t nnz, std::size_t K) {
    return threads_for(nnz * K * kWorkPerNonzero);
}

}  // namespace

template <class T, class I>
double sparse_linear_objective(const SparseBatch<T, I>& bt, const T* W, const T* b, const LinearObjectiveOptions& o,
                               T* gW, T* gb, SparseScratch& sc, SparseGrad mode, CompactOut<T>* out,
                               double weight_scale) {
    const std::size_t K = o.K, d = bt.X.d, n = bt.n;
    prefetch_next_starts(bt, is_multiclass(o.loss) ? 1 : K);
    check_rows(bt, sc);  // before anything is written
    const double inv_n = n > 0 ? 1.0 / static_cast<double>(n) : 0.0;
    const std::size_t blocks = (n + kRowBlock - 1) / kRowBlock;
    sc.coef.resize(n * K);
    sc.sums.resize(blocks);
    Sums* sums = sc.sums.data();
    const auto mean_loss = [&] {
        double loss = 0.0, weight = 0.0;
        for (std::size_t k = 0; k < blocks; ++k) loss += sums[k].loss, weight += sums[k].weight;
        return weight > 0.0 ? loss / weight : 0.0;
    };
    if (mode == SparseGrad::compact) {
        // One thread: a batch's work here is a few microseconds of dependent loads, less than
        // what handing it to a second thread and waiting for it costs.
        compact_rows(bt, W, b, o, sc, *out, inv_n, weight_scale);
        compact_outputs(sc, W, b, bt.inv_scale, o, d, n, weight_scale, *out);
        return mean_loss();
    }
    check_columns(bt);  // before the threads read W at them
    std::memset(gW, 0, K * d * sizeof(T));
    const int threads = std::min<int>(threads_for_batch(sc.row_start[n], K),
                                      static_cast<int>(std::max<std::size_t>(blocks, 1)));
    // Forward: each row alone (its z does not depend on the thread that computes it), the
    // blocks' sums added in block order.
    auto forward_blocks = [&](std::size_t t, std::size_t nt) {
        double z1[kRowBlock];  // a block's rows' outputs (more than one output: on the heap)
        std::vector<double> zv(K > 1 ? kRowBlock * K : 0);
        double* zp = K > 1 ? zv.data() : z1;
        for (std::size_t k = t; k < blocks; k += nt)
            sums[k] = forward(bt, W, b, o, inv_n, k * kRowBlock, std::min(n, (k + 1) * kRowBlock), sc.coef.data(), zp);
    };
    if (threads <= 1) {
        forward_blocks(0, 1);
        backward(bt, sc.coef.data(), K, gW, 0, d);
    } else {
#ifdef _OPENMP
        // Each thread then adds the nonzeros of its own range of columns, every row in order:
        // each entry's sum has the same order for any thread count.
#pragma omp parallel num_threads(threads)
        {
            const auto t = static_cast<std::size_t>(omp_get_thread_num());
            const auto nt = static_cast<std::size_t>(omp_get_num_threads());
            forward_blocks(t, nt);
#pragma omp barrier
            backward(bt, sc.coef.data(), K, gW, d * t / nt, d * (t + 1) / nt);
        }
#else
        forward_blocks(0, 1);
        backward(bt, sc.coef.data(), K, gW, 0, d);
#endif
    }
    for (std::size_t k = 0; k < K; ++k) {
        double sb = 0.0;
        for (std::size_t i = 0; i < n; ++i) sb += sc.coef[i * K + k];
        gb[k] = static_cast<T>(sb);
    }
    // The standardization's d(x')/dx and the L2 term.
    const T l2 = static_cast<T>(o.l2);
    for (std::size_t k = 0; k < K; ++k) {
        T* gk = gW + k * d;
        const T* wk = W + k * d;
        if (bt.inv_scale != nullptr)
            for (std::size_t j = 0; j < d; ++j) gk[j] *= bt.inv_scale[j];
        if (o.l2 != 0.0)
            for (std::size_t j = 0; j < d; ++j) gk[j] += l2 * wk[j];
    }
    prefetch_next_rows(bt);
    double value = mean_loss();
    if (o.l2 != 0.0 || o.l1 != 0.0 || o.l1_k != nullptr) {
        double sq = 0.0, l1 = 0.0;
        for (std::size_t k = 0; k < K; ++k) {
            double ab = 0.0;
            for (std::size_t j = 0; j < d; ++j) {
                const double w = double(W[k * d + j]);
                sq += w * w;
                ab += std::fabs(w);
            }
            l1 += (o.l1_k != nullptr ? o.l1_k[k] : o.l1) * ab;
        }
        value += 0.5 * o.l2 * sq + l1;
    }
    return value;
}

template <class I>
std::pair<std::int64_t, std::int64_t> csr_first_duplicate(const I* indptr, const I* indices, std::size_t n_rows,
                                                          std::size_t d) {
    // mark[j]: 1 + the last row that held column j (rows past 2^32 - 1 start the marks again).
    std::vector<std::uint32_t> mark(d, 0u);
    std::uint32_t stamp = 0;
    for (std::size_t r = 0; r < n_rows; ++r) {
        if (++stamp == 0) {
            std::fill(mark.begin(), mark.end(), 0u);
            stamp = 1;
        }
        for (I p = indptr[r]; p < indptr[r + 1]; ++p) {
            const auto j = static_cast<std::size_t>(indices[p]);
            if (mark[j] == stamp) return {static_cast<std::int64_t>(r), static_cast<std::int64_t>(j)};
            mark[j] = stamp;
        }
    }
    return {-1, -1};
}

template std::pair<std::int64_t, std::int64_t> csr_first_duplicate<std::int32_t>(const std::int32_t*,
                                                                                  const std::int32_t*, std::size_t,
                                                                                  std::size_t);
template std::pair<std::int64_t, std::int64_t> csr_first_duplicate<std::int64_t>(const std::int64_t*,
                                                                                  const std::int64_t*, std::size_t,
                                                                                  std::size_t);

#define FASTGD_SPARSE_INSTANCE(T, I)                                                                         \
    template double sparse_linear_objective<T, I>(const SparseBatch<T, I>&, const T*, const T*,               \
                                                  const LinearObjectiveOptions&, T*, T*, SparseScratch&, SparseGrad, \
                                                  CompactOut<T>*, double);
FASTGD_CSR_TYPES(FASTGD_SPARSE_INSTANCE)
#undef FASTGD_SPARSE_INSTANCE

}  // namespace fastgd
