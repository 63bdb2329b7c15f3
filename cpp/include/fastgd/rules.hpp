// Every update rule, declared once: its options (torch.optim's names, types and defaults, and
// which a schedule may drive), its state arrays in the kernel's order with the option that
// needs each, its scalars kept per parameter group, and its per-step constants, folded in
// double once per call (never per element), following torch.optim's single-tensor code.
//
// Generated from this table: the kernel table's members (kernel_table.hpp), the option reading
// of a step, the per-rule bindings of fastgd.functional and fastgd._core.rule_specs(), from
// which the Python classes take their state and validation. What stays per rule elsewhere is
// its element-wise update, a functor in cpp/src/kernels/update_rules.cpp.
//
// A new rule: its struct below (Options, options, states, and a fold() if it has per-step
// constants), its line in FASTGD_RULES, its functor.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace fastgd {

// The state of one group's step: the group's step count after this step (1 on the first),
// which of the rule's state arrays are new this step (bit i for states[i]: created since the
// last step, never stepped on), and the rule's group scalars, which its fold() advances.
struct StepState {
    std::int64_t step = 1;
    unsigned fresh = 0;
    double mu_product = 1.0;  // Nadam
};

// -- the vocabulary of the table ------------------------------------------------------------

enum class OptionType : unsigned char { real, flag, pair };
// What a group's option must satisfy: checked when a group is added or loaded, and by every
// step for the values it is about to use (schedules and edits of param_groups included),
// before anything is written. Every number must be finite.
enum class Check : unsigned char {
    none,           // a flag: anything with a truth value
    finite,         // any finite number
    nonnegative,    // finite and >= 0
    unit_open,      // in [0, 1) (each of a pair)
    unit_closed,    // in [0, 1]
};
// Whether a number passes its option's check. Each test is written so that NaN fails it.
constexpr bool passes(Check check, double v) {
    constexpr double largest = std::numeric_limits<double>::max();
    switch (check) {
        case Check::nonnegative: return v >= 0.0 && v <= largest;
        case Check::unit_open: return v >= 0.0 && v < 1.0;
        case Check::unit_closed: return v >= 0.0 && v <= 1.0;
        default: return v >= -largest && v <= largest;
    }
}
// Whether a schedule (a callable of the step count) may stand in for a float option.
enum class Sched : bool { no = false, yes = true };

template <class O> struct OptionSpec {
    const char* name;       // the parameter-group key (torch's name)
    OptionType type;
    double initial[2];      // the default (a flag: 0 or 1; a pair: both)
    bool schedulable;
    Check check;
    const char* label;      // in "Invalid <label>: <value>"; null: "<name> value"
    double O::*real;        // where the kernel takes it (a pair: the first); null: not a kernel option
    double O::*second;      // a pair's second
    bool O::*flag;
    const char* args[2];    // its keyword(s) in fastgd.functional: the name, or a pair's two
};

template <class O>
constexpr OptionSpec<O> number(const char* name, double O::*field, double initial, Check check = Check::nonnegative,
                               Sched sched = Sched::no, const char* label = nullptr) {
    return {name, OptionType::real, {initial, 0.0}, sched == Sched::yes, check, label, field, nullptr, nullptr,
            {name, nullptr}};
}
template <class O> constexpr OptionSpec<O> learning_rate(double O::*field, double initial) {
    return number("lr", field, initial, Check::nonnegative, Sched::yes, "learning rate");
}
template <class O> constexpr OptionSpec<O> weight_decay(double O::*field, double initial = 0.0) {
    return number("weight_decay", field, initial, Check::nonnegative, Sched::yes);
}
template <class O> constexpr OptionSpec<O> epsilon(double O::*field, double initial) {
    return number("eps", field, initial, Check::nonnegative, Sched::no, "epsilon value");
}
template <class O> constexpr OptionSpec<O> flag(const char* name, bool O::*field, bool initial = false) {
    return {name, OptionType::flag, {initial ? 1.0 : 0.0, 0.0}, false, Check::none, nullptr, nullptr, nullptr, field,
            {name, nullptr}};
}
// (beta1, beta2), each in [0, 1); the kernel and fastgd.functional take them apart.
template <class O> constexpr OptionSpec<O> betas(double O::*beta1, double O::*beta2, double b1, double b2) {
    return {"betas", OptionType::pair, {b1, b2}, false, Check::unit_open, "beta parameter", beta1, beta2, nullptr,
            {"beta1", "beta2"}};
}
// An option the kernel never reads (a state array's starting value).
template <class O> constexpr OptionSpec<O> group_only(const char* name, double initial) {
    return {name, OptionType::real, {initial, 0.0}, false, Check::nonnegative, nullptr, nullptr, nullptr, nullptr,
            {nullptr, nullptr}};
}

// When a state array exists: always, or while an option is set, nonzero or positive.
enum class Need : unsigned char { always, flag_set, nonzero, positive };

template <class O> struct StateSpec {
    const char* name;            // its key in Optimizer.state[i] (torch's name)
    Need need;
    const char* option;          // the option that decides `need`
    bool O::*flag;
    double O::*real;
    const char* initial_option;  // the option it starts at; null: 0
    const char* arg;             // its argument in fastgd.functional; null: `name`
};

template <class O> constexpr StateSpec<O> state(const char* name) {
    return {name, Need::always, nullptr, nullptr, nullptr, nullptr, nullptr};
}
template <class O> constexpr StateSpec<O> state_if(const char* name, const char* option, bool O::*field) {
    return {name, Need::flag_set, option, field, nullptr, nullptr, nullptr};
}
template <class O>
constexpr StateSpec<O> state_if(const char* name, const char* option, double O::*field, Need need) {
    return {name, need, option, nullptr, field, nullptr, nullptr};
}
template <class O>
constexpr StateSpec<O> state_from(const char* name, const char* initial_option, const char* arg) {
    return {name, Need::always, nullptr, nullptr, nullptr, initial_option, arg};
}

// A scalar kept per parameter group besides its step count, advanced by the rule's fold().
struct ScalarSpec {
    const char* name;
    double StepState::*field;
    double initial;
};
struct NoGroupScalars {
    static constexpr std::array<ScalarSpec, 0> scalars{};
};

// Per-step constants of a rule that has none.
struct NoScalars {};

// -- the rules ------------------------------------------------------------------------------

struct Sgd : NoGroupScalars {
    struct Options {
        double lr, momentum, dampening, weight_decay;
        bool nesterov;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 1e-3),
        number("momentum", &O::momentum, 0.0, Check::nonnegative, Sched::yes),
        number("dampening", &O::dampening, 0.0, Check::finite),
        weight_decay(&O::weight_decay),
        flag("nesterov", &O::nesterov),
    };
    static constexpr std::array states{state_if("momentum_buffer", "momentum", &O::momentum, Need::nonzero)};
};
// The momentum buffer starts as the first gradient it sees (torch) when its array is new
// (StepState::fresh): at an optimizer's first step, when momentum is switched on mid-run, or
// after its state was reset; a buffer given before the first step is used as given (torch).
struct SgdScalars {
    bool first_step;
};

struct Adagrad : NoGroupScalars {
    struct Options {
        double lr, lr_decay, weight_decay, eps;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 1e-2),
        number("lr_decay", &O::lr_decay, 0.0),
        weight_decay(&O::weight_decay),
        group_only<O>("initial_accumulator_value", 0.0),
        epsilon(&O::eps, 1e-10),
    };
    static constexpr std::array states{state_from<O>("sum", "initial_accumulator_value", "state_sum")};
};
struct AdagradScalars {
    double clr;  // lr / (1 + (t - 1) * lr_decay)
};

struct Rmsprop : NoGroupScalars {
    struct Options {
        double lr, alpha, eps, weight_decay, momentum;
        bool centered;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 1e-2),
        number("alpha", &O::alpha, 0.99),
        epsilon(&O::eps, 1e-8),
        weight_decay(&O::weight_decay),
        number("momentum", &O::momentum, 0.0, Check::nonnegative, Sched::yes),
        flag("centered", &O::centered),
    };
    static constexpr std::array states{
        state<O>("square_avg"),
        state_if("grad_avg", "centered", &O::centered),
        state_if("momentum_buffer", "momentum", &O::momentum, Need::positive),
    };
};

struct Adadelta : NoGroupScalars {
    struct Options {
        double lr, rho, eps, weight_decay;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 1.0),
        number("rho", &O::rho, 0.9, Check::unit_closed),
        epsilon(&O::eps, 1e-6),
        weight_decay(&O::weight_decay),
    };
    static constexpr std::array states{state<O>("square_avg"), state<O>("acc_delta")};
};

// Adam, and AdamW (decoupled_weight_decay = true).
struct Adam : NoGroupScalars {
    struct Options {
        double lr, beta1, beta2, eps, weight_decay;
        bool amsgrad, decoupled_weight_decay;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 1e-3),
        betas(&O::beta1, &O::beta2, 0.9, 0.999),
        epsilon(&O::eps, 1e-8),
        weight_decay(&O::weight_decay),
        flag("amsgrad", &O::amsgrad),
        flag("decoupled_weight_decay", &O::decoupled_weight_decay),
    };
    static constexpr std::array states{
        state<O>("exp_avg"),
        state<O>("exp_avg_sq"),
        state_if("max_exp_avg_sq", "amsgrad", &O::amsgrad),
    };
};
struct AdamScalars {
    double step_size;              // lr / (1 - beta1^t)
    double bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

struct Adamax : NoGroupScalars {
    struct Options {
        double lr, beta1, beta2, eps, weight_decay;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 2e-3),
        betas(&O::beta1, &O::beta2, 0.9, 0.999),
        epsilon(&O::eps, 1e-8),
        weight_decay(&O::weight_decay),
    };
    static constexpr std::array states{state<O>("exp_avg"), state<O>("exp_inf")};
};
struct AdamaxScalars {
    double clr;  // lr / (1 - beta1^t)
};

struct Nadam {
    struct Options {
        double lr, beta1, beta2, eps, weight_decay, momentum_decay;
        bool decoupled_weight_decay;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 2e-3),
        betas(&O::beta1, &O::beta2, 0.9, 0.999),
        epsilon(&O::eps, 1e-8),
        weight_decay(&O::weight_decay),
        number("momentum_decay", &O::momentum_decay, 4e-3),
        flag("decoupled_weight_decay", &O::decoupled_weight_decay),
    };
    static constexpr std::array states{state<O>("exp_avg"), state<O>("exp_avg_sq")};
    // prod_{i<=t} mu_i, the running product of the momentum coefficients.
    static constexpr std::array scalars{ScalarSpec{"mu_product", &StepState::mu_product, 1.0}};
};
struct NadamScalars {
    double bias_correction2;  // 1 - beta2^t
    double grad_coef;         // lr * (1 - mu_t) / (1 - prod_{i<=t} mu_i)
    double avg_coef;          // lr * mu_{t+1} / (1 - prod_{i<=t+1} mu_i)
};

struct Radam : NoGroupScalars {
    struct Options {
        double lr, beta1, beta2, eps, weight_decay;
        bool decoupled_weight_decay;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 1e-3),
        betas(&O::beta1, &O::beta2, 0.9, 0.999),
        epsilon(&O::eps, 1e-8),
        weight_decay(&O::weight_decay),
        flag("decoupled_weight_decay", &O::decoupled_weight_decay),
    };
    static constexpr std::array states{state<O>("exp_avg"), state<O>("exp_avg_sq")};
};
struct RadamScalars {
    double bias_correction1;  // 1 - beta1^t
    bool rectified;           // rho_t > 5: use the adaptive (variance-rectified) step
    double adaptive_coef;     // lr * r_t * sqrt(1 - beta2^t) when rectified
};

// torch.optim has no Lion: defaults from Chen et al. 2023.
struct Lion : NoGroupScalars {
    struct Options {
        double lr, beta1, beta2, weight_decay;
    };
    using O = Options;
    static constexpr std::array options{
        learning_rate(&O::lr, 1e-4),
        betas(&O::beta1, &O::beta2, 0.9, 0.99),
        weight_decay(&O::weight_decay),
    };
    static constexpr std::array states{state<O>("exp_avg")};
};

// Every rule: X(its struct, its name in Python and in the kernel table).
#define FASTGD_RULES(X)   \
    X(Sgd, sgd)           \
    X(Adagrad, adagrad)   \
    X(Rmsprop, rmsprop)   \
    X(Adadelta, adadelta) \
    X(Adam, adam)         \
    X(Adamax, adamax)     \
    X(Nadam, nadam)       \
    X(Radam, radam)       \
    X(Lion, lion)

// The most state arrays of any rule (RMSprop centered with momentum: 3).
inline constexpr int kMaxStates = [] {
    std::size_t most = 0;
#define FASTGD_COUNT(R, name) most = R::states.size() > most ? R::states.size() : most;
    FASTGD_RULES(FASTGD_COUNT)
#undef FASTGD_COUNT
    return static_cast<int>(most);
}();

// -- per-step constants ---------------------------------------------------------------------

// Internal linkage: these are compiled into every instruction-set level's objects with that
// level's flags, and a shared (weak) copy could let the linker hand the baseline level a
// function built with AVX instructions.
namespace {

// Whether the options need this state array.
template <class O> inline bool needed(const StateSpec<O>& s, const O& o) {
    switch (s.need) {
        case Need::flag_set: return o.*s.flag;
        case Need::nonzero: return o.*s.real != 0.0;
        case Need::positive: return o.*s.real > 0.0;
        default: return true;
    }
}

// The rule's options at the table's defaults.
template <class R> constexpr typename R::Options default_options() {
    typename R::Options o{};
    for (const auto& s : R::options) {
        if (s.flag) o.*s.flag = s.initial[0] != 0.0;
        else if (s.real) o.*s.real = s.initial[0];
        if (s.second) o.*s.second = s.initial[1];
    }
    return o;
}

// Rules without per-step constants.
template <class O> inline NoScalars fold(const O&, StepState&) { return {}; }

inline SgdScalars fold(const Sgd::Options&, StepState& st) { return {(st.fresh & 1u) != 0}; }

// Adagrad: clr = lr / (1 + (t - 1) * lr_decay)
inline AdagradScalars fold(const Adagrad::Options& o, StepState& st) {
    return {o.lr / (1.0 + static_cast<double>(st.step - 1) * o.lr_decay)};
}

inline AdamScalars fold(const Adam::Options& o, StepState& st) {
    const double td = static_cast<double>(st.step);
    return {o.lr / (1.0 - std::pow(o.beta1, td)), std::sqrt(1.0 - std::pow(o.beta2, td))};
}

inline AdamaxScalars fold(const Adamax::Options& o, StepState& st) {
    return {o.lr / (1.0 - std::pow(o.beta1, static_cast<double>(st.step)))};
}

// mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))  (Dozat 2016, as torch.optim.NAdam);
// advances the group's mu_product to prod_{i<=t} mu_i.
inline NadamScalars fold(const Nadam::Options& o, StepState& st) {
    const double td = static_cast<double>(st.step);
    const double mu = o.beta1 * (1.0 - 0.5 * std::pow(0.96, td * o.momentum_decay));
    const double mu_next = o.beta1 * (1.0 - 0.5 * std::pow(0.96, (td + 1.0) * o.momentum_decay));
    const double product = st.mu_product * mu;
    st.mu_product = product;
    return {1.0 - std::pow(o.beta2, td), o.lr * (1.0 - mu) / (1.0 - product),
            o.lr * mu_next / (1.0 - product * mu_next)};
}

// rho_inf = 2 / (1 - beta2) - 1,  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t),
// r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))  (Liu et al. 2020)
inline RadamScalars fold(const Radam::Options& o, StepState& st) {
    const double td = static_cast<double>(st.step);
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

// -- what the table must satisfy --------------------------------------------------------------

namespace rules_detail {
constexpr bool same(const char* a, const char* b) {
    if (a == nullptr || b == nullptr) return a == b;
    while (*a != '\0' && *a == *b) ++a, ++b;
    return *a == *b;
}
// Every state that depends on an option names an option of its rule, of the right type, that
// the kernel reads at the same member; every starting value is an option of the rule.
template <class R> constexpr bool consistent() {
    for (const auto& s : R::states) {
        bool found = s.option == nullptr;
        bool starts = s.initial_option == nullptr;
        for (const auto& o : R::options) {
            if (same(s.option, o.name))
                found = s.need == Need::flag_set ? (o.type == OptionType::flag && o.flag == s.flag)
                                                  : (o.type == OptionType::real && o.real == s.real);
            if (same(s.initial_option, o.name)) starts = o.type == OptionType::real;
        }
        if (!found || !starts) return false;
    }
    return R::states.size() <= 32;  // StepState::fresh has a bit per state
}
// Every default passes its option's check.
template <class R> constexpr bool defaults_pass() {
    for (const auto& o : R::options) {
        if (o.type == OptionType::flag) continue;
        if (!passes(o.check, o.initial[0])) return false;
        if (o.type == OptionType::pair && !passes(o.check, o.initial[1])) return false;
    }
    return true;
}
#define FASTGD_CHECK(R, name)                                                                   \
    static_assert(consistent<R>(), #R ": a state's option is not one of its options");          \
    static_assert(defaults_pass<R>(), #R ": an option's default fails its check");
FASTGD_RULES(FASTGD_CHECK)
#undef FASTGD_CHECK
}  // namespace rules_detail

}  // namespace fastgd
