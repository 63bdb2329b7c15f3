// One training step of a ReLU network with a softmax cross-entropy output, forward and backward,
// in one call: the batch's rows gathered and standardized, every layer's product by the BLAS
// SGEMM the caller hands over (the one NumPy's matmul calls), the fused element-wise kernels of
// the kernel table in between. The same operations, in the same order and on the same
// arguments, as the network's NumPy passes (python/fastgd/models/mlp_layers.py), without a
// return to Python between them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgd {

// The CBLAS interface of a row-major single-precision product:
// C <- alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n. BLAS libraries are built with
// 32-bit integers (LP64) or 64-bit ones (ILP64): both are taken.
enum CblasLayout : int { kRowMajor = 101 };
enum CblasTranspose : int { kNoTrans = 111, kTrans = 112 };
using Sgemm32 = void (*)(int layout, int trans_a, int trans_b, std::int32_t m, std::int32_t n, std::int32_t k,
                         float alpha, const float* a, std::int32_t lda, const float* b, std::int32_t ldb, float beta,
                         float* c, std::int32_t ldc);
using Sgemm64 = void (*)(int layout, int trans_a, int trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                         float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta,
                         float* c, std::int64_t ldc);

struct Gemm {
    Sgemm32 f32 = nullptr;  // exactly one of the two is set
    Sgemm64 f64 = nullptr;
    // c (m x n) <- op(a) op(b), row-major, each operand transposed or not.
    void operator()(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
                    std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc) const;
};

// Elements of the float scratch a step over `rows` rows needs: per row, the input and, per
// layer, its pre-activation, its gradient and (hidden layers) its activation.
std::size_t mlp_scratch_per_row(const std::int64_t* sizes, std::size_t n_layers);

struct MlpBatch {
    const float* X = nullptr;        // raw rows, n_in x sizes[0], C order
    const std::int64_t* rows = nullptr;  // the batch's rows of X (null: first, first + 1, ...)
    std::size_t first = 0;
    std::size_t n = 0;               // rows in the batch
    const double* mean = nullptr;    // standardization per feature (null: none)
    const double* scale = nullptr;
    const std::int64_t* labels = nullptr;  // n labels in [0, sizes[L])
    const float* w = nullptr;        // n sample weights (null: 1)
};

// The batch as the blocks of rows [0, split) and [split, n) (split = n: one block), block k
// writing its gradient into grads[k] (the layout of theta: weights, then biases), side by side
// on two threads when `threads` >= 2 (a block goes to whichever thread is free first: the same
// arithmetic either way); then grads[0] += grads[1]. Returns the loss summed over the batch
// (block 0's sum plus block 1's). `scratch` holds n * mlp_scratch_per_row(...) floats.
double mlp_train_step(const Gemm& gemm, const std::int64_t* sizes, std::size_t n_layers, const float* theta,
                      float* const grads[2], const MlpBatch& batch, std::size_t split, float* scratch, int threads);

}  // namespace fastgd
