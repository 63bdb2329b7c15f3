// Every update rule of the kernel table, called directly (no Python, no argument checks):
// "rule/<name>/<dtype>/<level>/n:<n>/omp:<threads>". bytes_per_second counts what the rule
// must move per element (rule_bytes); frac_bound compares it with the loop that moves the
// same bytes ("r<2+S>w<1+S>" for S state arrays), run after every call of the kernel, and
// frac_stream with STREAM copy / triad. The time reported is the kernel's alone.
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
    void (*call)(const fastgd::KernelSet<T>&, const TensorRef<T>*, StepState&);
};

// torch.optim's defaults, and lr as each rule's docstring suggests.
template <class T> std::vector<RuleCase<T>> rule_cases() {
    using K = fastgd::KernelSet<T>;
    using R = const TensorRef<T>*;
    static const fastgd::GradTransform none{};
    return {
        {"sgd", 0, [](const K& k, R t, StepState& s) { k.sgd(t, 1, {1e-3, 0.0, 0.0, 0.0, false}, s, none); }},
        {"sgd_momentum", 1, [](const K& k, R t, StepState& s) { k.sgd(t, 1, {1e-3, 0.9, 0.0, 0.0, false}, s, none); }},
        {"sgd_nesterov", 1, [](const K& k, R t, StepState& s) { k.sgd(t, 1, {1e-3, 0.9, 0.0, 0.0, true}, s, none); }},
        {"adagrad", 1, [](const K& k, R t, StepState& s) { k.adagrad(t, 1, {1e-2, 0.0, 0.0, 1e-10}, s, none); }},
        {"rmsprop", 1, [](const K& k, R t, StepState& s) { k.rmsprop(t, 1, {1e-2, 0.99, 1e-8, 0.0, 0.0, false}, s, none); }},
        {"adadelta", 2, [](const K& k, R t, StepState& s) { k.adadelta(t, 1, {1.0, 0.9, 1e-6, 0.0}, s, none); }},
        {"adam", 2, [](const K& k, R t, StepState& s) { k.adam(t, 1, {1e-3, 0.9, 0.999, 1e-8, 0.0, false, false}, s, none); }},
        {"adamw", 2, [](const K& k, R t, StepState& s) { k.adam(t, 1, {1e-3, 0.9, 0.999, 1e-8, 1e-2, false, true}, s, none); }},
        {"adamax", 2, [](const K& k, R t, StepState& s) { k.adamax(t, 1, {2e-3, 0.9, 0.999, 1e-8, 0.0}, s, none); }},
        {"nadam", 2, [](const K& k, R t, StepState& s) { k.nadam(t, 1, {2e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3, false}, s, none); }},
        {"radam", 2, [](const K& k, R t, StepState& s) { k.radam(t, 1, {1e-3, 0.9, 0.999, 1e-8, 0.0, false}, s, none); }},
        {"lion", 1, [](const K& k, R t, StepState& s) { k.lion(t, 1, {1e-4, 0.9, 0.99, 0.0}, s, none); }},
    };
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
