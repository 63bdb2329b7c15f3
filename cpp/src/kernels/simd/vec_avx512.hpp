// AVX-512F (x86-64-v4 subset): 512-bit vectors, FMA, mask registers.
#pragma once
#include <immintrin.h>

#include <cstddef>

// FASTGD_NS differs per level: every level's inline functions are distinct symbols (no ODR clash).
namespace fastgd::FASTGD_NS {

template <class T> struct Vec;

template <> struct Vec<float> {
    static constexpr std::size_t lanes = 16;
    __m512 v;
    static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
    static void store(float* p, Vec a) { _mm512_storeu_ps(p, a.v); }
    static Vec set1(float x) { return {_mm512_set1_ps(x)}; }
};

template <> struct Vec<double> {
    static constexpr std::size_t lanes = 8;
    __m512d v;
    static Vec load(const double* p) { return {_mm512_loadu_pd(p)}; }
    static void store(double* p, Vec a) { _mm512_storeu_pd(p, a.v); }
    static Vec set1(double x) { return {_mm512_set1_pd(x)}; }
};

inline Vec<float> operator+(Vec<float> a, Vec<float> b) { return {_mm512_add_ps(a.v, b.v)}; }
inline Vec<float> operator-(Vec<float> a, Vec<float> b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline Vec<float> operator*(Vec<float> a, Vec<float> b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline Vec<float> operator/(Vec<float> a, Vec<float> b) { return {_mm512_div_ps(a.v, b.v)}; }
inline Vec<float> sqrt(Vec<float> a) { return {_mm512_sqrt_ps(a.v)}; }
// a*b+c rounded once.
inline constexpr bool kFusedMulAdd = true;
inline Vec<float> mul_add(Vec<float> a, Vec<float> b, Vec<float> c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
// Same NaN convention as the other x86 levels: the second operand is returned when unordered.
inline Vec<float> max(Vec<float> a, Vec<float> b) { return {_mm512_max_ps(a.v, b.v)}; }
inline Vec<float> min(Vec<float> a, Vec<float> b) { return {_mm512_min_ps(a.v, b.v)}; }
// maximum(a, b): the larger, or NaN when either is NaN (np.maximum, torch.maximum).
inline Vec<float> maximum(Vec<float> a, Vec<float> b) {
    // max_ps already gives b when b is NaN; where a is NaN, take a.
    return {_mm512_mask_mov_ps(_mm512_max_ps(a.v, b.v), _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q), a.v)};
}
inline Vec<float> abs(Vec<float> a) { return {_mm512_abs_ps(a.v)}; }
// sign(a): +1, -1, +0 for either zero, NaN for NaN (np.sign; a + 0 turns -0 into +0).
inline Vec<float> sign(Vec<float> a) {
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 pos = _mm512_cmp_ps_mask(a.v, zero, _CMP_GT_OQ);
    const __mmask16 neg = _mm512_cmp_ps_mask(a.v, zero, _CMP_LT_OQ);
    __m512 r = _mm512_mask_blend_ps(pos, _mm512_add_ps(a.v, zero), _mm512_set1_ps(1.0f));
    return {_mm512_mask_blend_ps(neg, r, _mm512_set1_ps(-1.0f))};
}

inline Vec<double> operator+(Vec<double> a, Vec<double> b) { return {_mm512_add_pd(a.v, b.v)}; }
inline Vec<double> operator-(Vec<double> a, Vec<double> b) { return {_mm512_sub_pd(a.v, b.v)}; }
inline Vec<double> operator*(Vec<double> a, Vec<double> b) { return {_mm512_mul_pd(a.v, b.v)}; }
inline Vec<double> operator/(Vec<double> a, Vec<double> b) { return {_mm512_div_pd(a.v, b.v)}; }
inline Vec<double> sqrt(Vec<double> a) { return {_mm512_sqrt_pd(a.v)}; }
inline Vec<double> mul_add(Vec<double> a, Vec<double> b, Vec<double> c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
inline Vec<double> max(Vec<double> a, Vec<double> b) { return {_mm512_max_pd(a.v, b.v)}; }
inline Vec<double> min(Vec<double> a, Vec<double> b) { return {_mm512_min_pd(a.v, b.v)}; }
inline Vec<double> maximum(Vec<double> a, Vec<double> b) {
    return {_mm512_mask_mov_pd(_mm512_max_pd(a.v, b.v), _mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q), a.v)};
}
inline Vec<double> abs(Vec<double> a) { return {_mm512_abs_pd(a.v)}; }
inline Vec<double> sign(Vec<double> a) {
    const __m512d zero = _mm512_setzero_pd();
    const __mmask8 pos = _mm512_cmp_pd_mask(a.v, zero, _CMP_GT_OQ);
    const __mmask8 neg = _mm512_cmp_pd_mask(a.v, zero, _CMP_LT_OQ);
    __m512d r = _mm512_mask_blend_pd(pos, _mm512_add_pd(a.v, zero), _mm512_set1_pd(1.0));
    return {_mm512_mask_blend_pd(neg, r, _mm512_set1_pd(-1.0))};
}

// 1 where a > 0, else 0 (NaN: 0), from vectors `one` and `zero`.
inline Vec<float> step_positive(Vec<float> a, Vec<float> one, Vec<float> zero) {
    return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, zero.v, _CMP_GT_OQ), zero.v, one.v)};
}
inline Vec<double> step_positive(Vec<double> a, Vec<double> one, Vec<double> zero) {
    return {_mm512_mask_blend_pd(_mm512_cmp_pd_mask(a.v, zero.v, _CMP_GT_OQ), zero.v, one.v)};
}

inline Vec<double> load_as_double(const double* p) { return Vec<double>::load(p); }
inline Vec<double> load_as_double(const float* p) { return {_mm512_cvtps_pd(_mm256_loadu_ps(p))}; }

// The sum of the lanes, in the compiler's fixed tree order, in registers.
inline float reduce_add(Vec<float> a) { return _mm512_reduce_add_ps(a.v); }
inline double reduce_add(Vec<double> a) { return _mm512_reduce_add_pd(a.v); }

// 2^n for integral n in the normal exponent range (n from an exponent reduction).
inline Vec<float> pow2_int(Vec<float> n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
}
inline Vec<double> pow2_int(Vec<double> n) {
    const __m512i e = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_cvtpd_epi32(n.v)), _mm512_set1_epi64(1023));
    return {_mm512_castsi512_pd(_mm512_slli_epi64(e, 52))};
}

}  // namespace fastgd::FASTGD_NS
