// The hyperparameters of each update rule, with torch.optim's names and meanings. The
// per-step constants derived from them live in step_scalars.hpp.
#pragma once
#include <cstdint>

namespace fastgd {

struct SgdOptions {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
};

struct AdagradOptions {
    double lr, lr_decay, weight_decay, eps;
};

struct RmspropOptions {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered;
};

struct AdadeltaOptions {
    double lr, rho, eps, weight_decay;
};

// Adam and AdamW (decoupled_weight_decay = true).
struct AdamOptions {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad, decoupled_weight_decay;
};

struct AdamaxOptions {
    double lr, beta1, beta2, eps, weight_decay;
};

struct NadamOptions {
    double lr, beta1, beta2, eps, weight_decay, momentum_decay;
    bool decoupled_weight_decay;
};

struct RadamOptions {
    double lr, beta1, beta2, eps, weight_decay;
    bool decoupled_weight_decay;
};

struct LionOptions {
    double lr, beta1, beta2, weight_decay;
};

// The group's step counter after this step (1 for the first step), and NAdam's running
// product of momentum coefficients, which the kernel advances in place.
struct StepState {
    std::int64_t step = 1;
    double mu_product = 1.0;
};

}  // namespace fastgd
