// AArch64 Advanced SIMD (NEON): part of every AArch64 CPU, 128-bit vectors with FMA.
#pragma once
#include <arm_neon.h>

#include <cstddef>

// FASTGD_NS differs per level: every level's inline functions are distinct symbols (no ODR clash).
namespace fastgd::FASTGD_NS {

template <class T> struct Vec;

template <> struct Vec<float> {
    static constexpr std::size_t lanes = 4;
    float32x4_t v;
    static Vec load(const float* p) { return {vld1q_f32(p)}; }
    static void store(float* p, Vec a) { vst1q_f32(p, a.v); }
    static Vec set1(float x) { return {vdupq_n_f32(x)}; }
};

template <> struct Vec<double> {
    static constexpr std::size_t lanes = 2;
    float64x2_t v;
    static Vec load(const double* p) { return {vld1q_f64(p)}; }
    static void store(double* p, Vec a) { vst1q_f64(p, a.v); }
    static Vec set1(double x) { return {vdupq_n_f64(x)}; }
};

inline Vec<float> operator+(Vec<float> a, Vec<float> b) { return {vaddq_f32(a.v, b.v)}; }
inline Vec<float> operator-(Vec<float> a, Vec<float> b) { return {vsubq_f32(a.v, b.v)}; }
inline Vec<float> operator*(Vec<float> a, Vec<float> b) { return {vmulq_f32(a.v, b.v)}; }
inline Vec<float> operator/(Vec<float> a, Vec<float> b) { return {vdivq_f32(a.v, b.v)}; }
inline Vec<float> sqrt(Vec<float> a) { return {vsqrtq_f32(a.v)}; }
// a*b+c rounded once.
inline constexpr bool kFusedMulAdd = true;
inline Vec<float> mul_add(Vec<float> a, Vec<float> b, Vec<float> c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
// max/min as every other level has them (x86's maxps/minps, the scalar a > b ? a : b): the
// second operand when the two compare equal or either is NaN, so callers put the data second.
// Not vmaxq/vminq: they order -0 below +0 and return a NaN from either side, so a ReLU
// max(0, -0) would give +0 here and -0 at every other level.
inline Vec<float> max(Vec<float> a, Vec<float> b) { return {vbslq_f32(vcgtq_f32(a.v, b.v), a.v, b.v)}; }
inline Vec<float> min(Vec<float> a, Vec<float> b) { return {vbslq_f32(vcltq_f32(a.v, b.v), a.v, b.v)}; }
// maximum(a, b): the larger, or NaN when either is NaN (np.maximum): a where a is NaN, else
// max(a, b) (which gives b when b is NaN).
inline Vec<float> maximum(Vec<float> a, Vec<float> b) { return {vbslq_f32(vceqq_f32(a.v, a.v), max(a, b).v, a.v)}; }
inline Vec<float> abs(Vec<float> a) { return {vabsq_f32(a.v)}; }
// sign(a): +1, -1, +0 for either zero, NaN for NaN (np.sign; a + 0 turns -0 into +0).
inline Vec<float> sign(Vec<float> a) {
    const float32x4_t zero = vdupq_n_f32(0.0f);
    float32x4_t r = vbslq_f32(vcgtq_f32(a.v, zero), vdupq_n_f32(1.0f), vaddq_f32(a.v, zero));
    return {vbslq_f32(vcltq_f32(a.v, zero), vdupq_n_f32(-1.0f), r)};
}

inline Vec<double> operator+(Vec<double> a, Vec<double> b) { return {vaddq_f64(a.v, b.v)}; }
inline Vec<double> operator-(Vec<double> a, Vec<double> b) { return {vsubq_f64(a.v, b.v)}; }
inline Vec<double> operator*(Vec<double> a, Vec<double> b) { return {vmulq_f64(a.v, b.v)}; }
inline Vec<double> operator/(Vec<double> a, Vec<double> b) { return {vdivq_f64(a.v, b.v)}; }
inline Vec<double> sqrt(Vec<double> a) { return {vsqrtq_f64(a.v)}; }
inline Vec<double> mul_add(Vec<double> a, Vec<double> b, Vec<double> c) { return {vfmaq_f64(c.v, a.v, b.v)}; }
inline Vec<double> max(Vec<double> a, Vec<double> b) { return {vbslq_f64(vcgtq_f64(a.v, b.v), a.v, b.v)}; }
inline Vec<double> min(Vec<double> a, Vec<double> b) { return {vbslq_f64(vcltq_f64(a.v, b.v), a.v, b.v)}; }
inline Vec<double> maximum(Vec<double> a, Vec<double> b) {
    return {vbslq_f64(vceqq_f64(a.v, a.v), max(a, b).v, a.v)};
}
inline Vec<double> abs(Vec<double> a) { return {vabsq_f64(a.v)}; }
inline Vec<double> sign(Vec<double> a) {
    const float64x2_t zero = vdupq_n_f64(0.0);
    float64x2_t r = vbslq_f64(vcgtq_f64(a.v, zero), vdupq_n_f64(1.0), vaddq_f64(a.v, zero));
    return {vbslq_f64(vcltq_f64(a.v, zero), vdupq_n_f64(-1.0), r)};
}

// 1 where a > 0, else 0 (NaN: 0), from vectors `one` and `zero`.
inline Vec<float> step_positive(Vec<float> a, Vec<float> one, Vec<float> zero) {
    return {vbslq_f32(vcgtq_f32(a.v, zero.v), one.v, zero.v)};
}
inline Vec<double> step_positive(Vec<double> a, Vec<double> one, Vec<double> zero) {
    return {vbslq_f64(vcgtq_f64(a.v, zero.v), one.v, zero.v)};
}

inline Vec<double> load_as_double(const double* p) { return Vec<double>::load(p); }
inline Vec<double> load_as_double(const float* p) { return {vcvt_f64_f32(vld1_f32(p))}; }

// The sum of the lanes, in registers.
inline float reduce_add(Vec<float> a) { return vaddvq_f32(a.v); }
inline double reduce_add(Vec<double> a) { return vaddvq_f64(a.v); }

// 2^n for integral n in the normal exponent range (n from an exponent reduction).
inline Vec<float> pow2_int(Vec<float> n) {
    return {vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n.v), vdupq_n_s32(127)), 23))};
}
inline Vec<double> pow2_int(Vec<double> n) {
    return {vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(vcvtnq_s64_f64(n.v), vdupq_n_s64(1023)), 52))};
}

}  // namespace fastgd::FASTGD_NS
