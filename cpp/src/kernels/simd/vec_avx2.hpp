// AVX2 + FMA (x86-64-v3): 256-bit vectors and fused multiply-add.
#pragma once
#include <immintrin.h>

#include <cstddef>

// FASTGD_NS differs per level: every level's inline functions are distinct symbols (no ODR clash).
namespace fastgd::FASTGD_NS {

template <class T> struct Vec;

template <> struct Vec<float> {
    static constexpr std::size_t lanes = 8;
    __m256 v;
    static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
    static void store(float* p, Vec a) { _mm256_storeu_ps(p, a.v); }
    static Vec set1(float x) { return {_mm256_set1_ps(x)}; }
};

template <> struct Vec<double> {
    static constexpr std::size_t lanes = 4;
    __m256d v;
    static Vec load(const double* p) { return {_mm256_loadu_pd(p)}; }
    static void store(double* p, Vec a) { _mm256_storeu_pd(p, a.v); }
    static Vec set1(double x) { return {_mm256_set1_pd(x)}; }
};

inline Vec<float> operator+(Vec<float> a, Vec<float> b) { return {_mm256_add_ps(a.v, b.v)}; }
inline Vec<float> operator-(Vec<float> a, Vec<float> b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline Vec<float> operator*(Vec<float> a, Vec<float> b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline Vec<float> operator/(Vec<float> a, Vec<float> b) { return {_mm256_div_ps(a.v, b.v)}; }
inline Vec<float> sqrt(Vec<float> a) { return {_mm256_sqrt_ps(a.v)}; }
// a*b+c rounded once.
inline constexpr bool kFusedMulAdd = true;
inline Vec<float> mul_add(Vec<float> a, Vec<float> b, Vec<float> c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
// x86 min/max return the second operand when either is NaN: callers put the data second.
inline Vec<float> max(Vec<float> a, Vec<float> b) { return {_mm256_max_ps(a.v, b.v)}; }
inline Vec<float> min(Vec<float> a, Vec<float> b) { return {_mm256_min_ps(a.v, b.v)}; }
// maximum(a, b): the larger, or NaN when either is NaN (np.maximum, torch.maximum).
inline Vec<float> maximum(Vec<float> a, Vec<float> b) {
    // max_ps already gives b when b is NaN; where a is NaN, take a.
    return {_mm256_blendv_ps(_mm256_max_ps(a.v, b.v), a.v, _mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q))};
}
inline Vec<float> abs(Vec<float> a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
// sign(a): +1 where a > 0, -1 where a < 0, +0 for either zero, NaN for NaN (np.sign; a + 0
// turns -0 into +0 and keeps NaN).
inline Vec<float> sign(Vec<float> a) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 pos = _mm256_cmp_ps(a.v, zero, _CMP_GT_OQ), neg = _mm256_cmp_ps(a.v, zero, _CMP_LT_OQ);
    __m256 r = _mm256_blendv_ps(_mm256_add_ps(a.v, zero), _mm256_set1_ps(1.0f), pos);
    return {_mm256_blendv_ps(r, _mm256_set1_ps(-1.0f), neg)};
}

inline Vec<double> operator+(Vec<double> a, Vec<double> b) { return {_mm256_add_pd(a.v, b.v)}; }
inline Vec<double> operator-(Vec<double> a, Vec<double> b) { return {_mm256_sub_pd(a.v, b.v)}; }
inline Vec<double> operator*(Vec<double> a, Vec<double> b) { return {_mm256_mul_pd(a.v, b.v)}; }
inline Vec<double> operator/(Vec<double> a, Vec<double> b) { return {_mm256_div_pd(a.v, b.v)}; }
inline Vec<double> sqrt(Vec<double> a) { return {_mm256_sqrt_pd(a.v)}; }
inline Vec<double> mul_add(Vec<double> a, Vec<double> b, Vec<double> c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
inline Vec<double> max(Vec<double> a, Vec<double> b) { return {_mm256_max_pd(a.v, b.v)}; }
inline Vec<double> min(Vec<double> a, Vec<double> b) { return {_mm256_min_pd(a.v, b.v)}; }
inline Vec<double> maximum(Vec<double> a, Vec<double> b) {
    return {_mm256_blendv_pd(_mm256_max_pd(a.v, b.v), a.v, _mm256_cmp_pd(a.v, a.v, _CMP_UNORD_Q))};
}
inline Vec<double> abs(Vec<double> a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
inline Vec<double> sign(Vec<double> a) {
    const __m256d zero = _mm256_setzero_pd();
    const __m256d pos = _mm256_cmp_pd(a.v, zero, _CMP_GT_OQ), neg = _mm256_cmp_pd(a.v, zero, _CMP_LT_OQ);
    __m256d r = _mm256_blendv_pd(_mm256_add_pd(a.v, zero), _mm256_set1_pd(1.0), pos);
    return {_mm256_blendv_pd(r, _mm256_set1_pd(-1.0), neg)};
}

// 1 where a > 0, else 0 (NaN: 0), from vectors `one` and `zero`.
inline Vec<float> step_positive(Vec<float> a, Vec<float> one, Vec<float> zero) {
    return {_mm256_and_ps(_mm256_cmp_ps(a.v, zero.v, _CMP_GT_OQ), one.v)};
}
inline Vec<double> step_positive(Vec<double> a, Vec<double> one, Vec<double> zero) {
    return {_mm256_and_pd(_mm256_cmp_pd(a.v, zero.v, _CMP_GT_OQ), one.v)};
}

inline Vec<double> load_as_double(const double* p) { return Vec<double>::load(p); }
inline Vec<double> load_as_double(const float* p) { return {_mm256_cvtps_pd(_mm_loadu_ps(p))}; }

// The sum of the lanes, in a fixed tree order (halves, then quarters...), in registers.
inline float reduce_add(Vec<float> a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55)));
}
inline double reduce_add(Vec<double> a) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// 2^n for integral n in the normal exponent range (n from an exponent reduction).
inline Vec<float> pow2_int(Vec<float> n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}
inline Vec<double> pow2_int(Vec<double> n) {
    const __m256i e = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n.v)), _mm256_set1_epi64x(1023));
    return {_mm256_castsi256_pd(_mm256_slli_epi64(e, 52))};
}

}  // namespace fastgd::FASTGD_NS
