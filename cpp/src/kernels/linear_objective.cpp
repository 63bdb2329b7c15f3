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

namespace fastgd::FASTGD_NS {
namespace {

// Rows per block: each block reduces into its own gradient buffer, and the buffers are added
// in block order, so the bits do not depend on how blocks are shared out to threads.
constexpr std::size_t kRowBlock = 256;
// Rows read ahead by index (a shuffled batch's rows are scattered over the data set: without
// this each row starts with a full memory latency), and at most this many cache lines of each.
constexpr std::size_t kAhead = 4;
constexpr std::size_t kAheadLines = 16;

// Level-local element types: no std::vector code is shared (as a weak symbol) between objects
// built for different instruction sets.
template <class T> struct Cell {
    T v;
};
struct Sums {
    double loss, weight;
};

template <class T> T dot(const T* w, const T* x, std::size_t d) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    V a0 = V::set1(T(0)), a1 = V::set1(T(0));
    std::size_t j = 0;
    for (; j + 2 * L <= d; j += 2 * L) {
        a0 = mul_add(V::load(w + j), V::load(x + j), a0);
        a1 = mul_add(V::load(w + j + L), V::load(x + j + L), a1);
    }
    if (j + L <= d) {
        a0 = mul_add(V::load(w + j), V::load(x + j), a0);
        j += L;
    }
    alignas(64) T lanes[L];
    V::store(lanes, a0 + a1);
    T r = T(0);
    for (std::size_t l = 0; l < L; ++l) r += lanes[l];
    for (; j < d; ++j) r += w[j] * x[j];
    return r;
}

// g <- g + c x
template <class T> void axpy(T c, const T* x, T* g, std::size_t d) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    const V cv = V::set1(c);
    std::size_t j = 0;
    for (; j + L <= d; j += L) V::store(g + j, mul_add(cv, V::load(x + j), V::load(g + j)));
    for (; j < d; ++j) g[j] += c * x[j];
}

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

// One block of rows [r0, r1) of the batch into gW (K x d), gb (K), zeroed here.
template <class T>
Sums block(const LinearBatch<T>& bt, const T* W, const T* b, const LinearObjectiveOptions& o, std::size_t r0,
           std::size_t r1, double inv_n, T* gW, T* gb, T* z, T* g) {
    const std::size_t d = bt.d, K = o.K;
    std::memset(gW, 0, K * d * sizeof(T));
    std::memset(gb, 0, K * sizeof(T));
    const bool multiclass = is_multiclass(o.loss);
    const std::size_t row_bytes = d * sizeof(T);
    const std::size_t lines = std::min(kAheadLines, (row_bytes + 63) / 64 + 1);
    Sums s{0.0, 0.0};
    for (std::size_t i = r0; i < r1; ++i) {
        if (bt.rows != nullptr && i + kAhead < r1) {
            const std::int64_t ra = bt.rows[i + kAhead];
            const char* p = reinterpret_cast<const char*>(bt.X + static_cast<std::size_t>(ra) * d);
            for (std::size_t l = 0; l < lines; ++l) prefetch(p + std::min(l * 64, row_bytes - 1));
            prefetch(multiclass ? static_cast<const void*>(bt.labels + ra) : static_cast<const void*>(bt.y + ra));
            if (bt.sample_weight != nullptr) prefetch(bt.sample_weight + ra);
        }
        const std::size_t r = bt.rows != nullptr ? static_cast<std::size_t>(bt.rows[i]) : bt.begin + i;
        const T* x = bt.X + r * d;
        for (std::size_t k = 0; k < K; ++k) z[k] = dot(W + k * d, x, d) + b[k];
        const double l = row_loss(o, z, multiclass ? T(0) : bt.y[r], multiclass ? bt.labels[r] : 0, g);
        const double w = bt.sample_weight != nullptr ? double(bt.sample_weight[r]) : 1.0;
        if (w == 0.0) continue;  // counts for nothing (and a NaN loss of it must not leak in)
        s.loss += w * l;
        s.weight += w;
        const double scale = w * inv_n;
        for (std::size_t k = 0; k < K; ++k) {
            const T c = static_cast<T>(scale * double(g[k]));
            axpy(c, x, gW + k * d, d);
            gb[k] += c;
        }
    }
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
    std::vector<Cell<T>> zg(2 * K * (blocks > 0 ? blocks : 1));  // per block: z and dl/dz of a row
    std::vector<Sums> sums(blocks);
    const double inv_n = n > 0 ? 1.0 / double(n) : 0.0;
    const auto run = [&](std::ptrdiff_t bi) {
        const auto k = static_cast<std::size_t>(bi);
        T* gW = k == 0 ? grad_W : &scratch[(k - 1) * stride].v;
        T* gb = k == 0 ? grad_b : gW + K * d;
        const std::size_t r0 = k * kRowBlock, r1 = std::min(n, r0 + kRowBlock);
        sums[k] = block(bt, W, b, o, r0, r1, inv_n, gW, gb, &zg[2 * K * k].v, &zg[2 * K * k + K].v);
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
