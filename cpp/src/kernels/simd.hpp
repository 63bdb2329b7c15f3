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

#include "prefetch.hpp"
