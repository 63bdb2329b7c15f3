// Bare loops of sparse logistic regression: the least work a first-order learner does per row
// of a CSR matrix, written plainly, with none of a library's options or checks. They are the
// measured floor that bench/compare_sparse.py sets beside fastgd's and scikit-learn's fits
// (sparse_floor.py builds this file and calls it through ctypes; float32 values, int32
// indices, labels 0/1 as float32).
//
// Both loops read the rows in the given order, asking for each row's nonzeros 8 rows ahead:
// an epoch's random row order makes every row a miss to memory. With many features (hashed
// text: `far`, the weights past 1 MiB) they also ask for a row's features' entries 2 rows
// ahead, since every one is a miss to the level-2 cache too; with fewer, those hints only cost.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr std::int64_t kRowsAhead = 8, kFeaturesAhead = 2;

bool far(std::int64_t d) { return d * std::int64_t(sizeof(float)) > (std::int64_t(1) << 20); }

void prefetch_row(const float* data, const std::int32_t* indices, const std::int32_t* indptr, std::int64_t r) {
    for (std::int32_t p = indptr[r]; p < indptr[r + 1]; p += 16) {
        __builtin_prefetch(indices + p);
        __builtin_prefetch(data + p);
    }
}

void prefetch_features(const std::int32_t* indices, const std::int32_t* indptr, std::int64_t r, const float* a) {
    for (std::int32_t p = indptr[r]; p < indptr[r + 1]; ++p) __builtin_prefetch(a + indices[p]);
}

// w . x_r + b, two chains of adds in flight.
double row_dot(const float* data, const std::int32_t* indices, const std::int32_t* indptr, std::int64_t r,
               const float* w, double b) {
    double z0 = 0.0, z1 = 0.0;
    std::int32_t p = indptr[r];
    const std::int32_t e = indptr[r + 1];
    for (; p + 1 < e; p += 2) {
        z0 += double(w[indices[p]]) * double(data[p]);
        z1 += double(w[indices[p + 1]]) * double(data[p + 1]);
    }
    if (p < e) z0 += double(w[indices[p]]) * double(data[p]);
    return z0 + z1 + b;
}

// dlog-loss/dz at z for a label y in {0, 1}: sigmoid(z) - y.
double dloss(double z, double y) {
    const double e = std::exp(-std::fabs(z));
    return (z > 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e)) - y;
}

}  // namespace

extern "C" {

// Plain SGD, one row at a time (Bottou's svmsgd and scikit-learn's SGDClassifier without their
// options): z = w . x_r + b; w -= lr g x_r; b -= lr g, with g = sigmoid(z) - y_r.
void bare_sgd_rows(const float* data, const std::int32_t* indices, const std::int32_t* indptr, const float* y,
                   const std::int64_t* order, std::int64_t n, std::int64_t d, float* w, double* b, double lr) {
    const bool ahead = far(d);
    for (std::int64_t i = 0; i < n; ++i) {
        if (i + kRowsAhead < n) prefetch_row(data, indices, indptr, order[i + kRowsAhead]);
        if (ahead && i + kFeaturesAhead < n) prefetch_features(indices, indptr, order[i + kFeaturesAhead], w);
        const std::int64_t r = order[i];
        const double c = -lr * dloss(row_dot(data, indices, indptr, r, w, *b), double(y[r]));
        for (std::int32_t p = indptr[r]; p < indptr[r + 1]; ++p) w[indices[p]] += float(c * double(data[p]));
        *b += c;
    }
}

// Mini-batch Adam on the batch's features only (lazy, as torch's SparseAdam), batches of
// `batch` rows in the given order: the batch's rows' z from w, the gradient summed by column
// into acc (all zero between batches; a bit per feature in `seen` lists each feature once),
// then for each feature of the batch, with torch's defaults (beta1 0.9, beta2 0.999, eps 1e-8)
// and t the step count:
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
//   w -= lr / (1 - beta1^t) m / (sqrt(v / (1 - beta2^t)) + eps).
// The intercept steps the same way (m_b, v_b in b[1], b[2]). `step` is the steps taken before.
void bare_adam_batches(const float* data, const std::int32_t* indices, const std::int32_t* indptr, const float* y,
                       const std::int64_t* order, std::int64_t n, std::int64_t d, std::int64_t batch, float* w,
                       float* acc, float* m, float* v, std::uint64_t* seen, double* b, std::int64_t step, double lr) {
    constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    const bool ahead = far(d);
    std::vector<std::int32_t> active;
    std::vector<double> coef(static_cast<std::size_t>(batch));
    for (std::int64_t s = 0; s < n; s += batch) {
        const std::int64_t nb = std::min(batch, n - s);
        const std::int64_t* rows = order + s;
        double gb = 0.0;
        for (std::int64_t i = 0; i < nb; ++i) {
            if (s + i + kRowsAhead < n) prefetch_row(data, indices, indptr, order[s + i + kRowsAhead]);
            if (ahead && i + kFeaturesAhead < nb) prefetch_features(indices, indptr, rows[i + kFeaturesAhead], w);
            const std::int64_t r = rows[i];
            coef[i] = dloss(row_dot(data, indices, indptr, r, w, b[0]), double(y[r])) / double(nb);
            gb += coef[i];
        }
        // A feature new to the batch (its bit clear) is listed: a coin toss for the branch
        // predictor, so the entry is written either way and the count moved for a new one.
        std::size_t na = 0;
        for (std::int64_t i = 0; i < nb; ++i) {
            if (ahead && i + kFeaturesAhead < nb) prefetch_features(indices, indptr, rows[i + kFeaturesAhead], acc);
            const std::int64_t r = rows[i];
            if (active.size() < na + static_cast<std::size_t>(indptr[r + 1] - indptr[r]))
                active.resize(2 * (na + static_cast<std::size_t>(indptr[r + 1] - indptr[r])));
            for (std::int32_t p = indptr[r]; p < indptr[r + 1]; ++p) {
                const std::int32_t j = indices[p];
                const std::uint64_t bit = std::uint64_t(1) << (j & 63), word = seen[j >> 6];
                seen[j >> 6] = word | bit;
                active[na] = j;
                na += (word & bit) == 0;
                acc[j] += float(coef[i] * double(data[p]));
            }
        }
        ++step;
        const double c1 = 1.0 - std::pow(beta1, double(step)), c2 = 1.0 - std::pow(beta2, double(step));
        const float lr_t = float(lr / c1), inv_c2 = float(1.0 / std::sqrt(c2)), b1 = float(beta1), b2 = float(beta2);
        for (std::size_t a = 0; a < na; ++a) {
            if (a + 16 < na) {
                const std::int32_t f = active[a + 16];
                __builtin_prefetch(m + f);
                __builtin_prefetch(v + f);
            }
            const std::int32_t j = active[a];
            const float g = acc[j];
            acc[j] = 0.0f;
            seen[j >> 6] = 0;
            const float mj = m[j] = b1 * m[j] + (1.0f - b1) * g;
            const float vj = v[j] = b2 * v[j] + (1.0f - b2) * g * g;
            w[j] -= lr_t * mj / (std::sqrt(vj) * inv_c2 + float(eps));
        }
        b[1] = beta1 * b[1] + (1.0 - beta1) * gb;
        b[2] = beta2 * b[2] + (1.0 - beta2) * gb * gb;
        b[0] -= lr / c1 * b[1] / (std::sqrt(b[2] / c2) + eps);
    }
}

}  // extern "C"
