// Selects the vector types for the instruction-set level this translation unit is compiled
// for. Every kernel source is compiled once per level (see CMakeLists.txt); the build defines
// exactly one FASTGD_TARGET_* macro and matching compiler flags, and FASTGD_NS names a
// namespace of its own so the levels' symbols never collide in one library.
#pragma once

#if defined(FASTGD_TARGET_AVX512)
#define FASTGD_NS target_avx512
#define FASTGD_LEVEL_NAME "avx512"
#include "simd/vec_avx512.hpp"
#elif defined(FASTGD_TARGET_AVX2)
#define FASTGD_NS target_avx2
#define FASTGD_LEVEL_NAME "avx2"
#include "simd/vec_avx2.hpp"
#elif defined(FASTGD_TARGET_SSE2)
#define FASTGD_NS target_sse2
#define FASTGD_LEVEL_NAME "baseline"
#include "simd/vec_sse2.hpp"
#elif defined(FASTGD_TARGET_NEON)
#define FASTGD_NS target_neon
#define FASTGD_LEVEL_NAME "neon"
#include "simd/vec_neon.hpp"
#elif defined(FASTGD_TARGET_SCALAR)
#define FASTGD_NS target_scalar
#define FASTGD_LEVEL_NAME "scalar"
#include "simd/vec_scalar.hpp"
#elif defined(FASTGD_TARGET_SCALAR_FMA)
// The scalar level with a*b+c rounded once, as the FMA levels round it: never shipped, the
// reference that tests/conformance holds those levels to, bit for bit.
#define FASTGD_NS target_scalar_fma
#define FASTGD_LEVEL_NAME "scalar_fma"
#define FASTGD_SCALAR_FMA 1
#include "simd/vec_scalar.hpp"
#else
#error "compile kernel sources with exactly one FASTGD_TARGET_* definition"
#endif

// A hint to fetch the cache line at p ahead of its use; it never faults, so p may lie past
// the end of an array. An asm statement (prefetcht0, prfm), not __builtin_prefetch: GCC 12
// deletes the builtin as dead code in a loop whose only effect is the hint (the linear
// kernels' row prefetches were all gone from the binary). The builtin elsewhere; a no-op
// where the compiler has none.
inline void prefetch_line(const void* p) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __asm__ volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    __asm__ volatile("prfm pldl1keep, %0" : : "Q"(*static_cast<const char*>(p)));
#elif defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

// The same hint, into the level-2 cache only (prefetcht1, prfm pldl2keep): for data asked for
// many lines ahead of its use, such as the rows of a mini-batch a pass or two ahead. Into L1
// they evicted the lines being computed on and queued on L1's few fill buffers: with this
// hint a logistic fit's epochs ran 1.2x (rows in order) to 1.4x (rows by index) faster (1M x
// 100 float32, AVX-512, 2 threads). A stream read right after its hint (the norms' block
// sums, 2 KB ahead) keeps prefetch_line: into L2 only it took 14% longer.
inline void prefetch_line_l2(const void* p) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __asm__ volatile("prefetcht1 %0" : : "m"(*static_cast<const char*>(p)));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    __asm__ volatile("prfm pldl2keep, %0" : : "Q"(*static_cast<const char*>(p)));
#elif defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 2);
#else
    (void)p;
#endif
}
