// A linear model's mini-batch objective in one pass over the batch's rows (see
// fastgd/linear_objective.hpp): each row is read once, from wherever it sits in the data set,
// for z = W x + b, the loss, dloss/dz and the gradient update. Compiled once per level.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "fastgd/linear_objective.hpp"
#include "fastgd/runtime.hpp"
#include "update_rules.hpp"
#include "vec_math.hpp"

namespace fastgd::FASTGD_NS {
namespace {

// Rows per block: each block reduces into its own gradient buffer, and the buffers are added
// in block order, so the bits do not depend on how blocks are shared out to threads.
constexpr std::size_t kRowBlock = 256;
// Rows read ahead by index (a shuffled batch's rows are scattered over the data set: without
// this each row starts with a full memory latency), and at most this many cache lines of each.
constexpr std::size_t kAhead = 8;
constexpr std::size_t kAheadLines = 16;

// Level-local element types: no std::vector code is shared (as a weak symbol) between objects
// built for different instruction sets.
template <class T> struct Cell {
    T v;
};
struct Sums {
    double loss, weight;
};

// out[r] = w . x[r] for R rows at once: R independent FMA chains share each load of w. Every
// row gets the same arithmetic whatever R (one vector accumulator, the level's lane sum, then
// the scalar tail), so z does not depend on where a row falls in a group.
template <int R, class T> void dots(const T* w, const T* const* x, std::size_t d, T* out) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    V acc[R];
    for (int r = 0; r < R; ++r) acc[r] = V::set1(T(0));
    std::size_t j = 0;
    for (; j + L <= d; j += L) {
        const V wv = V::load(w + j);
        for (int r = 0; r < R; ++r) acc[r] = mul_add(wv, V::load(x[r] + j), acc[r]);
    }
    for (int r = 0; r < R; ++r) {
        T t = reduce_add(acc[r]);
        for (std::size_t jj = j; jj < d; ++jj) t += w[jj] * x[r][jj];
        out[r] = t;
    }
}

// g <- g + c[0] x[0] + ... + c[R-1] x[R-1], row by row in order (the bits of R = 1 calls in
// sequence), one load and store of g per R rows.
template <int R, class T> void axpys(const T* c, const T* const* x, T* g, std::size_t d) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    V cv[R];
    for (int r = 0; r < R; ++r) cv[r] = V::set1(c[r]);
    std::size_t j = 0;
    for (; j + L <= d; j += L) {
        V gv = V::load(g + j);
        for (int r = 0; r < R; ++r) gv = mul_add(cv[r], V::load(x[r] + j), gv);
        V::store(g + j, gv);
    }
    for (; j < d; ++j) {
        T t = g[j];
        for (int r = 0; r < R; ++r) t += c[r] * x[r][j];
        g[j] = t;
    }
}

template <class T> void axpy(T c, const T* x, T* g, std::size_t d) { axpys<1>(&c, &x, g, d); }

// A row's loss, and its derivatives dl/dz_k into g (K of them), from its outputs z.
template <class T>
double row_loss(const LinearObjectiveOptions& o, const T* z, T y, std::int64_t label, T* g) {
    switch (o.loss) {
        case LinearLoss::squared_error: {
            const T r = z[0] - y;
            g[0] = r;
            return 0.5 * double(r) * double(r);
        }
        case LinearLoss::huber: {
            const T r = z[0] - y, delta = static_cast<T>(o.delta);
            const T a = std::fabs(r);
            g[0] = std::clamp(r, -delta, delta);
            return a <= delta ? 0.5 * double(r) * double(r) : double(delta) * (double(a) - 0.5 * double(delta));
        }
        case LinearLoss::log_loss: {
            // log(1 + e^z) = max(z, 0) + log1p(e^-|z|), sigmoid from the same e^-|z|: no overflow.
            const T e = std::exp(-std::fabs(z[0]));
            const T p = z[0] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
            g[0] = p - y;
            return double(std::max(z[0], T(0))) + double(std::log1p(e)) - double(y) * double(z[0]);
        }
        case LinearLoss::hinge: {
            const T s = y > T(0) ? T(1) : T(-1);
            const T m = T(1) - s * z[0];
            g[0] = m > T(0) ? -s : T(0);
            return m > T(0) ? double(m) : 0.0;
        }
        case LinearLoss::softmax_cross_entropy: {
            T m = z[0];
            for (std::size_t k = 1; k < o.K; ++k) m = std::max(m, z[k]);
            T sum = T(0);
            for (std::size_t k = 0; k < o.K; ++k) sum += (g[k] = std::exp(z[k] - m));
            const T inv = T(1) / sum;
            for (std::size_t k = 0; k < o.K; ++k) g[k] *= inv;
            g[label] -= T(1);
            return double(m) + std::log(double(sum)) - double(z[label]);
        }
        case LinearLoss::hinge_ovr: {
            double l = 0.0;
            for (std::size_t k = 0; k < o.K; ++k) {
                const T s = static_cast<std::int64_t>(k) == label ? T(1) : T(-1);
                const T m = T(1) - s * z[k];
                g[k] = m > T(0) ? -s : T(0);
                l += m > T(0) ? double(m) : 0.0;
            }
            return l;
        }
    }
    return 0.0;
}

inline void prefetch(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

// Rows handled together: their dot products and gradient updates interleave (independent
// FMA chains, one pass over W and the gradient for all of them).
constexpr int kGroup = 4;

template <class T> struct BlockOut {
    T* gW;  // K x d
    T* gb;  // K
    T* z;   // K x kGroup scratch
    T* g;   // K x kGroup scratch
};

// R rows (positions i .. i+R-1 of the batch) into the block's sums and gradients.
template <int R, class T>
void rows_of(const LinearBatch<T>& bt, const T* W, const T* b, const LinearObjectiveOptions& o, std::size_t i,
             double inv_n, const BlockOut<T>& out, Sums& s) {
    const std::size_t d = bt.d, K = o.K;
    const bool multiclass = is_multiclass(o.loss);
    const T* x[R];
    std::size_t r[R];
    for (int q = 0; q < R; ++q) {
        r[q] = bt.rows != nullptr ? static_cast<std::size_t>(bt.rows[i + q]) : bt.begin + i + q;
        x[q] = bt.X + r[q] * d;
    }
    T zr[R];
    for (std::size_t k = 0; k < K; ++k) {
        dots<R>(W + k * d, x, d, zr);
        for (int q = 0; q < R; ++q) out.z[q * K + k] = zr[q] + b[k];
    }
    T c[R];
    for (int q = 0; q < R; ++q) {
        T* g = out.g + q * K;
        const double l = row_loss(o, out.z + q * K, multiclass ? T(0) : bt.y[r[q]],
                                  multiclass ? bt.labels[r[q]] : 0, g);
        const double w = bt.sample_weight != nullptr ? double(bt.sample_weight[r[q]]) : 1.0;
        if (w != 0.0) {  // a zero weight counts for nothing (and a NaN loss of it must not leak in)
            s.loss += w * l;
            s.weight += w;
        }
        const double scale = w * inv_n;
        for (std::size_t k = 0; k < K; ++k) g[k] = w != 0.0 ? static_cast<T>(scale * double(g[k])) : T(0);
    }
    for (std::size_t k = 0; k < K; ++k) {
        for (int q = 0; q < R; ++q) c[q] = out.g[q * K + k];
        axpys<R>(c, x, out.gW + k * d, d);
        for (int q = 0; q < R; ++q) out.gb[k] += c[q];
    }
}

// Rows per pass of the scalar losses: their z first, then the loss on whole vectors, then the
// gradient updates, re-reading the rows from L1 (32 rows of 100 floats: 13 KB).
constexpr std::size_t kSub = 32;
static_assert(kSub % kGroup == 0, "whole groups");

// The scalar losses on n <= kSub outputs at once (arrays padded to kSub): l and dl/dz.
template <class T>
void scalar_losses(const LinearObjectiveOptions& o, const T* z, const T* y, T* l, T* g, std::size_t n) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    const V one = V::set1(T(1)), zero = V::set1(T(0)), half = V::set1(T(0.5));
    for (std::size_t i = 0; i < n; i += L) {
        const V zv = V::load(z + i), yv = V::load(y + i);
        V lv, gv;
        switch (o.loss) {
            case LinearLoss::squared_error: {
                gv = zv - yv;
                lv = half * gv * gv;
                break;
            }
            case LinearLoss::huber: {
                const V dv = V::set1(static_cast<T>(o.delta));
                const V r = zv - yv, a = abs(r);
                gv = min(dv, max(zero - dv, r));  // the data second: NaN stays NaN
                const V beyond = step_positive(a - dv, one, zero);  // 0 or 1: the blend below is exact
                lv = half * r * r * (one - beyond) + dv * (a - half * dv) * beyond;
                break;
            }
            case LinearLoss::log_loss: {
                // log(1 + e^z) = max(z, 0) + log1p(e^-|z|); sigmoid from the same e^-|z|.
                const V e = exp_neg(abs(zv));
                const V pos = step_positive(zv, one, zero);
                gv = (pos + (one - pos) * e) / (one + e) - yv;
                lv = (max(zero, zv) + log1p_unit(e)) - yv * zv;
                break;
            }
            default: {  // hinge: s = +1 for y > 0, else -1
                const V sg = step_positive(yv, one, zero) * V::set1(T(2)) - one;
                const V m = one - sg * zv;
                const V active = step_positive(m, one, zero);
                gv = zero - sg * active;
                lv = m * active;
                break;
            }
        }
        V::store(l + i, lv);
        V::store(g + i, gv);
    }
}

// The row of position i of the batch.
template <class T> std::size_t row_of(const LinearBatch<T>& bt, std::size_t i) {
    return bt.rows != nullptr ? static_cast<std::size_t>(bt.rows[i]) : bt.begin + i;
}

// Rows [i, i + n) of a scalar loss (K = 1), n <= kSub, into the block's sums and gradients.
template <class T>
void scalar_rows(const LinearBatch<T>& bt, const T* W, const T* b, const LinearObjectiveOptions& o, std::size_t i,
                 std::size_t n, double inv_n, const BlockOut<T>& out, Sums& s) {
    const std::size_t d = bt.d;
    alignas(64) T z[kSub] = {}, y[kSub] = {}, l[kSub], g[kSub], c[kSub];
    const T* x[kSub];
    for (std::size_t q = 0; q < n; ++q) {
        const std::size_t r = row_of(bt, i + q);
        x[q] = bt.X + r * d;
        y[q] = bt.y[r];
    }
    std::size_t q = 0;
    for (; q + kGroup <= n; q += kGroup) dots<kGroup>(W, x + q, d, z + q);
    for (; q < n; ++q) dots<1>(W, x + q, d, z + q);
    for (q = 0; q < n; ++q) z[q] += b[0];
    scalar_losses(o, z, y, l, g, n);
    for (q = 0; q < n; ++q) {
        const double w = bt.sample_weight != nullptr ? double(bt.sample_weight[row_of(bt, i + q)]) : 1.0;
        c[q] = T(0);
        if (w != 0.0) {  // a zero weight counts for nothing (and a NaN loss of it must not leak in)
            s.loss += w * double(l[q]);
            s.weight += w;
            c[q] = static_cast<T>(w * inv_n * double(g[q]));
        }
    }
    for (q = 0; q + kGroup <= n; q += kGroup) axpys<kGroup>(c + q, x + q, out.gW, d);
    for (; q < n; ++q) axpys<1>(c + q, x + q, out.gW, d);
    for (q = 0; q < n; ++q) out.gb[0] += c[q];
}

template <class T>
void prefetch_rows(const LinearBatch<T>& bt, std::size_t from, std::size_t to, bool multiclass) {
    const std::size_t row_bytes = bt.d * sizeof(T);
    const std::size_t lines = std::min(kAheadLines, (row_bytes + 63) / 64 + 1);
    for (std::size_t q = from; q < to; ++q) {
        const std::int64_t ra = bt.rows[q];
        const char* p = reinterpret_cast<const char*>(bt.X + static_cast<std::size_t>(ra) * bt.d);
        for (std::size_t l = 0; l < lines; ++l) prefetch(p + std::min(l * 64, row_bytes - 1));
        prefetch(multiclass ? static_cast<const void*>(bt.labels + ra) : static_cast<const void*>(bt.y + ra));
        if (bt.sample_weight != nullptr) prefetch(bt.sample_weight + ra);
    }
}

// One block of rows [r0, r1) of the batch into out.gW, out.gb (zeroed here).
template <class T>
Sums block(const LinearBatch<T>& bt, const T* W, const T* b, const LinearObjectiveOptions& o, std::size_t r0,
           std::size_t r1, double inv_n, const BlockOut<T>& out) {
    const std::size_t d = bt.d, K = o.K;
    std::memset(out.gW, 0, K * d * sizeof(T));
    std::memset(out.gb, 0, K * sizeof(T));
    const bool multiclass = is_multiclass(o.loss);
    Sums s{0.0, 0.0};
    if (!multiclass) {
        // Rows by index are fetched one pass ahead: each starts a memory latency otherwise.
        if (bt.rows != nullptr) prefetch_rows(bt, r0, std::min(r1, r0 + kSub), false);
        for (std::size_t i = r0; i < r1; i += kSub) {
            const std::size_t n = std::min(kSub, r1 - i);
            if (bt.rows != nullptr && i + kSub < r1) prefetch_rows(bt, i + kSub, std::min(r1, i + 2 * kSub), false);
            scalar_rows(bt, W, b, o, i, n, inv_n, out, s);
        }
        return s;
    }
    std::size_t i = r0;
    for (; i + kGroup <= r1; i += kGroup) {
        if (bt.rows != nullptr && i + kAhead < r1) prefetch_rows(bt, i + kAhead, std::min(r1, i + kAhead + kGroup), true);
        rows_of<kGroup>(bt, W, b, o, i, inv_n, out, s);
    }
    for (; i < r1; ++i) rows_of<1>(bt, W, b, o, i, inv_n, out, s);
    return s;
}

template <class T>
double linear_objective(const LinearBatch<T>& bt, const T* W, const T* b, const LinearObjectiveOptions& o,
                        T* grad_W, T* grad_b) {
    const std::size_t d = bt.d, K = o.K, n = bt.n;
    const std::size_t stride = K * d + K;  // one block's gradient: W part, then b part
    const std::size_t blocks = (n + kRowBlock - 1) / kRowBlock;
    // Block 0 reduces straight into the output; the others into scratch, added in order.
    std::vector<Cell<T>> scratch(blocks > 1 ? (blocks - 1) * stride : 0);
    std::vector<Cell<T>> zg(2 * K * kGroup * (blocks > 0 ? blocks : 1));  // per block: z and dl/dz of a group
    std::vector<Sums> sums(blocks);
    const double inv_n = n > 0 ? 1.0 / double(n) : 0.0;
    const auto run = [&](std::ptrdiff_t bi) {
        const auto k = static_cast<std::size_t>(bi);
        T* gW = k == 0 ? grad_W : &scratch[(k - 1) * stride].v;
        T* gb = k == 0 ? grad_b : gW + K * d;
        const std::size_t r0 = k * kRowBlock, r1 = std::min(n, r0 + kRowBlock);
        T* zk = &zg[2 * K * kGroup * k].v;
        sums[k] = block(bt, W, b, o, r0, r1, inv_n, BlockOut<T>{gW, gb, zk, zk + K * kGroup});
    };
    const auto nb = static_cast<std::ptrdiff_t>(blocks);
    const int threads = blocks > 1 ? threads_for(n * d * K) : 1;
    if (threads <= 1) {
        for (std::ptrdiff_t bi = 0; bi < nb; ++bi) run(bi);
    } else {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (std::ptrdiff_t bi = 0; bi < nb; ++bi) run(bi);
    }
    if (blocks == 0) {
        std::memset(grad_W, 0, K * d * sizeof(T));
        std::memset(grad_b, 0, K * sizeof(T));
    }
    double loss = 0.0, weight = 0.0;
    for (std::size_t k = 0; k < blocks; ++k) {
        loss += sums[k].loss;
        weight += sums[k].weight;
        if (k == 0) continue;
        const T* p = &scratch[(k - 1) * stride].v;
        axpy(T(1), p, grad_W, K * d);
        axpy(T(1), p + K * d, grad_b, K);
    }
    double value = weight > 0.0 ? loss / weight : 0.0;
    if (o.l2 != 0.0 || o.l1 != 0.0) {
        const T l2 = static_cast<T>(o.l2);
        double sq = 0.0, ab = 0.0;
        for (std::size_t j = 0; j < K * d; ++j) {
            sq += double(W[j]) * double(W[j]);
            ab += std::fabs(double(W[j]));
        }
        if (o.l2 != 0.0) axpy(l2, W, grad_W, K * d);
        value += 0.5 * o.l2 * sq + o.l1 * ab;
    }
    return value;
}

}  // namespace

template <class T> void fill_linear(KernelSet<T>& k) { k.linear_objective = &linear_objective<T>; }

template void fill_linear<float>(KernelSet<float>&);
template void fill_linear<double>(KernelSet<double>&);

}  // namespace fastgd::FASTGD_NS
