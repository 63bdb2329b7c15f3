// Per-step constants of each update rule, computed once per call in double (never per
// element), following torch.optim's single-tensor code paths.
#pragma once
#include <cmath>
#include <cstdint>

#include "fastgd/options.hpp"

namespace fastgd {
// Internal linkage: these are compiled into every instruction-set level's objects with that
// level's flags, and a shared (weak) copy could let the linker hand the baseline level a
// function built with AVX instructions.
namespace {

// Adagrad: clr = lr / (1 + (t - 1) * lr_decay)
inline double adagrad_clr(const AdagradOptions& o, std::int64_t t) {
    return o.lr / (1.0 + static_cast<double>(t - 1) * o.lr_decay);
}

struct AdamScalars {
    double step_size;             // lr / (1 - beta1^t)
    double bias_correction2_sqrt; // sqrt(1 - beta2^t)
};
inline AdamScalars adam_scalars(double lr, double beta1, double beta2, std::int64_t t) {
    const double td = static_cast<double>(t);
    return {lr / (1.0 - std::pow(beta1, td)), std::sqrt(1.0 - std::pow(beta2, td))};
}

struct NadamScalars {
    double bias_correction2; // 1 - beta2^t
    double grad_coef;        // lr * (1 - mu_t) / (1 - prod_{i<=t} mu_i)
    double avg_coef;         // lr * mu_{t+1} / (1 - prod_{i<=t+1} mu_i)
    double mu_product;       // prod_{i<=t} mu_i, the new running product
};
// mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))  (Dozat 2016, as torch.optim.NAdam)
inline NadamScalars nadam_scalars(const NadamOptions& o, std::int64_t t, double mu_product) {
    const double td = static_cast<double>(t);
    const double mu = o.beta1 * (1.0 - 0.5 * std::pow(0.96, td * o.momentum_decay));
    const double mu_next = o.beta1 * (1.0 - 0.5 * std::pow(0.96, (td + 1.0) * o.momentum_decay));
    const double product = mu_product * mu;
    return {1.0 - std::pow(o.beta2, td), o.lr * (1.0 - mu) / (1.0 - product),
            o.lr * mu_next / (1.0 - product * mu_next), product};
}

struct RadamScalars {
    double bias_correction1; // 1 - beta1^t
    bool rectified;          // rho_t > 5: use the adaptive (variance-rectified) step
    double adaptive_coef;    // lr * r_t * sqrt(1 - beta2^t) when rectified
};
// rho_inf = 2 / (1 - beta2) - 1,  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t),
// r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))  (Liu et al. 2020)
inline RadamScalars radam_scalars(const RadamOptions& o, std::int64_t t) {
    const double td = static_cast<double>(t);
    const double b2t = std::pow(o.beta2, td);
    const double bias_correction2 = 1.0 - b2t;
    const double rho_inf = 2.0 / (1.0 - o.beta2) - 1.0;
    const double rho_t = rho_inf - 2.0 * td * b2t / bias_correction2;
    RadamScalars s{1.0 - std::pow(o.beta1, td), rho_t > 5.0, 0.0};
    if (s.rectified) {
        const double rect = std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf /
                                      ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
        s.adaptive_coef = o.lr * rect * std::sqrt(bias_correction2);
    }
    return s;
}

}  // namespace
}  // namespace fastgd
