// Vector exp and log1p over the ranges the losses need, from the level's Vec operations: a
// libm call per element would cost more than the rest of a linear model's row. Accurate to a
// few ulp of T; the same bits on every call (no data-dependent paths).
#pragma once
#include "simd.hpp"

namespace fastgd::FASTGD_NS {

// e^-a for a >= 0 (NaN stays NaN). Past the smallest normal (a > 87 for float, 708 for
// double) it stays at about that value instead of going subnormal: ~1e-38 (1e-308) for 0.
template <class T> Vec<T> exp_neg(Vec<T> a) {
    using V = Vec<T>;
    constexpr bool f32 = sizeof(T) == 4;
    a = min(V::set1(f32 ? T(87) : T(708)), a);
    // n = round(a / ln 2) by the add-and-subtract of 1.5 * 2^(mantissa bits); r = n ln2 - a
    // in [-ln2/2, ln2/2] with ln 2 split in two (Cody and Waite), so n * hi is exact.
    const V magic = V::set1(f32 ? T(12582912.0) : T(6755399441055744.0));
    const V n = (a * V::set1(T(1.4426950408889634)) + magic) - magic;
    const V r = (n * V::set1(f32 ? T(0.693359375) : T(6.93145751953125E-1)) - a) +
                n * V::set1(f32 ? T(-2.12194440e-4) : T(1.42860682030941723212E-6));
    // e^r by its Taylor series: degree 7 (float) or 13 (double) leaves < 1 ulp on the range.
    constexpr int degree = f32 ? 7 : 13;
    double inv_fact[14] = {1.0};
    for (int k = 1; k <= degree; ++k) inv_fact[k] = inv_fact[k - 1] / k;
    V p = V::set1(T(inv_fact[degree]));
    for (int k = degree - 1; k >= 0; --k) p = mul_add(p, r, V::set1(T(inv_fact[k])));
    return p * pow2_int(V::set1(T(0)) - n);
}

// log(1 + e) for e in [0, 1]: 2 atanh(s), s = e / (2 + e) in [0, 1/3], by its series
// 2 s (1 + s^2/3 + s^4/5 + ...), to 8 (float) or 17 (double) terms.
template <class T> Vec<T> log1p_unit(Vec<T> e) {
    using V = Vec<T>;
    constexpr int terms = sizeof(T) == 4 ? 8 : 17;
    const V s = e / (V::set1(T(2)) + e);
    const V s2 = s * s;
    V q = V::set1(T(1.0 / (2 * terms - 1)));
    for (int k = terms - 2; k >= 0; --k) q = mul_add(q, s2, V::set1(T(1.0 / (2 * k + 1))));
    return V::set1(T(2)) * s * q;
}

}  // namespace fastgd::FASTGD_NS
