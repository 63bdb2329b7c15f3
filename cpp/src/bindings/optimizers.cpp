// One binding per update rule: check every array, then run the level's kernel without the GIL.
// Each takes the arrays of one parameter group as lists, so a step costs one call.
#include <cmath>
#include <limits>
#include <string>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "register.hpp"

namespace fastgd::bindings {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

template <class Options> using Rule32 = KernelSet<float>::Rule<Options> KernelSet<float>::*;
template <class Options> using Rule64 = KernelSet<double>::Rule<Options> KernelSet<double>::*;

// A state list the rule needs in this configuration, or an error saying which option needs it.
NamedArrays needed(const char* name, const py::object& arrays, const char* because) {
    if (arrays.is_none()) throw py::value_error(std::string(name) + " is required " + because);
    return {name, arrays};
}

// Runs one rule over a group; returns NAdam's new mu_product (the input for other rules).
template <class Options>
double run(const py::object& params, const py::object& grads, const std::vector<NamedArrays>& states,
           const Options& options, std::int64_t step, double mu_product, double grad_scale, double clip_value,
           Rule32<Options> f32, Rule64<Options> f64) {
    if (step < 1) throw py::value_error("step must be >= 1 (the count after this step), got " + std::to_string(step));
    if (!(clip_value > 0.0)) throw py::value_error("clip_value must be > 0, got " + std::to_string(clip_value));
    const Batch batch = gather(params, grads, states);
    const KernelTable& k = active_kernels();
    const GradTransform transform{grad_scale, clip_value};
    StepState s32{step, mu_product}, s64{step, mu_product};
    {
        // Safe without the GIL: the kernels touch only raw buffers of arrays that `batch`
        // keeps referenced, and no Python object.
        py::gil_scoped_release release;
        if (!batch.f32.empty()) (k.f32.*f32)(batch.f32.data(), batch.f32.size(), options, s32, transform);
        if (!batch.f64.empty()) (k.f64.*f64)(batch.f64.data(), batch.f64.size(), options, s64, transform);
    }
    return batch.f32.empty() ? s64.mu_product : s32.mu_product;
}

#define FASTGD_COMMON_ARGS py::kw_only(), py::arg("step"), py::arg("lr")
#define FASTGD_TRANSFORM_ARGS py::arg("grad_scale") = 1.0, py::arg("clip_value") = kInf

}  // namespace

void register_optimizers(py::module_& m) {
    m.def(
        "check_arrays",
        [](py::object params, py::object grads) { gather(params, grads, {}); },
        "Run every check a step makes on params and grads, writing nothing (for multi-group steps, "
        "which check all groups before the first one is updated).",
        py::arg("params"), py::arg("grads"));

    m.def(
        "sgd",
        [](py::object params, py::object grads, py::object momentum_buffer, std::int64_t step, double lr,
           double momentum, double dampening, double weight_decay, bool nesterov, double grad_scale, double clip_value) {
            std::vector<NamedArrays> st;
            if (momentum != 0.0) st.push_back(needed("momentum_buffer", momentum_buffer, "when momentum != 0"));
            run<SgdOptions>(params, grads, st, {lr, momentum, dampening, weight_decay, nesterov}, step, 1.0, grad_scale,
                            clip_value, &KernelSet<float>::sgd, &KernelSet<double>::sgd);
        },
        "SGD step over one parameter group, in place.", py::arg("params"), py::arg("grads"),
        py::arg("momentum_buffer").none(true), FASTGD_COMMON_ARGS, py::arg("momentum"), py::arg("dampening"),
        py::arg("weight_decay"), py::arg("nesterov"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "adagrad",
        [](py::object params, py::object grads, py::object state_sum, std::int64_t step, double lr, double lr_decay,
           double weight_decay, double eps, double grad_scale, double clip_value) {
            run<AdagradOptions>(params, grads, {{"state_sum", state_sum}}, {lr, lr_decay, weight_decay, eps}, step, 1.0,
                                grad_scale, clip_value, &KernelSet<float>::adagrad, &KernelSet<double>::adagrad);
        },
        "Adagrad step over one parameter group, in place.", py::arg("params"), py::arg("grads"), py::arg("state_sum"),
        FASTGD_COMMON_ARGS, py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "rmsprop",
        [](py::object params, py::object grads, py::object square_avg, py::object grad_avg, py::object momentum_buffer,
           std::int64_t step, double lr, double alpha, double eps, double weight_decay, double momentum, bool centered,
           double grad_scale, double clip_value) {
            std::vector<NamedArrays> st{{"square_avg", square_avg}};
            if (centered) st.push_back(needed("grad_avg", grad_avg, "when centered=True"));
            if (momentum > 0.0) st.push_back(needed("momentum_buffer", momentum_buffer, "when momentum > 0"));
            run<RmspropOptions>(params, grads, st, {lr, alpha, eps, weight_decay, momentum, centered}, step, 1.0,
                                grad_scale, clip_value, &KernelSet<float>::rmsprop, &KernelSet<double>::rmsprop);
        },
        "RMSprop step over one parameter group, in place.", py::arg("params"), py::arg("grads"), py::arg("square_avg"),
        py::arg("grad_avg").none(true), py::arg("momentum_buffer").none(true), FASTGD_COMMON_ARGS, py::arg("alpha"),
        py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "adadelta",
        [](py::object params, py::object grads, py::object square_avg, py::object acc_delta, std::int64_t step,
           double lr, double rho, double eps, double weight_decay, double grad_scale, double clip_value) {
            run<AdadeltaOptions>(params, grads, {{"square_avg", square_avg}, {"acc_delta", acc_delta}},
                                 {lr, rho, eps, weight_decay}, step, 1.0, grad_scale, clip_value,
                                 &KernelSet<float>::adadelta, &KernelSet<double>::adadelta);
        },
        "Adadelta step over one parameter group, in place.", py::arg("params"), py::arg("grads"),
        py::arg("square_avg"), py::arg("acc_delta"), FASTGD_COMMON_ARGS, py::arg("rho"), py::arg("eps"),
        py::arg("weight_decay"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "adam",
        [](py::object params, py::object grads, py::object exp_avg, py::object exp_avg_sq, py::object max_exp_avg_sq,
           std::int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
           bool decoupled_weight_decay, double grad_scale, double clip_value) {
            std::vector<NamedArrays> st{{"exp_avg", exp_avg}, {"exp_avg_sq", exp_avg_sq}};
            if (amsgrad) st.push_back(needed("max_exp_avg_sq", max_exp_avg_sq, "when amsgrad=True"));
            run<AdamOptions>(params, grads, st, {lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled_weight_decay},
                             step, 1.0, grad_scale, clip_value, &KernelSet<float>::adam, &KernelSet<double>::adam);
        },
        "Adam / AdamW step over one parameter group, in place.", py::arg("params"), py::arg("grads"),
        py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq").none(true), FASTGD_COMMON_ARGS,
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("amsgrad"),
        py::arg("decoupled_weight_decay"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "adamax",
        [](py::object params, py::object grads, py::object exp_avg, py::object exp_inf, std::int64_t step, double lr,
           double beta1, double beta2, double eps, double weight_decay, double grad_scale, double clip_value) {
            run<AdamaxOptions>(params, grads, {{"exp_avg", exp_avg}, {"exp_inf", exp_inf}},
                               {lr, beta1, beta2, eps, weight_decay}, step, 1.0, grad_scale, clip_value,
                               &KernelSet<float>::adamax, &KernelSet<double>::adamax);
        },
        "Adamax step over one parameter group, in place.", py::arg("params"), py::arg("grads"), py::arg("exp_avg"),
        py::arg("exp_inf"), FASTGD_COMMON_ARGS, py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "nadam",
        [](py::object params, py::object grads, py::object exp_avg, py::object exp_avg_sq, std::int64_t step,
           double mu_product, double lr, double beta1, double beta2, double eps, double weight_decay,
           double momentum_decay, bool decoupled_weight_decay, double grad_scale, double clip_value) {
            return run<NadamOptions>(params, grads, {{"exp_avg", exp_avg}, {"exp_avg_sq", exp_avg_sq}},
                                     {lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled_weight_decay},
                                     step, mu_product, grad_scale, clip_value, &KernelSet<float>::nadam,
                                     &KernelSet<double>::nadam);
        },
        "NAdam step over one parameter group, in place; returns the new mu_product.", py::arg("params"),
        py::arg("grads"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::kw_only(), py::arg("step"),
        py::arg("mu_product"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("momentum_decay"), py::arg("decoupled_weight_decay"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "radam",
        [](py::object params, py::object grads, py::object exp_avg, py::object exp_avg_sq, std::int64_t step,
           double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
           double grad_scale, double clip_value) {
            run<RadamOptions>(params, grads, {{"exp_avg", exp_avg}, {"exp_avg_sq", exp_avg_sq}},
                              {lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay}, step, 1.0, grad_scale,
                              clip_value, &KernelSet<float>::radam, &KernelSet<double>::radam);
        },
        "RAdam step over one parameter group, in place.", py::arg("params"), py::arg("grads"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"), FASTGD_COMMON_ARGS, py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("decoupled_weight_decay"), FASTGD_TRANSFORM_ARGS);

    m.def(
        "lion",
        [](py::object params, py::object grads, py::object exp_avg, std::int64_t step, double lr, double beta1,
           double beta2, double weight_decay, double grad_scale, double clip_value) {
            run<LionOptions>(params, grads, {{"exp_avg", exp_avg}}, {lr, beta1, beta2, weight_decay}, step, 1.0,
                             grad_scale, clip_value, &KernelSet<float>::lion, &KernelSet<double>::lion);
        },
        "Lion step over one parameter group, in place.", py::arg("params"), py::arg("grads"), py::arg("exp_avg"),
        FASTGD_COMMON_ARGS, py::arg("beta1"), py::arg("beta2"), py::arg("weight_decay"), FASTGD_TRANSFORM_ARGS);
}

}  // namespace fastgd::bindings
