// Every update rule's element-wise update, a functor over whole vectors, run as one fused pass
// (see elementwise.hpp). Compiled once per instruction-set level. Each op follows the formula
// in its Python class's docstring; the order of operations follows torch.optim's
// single-tensor code so trajectories agree to float rounding. Everything else about a rule
// (its options, states and per-step constants, folded in double before the loop) is its
// entry in fastgd/rules.hpp; a rule's op is named after its struct there (Adam: AdamOp) and is
// built from its options and its fold()'s constants.
#include <utility>

#include "fastgd/rules.hpp"
#include "elementwise.hpp"
#include "update_rules.hpp"

namespace fastgd::FASTGD_NS {
namespace {

template <class T> Vec<T> splat(double x) { return Vec<T>::set1(static_cast<T>(x)); }

// p <- p * (1 - lr * weight_decay)  (decoupled weight decay: AdamW, Lion, ...)
// g <- g + weight_decay * p          (L2 penalty folded into the gradient: torch's default)
template <class T> struct WeightDecay {
    bool decoupled, active;
    Vec<T> factor;
    WeightDecay(double lr, double wd, bool decoupled_)
        : decoupled(decoupled_), active(wd != 0.0), factor(splat<T>(decoupled_ ? 1.0 - lr * wd : wd)) {}
    void operator()(Vec<T>& p, Vec<T>& g) const {
        if (!active) return;
        if (decoupled) p = p * factor;
        else g = mul_add(factor, p, g);
    }
};

// a + w * (b - a), as torch's lerp_ for w < 0.5.
template <class T> Vec<T> lerp(Vec<T> a, Vec<T> b, Vec<T> w) { return mul_add(w, b - a, a); }

template <class T> struct SgdOp {
    WeightDecay<T> wd;
    Vec<T> neg_lr, momentum, one_minus_dampening;
    bool has_momentum, nesterov, first_step;
    SgdOp(const Sgd::Options& o, const SgdScalars& sc)
        : wd(o.lr, o.weight_decay, false), neg_lr(splat<T>(-o.lr)), momentum(splat<T>(o.momentum)),
          one_minus_dampening(splat<T>(1.0 - o.dampening)), has_momentum(o.momentum != 0.0),
          nesterov(o.nesterov), first_step(sc.first_step) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        if (has_momentum) {
            s[0] = first_step ? g : mul_add(momentum, s[0], one_minus_dampening * g);
            g = nesterov ? mul_add(momentum, s[0], g) : s[0];
        }
        p = mul_add(neg_lr, g, p);
    }
};

template <class T> struct AdagradOp {
    WeightDecay<T> wd;
    Vec<T> neg_clr, eps;
    AdagradOp(const Adagrad::Options& o, const AdagradScalars& sc)
        : wd(o.lr, o.weight_decay, false), neg_clr(splat<T>(-sc.clr)), eps(splat<T>(o.eps)) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        s[0] = mul_add(g, g, s[0]);
        p = mul_add(neg_clr, g / (sqrt(s[0]) + eps), p);
    }
};

// state: [square_avg, grad_avg if centered, momentum_buffer if momentum > 0]
template <class T> struct RmspropOp {
    WeightDecay<T> wd;
    Vec<T> neg_lr, alpha, one_minus_alpha, eps, momentum;
    bool centered, has_momentum;
    int buf;
    RmspropOp(const Rmsprop::Options& o, NoScalars)
        : wd(o.lr, o.weight_decay, false), neg_lr(splat<T>(-o.lr)), alpha(splat<T>(o.alpha)),
          one_minus_alpha(splat<T>(1.0 - o.alpha)), eps(splat<T>(o.eps)), momentum(splat<T>(o.momentum)),
          centered(o.centered), has_momentum(o.momentum > 0.0), buf(o.centered ? 2 : 1) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        s[0] = mul_add(one_minus_alpha, g * g, s[0] * alpha);
        Vec<T> avg;
        if (centered) {
            s[1] = lerp(s[1], g, one_minus_alpha);
            avg = sqrt(s[0] - s[1] * s[1]) + eps;
        } else {
            avg = sqrt(s[0]) + eps;
        }
        if (has_momentum) {
            s[buf] = mul_add(momentum, s[buf], g / avg);
            p = mul_add(neg_lr, s[buf], p);
        } else {
            p = mul_add(neg_lr, g / avg, p);
        }
    }
};

// state: [square_avg, acc_delta]
template <class T> struct AdadeltaOp {
    WeightDecay<T> wd;
    Vec<T> neg_lr, rho, one_minus_rho, eps;
    AdadeltaOp(const Adadelta::Options& o, NoScalars)
        : wd(o.lr, o.weight_decay, false), neg_lr(splat<T>(-o.lr)), rho(splat<T>(o.rho)),
          one_minus_rho(splat<T>(1.0 - o.rho)), eps(splat<T>(o.eps)) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        s[0] = mul_add(one_minus_rho, g * g, s[0] * rho);
        const Vec<T> std_ = sqrt(s[0] + eps);
        const Vec<T> delta = sqrt(s[1] + eps) / std_ * g;
        s[1] = mul_add(one_minus_rho, delta * delta, s[1] * rho);
        p = mul_add(neg_lr, delta, p);
    }
};

// state: [exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad]
template <class T> struct AdamOp {
    WeightDecay<T> wd;
    Vec<T> one_minus_beta1, beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps;
    bool amsgrad;
    AdamOp(const Adam::Options& o, const AdamScalars& sc)
        : wd(o.lr, o.weight_decay, o.decoupled_weight_decay), one_minus_beta1(splat<T>(1.0 - o.beta1)),
          beta2(splat<T>(o.beta2)), one_minus_beta2(splat<T>(1.0 - o.beta2)), amsgrad(o.amsgrad) {
        neg_step_size = splat<T>(-sc.step_size);
        bias_correction2_sqrt = splat<T>(sc.bias_correction2_sqrt);
        eps = splat<T>(o.eps);
    }
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        s[0] = lerp(s[0], g, one_minus_beta1);
        s[1] = mul_add(one_minus_beta2, g * g, s[1] * beta2);
        Vec<T> second = s[1];
        if (amsgrad) second = s[2] = maximum(s[2], s[1]);
        const Vec<T> denom = sqrt(second) / bias_correction2_sqrt + eps;
        p = mul_add(neg_step_size, s[0] / denom, p);
    }
};

// state: [exp_avg, exp_inf]
template <class T> struct AdamaxOp {
    WeightDecay<T> wd;
    Vec<T> one_minus_beta1, beta2, eps, neg_clr;
    // -(lr / b) is (-lr) / b to the bit: division rounds the same either side of zero.
    AdamaxOp(const Adamax::Options& o, const AdamaxScalars& sc)
        : wd(o.lr, o.weight_decay, false), one_minus_beta1(splat<T>(1.0 - o.beta1)), beta2(splat<T>(o.beta2)),
          eps(splat<T>(o.eps)), neg_clr(splat<T>(-sc.clr)) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        s[0] = lerp(s[0], g, one_minus_beta1);
        s[1] = maximum(s[1] * beta2, abs(g) + eps);
        p = mul_add(neg_clr, s[0] / s[1], p);
    }
};

// state: [exp_avg, exp_avg_sq]
template <class T> struct NadamOp {
    WeightDecay<T> wd;
    Vec<T> one_minus_beta1, beta2, one_minus_beta2, bias_correction2, eps, neg_grad_coef, neg_avg_coef;
    NadamOp(const Nadam::Options& o, const NadamScalars& sc)
        : wd(o.lr, o.weight_decay, o.decoupled_weight_decay), one_minus_beta1(splat<T>(1.0 - o.beta1)),
          beta2(splat<T>(o.beta2)), one_minus_beta2(splat<T>(1.0 - o.beta2)),
          bias_correction2(splat<T>(sc.bias_correction2)), eps(splat<T>(o.eps)),
          neg_grad_coef(splat<T>(-sc.grad_coef)), neg_avg_coef(splat<T>(-sc.avg_coef)) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        s[0] = lerp(s[0], g, one_minus_beta1);
        s[1] = mul_add(one_minus_beta2, g * g, s[1] * beta2);
        const Vec<T> denom = sqrt(s[1] / bias_correction2) + eps;
        p = mul_add(neg_grad_coef, g / denom, p);
        p = mul_add(neg_avg_coef, s[0] / denom, p);
    }
};

// state: [exp_avg, exp_avg_sq]
template <class T> struct RadamOp {
    WeightDecay<T> wd;
    Vec<T> one_minus_beta1, beta2, one_minus_beta2, bias_correction1, eps, neg_coef;
    bool rectified;
    RadamOp(const Radam::Options& o, const RadamScalars& sc)
        : wd(o.lr, o.weight_decay, o.decoupled_weight_decay), one_minus_beta1(splat<T>(1.0 - o.beta1)),
          beta2(splat<T>(o.beta2)), one_minus_beta2(splat<T>(1.0 - o.beta2)),
          bias_correction1(splat<T>(sc.bias_correction1)), eps(splat<T>(o.eps)),
          neg_coef(splat<T>(sc.rectified ? -sc.adaptive_coef : -o.lr)), rectified(sc.rectified) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        s[0] = lerp(s[0], g, one_minus_beta1);
        s[1] = mul_add(one_minus_beta2, g * g, s[1] * beta2);
        const Vec<T> corrected = s[0] / bias_correction1;
        p = mul_add(neg_coef, rectified ? corrected / (sqrt(s[1]) + eps) : corrected, p);
    }
};

// state: [exp_avg]. The paper's weighted sums b m + (1 - b) g, not lerp's m + (1 - b)(g - m):
// with b = 0 the sum gives g exactly, where g - m + m loses a g far smaller than m (a
// subnormal gradient after a normal one came out 0). sign() keeps NaN (np.sign; torch.sign
// gives 0), so a NaN gradient or momentum still reaches the parameter.
template <class T> struct LionOp {
    WeightDecay<T> wd;
    Vec<T> neg_lr, beta1, one_minus_beta1, beta2, one_minus_beta2;
    LionOp(const Lion::Options& o, NoScalars)
        : wd(o.lr, o.weight_decay, true), neg_lr(splat<T>(-o.lr)), beta1(splat<T>(o.beta1)),
          one_minus_beta1(splat<T>(1.0 - o.beta1)), beta2(splat<T>(o.beta2)), one_minus_beta2(splat<T>(1.0 - o.beta2)) {}
    void operator()(Vec<T>& p, Vec<T> g, Vec<T>* s) const {
        wd(p, g);
        p = mul_add(neg_lr, sign(mul_add(one_minus_beta1, g, s[0] * beta1)), p);
        s[0] = mul_add(one_minus_beta2, g, s[0] * beta2);
    }
};

// run_rule with the number of state arrays in use as a constant: from the rule's states that
// always exist (First) up to all of them (Last).
template <class T, int First, int Last, class Op>
void run_with_states(int states, const TensorRef<T>* t, std::size_t n, const Op& op, const GradTransform& tr) {
    if constexpr (First == Last) {
        run_rule<T, First>(t, n, op, tr);
    } else {
        if (states == First) run_rule<T, First>(t, n, op, tr);
        else run_with_states<T, First + 1, Last>(states, t, n, op, tr);
    }
}

template <class R> constexpr int always_states() {
    int n = 0;
    for (const auto& s : R::states) n += s.need == Need::always;
    return n;
}

// The number of R's states the options need. Each state's entry is copied at compile time:
// the table itself stays out of the level's object code, which must share no symbol with
// another level's.
template <class R, std::size_t... I>
int states_in_use(const typename R::Options& o, std::index_sequence<I...>) {
    const auto one = [&o](auto index) {
        constexpr StateSpec<typename R::Options> s = R::states[decltype(index)::value];
        return static_cast<int>(needed(s, o));
    };
    return (0 + ... + one(std::integral_constant<std::size_t, I>{}));
}

// One step of rule R with functor Op: its per-step constants, then one pass over the arrays.
template <class T, class R, template <class> class Op>
void step(const TensorRef<T>* t, std::size_t n, const typename R::Options& o, StepState& st,
          const GradTransform& tr) {
    const int states = states_in_use<R>(o, std::make_index_sequence<R::states.size()>{});
    const Op<T> op(o, fold(o, st));
    run_with_states<T, always_states<R>(), static_cast<int>(R::states.size())>(states, t, n, op, tr);
}

}  // namespace

template <class T> void fill_rules(KernelSet<T>& k) {
#define FASTGD_FILL(R, name) k.name = &step<T, R, R##Op>;
    FASTGD_RULES(FASTGD_FILL)
#undef FASTGD_FILL
}

template void fill_rules<float>(KernelSet<float>&);
template void fill_rules<double>(KernelSet<double>&);

}  // namespace fastgd::FASTGD_NS
