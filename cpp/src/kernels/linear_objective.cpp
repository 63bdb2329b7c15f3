// A linear model's mini-batch objective in one pass over the batch's rows (see
// fastgd/linear_objective.hpp): each row is read once, from wherever it sits in the data set,
// for z = W x + b, the loss, dloss/dz and the gradient update. Compiled once per level.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastgd/linear_objective.hpp"
#include "fastgd/runtime.hpp"
#include "update_rules.hpp"
#include "vec_math.hpp"

namespace fastgd::FASTGD_NS {
namespace {

// Rows per block: each block reduces into its own gradient buffer, and the buffers are added
// in block order, so the bits do not depend on how blocks are shared out to threads.
constexpr std::size_t kRowBlock = 256;

// An element of X costs this many elements of an update rule's work when the parallel
// threshold (set from update rules' timings) decides the thread count: each takes a load and
// two FMAs per class, against an update rule's ~3 loads and stores per element, so a batch
// is worth a second thread at a quarter of an update rule's element count (figures in
// bench/README.md).
constexpr std::size_t kWorkPerElement = 4;
// At most this many cache lines of each row are prefetched (the hardware prefetcher takes a
// long row's rest).
constexpr std::size_t kAheadLines = 16;

// Level-local element types: no std::vector code is shared (as a weak symbol) between objects
// built for different instruction sets.
template <class T> struct Cell {
    T v;
};
struct Sums {
    double loss, weight;
};

// A row's last d % lanes elements: with AVX-512, one masked vector (loads that never touch
// the lanes past the row; the arithmetic of the full vectors, the zero lanes adding nothing),
// instead of a scalar loop that costs as much as the rest of a 100-feature row. The other
// levels keep the scalar tail.
#if defined(FASTGD_TARGET_AVX512)
constexpr bool kMaskedTail = true;
inline Vec<float> load_first(const float* p, std::size_t m) {
    return {_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << m) - 1u), p)};
}
inline Vec<double> load_first(const double* p, std::size_t m) {
    return {_mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << m) - 1u), p)};
}
inline void store_first(float* p, Vec<float> a, std::size_t m) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << m) - 1u), a.v);
}
inline void store_first(double* p, Vec<double> a, std::size_t m) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << m) - 1u), a.v);
}
#else
constexpr bool kMaskedTail = false;
template <class T> Vec<T> load_first(const T* p, std::size_t) { return Vec<T>::load(p); }  // never called
template <class T> void store_first(T*, Vec<T>, std::size_t) {}                              // never called
#endif

// The part of the feature mean that a standardized batch subtracts from each element before
// it enters a product (null: rows are read as they are; see linear_objective for the rest).
template <class T> struct Centre {
    const T* hi;
};

// Element j of a row as the model reads it: centred (before any product, see the header).
template <bool C, class T> inline T centred(const T* x, const Centre<T>& c, std::size_t j) {
    if constexpr (C) return x[j] - c.hi[j];
    else return x[j];
}

// out[r] = w . x[r] for R rows at once: R independent FMA chains share each load of w (and of
// the centre). Every row gets the same arithmetic whatever R (one vector accumulator, the
// level's lane sum, then the scalar tail), so z does not depend on where a row falls in a group.
template <int R, bool C, class T>
void dots(const T* w, const T* const* x, std::size_t d, const Centre<T>& c, T* out) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    V acc[R];
    for (int r = 0; r < R; ++r) acc[r] = V::set1(T(0));
    std::size_t j = 0;
    for (; j + L <= d; j += L) {
        const V wv = V::load(w + j);
        if constexpr (C) {
            const V hi = V::load(c.hi + j);
            for (int r = 0; r < R; ++r) acc[r] = mul_add(wv, V::load(x[r] + j) - hi, acc[r]);
        } else {
            for (int r = 0; r < R; ++r) acc[r] = mul_add(wv, V::load(x[r] + j), acc[r]);
        }
    }
    if constexpr (kMaskedTail) {
        if (j < d) {
            const std::size_t m = d - j;
            const V wv = load_first(w + j, m);
            if constexpr (C) {
                const V hi = load_first(c.hi + j, m);
                for (int r = 0; r < R; ++r) acc[r] = mul_add(wv, load_first(x[r] + j, m) - hi, acc[r]);
            } else {
                for (int r = 0; r < R; ++r) acc[r] = mul_add(wv, load_first(x[r] + j, m), acc[r]);
            }
        }
        for (int r = 0; r < R; ++r) out[r] = reduce_add(acc[r]);
        return;
    }
    for (int r = 0; r < R; ++r) {
        T t = reduce_add(acc[r]);
        for (std::size_t jj = j; jj < d; ++jj) t += w[jj] * centred<C>(x[r], c, jj);
        out[r] = t;
    }
}

// g <- g + c[0] x[0] + ... + c[R-1] x[R-1] (x centred with C), row by row in order (the bits
// of R = 1 calls in sequence), one load and store of g per R rows.
template <int R, bool C, class T>
void axpys(const T* cf, const T* const* x, T* g, std::size_t d, const Centre<T>& c) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    V cv[R];
    for (int r = 0; r < R; ++r) cv[r] = V::set1(cf[r]);
    std::size_t j = 0;
    for (; j + L <= d; j += L) {
        V gv = V::load(g + j);
        if constexpr (C) {
            const V hi = V::load(c.hi + j);
            for (int r = 0; r < R; ++r) gv = mul_add(cv[r], V::load(x[r] + j) - hi, gv);
        } else {
            for (int r = 0; r < R; ++r) gv = mul_add(cv[r], V::load(x[r] + j), gv);
        }
        V::store(g + j, gv);
    }
    if constexpr (kMaskedTail) {
        if (j < d) {
            const std::size_t m = d - j;
            V gv = load_first(g + j, m);
            if constexpr (C) {
                const V hi = load_first(c.hi + j, m);
                for (int r = 0; r < R; ++r) gv = mul_add(cv[r], load_first(x[r] + j, m) - hi, gv);
            } else {
                for (int r = 0; r < R; ++r) gv = mul_add(cv[r], load_first(x[r] + j, m), gv);
            }
            store_first(g + j, gv, m);
        }
        return;
    }
    for (; j < d; ++j) {
        T t = g[j];
        for (int r = 0; r < R; ++r) t += cf[r] * centred<C>(x[r], c, j);
        g[j] = t;
    }
}

template <class T> void axpy(T c, const T* x, T* g, std::size_t d) { axpys<1, false>(&c, &x, g, d, Centre<T>{}); }


// Rows handled together in the dot products and gradient updates: independent FMA chains,
// one load of W (or of the gradient) for all of them. 8 rather than 4: each row's dot product
// is one chain of d / lanes dependent FMAs, so 4 chains leave the FMA units waiting on
// latency, and 8 keep twice as many FMAs in flight. Each row keeps its own arithmetic: the
// same bits as 4 or 1.
constexpr std::size_t kGroup = 8;
// Rows per pass: their z first, then the loss on whole vectors (across rows), then the
// gradient updates, re-reading the rows from L1 (32 rows of 100 floats: 13 KB).
constexpr std::size_t kSub = 32;
static_assert(kSub % kGroup == 0, "whole groups");

// A block's outputs and its scratch (K x kSub each for z, dl/dz and the targets, row-major by
// output; kSub for one output's losses).
template <class T> struct BlockOut {
    T* gW;  // K x d
    T* gb;  // K
    T* z;
    T* g;
    T* y;
    T* lk;
};
// The scratch of one block (BlockOut's z, g, y and lk), in elements.
constexpr std::size_t scratch_per_block(std::size_t K) { return 3 * K * kSub + kSub; }

// The scalar losses (K = 1) on n outputs (arrays padded to whole vectors): l and dl/dz.
template <class T>
void scalar_losses(const LinearObjectiveOptions& o, double delta, const T* z, const T* y, T* l, T* g,
                   std::size_t n) {
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
                const V dv = V::set1(static_cast<T>(delta));
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

// The multiclass losses on n <= kSub rows: z and g are K x kSub (output k of row q at
// k * kSub + q), labels per row; l per row.
template <class T>
void multiclass_losses(const LinearObjectiveOptions& o, const T* z, const std::int64_t* labels, T* l, T* g,
                       std::size_t n) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    const std::size_t K = o.K;
    const V one = V::set1(T(1)), zero = V::set1(T(0));
    alignas(64) T onehot[kSub], lse[kSub];
    if (o.loss == LinearLoss::softmax_cross_entropy) {
        // p = e^(z - max z) / sum: every exponent is <= 0, so e^-a covers it.
        for (std::size_t i = 0; i < n; i += L) {
            V m = V::load(z + i);
            for (std::size_t k = 1; k < K; ++k) m = max(m, V::load(z + k * kSub + i));
            V sum = zero;
            for (std::size_t k = 0; k < K; ++k) {
                const V e = exp_neg(m - V::load(z + k * kSub + i));
                V::store(g + k * kSub + i, e);
                sum = sum + e;
            }
            const V inv = one / sum;
            for (std::size_t k = 0; k < K; ++k) V::store(g + k * kSub + i, V::load(g + k * kSub + i) * inv);
            V::store(lse + i, m);
            V::store(l + i, sum);
        }
        for (std::size_t q = 0; q < n; ++q) {  // one log per row: log sum e^(z - m) + m - z_y
            const std::size_t y = static_cast<std::size_t>(labels[q]);
            l[q] = (std::log(l[q]) + lse[q]) - z[y * kSub + q];
            g[y * kSub + q] -= T(1);
        }
        return;
    }
    // hinge_ovr: sum over k of max(0, 1 - s_k z_k), s_k = +1 for k = y, else -1.
    for (std::size_t i = 0; i < n; i += L) V::store(l + i, zero);
    for (std::size_t k = 0; k < K; ++k) {
        for (std::size_t q = 0; q < kSub; ++q) onehot[q] = q < n && labels[q] == static_cast<std::int64_t>(k) ? T(1) : T(0);
        for (std::size_t i = 0; i < n; i += L) {
            const V sg = V::load(onehot + i) * V::set1(T(2)) - one;
            const V m = one - sg * V::load(z + k * kSub + i);
            const V active = step_positive(m, one, zero);
            V::store(g + k * kSub + i, zero - sg * active);
            V::store(l + i, V::load(l + i) + m * active);
        }
    }
}

// The row of position i of the batch.
template <class T> std::size_t row_of(const LinearBatch<T>& bt, std::size_t i) {
    return bt.rows != nullptr ? static_cast<std::size_t>(bt.rows[i]) : bt.begin + i;
}

// (y_width: the targets per row, K for a multi-output regression, else 1.)
template <class T>
void prefetch_rows(const LinearBatch<T>& bt, std::size_t y_width, std::size_t from, std::size_t to) {
    const std::size_t row_bytes = bt.d * sizeof(T);
    const std::size_t lines = std::min(kAheadLines, (row_bytes + 63) / 64 + 1);
    for (std::size_t q = from; q < to; ++q) {
        const std::size_t ra = row_of(bt, q);
        const char* p = reinterpret_cast<const char*>(bt.X + static_cast<std::size_t>(ra) * bt.d);
        for (std::size_t l = 0; l < lines; ++l) prefetch_line_l2(p + std::min(l * 64, row_bytes - 1));
        prefetch_line_l2(bt.labels != nullptr ? static_cast<const void*>(bt.labels + ra) : static_cast<const void*>(bt.y + ra * y_width));
        if (bt.sample_weight != nullptr) prefetch_line_l2(bt.sample_weight + ra);
    }
}


// The rows after those being read, asked for ahead of their pass (`next`: the first row not
// asked for). Rows in order are asked for a few at a time between the products (`between`):
// a burst of a whole pass's rows waits on the core's few outstanding misses and stalls it,
// spread out they overlap the arithmetic (13% less time per row on 1M x 100 float32 from
// memory, one thread, AVX-512). Rows by index come from all over memory, and there a burst
// one pass ahead measured 7% faster.
template <class T> struct RowsAhead {
    const LinearBatch<T>& bt;
    std::size_t y_width;
    std::size_t next, end;
    bool spread;
    // Then the rows of the block that this thread reads after this one (of this batch, or of
    // the next one), so that its first pass does not start on a cold cache.
    const LinearBatch<T>* then = nullptr;
    std::size_t then_next = 0, then_end = 0;
    void fetch(std::size_t m) {
        const std::size_t to = std::min(end, next + m);
        prefetch_rows(bt, y_width, next, to);
        m -= to - next;
        next = to;
        if (m > 0 && then != nullptr && then_next < then_end) {
            const std::size_t to2 = std::min(then_end, then_next + m);
            prefetch_rows(*then, y_width, then_next, to2);
            then_next = to2;
        }
    }
    void fetch_to(std::size_t row) { fetch(row > next ? row - next : 0); }
    void between(std::size_t m) {
        if (spread) fetch(m);
    }
};

// Rows [i, i + n) of the batch, n <= kSub, into the block's sums and gradients (C: each
// element centred by ct; W and b are then those that linear_objective makes for the rows).
template <bool C, class T>
void sub_block(const LinearBatch<T>& bt, const T* W, const T* b, const Centre<T>& ct, const LinearObjectiveOptions& o,
               std::size_t i, std::size_t n, double inv_n, const BlockOut<T>& out, Sums& s, RowsAhead<T>& ahead) {
    const std::size_t d = bt.d, K = o.K;
    const bool multiclass = is_multiclass(o.loss);
    alignas(64) T l[kSub];
    std::int64_t labels[kSub];
    const T* x[kSub];
    T* y = out.y;  // K x kSub: output k's targets at k * kSub
    for (std::size_t q = 0; q < n; ++q) {
        const std::size_t r = row_of(bt, i + q);
        x[q] = bt.X + r * d;
        if (multiclass) labels[q] = bt.labels[r];
        else
            for (std::size_t k = 0; k < K; ++k) y[k * kSub + q] = bt.y[r * K + k];
    }
    if (!multiclass)
        for (std::size_t k = 0; k < K; ++k)
            for (std::size_t q = n; q < kSub; ++q) y[k * kSub + q] = T(0);  // padding lanes: finite
    T* z = out.z;
    T* g = out.g;
    for (std::size_t k = 0; k < K; ++k) {
        T* zk = z + k * kSub;
        std::size_t q = 0;
        for (; q + kGroup <= n; q += kGroup) {
            if (k == 0) ahead.between(kGroup / 2);
            dots<kGroup, C>(W + k * d, x + q, d, ct, zk + q);
        }
        for (; q < n; ++q) dots<1, C>(W + k * d, x + q, d, ct, zk + q);
        for (q = 0; q < n; ++q) zk[q] += b[k];
        for (; q < kSub; ++q) zk[q] = T(0);  // padding lanes: finite, and discarded
    }
    if (multiclass) {
        multiclass_losses(o, z, labels, l, g, n);
    } else {
        // Output by output; with K > 1 a row's loss sums its outputs' (in order, in T).
        for (std::size_t k = 0; k < K; ++k) {
            const double delta = o.delta_k != nullptr ? o.delta_k[k] : o.delta;
            scalar_losses(o, delta, z + k * kSub, y + k * kSub, k == 0 ? l : out.lk, g + k * kSub, n);
            if (k > 0)
                for (std::size_t q = 0; q < n; ++q) l[q] += out.lk[q];
        }
    }
    // g becomes the gradient coefficients: s_i / n * dl/dz (0 for a zero weight, whose loss,
    // NaN or not, counts for nothing).
    // The sums in registers (through `s` they would go through memory at every row).
    double loss = s.loss, weight = s.weight;
    for (std::size_t q = 0; q < n; ++q) {
        const double w = bt.sample_weight != nullptr ? double(bt.sample_weight[row_of(bt, i + q)]) : 1.0;
        if (w != 0.0) {
            loss += w * double(l[q]);
            weight += w;
        }
        for (std::size_t k = 0; k < K; ++k) {
            T& c = g[k * kSub + q];
            c = w != 0.0 ? static_cast<T>(w * inv_n * double(c)) : T(0);
        }
    }
    s.loss = loss;
    s.weight = weight;
    for (std::size_t k = 0; k < K; ++k) {
        const T* c = g + k * kSub;
        std::size_t q = 0;
        for (; q + kGroup <= n; q += kGroup) {
            if (k == 0) ahead.between(kGroup / 2);
            axpys<kGroup, C>(c + q, x + q, out.gW + k * d, d, ct);
        }
        for (; q < n; ++q) axpys<1, C>(c + q, x + q, out.gW + k * d, d, ct);
        T gb = out.gb[k];
        for (q = 0; q < n; ++q) gb += c[q];
        out.gb[k] = gb;
    }
}

// The first rows of the block a thread reads after another: a batch and a range of its rows.
template <class T> struct NextBlock {
    const LinearBatch<T>* bt;
    std::size_t from, to;
};

// One block of rows [r0, r1) of the batch into out.gW, out.gb (zeroed here).
template <class T>
Sums block(const LinearBatch<T>& bt, const T* W, const T* b, const Centre<T>& ct, const LinearObjectiveOptions& o,
           std::size_t r0, std::size_t r1, double inv_n, const BlockOut<T>& out, const NextBlock<T>& then) {
    std::memset(out.gW, 0, o.K * bt.d * sizeof(T));
    std::memset(out.gb, 0, o.K * sizeof(T));
    Sums s{0.0, 0.0};
    // The first pass's rows at once (unless the block before asked for them: then these hit
    // the cache), then the next pass's during each pass (RowsAhead), and at the end the
    // first pass of the block that follows.
    RowsAhead<T> ahead{bt, is_multiclass(o.loss) ? 1 : o.K, r0, r1, bt.rows == nullptr, then.bt, then.from, then.to};
    ahead.fetch(kSub);
    for (std::size_t i = r0; i < r1; i += kSub) {
        const std::size_t n = std::min(kSub, r1 - i);
        if (!ahead.spread) ahead.fetch_to(i + 2 * kSub);
        if (ct.hi != nullptr) sub_block<true>(bt, W, b, ct, o, i, n, inv_n, out, s, ahead);
        else sub_block<false>(bt, W, b, ct, o, i, n, inv_n, out, s, ahead);
        ahead.fetch_to(i + 2 * kSub);  // what a short pass left
    }
    return s;
}

// A call's scratch, kept by the calling thread for its next call: a fit makes thousands of
// batches of one shape, and allocating (and zeroing) it every time cost about a microsecond
// a batch. Every element is written before it is read, so nothing is cleared between calls.
// Scratch larger than kKeptCells (a full batch of a large data set) is not kept.
template <class T> struct BatchScratch {
    std::vector<Cell<T>> cells;
    std::vector<Sums> sums;
    std::vector<Cell<double>> folded;
};
constexpr std::size_t kKeptCells = std::size_t(1) << 20;

template <class T>
double linear_objective(const LinearBatch<T>& bt, const T* W, const T* b, const LinearObjectiveOptions& o,
                        T* grad_W, T* grad_b) {
    const std::size_t d = bt.d, K = o.K, n = bt.n;
    const std::size_t stride = K * d + K;  // one block's gradient: W part, then b part
    const std::size_t blocks = (n + kRowBlock - 1) / kRowBlock;
    const std::size_t per_block = scratch_per_block(K);
    const bool scaled = bt.inv_scale != nullptr;
    // Block 0 reduces straight into the output; the others into scratch, added in order. Then
    // per block a pass's z, dl/dz, targets and losses; then W and b standardized.
    const std::size_t n_scratch = blocks > 1 ? (blocks - 1) * stride : 0;
    const std::size_t n_zg = per_block * (blocks > 0 ? blocks : 1);
    const std::size_t n_cells = n_scratch + n_zg + (scaled ? K * d + K : 0);
    thread_local BatchScratch<T> kept;
    BatchScratch<T> once;
    BatchScratch<T>& sc = n_cells <= kKeptCells ? kept : once;
    if (sc.cells.size() < n_cells) sc.cells.resize(n_cells);
    if (sc.sums.size() < blocks) sc.sums.resize(blocks);
    if (sc.folded.size() < (scaled ? d : 0)) sc.folded.resize(d);
    T* const scratch = &sc.cells[0].v;
    T* const zg = scratch + n_scratch;
    Sums* const sums = sc.sums.data();
    const double inv_n = n > 0 ? 1.0 / double(n) : 0.0;
    // Standardized on the fly: the rows' products take W' = W inv_scale (once per batch), and
    // x' = (x - mean) inv_scale becomes W' x - W' mean, with W' mean folded into the bias.
    // Folding a mean far larger than the spread would cancel the digits of x - mean, so the
    // rows are centred element by element by the part of the mean that must be (its value in
    // T, `centre`), unless every feature's mean is within one standard deviation of zero: then
    // W' x keeps z to about one bit of the centred sum (|x| <= |x - mean| + sd), and the
    // products skip the subtraction. The rest (`centre_lo`, and then the whole mean) goes
    // through the bias in double, and its term of the gradient, mean * sum(c), once per batch.
    T* const w_scaled = zg + n_zg;
    T* const b_folded = w_scaled + K * d;
    double* const folded = scaled && d > 0 ? &sc.folded[0].v : nullptr;  // the part of the mean that the bias takes
    const T* Wr = W;
    const T* br = b;
    Centre<T> ct{nullptr};
    if (scaled) {
        bool near_zero = true;
        for (std::size_t j = 0; j < d; ++j)
            near_zero = near_zero && std::fabs(double(bt.centre[j]) + double(bt.centre_lo[j])) *
                                             double(bt.inv_scale[j]) <= 1.0;
        if (!near_zero) ct.hi = bt.centre;
        for (std::size_t j = 0; j < d; ++j)
            folded[j] = near_zero ? double(bt.centre[j]) + double(bt.centre_lo[j]) : double(bt.centre_lo[j]);
        for (std::size_t k = 0; k < K; ++k) {
            double shift = 0.0;
            for (std::size_t j = 0; j < d; ++j) {
                const T w = W[k * d + j] * bt.inv_scale[j];
                w_scaled[k * d + j] = w;
                shift += double(w) * folded[j];
            }
            b_folded[k] = static_cast<T>(double(b[k]) - shift);
        }
        Wr = w_scaled;
        br = b_folded;
    }
    const int threads = blocks > 1 ? threads_for(n * d * K * kWorkPerElement) : 1;
    // Thread t reads blocks [t c, (t + 1) c), c = ceil(blocks / threads): the schedule
    // written out, so that each block knows the one its thread reads next, and the last one
    // the block that thread will read in the next batch (bt.next_n: its size; the same
    // thread count if it is as large). The bits do not depend on it: each block has its
    // own buffers, added in block order below.
    LinearBatch<T> next_bt = bt;
    next_bt.rows = bt.next_rows, next_bt.begin = bt.next_begin, next_bt.n = bt.next_n;
    const std::size_t next_blocks = (bt.next_n + kRowBlock - 1) / kRowBlock;
    const auto chunk_of = [](std::size_t nblocks, std::size_t nthreads) { return (nblocks + nthreads - 1) / nthreads; };
    const auto run_thread = [&](std::size_t t, std::size_t nthreads) {
        const std::size_t c = chunk_of(blocks, nthreads), b0 = t * c, b1 = std::min(blocks, b0 + c);
        const std::size_t nb0 = t * chunk_of(next_blocks, nthreads);
        for (std::size_t k = b0; k < b1; ++k) {
            T* gW = k == 0 ? grad_W : scratch + (k - 1) * stride;
            T* gb = k == 0 ? grad_b : gW + K * d;
            const std::size_t r0 = k * kRowBlock, r1 = std::min(n, r0 + kRowBlock);
            NextBlock<T> then{nullptr, 0, 0};
            if (k + 1 < b1) then = {&bt, r1, std::min(n, r1 + kSub)};
            else if (nb0 < next_blocks) then = {&next_bt, nb0 * kRowBlock, std::min(bt.next_n, nb0 * kRowBlock + kSub)};
            T* zk = zg + per_block * k;
            sums[k] = block(bt, Wr, br, ct, o, r0, r1, inv_n,
                            BlockOut<T>{gW, gb, zk, zk + K * kSub, zk + 2 * K * kSub, zk + 3 * K * kSub}, then);
        }
    };
    if (threads <= 1) {
        run_thread(0, 1);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
        run_thread(static_cast<std::size_t>(omp_get_thread_num()), static_cast<std::size_t>(omp_get_num_threads()));
#else
        run_thread(0, 1);
#endif
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
        const T* p = scratch + (k - 1) * stride;
        axpy(T(1), p, grad_W, K * d);  // 1 * x is exact: the same sums however split into vectors
        axpy(T(1), p + K * d, grad_b, K);
    }
    if (scaled)  // the rows' sums of c (x - centre), less the folded mean's sum(c) mean, then d(x')/dx
        for (std::size_t k = 0; k < K; ++k)
            for (std::size_t j = 0; j < d; ++j) {
                T& g = grad_W[k * d + j];
                g = static_cast<T>(double(g) - folded[j] * double(grad_b[k])) * bt.inv_scale[j];
            }
    double value = weight > 0.0 ? loss / weight : 0.0;
    if (o.l2 != 0.0 || o.l1 != 0.0 || o.l1_k != nullptr) {
        const T l2 = static_cast<T>(o.l2);
        double sq = 0.0, ab = 0.0;
        for (std::size_t j = 0; j < K * d; ++j) {
            sq += double(W[j]) * double(W[j]);
            ab += std::fabs(double(W[j]));
        }
        if (o.l2 != 0.0) {
            // A multi-output regression's rows one by one, as K single-output calls make them
            // (a row's tail elements are not those of the K * d whole, whose arithmetic may
            // differ: a scalar tail need not fuse its multiply-add).
            const std::size_t len = is_multi_output(o.loss) ? d : K * d;
            for (std::size_t j = 0; j < K * d; j += len) axpy(l2, W + j, grad_W + j, len);
        }
        if (o.l1_k == nullptr) {
            value += 0.5 * o.l2 * sq + o.l1 * ab;
        } else {  // each output's row of W by its own strength
            double l1 = 0.0;
            for (std::size_t k = 0; k < K; ++k) {
                double abk = 0.0;
                for (std::size_t j = 0; j < d; ++j) abk += std::fabs(double(W[k * d + j]));
                l1 += o.l1_k[k] * abk;
            }
            value += 0.5 * o.l2 * sq + l1;
        }
    }
    return value;
}

}  // namespace

template <class T> void fill_linear(KernelSet<T>& k) {
    k.linear_objective = &linear_objective<T>;
    k.scalar_losses = &scalar_losses<T>;
}

template void fill_linear<float>(KernelSet<float>&);
template void fill_linear<double>(KernelSet<double>&);

}  // namespace fastgd::FASTGD_NS
