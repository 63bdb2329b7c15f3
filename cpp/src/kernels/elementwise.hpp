// The one-pass driver every update rule runs on: for each element, load param, grad and the
// rule's NS state arrays once, apply the rule's op on whole vectors, store param and state
// once. Arrays are cut into fixed chunks shared out to the threads.
#pragma once
#include <cstddef>
#include <cstring>
#include <vector>

#include "fastgd/runtime.hpp"
#include "fastgd/tensor_ref.hpp"
#include "prefetch.hpp"
#include "simd.hpp"

namespace fastgd::FASTGD_NS {

template <class T> struct GradReader {
    Vec<T> scale, lo, hi;
    explicit GradReader(const GradTransform& t)
        : scale(Vec<T>::set1(static_cast<T>(t.scale))),
          lo(Vec<T>::set1(static_cast<T>(-t.clip_value))),
          hi(Vec<T>::set1(static_cast<T>(t.clip_value))) {}
    // The data goes second in max/min so that a NaN gradient stays NaN.
    Vec<T> operator()(Vec<T> g) const { return min(hi, max(lo, g * scale)); }
};

// The op on one block of L lanes, in place: param and grad at pb and gb (loaded and stored
// unaligned: a full block of the arrays themselves, or a tail's zero-padded copy), the NS
// states in aligned buffers (a tail's copy, or an indexed block's gathered states).
template <class T, int NS, class Op>
inline void step_block(T* pb, const T* gb, T (*sb)[Vec<T>::lanes], const Op& op, const GradReader<T>& read) {
    using V = Vec<T>;
    V p = V::load(pb);
    V s[kMaxStates]{};
    for (int k = 0; k < NS; ++k) s[k] = V::load(sb[k]);
    op(p, read(V::load(gb)), s);
    V::store(pb, p);
    for (int k = 0; k < NS; ++k) V::store(sb[k], s[k]);
}

// apply_range for states held at t.state_index: each block of lanes gathers its states into
// a vector, applies the same op, and scatters them back; the param and grad are contiguous,
// loaded and stored whole in a full block (not copied through zeroed buffers: a lazy sparse
// fit 1.06x faster). The tail is a zero-padded block, as in apply_range.
template <class T, int NS, class Op>
inline void apply_range_indexed(const TensorRef<T>& t, std::size_t begin, std::size_t end, const Op& op,
                                const GradReader<T>& read) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    constexpr int NSA = NS > 0 ? NS : 1;
    const std::int64_t* at = t.state_index;
    for (std::size_t i = begin; i < end; i += L) {
        const std::size_t r = end - i < L ? end - i : L;
        // The states two blocks on, asked for now (indexed loads from anywhere in the arrays).
        const std::size_t ahead = i + 2 * L;
        for (std::size_t l = ahead; l < ahead + L && l < end; ++l)
            for (int k = 0; k < NS; ++k) prefetch_line(t.state[k] + at[l]);
        alignas(64) T sb[NSA][L] = {};
        for (int k = 0; k < NS; ++k)
            for (std::size_t l = 0; l < r; ++l) sb[k][l] = t.state[k][static_cast<std::size_t>(at[i + l])];
        if (r == L) {
            step_block<T, NS>(t.param + i, t.grad + i, sb, op, read);
        } else {
            alignas(64) T pb[L] = {}, gb[L] = {};
            std::memcpy(pb, t.param + i, r * sizeof(T));
            std::memcpy(gb, t.grad + i, r * sizeof(T));
            step_block<T, NS>(pb, gb, sb, op, read);
            std::memcpy(t.param + i, pb, r * sizeof(T));
        }
        for (int k = 0; k < NS; ++k)
            for (std::size_t l = 0; l < r; ++l) t.state[k][static_cast<std::size_t>(at[i + l])] = sb[k][l];
    }
}

template <class T, int NS, class Op>
inline void apply_range(const TensorRef<T>& t, std::size_t begin, std::size_t end, const Op& op,
                        const GradReader<T>& read) {
    if (t.state_index != nullptr) {
        apply_range_indexed<T, NS>(t, begin, end, op, read);
        return;
    }
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    constexpr int NSA = NS > 0 ? NS : 1;
    std::size_t i = begin;
    for (; i + L <= end; i += L) {
        V p = V::load(t.param + i);
        // Always kMaxStates slots, zeroed: an op's branch for a state this configuration does
        // not use is never taken, but must not index past the array (the zeros cost nothing).
        V s[kMaxStates]{};
        for (int k = 0; k < NS; ++k) s[k] = V::load(t.state[k] + i);
        op(p, read(V::load(t.grad + i)), s);
        V::store(t.param + i, p);
        for (int k = 0; k < NS; ++k) V::store(t.state[k] + i, s[k]);
    }
    if (i < end) {
        // The tail goes through the same vector op on a zero-padded copy, so every element
        // gets the same arithmetic wherever it sits; padding lanes are discarded.
        const std::size_t r = end - i;
        alignas(64) T pb[L] = {}, gb[L] = {}, sb[NSA][L] = {};
        std::memcpy(pb, t.param + i, r * sizeof(T));
        std::memcpy(gb, t.grad + i, r * sizeof(T));
        for (int k = 0; k < NS; ++k) std::memcpy(sb[k], t.state[k] + i, r * sizeof(T));
        step_block<T, NS>(pb, gb, sb, op, read);
        std::memcpy(t.param + i, pb, r * sizeof(T));
        for (int k = 0; k < NS; ++k) std::memcpy(t.state[k] + i, sb[k], r * sizeof(T));
    }
}

struct Chunk {
    std::size_t tensor, begin, end;
};

// Fixed chunks over all arrays of a call, so that 2,000 small arrays are shared out to the
// threads as well as one large one.
template <class Sizes>
inline std::vector<Chunk> make_chunks(std::size_t count, Sizes size_of) {
    const std::size_t step = get_chunk_elements();
    std::vector<Chunk> chunks;
    for (std::size_t k = 0; k < count; ++k)
        for (std::size_t b = 0, n = size_of(k); b < n; b += step)
            chunks.push_back({k, b, b + step < n ? b + step : n});
    return chunks;
}

template <class T, int NS, class Op>
void run_rule(const TensorRef<T>* tensors, std::size_t count, const Op& op, const GradTransform& transform) {
    const GradReader<T> read(transform);
    std::size_t total = 0;
    for (std::size_t k = 0; k < count; ++k) total += tensors[k].size;
    const int threads = threads_for(total);
    if (threads <= 1) {
        for (std::size_t k = 0; k < count; ++k) apply_range<T, NS>(tensors[k], 0, tensors[k].size, op, read);
        return;
    }
    const std::vector<Chunk> chunks = make_chunks(count, [&](std::size_t k) { return tensors[k].size; });
    const auto n = static_cast<std::ptrdiff_t>(chunks.size());
    // Dynamic: when another process holds a core, the threads that run take the chunks
    // instead of waiting on a fixed share. Which thread takes a chunk never changes a bit.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (std::ptrdiff_t c = 0; c < n; ++c) {
        const Chunk& ch = chunks[static_cast<std::size_t>(c)];
        apply_range<T, NS>(tensors[ch.tensor], ch.begin, ch.end, op, read);
    }
}

}  // namespace fastgd::FASTGD_NS
