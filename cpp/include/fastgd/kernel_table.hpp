// The kernels of one instruction-set level, as plain function pointers, and the run-time
// choice among the levels this build carries.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fastgd/column_stats.hpp"
#include "fastgd/linear_objective.hpp"
#include "fastgd/rules.hpp"
#include "fastgd/tensor_ref.hpp"

namespace fastgd {

// p-norm selectors for reductions; any other p > 0 uses the general (scalar pow) path.
enum class NormKind { one, two, inf, general };

template <class T> struct KernelSet {
    // One update rule over `count` arrays (their states: those the options need, in the
    // table's order); `state` is the group's step state, advanced by the rule's fold().
    template <class R>
    using Rule = void (*)(const TensorRef<T>* tensors, std::size_t count, const typename R::Options& options,
                          StepState& state, const GradTransform& transform);
#define FASTGD_MEMBER(R, name) Rule<R> name;
    FASTGD_RULES(FASTGD_MEMBER)
#undef FASTGD_MEMBER

    // Sum over all arrays of |x|^p (or max |x| for NormKind::inf), accumulated in double in
    // fixed-order blocks: the result has the same bits for any thread count.
    double (*norm_power_sum)(const T* const* arrays, const std::size_t* sizes, std::size_t count,
                             NormKind kind, double p);
    // x <- x * scale, in place.
    void (*scale)(T* const* arrays, const std::size_t* sizes, std::size_t count, double scale);
    // x <- clamp(x, -clip_value, clip_value), in place; NaN stays NaN.
    void (*clamp)(T* const* arrays, const std::size_t* sizes, std::size_t count, double clip_value);

    // MLP input rows: out[r] <- X[rows[r]] (rows null: X[first + r]) for r < n, each of cols
    // values; with mean and scale (per column, in double), (x - mean) / scale computed in
    // double and rounded once to T (the bits of NumPy's float64 subtract and divide).
    void (*gather_rows)(const T* X, std::size_t cols, const std::int64_t* rows, std::size_t first, std::size_t n,
                        const double* mean, const double* scale, T* out);
    // MLP layers (see activations.cpp): h <- h + b per row, a <- max(h, 0);
    void (*bias_relu)(T* h, const T* b, T* a, std::size_t rows, std::size_t cols);
    // h <- h + b per row (the linear output layer's bias).
    void (*bias_add)(T* h, const T* b, std::size_t rows, std::size_t cols);
    // d <- d * f'(.) for kind 0 relu (from h), 1 tanh (from a), 2 sigmoid (from a),
    // 3 gelu (from h and t = tanh(c (h + k h^3)));
    void (*activation_grad)(int kind, T* d, const T* h, const T* a, const T* t, std::size_t n, double c,
                            double k);
    // u <- c (h + k h^3);  a <- h (1 + t) / 2.
    void (*gelu_inner)(const T* h, T* u, std::size_t n, double c, double k);
    void (*gelu_outer)(const T* h, const T* t, T* a, std::size_t n);
    // activation_grad over a (rows, cols) d, and gb[j] <- sum_r d[r, j] (the bias gradient)
    // in the same pass, summed in double in row order (the same bits for any thread count).
    void (*activation_grad_colsum)(int kind, T* d, const T* h, const T* a, const T* t, std::size_t rows,
                                   std::size_t cols, double c, double k, T* gb);
    // Softmax cross-entropy of logits z (rows, K) at labels y (each in [0, K), checked by the
    // caller), sample factors w (null: 1): d <- (softmax(z) - onehot(y)) * scale * w per row
    // (d may be z), gb <- the column sums of d when not null; returns sum_r w_r (logsumexp(z_r)
    // - z_r[y_r]) in double.
    double (*softmax_xent_grad)(const T* z, const std::int64_t* y, const T* w, T* d, T* gb, std::size_t rows,
                                std::size_t K, double scale);

    // A linear model's mini-batch loss and gradients in one pass (fastgd/linear_objective.hpp).
    LinearObjectiveFn<T> linear_objective;
    // Its scalar losses (squared error, Huber with `delta`, log loss, hinge: options.loss, one
    // output) at n outputs z with targets y, on whole vectors: l <- the losses, g <- dl/dz. The
    // arrays hold n values rounded up to whole vectors (64 bytes); the padding lanes must be
    // finite, and their results are discarded.
    void (*scalar_losses)(const LinearObjectiveOptions& options, double delta, const T* z, const T* y, T* l, T* g,
                          std::size_t n);

    // Column means and variances, and the first NaN and infinity, in one read of a matrix
    // (fastgd/column_stats.hpp); the first NaN and infinity alone of any array.
    ColumnStatsFn<T> column_stats;
    FindNonfiniteFn<T> find_nonfinite;
};

// Rule R's member of KernelSet<T>: (kernels.*RuleKernel<R, T>::member)(...).
template <class R, class T> struct RuleKernel;
#define FASTGD_RULE_KERNEL(R, name)                            \
    template <class T> struct RuleKernel<R, T> {              \
        static constexpr auto member = &KernelSet<T>::name; \
    };
FASTGD_RULES(FASTGD_RULE_KERNEL)
#undef FASTGD_RULE_KERNEL

struct KernelTable {
    const char* name;
    bool fused_multiply_add;  // whether mul_add rounds a*b+c once (FMA) or twice
    KernelSet<float> f32;
    KernelSet<double> f64;
    template <class T> const KernelSet<T>& of() const {
        if constexpr (sizeof(T) == sizeof(float)) return f32; else return f64;
    }
};

// Levels compiled into this build, lowest first, and whether this CPU can run each.
std::vector<std::string> compiled_levels();
std::vector<std::string> supported_levels();
// The table in use: at import the highest supported level, or FASTGD_ISA if that is set.
const KernelTable& active_kernels();
// Switch levels at run time (tests run every supported level); throws std::invalid_argument
// for an unknown level or one this CPU cannot run.
void set_active_level(const std::string& name);

}  // namespace fastgd
