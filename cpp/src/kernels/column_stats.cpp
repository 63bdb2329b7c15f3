// Column statistics in one read of X (fastgd/column_stats.hpp): weighted means and variances
// merged by Chan et al.'s formulas over fixed blocks of rows, and the first NaN and infinity.
// Compiled once per instruction-set level.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "fastgd/column_stats.hpp"
#include "fastgd/runtime.hpp"
#include "update_rules.hpp"

namespace fastgd::FASTGD_NS {
namespace {

using VD = Vec<double>;
constexpr std::size_t L = VD::lanes;
// Column vectors summed side by side down a tile's rows: independent add chains, so that the
// loop waits on the loads, not on one accumulator's latency.
constexpr std::size_t kGroup = 4;
// A block's rows are read in tiles of about this many bytes: the tile's second pass (its
// centred squares) reads it from L1, so X is read from memory once.
constexpr std::size_t kTileBytes = 16384;
constexpr std::int64_t kNone = INT64_MAX;

// Zeroed doubles: a type of this level's own, so that no std::vector<double> code is shared
// (as a weak symbol) between objects built with different instruction sets.
struct Doubles {
    double* p;
    explicit Doubles(std::size_t n) : p(new double[n]()) {}
    ~Doubles() { delete[] p; }
    Doubles(const Doubles&) = delete;
    Doubles& operator=(const Doubles&) = delete;
};

// Columns c..c+k of a row (k <= L) as doubles, zero-padded: every column goes through the same
// lane arithmetic, wherever it sits among the vectors, so its bits do not depend on the others.
template <class T> inline VD load_columns(const T* x, std::size_t k) {
    if (k == L) return load_as_double(x);
    alignas(64) T pad[L] = {};
    for (std::size_t i = 0; i < k; ++i) pad[i] = x[i];
    return load_as_double(pad);
}

// A tile's second pass, from cache, for the columns [c, c + NV * L + tail): the sums of
// w * (x - mean)^2 down the rows (weights of 1 when !WEIGHTED: the same bits as weights of 1,
// since w * v then rounds as v), into out[c...].
//
// The tail's vector is the row's last L columns (overlapping the vector before it) when the
// row has that many: a padded copy would be written and read back per row, and a vector load
// of narrower stores waits for them to retire (a failed store-to-load forward). Each lane
// computes its own column either way, so the bits are the same.
template <std::size_t NV, bool WEIGHTED, class T>
void tile_pass(const T* X, std::size_t rows, std::size_t cols, std::size_t c, std::size_t tail, const double* w,
               const double* mean, double* out) {
    constexpr std::size_t N = NV + 1;  // room for the tail vector
    const bool overlap = cols >= L;
    const std::size_t tail_col = overlap ? cols - L : c + NV * L;  // the tail vector's first column
    VD acc[N], m[N];
    for (std::size_t v = 0; v < N; ++v) acc[v] = m[v] = VD::set1(0.0);
    for (std::size_t v = 0; v < NV; ++v) m[v] = VD::load(mean + c + v * L);
    if (tail) m[NV] = VD::load(mean + tail_col);  // mean is padded to whole vectors
    for (std::size_t r = 0; r < rows; ++r) {
        const T* x = X + r * cols + c;
        VD wr = VD::set1(1.0);
        if constexpr (WEIGHTED) wr = VD::set1(w[r]);
        const auto add = [&](std::size_t v, VD xv) {
            const VD d = xv - m[v], t = d * d;
            if constexpr (WEIGHTED) acc[v] = mul_add(wr, t, acc[v]);
            else acc[v] = acc[v] + t;
        };
        for (std::size_t v = 0; v < NV; ++v) add(v, load_as_double(x + v * L));
        if (tail) add(NV, overlap ? load_as_double(X + r * cols + tail_col) : load_columns(x + NV * L, tail));
    }
    for (std::size_t v = 0; v < NV; ++v) VD::store(out + c + v * L, acc[v]);
    if (tail) {
        alignas(64) double lanes[L];
        VD::store(lanes, acc[NV]);
        const std::size_t skip = overlap ? L - tail : 0;  // lanes of columns the other vectors hold
        for (std::size_t l = 0; l < tail; ++l) out[c + NV * L + l] = lanes[skip + l];
    }
}

// The tile's second pass over all columns, from cache: a few column vectors at a time down
// the rows, their sums in registers.
template <bool WEIGHTED, class T>
void tile_columns(const T* X, std::size_t rows, std::size_t cols, const double* w, const double* mean, double* out) {
    std::size_t c = 0;
    for (; c + kGroup * L <= cols; c += kGroup * L) tile_pass<kGroup, WEIGHTED>(X, rows, cols, c, 0, w, mean, out);
    const std::size_t rest = cols - c, full = rest / L, tail = rest % L;
    switch (full) {  // what is left: fewer than kGroup vectors, the last one maybe partial
        case 0: if (tail) tile_pass<0, WEIGHTED>(X, rows, cols, c, tail, w, mean, out); break;
        case 1: tile_pass<1, WEIGHTED>(X, rows, cols, c, tail, w, mean, out); break;
        case 2: tile_pass<2, WEIGHTED>(X, rows, cols, c, tail, w, mean, out); break;
        default: tile_pass<3, WEIGHTED>(X, rows, cols, c, tail, w, mean, out); break;
    }
    static_assert(kGroup == 4, "the switch above covers 0..kGroup-1 vectors");
}

// The tile's first pass, sum w * x per column (out, padded to whole vectors): row after row,
// so that the reads from memory are sequential, which the hardware prefetcher follows (going
// down the rows a few columns at a time, as the second pass does, it does not, and the pass
// waits on memory). The sums of the whole vectors go through out (in L1), the tail's stays
// in a register.
template <bool WEIGHTED, class T>
void tile_sums(const T* X, std::size_t rows, std::size_t cols, const double* w, double* out) {
    const std::size_t full = cols / L, tail = cols % L;
    const bool overlap = cols >= L;
    const std::size_t tail_col = overlap ? cols - L : full * L;
    for (std::size_t j = 0; j < full * L; j += L) VD::store(out + j, VD::set1(0.0));
    VD acc = VD::set1(0.0);
    for (std::size_t r = 0; r < rows; ++r) {
        const T* x = X + r * cols;
        VD wr = VD::set1(1.0);
        if constexpr (WEIGHTED) wr = VD::set1(w[r]);
        for (std::size_t v = 0; v < full; ++v) {
            const VD xv = load_as_double(x + v * L);
            const VD a = VD::load(out + v * L);
            if constexpr (WEIGHTED) VD::store(out + v * L, mul_add(wr, xv, a));
            else VD::store(out + v * L, a + xv);
        }
        if (tail) {
            const VD xv = overlap ? load_as_double(x + tail_col) : load_columns(x + tail_col, tail);
            if constexpr (WEIGHTED) acc = mul_add(wr, xv, acc);
            else acc = acc + xv;
        }
    }
    if (tail) {
        alignas(64) double lanes[L];
        VD::store(lanes, acc);
        const std::size_t skip = overlap ? L - tail : 0;
        for (std::size_t l = 0; l < tail; ++l) out[full * L + l] = lanes[skip + l];
    }
}

// The first NaN and infinity of a tile (flat indices from `base`), into nan/inf if earlier.
template <class T>
void find_in_tile(const T* X, std::size_t n, std::int64_t base, std::int64_t& nan, std::int64_t& inf) {
    for (std::size_t i = 0; i < n; ++i) {
        const T v = X[i];
        if (std::isnan(v)) {
            if (nan == kNone) nan = base + static_cast<std::int64_t>(i);
        } else if (std::isinf(v)) {
            if (inf == kNone) inf = base + static_cast<std::int64_t>(i);
        }
    }
}

// One block's moments: weight, mean and variance (cols, padded to pc), and its first NaN and
// infinity. Tiles of rows are summed (two passes, the second from L1) and merged in order by
// Chan et al.'s formulas on sums of squares, which depend on the block's rows only.
struct BlockResult {
    double weight;
    std::int64_t nan, inf;
};

template <bool WEIGHTED, class T>
BlockResult block_moments(const T* X, std::size_t rows, std::size_t cols, std::size_t pc, const double* w,
                          std::int64_t base, double* mean, double* var) {
    const std::size_t tile = std::max<std::size_t>(1, kTileBytes / (cols * sizeof(T)));
    Doubles scratch(2 * pc);
    double* tm = scratch.p;       // the tile's sums, then its means
    double* tm2 = scratch.p + pc;  // the tile's sums of squared deviations
    double* m2 = var;              // the block's sums of squared deviations, until the end
    BlockResult res{0.0, kNone, kNone};
    for (std::size_t r0 = 0; r0 < rows; r0 += tile) {
        const std::size_t n = std::min(tile, rows - r0);
        const T* x = X + r0 * cols;
        const double* wt = WEIGHTED ? w + r0 : nullptr;
        tile_sums<WEIGHTED>(x, n, cols, wt, tm);
        // A NaN or an infinity makes its column's sum non-finite (at weight 0 too: 0 * inf is
        // NaN); so does an overflow of finite values, which the scan then does not find.
        bool finite = true;
        for (std::size_t j = 0; j < cols; ++j) finite = finite && std::isfinite(tm[j]);
        if (!finite) find_in_tile(x, n * cols, base + static_cast<std::int64_t>(r0 * cols), res.nan, res.inf);
        double tw = static_cast<double>(n);
        if constexpr (WEIGHTED) {
            tw = 0.0;
            for (std::size_t r = 0; r < n; ++r) tw = tw + wt[r];
        }
        if (!(tw > 0.0)) continue;
        const VD tv = VD::set1(tw);
        for (std::size_t j = 0; j < pc; j += L) VD::store(tm + j, VD::load(tm + j) / tv);
        tile_columns<WEIGHTED>(x, n, cols, wt, tm, tm2);
        if (res.weight == 0.0) {
            std::memcpy(mean, tm, pc * sizeof(double));
            std::memcpy(m2, tm2, pc * sizeof(double));
            res.weight = tw;
            continue;
        }
        const double total = res.weight + tw;
        const VD f = VD::set1(tw / total), g = VD::set1(res.weight * tw / total);
        for (std::size_t j = 0; j < pc; j += L) {
            const VD ma = VD::load(mean + j), delta = VD::load(tm + j) - ma;
            VD::store(mean + j, ma + delta * f);
            VD::store(m2 + j, (VD::load(m2 + j) + VD::load(tm2 + j)) + (delta * delta) * g);
        }
        res.weight = total;
    }
    if (res.weight > 0.0) {
        const VD tv = VD::set1(res.weight);
        for (std::size_t j = 0; j < pc; j += L) VD::store(var + j, VD::load(m2 + j) / tv);
    }
    return res;
}

// Block b's moments merged into the running ones (weight, mean, var): RunningMoments's
// formulas, operation for operation, so that blocks merged here and chunks merged there agree.
void merge_block(double& weight, double* mean, double* var, double wb, const double* mb, const double* vb,
                 std::size_t cols) {
    if (weight == 0.0) {
        std::memcpy(mean, mb, cols * sizeof(double));
        std::memcpy(var, vb, cols * sizeof(double));
        weight = wb;
        return;
    }
    const double total = weight + wb, f = wb / total, g = weight * wb / total;
    for (std::size_t j = 0; j < cols; ++j) {
        const double delta = mb[j] - mean[j];
        const double v = ((weight * var[j] + wb * vb[j]) + (delta * delta) * g) / total;
        var[j] = v < 0.0 ? 0.0 : v;
        mean[j] = mean[j] + delta * f;
    }
    weight = total;
}

template <class T>
ColumnStats column_stats(const T* X, std::size_t rows, std::size_t cols, const double* w, std::size_t block_rows,
                         double* mean, double* var) {
    ColumnStats out{0.0, -1, -1};
    if (rows == 0 || cols == 0) return out;
    block_rows = std::max<std::size_t>(1, block_rows);
    const std::size_t pc = (cols + L - 1) / L * L;
    const std::size_t blocks = (rows + block_rows - 1) / block_rows;
    const int threads = threads_for(rows * cols);
    // Blocks are computed a wave at a time (in parallel), then merged in order: the memory
    // held for block results is a wave's, whatever the number of blocks.
    const std::size_t wave = threads <= 1 ? 1 : 8 * static_cast<std::size_t>(threads);
    const std::size_t slots = std::min(wave, blocks);
    Doubles results(slots * 2 * pc);
    struct Slot {
        BlockResult r;
    };
    Slot* slot = new Slot[slots];
    std::int64_t nan = kNone, inf = kNone;
    for (std::size_t b0 = 0; b0 < blocks; b0 += wave) {
        const auto nb = static_cast<std::ptrdiff_t>(std::min(wave, blocks - b0));
        const auto one = [&](std::ptrdiff_t i) {
            const std::size_t b = b0 + static_cast<std::size_t>(i), r0 = b * block_rows;
            const std::size_t n = std::min(block_rows, rows - r0);
            double* m = results.p + static_cast<std::size_t>(i) * 2 * pc;
            const auto base = static_cast<std::int64_t>(r0 * cols);
            slot[i].r = w ? block_moments<true>(X + r0 * cols, n, cols, pc, w + r0, base, m, m + pc)
                          : block_moments<false>(X + r0 * cols, n, cols, pc, nullptr, base, m, m + pc);
        };
        // Serial calls stay out of OpenMP (entering a region costs more than a small call).
        if (threads <= 1) {
            for (std::ptrdiff_t i = 0; i < nb; ++i) one(i);
        } else {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
            for (std::ptrdiff_t i = 0; i < nb; ++i) one(i);
        }
        for (std::ptrdiff_t i = 0; i < nb; ++i) {
            const BlockResult& r = slot[i].r;
            nan = std::min(nan, r.nan);
            inf = std::min(inf, r.inf);
            if (r.weight > 0.0) {
                const double* m = results.p + static_cast<std::size_t>(i) * 2 * pc;
                merge_block(out.weight, mean, var, r.weight, m, m + pc, cols);
            }
        }
    }
    delete[] slot;
    out.first_nan = nan == kNone ? -1 : nan;
    out.first_inf = inf == kNone ? -1 : inf;
    return out;
}

// Whether a block holds only finite values: x * 0 is 0 for finite x and NaN otherwise, and a
// NaN stays in the sum; in T, with no conversion.
template <class T> bool block_finite(const T* x, std::size_t n) {
    using V = Vec<T>;
    constexpr std::size_t LT = V::lanes;
    const V zero = V::set1(T(0));
    V acc[4] = {zero, zero, zero, zero};
    std::size_t i = 0;
    for (; i + 4 * LT <= n; i += 4 * LT) {
        // Ahead of the loads, as the norm pass does (reductions.cpp): one core's hardware
        // prefetcher alone keeps too few lines in flight for the memory bandwidth.
        const char* ahead = reinterpret_cast<const char*>(x + i) + 2048;
        for (std::size_t b = 0; b < 4 * LT * sizeof(T); b += 64) prefetch_line(ahead + b);
        for (std::size_t u = 0; u < 4; ++u) acc[u] = acc[u] + V::load(x + i + u * LT) * zero;
    }
    for (; i + LT <= n; i += LT) acc[0] = acc[0] + V::load(x + i) * zero;
    bool ok = true;
    for (; i < n; ++i) ok = ok && std::isfinite(x[i]);
    alignas(64) T lanes[LT];
    V::store(lanes, (acc[0] + acc[1]) + (acc[2] + acc[3]));
    for (std::size_t l = 0; l < LT; ++l) ok = ok && lanes[l] == T(0);
    return ok;
}

template <class T> void find_nonfinite(const T* x, std::size_t n, std::int64_t* first_nan, std::int64_t* first_inf) {
    constexpr std::size_t kBlock = 16384;
    const auto blocks = static_cast<std::ptrdiff_t>((n + kBlock - 1) / kBlock);
    std::int64_t nan = kNone, inf = kNone;
    const auto one = [&](std::ptrdiff_t b, std::int64_t& bn, std::int64_t& bi) {
        const std::size_t i0 = static_cast<std::size_t>(b) * kBlock, m = std::min(kBlock, n - i0);
        if (!block_finite(x + i0, m)) find_in_tile(x + i0, m, static_cast<std::int64_t>(i0), bn, bi);
    };
    const int threads = threads_for(n);
    if (threads <= 1) {
        for (std::ptrdiff_t b = 0; b < blocks; ++b) one(b, nan, inf);
    } else {
        // The first positions are minima over the blocks: the same for any thread count.
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) reduction(min : nan, inf)
        for (std::ptrdiff_t b = 0; b < blocks; ++b) {
            std::int64_t bn = kNone, bi = kNone;
            one(b, bn, bi);
            nan = std::min(nan, bn);
            inf = std::min(inf, bi);
        }
    }
    *first_nan = nan == kNone ? -1 : nan;
    *first_inf = inf == kNone ? -1 : inf;
}

}  // namespace

template <class T> void fill_column_stats(KernelSet<T>& k) {
    k.column_stats = &column_stats<T>;
    k.find_nonfinite = &find_nonfinite<T>;
}

template void fill_column_stats<float>(KernelSet<float>&);
template void fill_column_stats<double>(KernelSet<double>&);

}  // namespace fastgd::FASTGD_NS
