// Element-wise work of an MLP layer that NumPy would do in several passes over the batch,
// fused into one pass each. The transcendental part (tanh) stays with NumPy's own SIMD
// tanh; these kernels do the arithmetic around it. Compiled once per instruction-set level.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "elementwise.hpp"
#include "update_rules.hpp"

namespace fastgd::FASTGD_NS {
namespace {

// out_k[i] = op(in_0[i], ..., in_{NIN-1}[i]) for NOUT outputs, one pass; outputs may alias
// inputs (all inputs of a vector are loaded before any output is stored). The tail goes
// through the same vector op on zero-padded copies.
template <class T, int NIN, int NOUT, class Op>
void stream(std::size_t n, const T* const* in, T* const* out, Op op) {
    using V = Vec<T>;
    constexpr std::size_t L = V::lanes;
    V x[NIN], y[NOUT];
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
        for (int k = 0; k < NIN; ++k) x[k] = V::load(in[k] + i);
        op(x, y);
        for (int k = 0; k < NOUT; ++k) V::store(out[k] + i, y[k]);
    }
    if (i < n) {
        alignas(64) T pad[NIN > NOUT ? NIN : NOUT][L] = {};
        for (int k = 0; k < NIN; ++k) {
            std::memcpy(pad[k], in[k] + i, (n - i) * sizeof(T));
            x[k] = V::load(pad[k]);
        }
        op(x, y);
        for (int k = 0; k < NOUT; ++k) {
            V::store(pad[k], y[k]);
            std::memcpy(out[k] + i, pad[k], (n - i) * sizeof(T));
        }
    }
}

template <class T> Vec<T> splat(double x) { return Vec<T>::set1(static_cast<T>(x)); }

// A batch's input rows, gathered (and standardized) into one array in one pass. In double,
// one subtraction and one division per value (no reciprocal, no contraction: the build has
// -ffp-contract=off and no fast-math), then one rounding: NumPy's float64 ufuncs' bits.
template <class T>
void gather_rows(const T* X, std::size_t cols, const std::int64_t* rows, std::size_t first, std::size_t n,
                 const double* mean, const double* scale, T* out) {
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t row = rows ? static_cast<std::size_t>(rows[r]) : first + r;
        const T* src = X + row * cols;
        T* dst = out + r * cols;
        if (!mean) {
            std::memcpy(dst, src, cols * sizeof(T));
            continue;
        }
        for (std::size_t j = 0; j < cols; ++j)
            dst[j] = static_cast<T>((static_cast<double>(src[j]) - mean[j]) / scale[j]);
    }
}

// h <- h + b (b broadcast over rows);  a <- max(h, 0)   (NaN stays NaN)
template <class T> void bias_relu(T* h, const T* b, T* a, std::size_t rows, std::size_t cols) {
    const Vec<T> zero = splat<T>(0.0);
    for (std::size_t r = 0; r < rows; ++r) {
        const T* in[2] = {h + r * cols, b};
        T* out[2] = {h + r * cols, a + r * cols};
        stream<T, 2, 2>(cols, in, out, [&](const Vec<T>* x, Vec<T>* y) {
            y[0] = x[0] + x[1];
            y[1] = max(zero, y[0]);
        });
    }
}

// h <- h + b (b broadcast over rows). NumPy's in-place broadcast add buffers a copy of h.
template <class T> void bias_add(T* h, const T* b, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) {
        const T* in[2] = {h + r * cols, b};
        T* out[1] = {h + r * cols};
        stream<T, 2, 1>(cols, in, out, [](const Vec<T>* x, Vec<T>* y) { y[0] = x[0] + x[1]; });
    }
}

// d <- d * f'(.), with f' from what the forward pass kept:
//   relu:    h > 0          (h: pre-activation)
//   tanh:    1 - a^2        (a: activation)
//   sigmoid: a (1 - a)
//   gelu:    (1 + t)/2 + h/2 (1 - t^2) c (1 + 3 k h^2),  t = tanh(c (h + k h^3))
template <class T>
void activation_grad(int kind, T* d, const T* h, const T* a, const T* t, std::size_t n, double c, double k) {
    const Vec<T> one = splat<T>(1.0), zero = splat<T>(0.0), half = splat<T>(0.5);
    T* out[1] = {d};
    switch (kind) {
        case 0: {  // relu: multiply by the 0/1 step (as NumPy's d * (h > 0): NaN * 0 stays NaN)
            const T* in[2] = {d, h};
            stream<T, 2, 1>(n, in, out, [&](const Vec<T>* x, Vec<T>* y) {
                y[0] = x[0] * step_positive(x[1], one, zero);
            });
            break;
        }
        case 1: {
            const T* in[2] = {d, a};
            stream<T, 2, 1>(n, in, out, [&](const Vec<T>* x, Vec<T>* y) { y[0] = x[0] * (one - x[1] * x[1]); });
            break;
        }
        case 2: {
            const T* in[2] = {d, a};
            stream<T, 2, 1>(n, in, out, [&](const Vec<T>* x, Vec<T>* y) { y[0] = x[0] * (x[1] * (one - x[1])); });
            break;
        }
        default: {
            const Vec<T> hc = splat<T>(0.5 * c), k3 = splat<T>(3.0 * k);
            const T* in[3] = {d, h, t};
            stream<T, 3, 1>(n, in, out, [&](const Vec<T>* x, Vec<T>* y) {
                const Vec<T> hh = x[1], tt = x[2];
                const Vec<T> inner = mul_add(k3, hh * hh, one) * hh * hc * (one - tt * tt);
                y[0] = x[0] * (mul_add(half, tt, half) + inner);
            });
            break;
        }
    }
}

// GELU's tanh approximation around NumPy's tanh:  u = c (h + k h^3);  then a = h (1 + t) / 2.
template <class T> void gelu_inner(const T* h, T* u, std::size_t n, double c, double k) {
    const Vec<T> cv = splat<T>(c), kv = splat<T>(k), one = splat<T>(1.0);
    const T* in[1] = {h};
    T* out[1] = {u};
    stream<T, 1, 1>(n, in, out, [&](const Vec<T>* x, Vec<T>* y) { y[0] = mul_add(kv, x[0] * x[0], one) * x[0] * cv; });
}

template <class T> void gelu_outer(const T* h, const T* t, T* a, std::size_t n) {
    const Vec<T> half = splat<T>(0.5);
    const T* in[2] = {h, t};
    T* out[1] = {a};
    stream<T, 2, 1>(n, in, out, [&](const Vec<T>* x, Vec<T>* y) { y[0] = mul_add(half, x[1], half) * x[0]; });
}

// acc[j] += row[j] for j < cols, in double.
template <class T> void add_row(double* acc, const T* row, std::size_t cols) {
    using D = Vec<double>;
    constexpr std::size_t L = D::lanes;
    std::size_t j = 0;
    for (; j + L <= cols; j += L) D::store(acc + j, D::load(acc + j) + load_as_double(row + j));
    for (; j < cols; ++j) acc[j] += static_cast<double>(row[j]);
}

template <class T> void store_sums(T* gb, const std::vector<double>& acc) {
    for (std::size_t j = 0; j < acc.size(); ++j) gb[j] = static_cast<T>(acc[j]);
}

// activation_grad row by row, each row added to the column sums while it is in cache: the
// backward pass of a hidden layer's element-wise part and its bias gradient in one pass.
template <class T>
void activation_grad_colsum(int kind, T* d, const T* h, const T* a, const T* t, std::size_t rows, std::size_t cols,
                            double c, double k, T* gb) {
    std::vector<double> acc(cols, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t o = r * cols;
        activation_grad<T>(kind, d + o, h ? h + o : nullptr, a ? a + o : nullptr, t ? t + o : nullptr, cols, c, k);
        add_row(acc.data(), d + o, cols);
    }
    store_sums(gb, acc);
}

// Per row r: m = max z_r, e = exp(z_r - m), s = sum e; the loss is log s - (z_r[y_r] - m) and
// the gradient (e / s - onehot(y_r)) * scale * w_r. One read of z, one write of d (the
// exponentials go to d first, then are scaled in place while the row is in cache).
template <class T>
double softmax_xent_grad(const T* z, const std::int64_t* y, const T* w, T* d, T* gb, std::size_t rows, std::size_t K,
                         double scale) {
    double total = 0.0;
    std::vector<double> acc(gb ? K : 0, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
        const T* zr = z + r * K;
        T* dr = d + r * K;
        const std::size_t label = static_cast<std::size_t>(y[r]);
        const T zy = zr[label];  // before d (possibly z itself) is written
        T m = zr[0];
        for (std::size_t j = 1; j < K; ++j) m = zr[j] > m ? zr[j] : m;
        double s = 0.0;
        for (std::size_t j = 0; j < K; ++j) {
            const T e = std::exp(zr[j] - m);
            dr[j] = e;
            s += static_cast<double>(e);
        }
        const double wr = w ? static_cast<double>(w[r]) : 1.0;
        total += wr * (std::log(s) - static_cast<double>(zy - m));
        const T f = static_cast<T>(scale * wr / s), g = static_cast<T>(scale * wr);
        for (std::size_t j = 0; j < K; ++j) dr[j] *= f;
        dr[label] -= g;
        if (gb) add_row(acc.data(), dr, K);
    }
    if (gb) store_sums(gb, acc);
    return total;
}

}  // namespace

template <class T> void fill_activations(KernelSet<T>& k) {
    k.activation_grad_colsum = &activation_grad_colsum<T>;
    k.softmax_xent_grad = &softmax_xent_grad<T>;
    k.gather_rows = &gather_rows<T>;
    k.bias_relu = &bias_relu<T>;
    k.bias_add = &bias_add<T>;
    k.activation_grad = &activation_grad<T>;
    k.gelu_inner = &gelu_inner<T>;
    k.gelu_outer = &gelu_outer<T>;
}

template void fill_activations<float>(KernelSet<float>&);
template void fill_activations<double>(KernelSet<double>&);

}  // namespace fastgd::FASTGD_NS
