// Every update rule of the kernel table, called directly (no Python, no argument checks):
// "rule/<name>/<dtype>/<level>/n:<n>/omp:<threads>". bytes_per_second counts what the rule
// must move per element (rule_bytes); frac_bound compares it with the loop that moves the
// same bytes ("r<2+S>w<1+S>" for S state arrays), run after every call of the kernel, and
// frac_stream with STREAM copy / triad. The time reported is the kernel's alone.
#include <functional>
#include <string>
#include <vector>

#include "bandwidth_loops.hpp"
#include "bench_common.hpp"
#include "bench_groups.hpp"
#include "fastgd/kernel_table.hpp"

namespace fastgd_bench {
namespace {

using fastgd::StepState;
using fastgd::TensorRef;

template <class T> struct RuleCase {
    const char* name;
    int states;
    std::function<void(const fastgd::KernelSet<T>&, const TensorRef<T>*, StepState&)> call;
};

// Rule R at the rule table's defaults (torch's, and lr as each rule's docstring suggests),
// changed by `edit`.
template <class T, class R>
RuleCase<T> rule_case(const char* name, void (*edit)(typename R::Options&) = nullptr) {
    typename R::Options o = fastgd::default_options<R>();
    if (edit) edit(o);
    int states = 0;
    for (const auto& s : R::states) states += fastgd::needed(s, o);
    return {name, states, [o](const fastgd::KernelSet<T>& k, const TensorRef<T>* t, StepState& s) {
                (k.*fastgd::RuleKernel<R, T>::member)(t, 1, o, s, fastgd::GradTransform{});
            }};
}

// Every rule of the table, and a few of their options.
template <class T> std::vector<RuleCase<T>> rule_cases() {
    std::vector<RuleCase<T>> cases;
#define FASTGD_CASE(R, name) cases.push_back(rule_case<T, fastgd::R>(#name));
    FASTGD_RULES(FASTGD_CASE)
#undef FASTGD_CASE
    cases.push_back(rule_case<T, fastgd::Sgd>("sgd_momentum", [](fastgd::Sgd::Options& o) { o.momentum = 0.9; }));
    cases.push_back(rule_case<T, fastgd::Sgd>("sgd_nesterov", [](fastgd::Sgd::Options& o) {
        o.momentum = 0.9;
        o.nesterov = true;
    }));
    cases.push_back(rule_case<T, fastgd::Adam>("adamw", [](fastgd::Adam::Options& o) {
        o.weight_decay = 1e-2;
        o.decoupled_weight_decay = true;
    }));
    return cases;
}

template <class T>
void bm_rule(benchmark::State& state, const std::string& owner, RuleCase<T> rule, const std::string& level,
             std::size_t n, int threads) {
    Use use(level, threads);
    T* const* a = pool().get<T>(n, owner);
    TensorRef<T> t;
    t.param = a[0];
    t.grad = a[1];
    for (int k = 0; k < rule.states; ++k) t.state[k] = a[2 + k];
    t.size = n;
    const auto& kernels = fastgd::active_kernels().template of<T>();
    StepState st;
    st.step = 100;  // past RAdam's unrectified first steps
    const Pattern bound = parse_pattern("r" + std::to_string(2 + rule.states) + "w" + std::to_string(1 + rule.states));
    std::vector<double> kernel_s, bound_s;
    for (auto _ : state) {
        time_beside_bound(state, [&] { rule.call(kernels, &t, st); }, bound, a, n, threads, kernel_s, bound_s);
        ++st.step;
    }
    report(state, kernel_s, bound_s, n, rule_bytes(sizeof(T), rule.states), group_name(dtype_name<T>(), n, threads));
}

}  // namespace

template <class T> void register_rules(const std::string& level, std::size_t n, int threads) {
    for (const RuleCase<T>& rule : rule_cases<T>()) {
        const std::string name = kernel_name("rule", rule.name, dtype_name<T>(), level, n, threads);
        add(name, [=](benchmark::State& s, const std::string& owner) { bm_rule<T>(s, owner, rule, level, n, threads); }, true);
    }
}

template void register_rules<float>(const std::string&, std::size_t, int);
template void register_rules<double>(const std::string&, std::size_t, int);

}  // namespace fastgd_bench
