// A uniformly random permutation of 0..n-1, drawn from a 64-bit seed: the order in which a
// shuffled epoch visits the samples.
//
// The generator is xoshiro256++ (Blackman and Vigna), its state expanded from the seed by
// splitmix64 as its authors recommend; each position is drawn by Lemire's nearly divisionless
// method (unbiased: "Fast Random Integer Generation in an Interval", 2019) in an inside-out
// Fisher-Yates shuffle. Integer arithmetic only: the same seed gives the same permutation on
// every CPU and instruction-set level, for any thread count.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgd {

// out[0..n) <- a permutation of 0..n-1 determined by seed; reads nothing of out.
void random_permutation(std::uint64_t seed, std::int64_t* out, std::size_t n);

}  // namespace fastgd
