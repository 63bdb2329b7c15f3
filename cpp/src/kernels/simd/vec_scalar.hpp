// Portable fallback for CPUs without a SIMD level we compile for: one lane, plain C++.
#pragma once
#include <cmath>
#include <cstddef>

// FASTGD_NS differs per level: every level's inline functions are distinct symbols (no ODR clash).
namespace fastgd::FASTGD_NS {

template <class T> struct Vec {
    static constexpr std::size_t lanes = 1;
    T v;
    static Vec load(const T* p) { return {*p}; }
    static void store(T* p, Vec a) { *p = a.v; }
    static Vec set1(T x) { return {x}; }
};

template <class T> inline Vec<T> operator+(Vec<T> a, Vec<T> b) { return {a.v + b.v}; }
template <class T> inline Vec<T> operator-(Vec<T> a, Vec<T> b) { return {a.v - b.v}; }
template <class T> inline Vec<T> operator*(Vec<T> a, Vec<T> b) { return {a.v * b.v}; }
template <class T> inline Vec<T> operator/(Vec<T> a, Vec<T> b) { return {a.v / b.v}; }
template <class T> inline Vec<T> sqrt(Vec<T> a) { return {std::sqrt(a.v)}; }
#if defined(FASTGD_SCALAR_FMA)
inline constexpr bool kFusedMulAdd = true;
template <class T> inline Vec<T> mul_add(Vec<T> a, Vec<T> b, Vec<T> c) { return {std::fma(a.v, b.v, c.v)}; }
#else
// Two roundings (the build turns off contraction into an FMA).
inline constexpr bool kFusedMulAdd = false;
template <class T> inline Vec<T> mul_add(Vec<T> a, Vec<T> b, Vec<T> c) { return {a.v * b.v + c.v}; }
#endif
// Same NaN convention as x86: the second operand is returned when unordered.
template <class T> inline Vec<T> max(Vec<T> a, Vec<T> b) { return {a.v > b.v ? a.v : b.v}; }
template <class T> inline Vec<T> min(Vec<T> a, Vec<T> b) { return {a.v < b.v ? a.v : b.v}; }
// maximum(a, b): the larger, or NaN when either is NaN (np.maximum, torch.maximum).
template <class T> inline Vec<T> maximum(Vec<T> a, Vec<T> b) { return {std::isnan(a.v) ? a.v : max(a, b).v}; }
template <class T> inline Vec<T> abs(Vec<T> a) { return {std::fabs(a.v)}; }
// sign(a): +1, -1, +0 for either zero, NaN for NaN (np.sign; a + 0 turns -0 into +0).
template <class T> inline Vec<T> sign(Vec<T> a) { return {a.v > T(0) ? T(1) : (a.v < T(0) ? T(-1) : a.v + T(0))}; }

// 1 where a > 0, else 0 (NaN: 0), from vectors `one` and `zero`.
template <class T> inline Vec<T> step_positive(Vec<T> a, Vec<T> one, Vec<T> zero) {
    return a.v > T(0) ? one : zero;
}

inline Vec<double> load_as_double(const double* p) { return {*p}; }
inline Vec<double> load_as_double(const float* p) { return {static_cast<double>(*p)}; }

// The sum of the lanes: the one lane.
template <class T> inline T reduce_add(Vec<T> a) { return a.v; }

// 2^n for integral n in the normal exponent range (n from an exponent reduction).
template <class T> inline Vec<T> pow2_int(Vec<T> n) { return {std::ldexp(T(1), static_cast<int>(n.v))}; }

}  // namespace fastgd::FASTGD_NS
