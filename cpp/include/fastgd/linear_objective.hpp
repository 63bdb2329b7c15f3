// The objective of a linear model over one mini-batch, in one pass over the batch's rows:
// z = W x + b, the loss, dloss/dz, and the gradients, for the losses of fastgd's linear
// estimators. Rows are read in place from the whole data set (by index or as a range), so a
// shuffled epoch never gathers a batch into a new array.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastgd {

// K = 1 for the scalar losses (targets y), K >= 2 for the multiclass ones (labels in [0, K)).
// The regression losses (squared_error, huber) also take K >= 1 outputs, each with its own
// target (y of n x K): a row's loss is then the sum of its K outputs' losses.
enum class LinearLoss : int {
    squared_error = 0,  // (z - y)^2 / 2
    huber = 1,          // r^2 / 2 up to |r| = delta, then delta (|r| - delta / 2)
    log_loss = 2,       // log(1 + e^z) - y z, y in {0, 1}
    hinge = 3,          // max(0, 1 - s z), s = +1 for y > 0 else -1
    softmax_cross_entropy = 4,  // log sum_k e^{z_k} - z_y
    hinge_ovr = 5,      // sum_k max(0, 1 - s_k z_k), s_k = +1 for k = y else -1
};

inline bool is_multiclass(LinearLoss loss) {
    return loss == LinearLoss::softmax_cross_entropy || loss == LinearLoss::hinge_ovr;
}

// A loss of K >= 1 independent outputs (multi-output regression), each output reading its own
// column of y; the other scalar losses take K = 1.
inline bool is_multi_output(LinearLoss loss) {
    return loss == LinearLoss::squared_error || loss == LinearLoss::huber;
}

// The batch: rows of X (n_total x d, row-major) given by `rows` (indices) or, with rows ==
// nullptr, the range [begin, begin + n). Targets, labels and weights are indexed like X: the
// targets of row r are y[r K .. r K + K) (K outputs of a regression loss; K = 1 otherwise).
//
// Standardized on the fly (inv_scale != nullptr): the model sees x' = (x - mean) * inv_scale
// per feature, with no standardized copy of X. The mean is given as centre + centre_lo (its
// value in T and the rest, so that a float32 X is centred to about float64's accuracy).
// Forward, z = sum_j (W_j inv_scale_j) (x_j - mean_j); backward, the rows' sum of c (x - mean)
// is scaled by inv_scale once per batch. Where every feature's mean is within one standard
// deviation of zero, the whole mean is folded into the bias (and out of the gradient's row
// sums once per batch, in double): the products read raw rows, and z keeps its digits to about
// one bit. Otherwise each element is centred by `centre` before it enters a product (a column
// whose mean is far larger than its spread keeps its digits: folding its mean would cancel
// them), and only centre_lo is folded.
template <class T> struct LinearBatch {
    const T* X;
    std::size_t d;
    const std::int64_t* rows;
    std::size_t begin;
    std::size_t n;
    const T* y;                    // scalar losses: n_total x K (K = 1 but for the regression losses)
    const std::int64_t* labels;    // multiclass losses
    const T* sample_weight;        // nullptr: every weight is 1
    const T* centre = nullptr;     // d values, with centre_lo and inv_scale; nullptr: rows as they are
    const T* centre_lo = nullptr;
    const T* inv_scale = nullptr;
    // The batch that follows, if known (next_n > 0): its rows by index or from next_begin.
    // Only a hint: the kernel asks the memory for its first rows while it ends this batch.
    const std::int64_t* next_rows = nullptr;
    std::size_t next_begin = 0;
    std::size_t next_n = 0;
};

struct LinearObjectiveOptions {
    LinearLoss loss;
    std::size_t K;  // outputs: rows of W
    double delta;   // huber
    double l2;      // value += l2/2 |W|^2, grad_W += l2 W
    double l1;      // value += l1 |W|_1 (its step is a proximal one, outside the gradient)
    // Per output (K values each), or nullptr: delta and l1 for every output. A multi-output
    // regression standardizes each target column by its own scale, which divides that
    // output's Huber threshold and L1 strength.
    const double* delta_k = nullptr;
    const double* l1_k = nullptr;  // value += sum_k l1_k |W_k|_1
};

// Returns  sum_i s_i l_i / sum_i s_i  + penalties  (0 for the loss part when the weights
// sum to 0 or the batch is empty), and writes
//   grad_W (K x d) = (1/n) sum_i s_i dl_i/dz x_i^T + l2 W,   grad_b (K) = (1/n) sum_i s_i dl_i/dz,
// the models' convention: a batch's mean loss, its gradient scaled by the batch's share of
// the (mean-1) sample weights. With K regression outputs, l_i sums the outputs' losses (the
// objective separates: output k's gradient is that of a single-output batch on column k of y,
// the same bits). The value is accumulated in double; z and the gradients in T,
// as a BLAS product in T would. With the batch's standardization, W and grad_W are those of
// the standardized features (x'), the penalties too. Rows are cut into fixed blocks, each reduced into its own
// buffer and the buffers summed in block order: the same bits for any thread count.
template <class T>
using LinearObjectiveFn = double (*)(const LinearBatch<T>& batch, const T* W, const T* b,
                                     const LinearObjectiveOptions& options, T* grad_W, T* grad_b);

}  // namespace fastgd
