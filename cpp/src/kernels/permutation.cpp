// The shuffled epoch's permutation (fastgd/permutation.hpp). Compiled once, not per
// instruction-set level: integer code that no vector unit speeds up, whose results must not
// depend on the level anyway.
#include "fastgd/permutation.hpp"

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

namespace fastgd {
namespace {

inline std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

inline std::uint64_t splitmix64(std::uint64_t& s) {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct Xoshiro256pp {
    std::uint64_t s[4];
    explicit Xoshiro256pp(std::uint64_t seed) {
        for (auto& w : s) w = splitmix64(seed);  // never all zero: splitmix64 is a bijection of a counter
    }
    std::uint64_t next() {
        const std::uint64_t out = rotl(s[0] + s[3], 23) + s[0];
        const std::uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return out;
    }
};

// The 128-bit product x * s as (high, low) words.
inline std::uint64_t mul_wide(std::uint64_t x, std::uint64_t s, std::uint64_t& low) {
#if defined(__SIZEOF_INT128__)
    const unsigned __int128 m = static_cast<unsigned __int128>(x) * s;
    low = static_cast<std::uint64_t>(m);
    return static_cast<std::uint64_t>(m >> 64);
#elif defined(_MSC_VER) && defined(_M_X64)
    std::uint64_t high;
    low = _umul128(x, s, &high);
    return high;
#else
    const std::uint64_t x0 = x & 0xffffffffu, x1 = x >> 32, s0 = s & 0xffffffffu, s1 = s >> 32;
    const std::uint64_t p00 = x0 * s0, p01 = x0 * s1, p10 = x1 * s0, p11 = x1 * s1;
    const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    low = (mid << 32) | (p00 & 0xffffffffu);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

// A uniform draw from [0, s), s >= 1, by Lemire's method: the high word of x * s, x drawn
// again while the low word falls in the 2^64 mod s values that would bias it (rarely: the
// division that finds them only runs when the low word is below s).
inline std::uint64_t below(Xoshiro256pp& g, std::uint64_t s) {
    std::uint64_t low;
    std::uint64_t high = mul_wide(g.next(), s, low);
    if (low < s) {
        const std::uint64_t threshold = (0 - s) % s;
        while (low < threshold) high = mul_wide(g.next(), s, low);
    }
    return high;
}

inline void prefetch_write(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 1, 3);
#else
    (void)p;
#endif
}

// Positions are drawn this many steps ahead of the step that uses them, and their lines
// prefetched: each step touches one random element of a prefix that outgrows the caches, and
// a step's position does not depend on the values, so the misses of a window overlap.
constexpr std::size_t kAhead = 32;

}  // namespace

void random_permutation(std::uint64_t seed, std::int64_t* out, std::size_t n) {
    Xoshiro256pp g(seed);
    // Inside-out Fisher-Yates: after step i, out[0..i] is a uniform permutation of 0..i.
    // Step i takes j uniform in [0, i], moves out[j] to out[i] and puts i at out[j].
    std::uint64_t ahead[kAhead];
    const std::size_t first = n < kAhead ? n : kAhead;
    for (std::size_t i = 0; i < first; ++i) ahead[i] = below(g, i + 1);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t slot = i % kAhead;
        const auto j = static_cast<std::size_t>(ahead[slot]);
        if (i + kAhead < n) {
            const std::uint64_t next = below(g, i + kAhead + 1);
            ahead[slot] = next;
            prefetch_write(out + next);
        }
        // (j == i: out[i] is not read, it holds nothing yet.)
        out[i] = j == i ? static_cast<std::int64_t>(i) : out[j];
        out[j] = static_cast<std::int64_t>(i);
    }
}

}  // namespace fastgd
