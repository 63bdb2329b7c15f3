// Norms (for clipping by a global norm) and the in-place scale and clamp of clip_grad_*_.
// Compiled once per instruction-set level.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "fastgd/norms.hpp"
#include "elementwise.hpp"
#include "update_rules.hpp"

namespace fastgd::FASTGD_NS {
namespace {

// Norms are summed in blocks of this many elements: each block's partial sum depends only on
// its data, and the partials are added in a fixed order, so the bits never depend on threads.
constexpr std::size_t kNormBlock = 4096;
static_assert(kChunkElements % kNormBlock == 0, "a chunk holds whole norm blocks");

using VD = Vec<double>;

// How far ahead of the loads the norm pass asks for cache lines: far enough that a line's
// miss has started well before the loads reach it, near enough that it is still in cache when
// they do. The pass is not sensitive to the exact distance within that range.
constexpr std::size_t kNormPrefetchBytes = 2048;

// A block's partial sum. A type of this level's own, so that no std::vector<double> code is
// shared (as a weak symbol) between objects built with different instruction sets.
struct Partial {
    double value;
};

// Partial of one block: sum |x|^p. The kind is a template parameter so that the inner loop is
// loads, converts and FMAs only (a switch per vector there made the 2-norm pass compute-bound,
// well short of the memory bandwidth).
template <NormKind K, class T>
double block_sum(const T* x, std::size_t n) {
    constexpr std::size_t L = VD::lanes;
    VD acc[4] = {VD::set1(0.0), VD::set1(0.0), VD::set1(0.0), VD::set1(0.0)};
    auto add = [&](VD& a, VD v) {
        if constexpr (K == NormKind::one) a = a + abs(v);
        else a = mul_add(v, v, a);
    };
    std::size_t i = 0;
    for (; i + 4 * L <= n; i += 4 * L) {
        // A read-only pass over one array: on one core the hardware prefetcher alone keeps
        // too few lines in flight to reach the memory bandwidth, so the pass asks for each line
        // kNormPrefetchBytes ahead, and its miss overlaps the loads of the lines before it.
        const char* ahead = reinterpret_cast<const char*>(x + i) + kNormPrefetchBytes;
        for (std::size_t b = 0; b < 4 * L * sizeof(T); b += 64) prefetch_line(ahead + b);
        for (int u = 0; u < 4; ++u) add(acc[u], load_as_double(x + i + u * L));
    }
    for (; i + L <= n; i += L) add(acc[0], load_as_double(x + i));
    if (i < n) {
        alignas(64) T pad[L] = {};
        std::memcpy(pad, x + i, (n - i) * sizeof(T));
        add(acc[0], load_as_double(pad));
    }
    alignas(64) double lanes[4][L];
    for (int u = 0; u < 4; ++u) VD::store(lanes[u], acc[u]);
    double r = 0.0;
    for (std::size_t l = 0; l < L; ++l)
        for (int u = 0; u < 4; ++u) r = r + lanes[u][l];
    return r;
}

// Partial of one block for the inf-norm: max |x|, NaN if any element is NaN. Exact in T, so
// it runs on T vectors (twice the lanes of double for float) with no conversion. A plain max
// can drop a NaN, so each accumulator has a probe beside it, a running sum of |x| (>= 0, so
// it can reach Inf but only a NaN makes it NaN). One probe for all four accumulators would be
// one serial add chain, and the pass would wait on its latency; a probe per accumulator keeps
// the four chains independent. Probes rather than the NaN-propagating maximum(): three
// operations per vector where maximum() takes four (six without blendv on SSE2).
template <class T>
double block_max(const T* x, std::size_t n) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    V acc[4] = {V::set1(T(0)), V::set1(T(0)), V::set1(T(0)), V::set1(T(0))};
    V probe[4] = {V::set1(T(0)), V::set1(T(0)), V::set1(T(0)), V::set1(T(0))};
    auto add = [&](int u, V v) {
        const V av = abs(v);
        acc[u] = max(acc[u], av);
        probe[u] = probe[u] + av;
    };
    std::size_t i = 0;
    for (; i + 4 * L <= n; i += 4 * L) {
        const char* ahead = reinterpret_cast<const char*>(x + i) + kNormPrefetchBytes;  // as in block_sum
        for (std::size_t b = 0; b < 4 * L * sizeof(T); b += 64) prefetch_line(ahead + b);
        for (int u = 0; u < 4; ++u) add(u, V::load(x + i + u * L));
    }
    for (; i + L <= n; i += L) add(0, V::load(x + i));
    if (i < n) {
        alignas(64) T pad[L] = {};
        std::memcpy(pad, x + i, (n - i) * sizeof(T));
        add(0, V::load(pad));
    }
    const V pr = (probe[0] + probe[1]) + (probe[2] + probe[3]);
    alignas(64) T probes[L];
    V::store(probes, pr);
    for (std::size_t l = 0; l < L; ++l)
        if (std::isnan(probes[l])) return std::numeric_limits<double>::quiet_NaN();
    const V m = maximum(maximum(acc[0], acc[1]), maximum(acc[2], acc[3]));
    alignas(64) T lanes[L];
    V::store(lanes, m);
    double r = 0.0;
    for (std::size_t l = 0; l < L; ++l) {
        if (std::isnan(lanes[l])) return std::numeric_limits<double>::quiet_NaN();
        r = std::fmax(r, static_cast<double>(lanes[l]));
    }
    return r;
}

template <class T>
double block_partial(const T* x, std::size_t n, NormKind kind, double p) {
    switch (kind) {
        case NormKind::one: return block_sum<NormKind::one>(x, n);
        case NormKind::two: return block_sum<NormKind::two>(x, n);
        case NormKind::inf: return block_max(x, n);
        default: {
            double s = 0.0;
            for (std::size_t i = 0; i < n; ++i) s += std::pow(std::fabs(static_cast<double>(x[i])), p);
            return s;
        }
    }
}

template <class T>
double norm_power_sum(const T* const* x, const std::size_t* sizes, std::size_t count, NormKind kind, double p) {
    std::size_t total = 0, blocks = 0;
    for (std::size_t k = 0; k < count; ++k) {
        total += sizes[k];
        blocks += (sizes[k] + kNormBlock - 1) / kNormBlock;
    }
    // Every block's partial is stored, then added in order, whatever the thread count.
    std::vector<Partial> partial(blocks);
    std::vector<Chunk> work;
    work.reserve(blocks);
    for (std::size_t k = 0; k < count; ++k)
        for (std::size_t b = 0; b < sizes[k]; b += kNormBlock)
            work.push_back({k, b, b + kNormBlock < sizes[k] ? b + kNormBlock : sizes[k]});
    const auto n = static_cast<std::ptrdiff_t>(work.size());
    const auto one = [&](std::ptrdiff_t w) {
        const Chunk& c = work[static_cast<std::size_t>(w)];
        partial[static_cast<std::size_t>(w)].value = block_partial(x[c.tensor] + c.begin, c.end - c.begin, kind, p);
    };
    // Serial calls stay out of OpenMP: entering a region, even with if(false), costs more than
    // a small step's whole kernel.
    const int threads = threads_for(total);
    if (threads <= 1) {
        for (std::ptrdiff_t w = 0; w < n; ++w) one(w);
    } else {
        // Blocks are claimed a chunk's worth at a time (kChunkElements, as the update rules
        // share out work): claiming each block alone costs a trip to the shared loop counter
        // (its cache line passing between the cores) per block and interleaves the threads'
        // reads, where a chunk's worth gives each thread a contiguous run of blocks; dynamic,
        // so that a thread whose core is busy elsewhere does not hold up the rest.
#pragma omp parallel for schedule(dynamic, kChunkElements / kNormBlock) num_threads(threads)
        for (std::ptrdiff_t w = 0; w < n; ++w) one(w);
    }
    double r = 0.0;
    for (const Partial& v : partial) r = combine_power_sums(r, v.value, kind);
    return r;
}

template <class T, class Op>
void for_each_vector(T* const* x, const std::size_t* sizes, std::size_t count, Op op) {
    std::size_t total = 0;
    for (std::size_t k = 0; k < count; ++k) total += sizes[k];
    const std::vector<Chunk> chunks = make_chunks(count, [&](std::size_t k) { return sizes[k]; });
    const auto n = static_cast<std::ptrdiff_t>(chunks.size());
    const int threads = threads_for(total);
    constexpr std::size_t L = Vec<T>::lanes;
    const auto one = [&](std::ptrdiff_t c) {
        const Chunk& ch = chunks[static_cast<std::size_t>(c)];
        T* a = x[ch.tensor];
        std::size_t i = ch.begin;
        for (; i + L <= ch.end; i += L) Vec<T>::store(a + i, op(Vec<T>::load(a + i)));
        if (i < ch.end) {
            alignas(64) T pad[L] = {};
            std::memcpy(pad, a + i, (ch.end - i) * sizeof(T));
            Vec<T>::store(pad, op(Vec<T>::load(pad)));
            std::memcpy(a + i, pad, (ch.end - i) * sizeof(T));
        }
    };
    if (threads <= 1) {  // as in norm_power_sum
        for (std::ptrdiff_t c = 0; c < n; ++c) one(c);
    } else {
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (std::ptrdiff_t c = 0; c < n; ++c) one(c);
    }
}

template <class T> void scale(T* const* x, const std::size_t* sizes, std::size_t count, double factor) {
    const Vec<T> f = Vec<T>::set1(static_cast<T>(factor));
    for_each_vector(x, sizes, count, [f](Vec<T> v) { return v * f; });
}

template <class T> void clamp(T* const* x, const std::size_t* sizes, std::size_t count, double clip_value) {
    const GradReader<T> read(GradTransform{1.0, clip_value});
    for_each_vector(x, sizes, count, [&read](Vec<T> v) { return read(v); });
}

}  // namespace

template <class T> void fill_reductions(KernelSet<T>& k) {
    k.norm_power_sum = &norm_power_sum<T>;
    k.scale = &scale<T>;
    k.clamp = &clamp<T>;
}

template void fill_reductions<float>(KernelSet<float>&);
template void fill_reductions<double>(KernelSet<double>&);

}  // namespace fastgd::FASTGD_NS
