// x86-64 baseline: SSE2 is part of every x86-64 CPU, so this level runs anywhere.
#pragma once
#include <emmintrin.h>

#include <cstddef>

// FASTGD_NS differs per level: every level's inline functions are distinct symbols (no ODR clash).
namespace fastgd::FASTGD_NS {

template <class T> struct Vec;

template <> struct Vec<float> {
    static constexpr std::size_t lanes = 4;
    __m128 v;
    static Vec load(const float* p) { return {_mm_loadu_ps(p)}; }
    static void store(float* p, Vec a) { _mm_storeu_ps(p, a.v); }
    static Vec set1(float x) { return {_mm_set1_ps(x)}; }
};

template <> struct Vec<double> {
    static constexpr std::size_t lanes = 2;
    __m128d v;
    static Vec load(const double* p) { return {_mm_loadu_pd(p)}; }
    static void store(double* p, Vec a) { _mm_storeu_pd(p, a.v); }
    static Vec set1(double x) { return {_mm_set1_pd(x)}; }
};

inline Vec<float> operator+(Vec<float> a, Vec<float> b) { return {_mm_add_ps(a.v, b.v)}; }
inline Vec<float> operator-(Vec<float> a, Vec<float> b) { return {_mm_sub_ps(a.v, b.v)}; }
inline Vec<float> operator*(Vec<float> a, Vec<float> b) { return {_mm_mul_ps(a.v, b.v)}; }
inline Vec<float> operator/(Vec<float> a, Vec<float> b) { return {_mm_div_ps(a.v, b.v)}; }
inline Vec<float> sqrt(Vec<float> a) { return {_mm_sqrt_ps(a.v)}; }
// No FMA at this level: a separate multiply and add (two roundings).
inline constexpr bool kFusedMulAdd = false;
inline Vec<float> mul_add(Vec<float> a, Vec<float> b, Vec<float> c) { return a * b + c; }
// x86 min/max return the second operand when either is NaN: callers put the data second.
inline Vec<float> max(Vec<float> a, Vec<float> b) { return {_mm_max_ps(a.v, b.v)}; }
inline Vec<float> min(Vec<float> a, Vec<float> b) { return {_mm_min_ps(a.v, b.v)}; }
// maximum(a, b): the larger, or NaN when either is NaN (np.maximum, torch.maximum).
inline Vec<float> maximum(Vec<float> a, Vec<float> b) {
    const __m128 a_nan = _mm_cmpunord_ps(a.v, a.v);  // max_ps already gives b when b is NaN
    return {_mm_or_ps(_mm_and_ps(a_nan, a.v), _mm_andnot_ps(a_nan, _mm_max_ps(a.v, b.v)))};
}
inline Vec<float> abs(Vec<float> a) { return {_mm_andnot_ps(_mm_set1_ps(-0.0f), a.v)}; }
// sign(a): +1 where a > 0, -1 where a < 0, +0 for either zero, NaN for NaN (np.sign; a + 0
// turns -0 into +0 and keeps NaN).
inline Vec<float> sign(Vec<float> a) {
    const __m128 zero = _mm_setzero_ps();
    const __m128 pos = _mm_cmpgt_ps(a.v, zero), neg = _mm_cmplt_ps(a.v, zero);
    const __m128 unit = _mm_or_ps(_mm_and_ps(pos, _mm_set1_ps(1.0f)), _mm_and_ps(neg, _mm_set1_ps(-1.0f)));
    return {_mm_or_ps(unit, _mm_andnot_ps(_mm_or_ps(pos, neg), _mm_add_ps(a.v, zero)))};
}

inline Vec<double> operator+(Vec<double> a, Vec<double> b) { return {_mm_add_pd(a.v, b.v)}; }
inline Vec<double> operator-(Vec<double> a, Vec<double> b) { return {_mm_sub_pd(a.v, b.v)}; }
inline Vec<double> operator*(Vec<double> a, Vec<double> b) { return {_mm_mul_pd(a.v, b.v)}; }
inline Vec<double> operator/(Vec<double> a, Vec<double> b) { return {_mm_div_pd(a.v, b.v)}; }
inline Vec<double> sqrt(Vec<double> a) { return {_mm_sqrt_pd(a.v)}; }
inline Vec<double> mul_add(Vec<double> a, Vec<double> b, Vec<double> c) { return a * b + c; }
inline Vec<double> max(Vec<double> a, Vec<double> b) { return {_mm_max_pd(a.v, b.v)}; }
inline Vec<double> min(Vec<double> a, Vec<double> b) { return {_mm_min_pd(a.v, b.v)}; }
inline Vec<double> maximum(Vec<double> a, Vec<double> b) {
    const __m128d a_nan = _mm_cmpunord_pd(a.v, a.v);
    return {_mm_or_pd(_mm_and_pd(a_nan, a.v), _mm_andnot_pd(a_nan, _mm_max_pd(a.v, b.v)))};
}
inline Vec<double> abs(Vec<double> a) { return {_mm_andnot_pd(_mm_set1_pd(-0.0), a.v)}; }
inline Vec<double> sign(Vec<double> a) {
    const __m128d zero = _mm_setzero_pd();
    const __m128d pos = _mm_cmpgt_pd(a.v, zero), neg = _mm_cmplt_pd(a.v, zero);
    const __m128d unit = _mm_or_pd(_mm_and_pd(pos, _mm_set1_pd(1.0)), _mm_and_pd(neg, _mm_set1_pd(-1.0)));
    return {_mm_or_pd(unit, _mm_andnot_pd(_mm_or_pd(pos, neg), _mm_add_pd(a.v, zero)))};
}

// Reductions accumulate in double: read Vec<double>::lanes inputs widened to double.
// 1 where a > 0, else 0 (NaN: 0), from vectors `one` and `zero`.
inline Vec<float> step_positive(Vec<float> a, Vec<float> one, Vec<float> zero) {
    return {_mm_and_ps(_mm_cmpgt_ps(a.v, zero.v), one.v)};
}
inline Vec<double> step_positive(Vec<double> a, Vec<double> one, Vec<double> zero) {
    return {_mm_and_pd(_mm_cmpgt_pd(a.v, zero.v), one.v)};
}

inline Vec<double> load_as_double(const double* p) { return Vec<double>::load(p); }
inline Vec<double> load_as_double(const float* p) {
    return {_mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))))};
}

// The sum of the lanes, in a fixed tree order (halves, then quarters), in registers.
inline float reduce_add(Vec<float> a) {
    const __m128 s = _mm_add_ps(a.v, _mm_movehl_ps(a.v, a.v));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55)));
}
inline double reduce_add(Vec<double> a) { return _mm_cvtsd_f64(_mm_add_sd(a.v, _mm_unpackhi_pd(a.v, a.v))); }

// 2^n for integral n in the normal exponent range (n from an exponent reduction).
inline Vec<float> pow2_int(Vec<float> n) {
    const __m128i e = _mm_add_epi32(_mm_cvtps_epi32(n.v), _mm_set1_epi32(127));
    return {_mm_castsi128_ps(_mm_slli_epi32(e, 23))};
}
inline Vec<double> pow2_int(Vec<double> n) {
    // Two int32 exponents, biased (so >= 0), zero-extended to 64-bit lanes.
    const __m128i e = _mm_add_epi32(_mm_cvtpd_epi32(n.v), _mm_set1_epi32(1023));
    return {_mm_castsi128_pd(_mm_slli_epi64(_mm_unpacklo_epi32(e, _mm_setzero_si128()), 52))};
}

}  // namespace fastgd::FASTGD_NS
