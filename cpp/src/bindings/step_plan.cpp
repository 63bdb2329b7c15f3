// Optimizer.step() in one call: the per-step Python work (reading each group's options,
// evaluating schedules, splitting the gradients by group, clipping, counting steps) done here
// in C++, so that a step over one small array costs about a microsecond rather than five.
//
// The plan is a tuple Optimizer builds once and reuses:
//   (rule, optimizer, param_groups, group_states, states[, grad_prescale])
// rule: the kernel's name ("adam", ...); optimizer: read for clip_norm / clip_value /
// clip_norm_type, written for last_grad_norm; param_groups: the optimizer's list of group
// dicts, read afresh every step (options may change between steps, as in torch);
// group_states: per group a dict {"step": int, "mu_product": float}, advanced here;
// states: per group a tuple of state lists (or None) in the rule's order.
// grad_prescale (optional, default 1): a factor the gradients are read with before anything
// else, the norm for clipping included (fastgd.distributed's 1/world_size: the buffers hold
// the sum over ranks and the step sees their mean, at no extra pass over memory).
//
// step_groups returns False, having written nothing, whenever the step needs the Python path
// (a state array the current options need does not exist yet, grads is not a list/tuple/array,
// or a gradient is not finite under nonfinite="error": the Python path then raises, naming it).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/norms.hpp"
#include "register.hpp"
#include "step_plan.hpp"

namespace fastgd::bindings {
namespace {

// An interned key, made once per call site (never freed: it lives as long as the module).
#define FASTGD_KEY(s)                                                \
    ([]() -> PyObject* {                                             \
        static PyObject* const key = PyUnicode_InternFromString(s); \
        return key;                                                  \
    }())

// The options that a schedule (a callable of the step) may drive, as Optimizer.SCHEDULABLE.
enum class Sched : bool { no = false, yes = true };

PyObject* lookup(PyObject* dict, PyObject* key) {
    PyObject* v = PyDict_GetItemWithError(dict, key);  // borrowed
    if (v) return v;
    if (PyErr_Occurred()) throw py::error_already_set();
    throw py::key_error("parameter group has no option '" + py::str(key).cast<std::string>() + "'");
}

double as_double(PyObject* v) {
    const double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return d;
}

// A float option; a schedule is called with the group's step count k (from 0).
double number(PyObject* group, PyObject* key, std::int64_t k, Sched sched = Sched::no) {
    PyObject* v = lookup(group, key);
    if (sched == Sched::yes && PyCallable_Check(v)) {
        const py::object value = py::reinterpret_borrow<py::object>(v)(k);
        return as_double(value.ptr());
    }
    return as_double(v);
}

bool flag(PyObject* group, PyObject* key) {
    const int t = PyObject_IsTrue(lookup(group, key));
    if (t < 0) throw py::error_already_set();
    return t != 0;
}

bool flag_or_false(PyObject* group, PyObject* key) {
    if (PyDict_GetItemWithError(group, key)) return flag(group, key);
    if (PyErr_Occurred()) throw py::error_already_set();
    return false;
}

std::pair<double, double> betas(PyObject* group) {
    const py::sequence b = py::reinterpret_borrow<py::sequence>(lookup(group, FASTGD_KEY("betas")));
    if (b.size() != 2) throw py::value_error("betas must be a pair");
    return {as_double(b[0].ptr()), as_double(b[1].ptr())};
}

using AnyOptions = std::variant<SgdOptions, AdagradOptions, RmspropOptions, AdadeltaOptions, AdamOptions,
                                AdamaxOptions, NadamOptions, RadamOptions, LionOptions>;

template <class O> struct Kernels;
#define FASTGD_KERNELS(O, name)                                                      \
    template <> struct Kernels<O> {                                                  \
        static constexpr KernelSet<float>::Rule<O> KernelSet<float>::*f32 = &KernelSet<float>::name;    \
        static constexpr KernelSet<double>::Rule<O> KernelSet<double>::*f64 = &KernelSet<double>::name; \
    };
FASTGD_KERNELS(SgdOptions, sgd)
FASTGD_KERNELS(AdagradOptions, adagrad)
FASTGD_KERNELS(RmspropOptions, rmsprop)
FASTGD_KERNELS(AdadeltaOptions, adadelta)
FASTGD_KERNELS(AdamOptions, adam)
FASTGD_KERNELS(AdamaxOptions, adamax)
FASTGD_KERNELS(NadamOptions, nadam)
FASTGD_KERNELS(RadamOptions, radam)
FASTGD_KERNELS(LionOptions, lion)
#undef FASTGD_KERNELS

// One group's step, read and checked, not yet run.
struct GroupStep {
    AnyOptions options;
    Batch batch;
    StepState s32, s64;
    double sign = 1.0;
    PyObject* gstate = nullptr;  // borrowed from the plan
};

// The state lists the options need, in the kernel's order; false when one is missing.
class States {
public:
    explicit States(PyObject* tuple) : tuple_(tuple) {}
    bool need(std::size_t i, const char* name) {
        if (i >= static_cast<std::size_t>(PyTuple_GET_SIZE(tuple_))) return false;
        PyObject* list = PyTuple_GET_ITEM(tuple_, i);
        if (list == Py_None) return false;
        named.emplace_back(name, py::reinterpret_borrow<py::object>(list));
        return true;
    }
    std::vector<NamedArrays> named;

private:
    PyObject* tuple_;
};

// Reads the rule's options from a group dict (k: the group's step count so far). Returns
// false when a state array the options need is missing.
bool read_options(const std::string& rule, PyObject* g, std::int64_t k, States& st, AnyOptions& out) {
    const auto lr = [&] { return number(g, FASTGD_KEY("lr"), k, Sched::yes); };
    const auto wd = [&] { return number(g, FASTGD_KEY("weight_decay"), k, Sched::yes); };
    const auto eps = [&] { return number(g, FASTGD_KEY("eps"), k); };
    if (rule == "adam") {
        const auto [b1, b2] = betas(g);
        const AdamOptions o{lr(), b1, b2, eps(), wd(), flag(g, FASTGD_KEY("amsgrad")),
                            flag(g, FASTGD_KEY("decoupled_weight_decay"))};
        out = o;
        return st.need(0, "exp_avg") && st.need(1, "exp_avg_sq") && (!o.amsgrad || st.need(2, "max_exp_avg_sq"));
    }
    if (rule == "sgd") {
        const SgdOptions o{lr(), number(g, FASTGD_KEY("momentum"), k, Sched::yes),
                           number(g, FASTGD_KEY("dampening"), k), wd(), flag(g, FASTGD_KEY("nesterov"))};
        out = o;
        return o.momentum == 0.0 || st.need(0, "momentum_buffer");
    }
    if (rule == "adagrad") {
        out = AdagradOptions{lr(), number(g, FASTGD_KEY("lr_decay"), k), wd(), eps()};
        return st.need(0, "state_sum");
    }
    if (rule == "rmsprop") {
        const RmspropOptions o{lr(), number(g, FASTGD_KEY("alpha"), k), eps(), wd(),
                               number(g, FASTGD_KEY("momentum"), k, Sched::yes), flag(g, FASTGD_KEY("centered"))};
        out = o;
        return st.need(0, "square_avg") && (!o.centered || st.need(1, "grad_avg")) &&
               (!(o.momentum > 0.0) || st.need(2, "momentum_buffer"));
    }
    if (rule == "adadelta") {
        out = AdadeltaOptions{lr(), number(g, FASTGD_KEY("rho"), k), eps(), wd()};
        return st.need(0, "square_avg") && st.need(1, "acc_delta");
    }
    if (rule == "adamax") {
        const auto [b1, b2] = betas(g);
        out = AdamaxOptions{lr(), b1, b2, eps(), wd()};
        return st.need(0, "exp_avg") && st.need(1, "exp_inf");
    }
    if (rule == "nadam") {
        const auto [b1, b2] = betas(g);
        out = NadamOptions{lr(), b1, b2, eps(), wd(), number(g, FASTGD_KEY("momentum_decay"), k),
                           flag(g, FASTGD_KEY("decoupled_weight_decay"))};
        return st.need(0, "exp_avg") && st.need(1, "exp_avg_sq");
    }
    if (rule == "radam") {
        const auto [b1, b2] = betas(g);
        out = RadamOptions{lr(), b1, b2, eps(), wd(), flag(g, FASTGD_KEY("decoupled_weight_decay"))};
        return st.need(0, "exp_avg") && st.need(1, "exp_avg_sq");
    }
    if (rule == "lion") {
        const auto [b1, b2] = betas(g);
        out = LionOptions{lr(), b1, b2, wd()};
        return st.need(0, "exp_avg");
    }
    throw py::value_error("unknown update rule '" + rule + "'");
}

std::int64_t step_count(PyObject* gstate) {
    const long long s = PyLong_AsLongLong(lookup(gstate, FASTGD_KEY("step")));
    if (s == -1 && PyErr_Occurred()) throw py::error_already_set();
    return s;
}

void set_item(PyObject* dict, PyObject* key, py::object value) {
    if (PyDict_SetItem(dict, key, value.ptr()) != 0) throw py::error_already_set();
}

// The global p-norm of every group's gradients (as torch.nn.utils.clip_grad_norm_); called
// without the GIL.
double grad_norm(const std::vector<GroupStep>& steps, double p) {
    std::vector<const float*> a32;
    std::vector<std::size_t> n32;
    std::vector<const double*> a64;
    std::vector<std::size_t> n64;
    for (const GroupStep& s : steps) {
        for (const auto& t : s.batch.f32) a32.push_back(t.grad), n32.push_back(t.size);
        for (const auto& t : s.batch.f64) a64.push_back(t.grad), n64.push_back(t.size);
    }
    const NormKind kind = norm_kind(p);
    const KernelTable& k = active_kernels();
    const double s32 = a32.empty() ? 0.0 : k.f32.norm_power_sum(a32.data(), n32.data(), a32.size(), kind, p);
    const double s64 = a64.empty() ? 0.0 : k.f64.norm_power_sum(a64.data(), n64.data(), a64.size(), kind, p);
    return norm_from_power_sum(combine_power_sums(s32, s64, kind), kind, p);
}

}  // namespace

bool step_groups(const py::tuple& plan, const py::object& grads_obj) {
    if (plan.size() != 5 && plan.size() != 6) throw py::value_error("a step plan is a 5- or 6-tuple");
    const double prescale = plan.size() == 6 ? as_double(plan[5].ptr()) : 1.0;
    const std::string rule = plan[0].cast<std::string>();
    PyObject* optimizer = plan[1].ptr();
    PyObject* groups = plan[2].ptr();
    PyObject* gstates = plan[3].ptr();
    PyObject* states = plan[4].ptr();
    if (!PyList_Check(groups) || !PyList_Check(gstates) || !PyTuple_Check(states)) return false;
    const Py_ssize_t n_groups = PyList_GET_SIZE(groups);
    if (PyList_GET_SIZE(gstates) != n_groups || PyTuple_GET_SIZE(states) != n_groups) return false;

    // The gradients, as a tuple that keeps them alive; anything but a list, tuple or one
    // array goes to the Python path (which takes any iterable).
    py::tuple grads;
    if (PyTuple_Check(grads_obj.ptr())) grads = py::reinterpret_borrow<py::tuple>(grads_obj);
    else if (PyList_Check(grads_obj.ptr())) grads = py::reinterpret_steal<py::tuple>(PyList_AsTuple(grads_obj.ptr()));
    else if (py::isinstance<py::array>(grads_obj)) grads = py::make_tuple(grads_obj);
    else return false;

    std::vector<py::object> params(n_groups);
    Py_ssize_t total = 0;
    for (Py_ssize_t gi = 0; gi < n_groups; ++gi) {
        PyObject* g = PyList_GET_ITEM(groups, gi);
        if (!PyDict_Check(g) || !PyDict_Check(PyList_GET_ITEM(gstates, gi))) return false;
        PyObject* ps = lookup(g, FASTGD_KEY("params"));
        if (!PyList_Check(ps)) return false;
        params[gi] = py::reinterpret_borrow<py::object>(ps);
        total += PyList_GET_SIZE(ps);
    }
    if (PyTuple_GET_SIZE(grads.ptr()) != total)
        throw py::value_error("step() got " + std::to_string(PyTuple_GET_SIZE(grads.ptr())) + " gradients for " +
                              std::to_string(total) +
                              " parameters; pass one gradient per parameter, in the order of the parameters");

    // Every group read and checked before the first is written.
    std::vector<GroupStep> steps(n_groups);
    Py_ssize_t first = 0;
    for (Py_ssize_t gi = 0; gi < n_groups; ++gi) {
        PyObject* g = PyList_GET_ITEM(groups, gi);
        GroupStep& s = steps[gi];
        s.gstate = PyList_GET_ITEM(gstates, gi);
        const std::int64_t k = step_count(s.gstate);
        States st(PyTuple_GET_ITEM(states, gi));
        if (!PyTuple_Check(PyTuple_GET_ITEM(states, gi)) || !read_options(rule, g, k, st, s.options)) return false;
        s.sign = flag_or_false(g, FASTGD_KEY("maximize")) ? -1.0 : 1.0;
        s.s32.step = s.s64.step = k + 1;
        if (rule == "nadam") s.s32.mu_product = s.s64.mu_product = number(s.gstate, FASTGD_KEY("mu_product"), k);
        const Py_ssize_t n = PyList_GET_SIZE(params[gi].ptr());
        const py::object group_grads =
            py::reinterpret_steal<py::object>(PyTuple_GetSlice(grads.ptr(), first, first + n));
        s.batch = gather(params[gi], group_grads, st.named);
        first += n;
    }

    // Clipping, as the optimizer says now (its attributes may change between steps).
    PyObject* clip_norm = PyObject_GetAttr(optimizer, FASTGD_KEY("clip_norm"));
    const py::object clip_norm_held = py::reinterpret_steal<py::object>(clip_norm);
    PyObject* clip_val = clip_norm ? PyObject_GetAttr(optimizer, FASTGD_KEY("clip_value")) : nullptr;
    const py::object clip_val_held = py::reinterpret_steal<py::object>(clip_val);
    if (!clip_norm || !clip_val) throw py::error_already_set();
    const bool by_norm = clip_norm != Py_None;
    double max_norm = 0.0, norm_type = 2.0, clip_value = std::numeric_limits<double>::infinity();
    if (by_norm) {
        max_norm = as_double(clip_norm);
        const py::object p = py::reinterpret_steal<py::object>(PyObject_GetAttr(optimizer, FASTGD_KEY("clip_norm_type")));
        if (!p) throw py::error_already_set();
        norm_type = as_double(p.ptr());
        if (!(norm_type > 0.0)) throw py::value_error("clip_norm_type must be > 0, got " + std::to_string(norm_type));
    } else if (clip_val != Py_None) {
        clip_value = as_double(clip_val);
        if (!(clip_value > 0.0)) throw py::value_error("clip_value must be > 0, got " + std::to_string(clip_value));
    }

    // What to do with a NaN or Inf gradient, as Optimizer.nonfinite says now.
    const py::object nonfinite_held =
        py::reinterpret_steal<py::object>(PyObject_GetAttr(optimizer, FASTGD_KEY("nonfinite")));
    if (!nonfinite_held) throw py::error_already_set();
    const std::string nonfinite = py::str(nonfinite_held).cast<std::string>();
    if (nonfinite != "ignore" && nonfinite != "skip" && nonfinite != "error")
        throw py::value_error("nonfinite must be one of 'ignore', 'skip', 'error', got '" + nonfinite + "'");
    const bool check_finite = nonfinite != "ignore";

    const KernelTable& kt = active_kernels();
    double total_norm = 0.0;
    bool finite = true;
    {
        // Safe without the GIL: the kernels touch only raw buffers of arrays the batches keep
        // referenced, and no Python object.
        py::gil_scoped_release release;
        double grad_scale = prescale;
        if (by_norm) {
            total_norm = prescale * grad_norm(steps, norm_type);  // the norm of the prescaled gradients
            grad_scale = prescale * std::fmin(1.0, max_norm / (total_norm + 1e-6));  // Optimizer's clip_coefficient
        }
        // The clipping norm already read every gradient; else one read-only inf-norm pass,
        // NaN when any gradient holds a NaN.
        if (check_finite)
            finite = std::isfinite(by_norm ? total_norm : grad_norm(steps, std::numeric_limits<double>::infinity()));
        for (GroupStep& s : steps) {
            if (!finite) break;
            const GradTransform transform{s.sign * grad_scale, clip_value};
            std::visit(
                [&](const auto& o) {
                    using O = std::decay_t<decltype(o)>;
                    if (!s.batch.f32.empty())
                        (kt.f32.*Kernels<O>::f32)(s.batch.f32.data(), s.batch.f32.size(), o, s.s32, transform);
                    if (!s.batch.f64.empty())
                        (kt.f64.*Kernels<O>::f64)(s.batch.f64.data(), s.batch.f64.size(), o, s.s64, transform);
                },
                s.options);
        }
    }
    if (by_norm && PyObject_SetAttr(optimizer, FASTGD_KEY("last_grad_norm"), py::float_(total_norm).ptr()) != 0)
        throw py::error_already_set();
    if (!finite) {
        if (nonfinite == "error") return false;
        // Skipped, as torch.amp.GradScaler skips: no state and no step count move.
        const py::object skipped =
            py::reinterpret_steal<py::object>(PyObject_GetAttr(optimizer, FASTGD_KEY("skipped_steps")));
        if (!skipped) throw py::error_already_set();
        const py::object bumped = skipped + py::int_(1);
        if (PyObject_SetAttr(optimizer, FASTGD_KEY("skipped_steps"), bumped.ptr()) != 0) throw py::error_already_set();
        return true;
    }
    for (GroupStep& s : steps) {
        set_item(s.gstate, FASTGD_KEY("step"), py::int_(s.s32.step));
        if (rule == "nadam")
            set_item(s.gstate, FASTGD_KEY("mu_product"),
                     py::float_(s.batch.f32.empty() ? s.s64.mu_product : s.s32.mu_product));
    }
    return true;
}

void register_step_plan(py::module_& m) {
    m.def("step_groups", &step_groups,
          "One optimizer step over every parameter group from a plan tuple (see Optimizer.step); "
          "returns False, having written nothing, when the step needs the Python path.",
          py::arg("plan"), py::arg("grads"));
}

}  // namespace fastgd::bindings
