// Gradient clipping, as the library runs it, "clip/<mode>/<dtype>/<level>/n:<n>/omp:<threads>",
// each call followed by its bound loop (frac_bound, as in bench_kernels.cpp):
//   total_norm       the norm pass alone (norm_power_sum): reads the gradient      bound r1
//   total_norm_inf   the same pass for the inf-norm (max |x|, NaN propagated)      bound r1
//   clip_norm        clip_grad_norm_: the norm pass, then scale in place           bound r1+r1w1
//   clip_value       clip_grad_value_: clamp in place                              bound r1w1
//   adam_clip_norm   Optimizer(clip_norm=...) with Adam: the norm pass, then one   bound r1+r4w3
//                    Adam pass reading the gradient through GradTransform{scale}
//                    (step_plan.cpp), so the gradient is never written
//   adam_clip_value  Adam with GradTransform{1, clip_value}: fused, no extra pass  bound r4w3
#include <cmath>
#include <limits>
#include <string>

#include "bandwidth_loops.hpp"
#include "bench_common.hpp"
#include "bench_groups.hpp"
#include "fastgd/kernel_table.hpp"

namespace fastgd_bench {
namespace {

using fastgd::NormKind;

enum class Mode { total_norm, total_norm_inf, clip_norm, clip_value, adam_clip_norm, adam_clip_value };

struct ModeCase {
    const char* name;
    Mode mode;
    int arrays_per_element;  // bytes per element / itemsize
    const char* bound;
};

const ModeCase kModes[] = {
    {"total_norm", Mode::total_norm, 1, "r1"},
    {"total_norm_inf", Mode::total_norm_inf, 1, "r1"},
    {"clip_norm", Mode::clip_norm, 3, "r1+r1w1"},
    {"clip_value", Mode::clip_value, 2, "r1w1"},
    {"adam_clip_norm", Mode::adam_clip_norm, 8, "r1+r4w3"},
    {"adam_clip_value", Mode::adam_clip_value, 7, "r4w3"},
};

template <class T>
void bm_clip(benchmark::State& state, const std::string& owner, ModeCase mc, const std::string& level, std::size_t n,
             int threads) {
    Use use(level, threads);
    T* const* a = pool().get<T>(n, owner);
    T* grad = a[1];
    fastgd::TensorRef<T> t;
    t.param = a[0];
    t.grad = grad;
    t.state[0] = a[2];
    t.state[1] = a[3];
    t.size = n;
    const auto& k = fastgd::active_kernels().template of<T>();
    const fastgd::Adam::Options adam{1e-3, 0.9, 0.999, 1e-8, 0.0, false, false};
    fastgd::StepState st;
    st.step = 100;
    // Half the initial norm (gradients are uniform in +-1e-3): the first call scales, and
    // every later one multiplies by a coefficient of about 1, which still writes every element.
    const double max_norm = 0.5e-3 * std::sqrt(static_cast<double>(n) / 3.0);
    const double clip_value = 0.5e-3;
    const auto coefficient = [&] {
        const double norm = std::sqrt(k.norm_power_sum(&grad, &n, 1, NormKind::two, 2.0));
        return std::fmin(1.0, max_norm / (norm + 1e-6));  // as Optimizer's clip coefficient
    };
    const Pattern bound = parse_pattern(mc.bound);
    std::vector<double> kernel_s, bound_s;
    const auto call = [&] {
        switch (mc.mode) {
            case Mode::total_norm: benchmark::DoNotOptimize(k.norm_power_sum(&grad, &n, 1, NormKind::two, 2.0)); break;
            case Mode::total_norm_inf:
                benchmark::DoNotOptimize(k.norm_power_sum(&grad, &n, 1, NormKind::inf, INFINITY));
                break;
            case Mode::clip_norm: k.scale(&grad, &n, 1, coefficient()); break;
            case Mode::clip_value: k.clamp(&grad, &n, 1, clip_value); break;
            case Mode::adam_clip_norm: k.adam(&t, 1, adam, st, fastgd::GradTransform{coefficient(), INFINITY}); break;
            case Mode::adam_clip_value: k.adam(&t, 1, adam, st, fastgd::GradTransform{1.0, clip_value}); break;
        }
    };
    for (auto _ : state) {
        time_beside_bound(state, call, bound, a, n, threads, kernel_s, bound_s);
        ++st.step;
    }
    report(state, kernel_s, bound_s, n, static_cast<std::int64_t>(sizeof(T)) * mc.arrays_per_element,
           group_name(dtype_name<T>(), n, threads));
}

}  // namespace

template <class T> void register_clipping(const std::string& level, std::size_t n, int threads) {
    for (const ModeCase& mc : kModes) {
        const std::string name = kernel_name("clip", mc.name, dtype_name<T>(), level, n, threads);
        add(name, [=](benchmark::State& s, const std::string& owner) { bm_clip<T>(s, owner, mc, level, n, threads); }, true);
    }
}

template void register_clipping<float>(const std::string&, std::size_t, int);
template void register_clipping<double>(const std::string&, std::size_t, int);

}  // namespace fastgd_bench
