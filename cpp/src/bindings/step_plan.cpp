// The one path of every optimizer step. Optimizer.step() calls step() with its StepPlan, and so
// does the linear models' loop over mini-batches (linear.cpp): reading each group's options
// (schedules included), checking every array, the pre-scale, clipping, the non-finite policy,
// skipped-step counting, the kernels and the step counts happen here, and only here. The
// optimizer keeps the allocation of its state arrays (step() asks it for the lists a group's
// options first need) and turns a non-finite gradient under nonfinite="error" into its error.
#include "step_plan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/norms.hpp"
#include "register.hpp"

namespace fastgd::bindings {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

PyObject* key_step() {
    static PyObject* const k = intern("step");
    return k;
}
PyObject* key_params() {
    static PyObject* const k = intern("params");
    return k;
}
PyObject* key_maximize() {
    static PyObject* const k = intern("maximize");
    return k;
}

std::string text(const py::handle& v) { return py::str(v).cast<std::string>(); }
std::string text_repr(const py::handle& v) { return py::repr(v).cast<std::string>(); }

// -- the step's settings --------------------------------------------------------------------------

std::optional<double> optional_number(const py::object& v) {
    if (v.is_none()) return std::nullopt;
    return as_double(v.ptr());
}

Nonfinite nonfinite_of(const py::object& v) {
    if (PyUnicode_Check(v.ptr())) {
        const std::string s = text(v);
        if (s == "ignore") return Nonfinite::ignore;
        if (s == "skip") return Nonfinite::skip;
        if (s == "error") return Nonfinite::error;
    }
    return Nonfinite::invalid;
}

[[noreturn]] void bad_nonfinite(const py::handle& v) {
    throw py::value_error("nonfinite must be one of 'ignore', 'skip', 'error', got " + text_repr(v));
}

// Each setting keeps the value it was given (the optimizer's attribute reads it back) and the
// number a step uses.
void set_clip_norm(StepControl& c, const py::object& v) {
    c.clip_norm = optional_number(v);
    c.clip_norm_set = v;
}
void set_clip_value(StepControl& c, const py::object& v) {
    c.clip_value = optional_number(v);
    c.clip_value_set = v;
}
void set_clip_norm_type(StepControl& c, const py::object& v) {
    c.clip_norm_type = as_double(v.ptr());
    c.clip_norm_type_set = v;
}
void set_nonfinite(StepControl& c, const py::object& v) {
    c.nonfinite = nonfinite_of(v);
    c.nonfinite_set = v;
}

// The optimizer's constructor checks, all of them before anything is kept.
StepControl make_control(const py::object& clip_norm, const py::object& clip_value, const py::object& clip_norm_type,
                         const py::object& nonfinite) {
    StepControl c;
    set_clip_norm(c, clip_norm);
    set_clip_value(c, clip_value);
    set_clip_norm_type(c, py::float_(as_double(clip_norm_type.ptr())));
    set_nonfinite(c, nonfinite);
    if (c.clip_norm && c.clip_value)
        throw py::value_error("give clip_norm or clip_value, not both (as Keras: one clipping per optimizer)");
    if (c.clip_norm && !(*c.clip_norm > 0.0)) throw py::value_error("clip_norm must be > 0, got " + text(clip_norm));
    if (c.clip_value && !(*c.clip_value > 0.0)) throw py::value_error("clip_value must be > 0, got " + text(clip_value));
    if (!(c.clip_norm_type > 0.0))
        throw py::value_error("clip_norm_type must be > 0 (1, 2, inf or any p > 0), got " + text(clip_norm_type));
    if (c.nonfinite == Nonfinite::invalid) bad_nonfinite(nonfinite);
    return c;
}

// Clipping as the settings say now; a setting changed to a bad value since is reported here.
struct Clip {
    bool by_norm = false;
    double max_norm = 0.0, norm_type = 2.0, clip_value = kInf;
};

Clip clip_for_step(const StepControl& c) {
    Clip clip;
    if (c.clip_norm) {
        clip.by_norm = true;
        clip.max_norm = *c.clip_norm;
        clip.norm_type = c.clip_norm_type;
        if (!(clip.norm_type > 0.0)) throw py::value_error("clip_norm_type must be > 0, got " + text(c.clip_norm_type_set));
    } else if (c.clip_value) {
        clip.clip_value = *c.clip_value;
        if (!(clip.clip_value > 0.0)) throw py::value_error("clip_value must be > 0, got " + text(c.clip_value_set));
    }
    if (c.nonfinite == Nonfinite::invalid) bad_nonfinite(c.nonfinite_set);
    return clip;
}

// -- one step -----------------------------------------------------------------------------------

// One group's step, read and checked, not yet run. Holds its group's dicts: a schedule or a
// callback into Python may change the optimizer's lists while the step runs.
// Parameters of a group whose new states are the same (see fresh_parts).
struct Part {
    unsigned fresh = 0;
    py::list params, grads;
    std::array<py::object, kMaxStates> states;  // lists, aligned with the rule's states
    Batch batch;
};

struct GroupStep {
    py::object group, gstate;
    AnyOptions options;
    unsigned need = 0, missing = 0;  // states the options need; those not fetched yet
    std::int64_t k = 0;              // the group's step count before this step
    double sign = 1.0;
    StepState s32, s64;
    py::object grads;
    Batch batch;
    std::vector<Part> parts;  // empty: the group is one part
};

// The gradients as a tuple that keeps them alive: a list or tuple, one array, or any iterable.
py::tuple gradient_tuple(const py::handle& g) {
    PyObject* o = g.ptr();
    if (PyTuple_Check(o)) return py::reinterpret_borrow<py::tuple>(g);
    if (PyList_Check(o)) return py::reinterpret_steal<py::tuple>(PyList_AsTuple(o));
    if (py::isinstance<py::array>(g)) return py::make_tuple(g);
    PyObject* t = PySequence_Tuple(o);
    if (!t) throw py::error_already_set();
    return py::reinterpret_steal<py::tuple>(t);
}

unsigned fetched(const StepPlan::Group& g, std::size_t n_states) {
    unsigned m = 0;
    for (std::size_t i = 0; i < n_states; ++i)
        if (g.states[i]) m |= 1u << i;
    return m;
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

// The first gradient that holds a NaN or Inf, or -1 (for nonfinite="error"'s message).
Py_ssize_t first_nonfinite(const py::tuple& grads) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(grads.ptr()); ++i) {
        const ArrayList a = gather_arrays(py::make_tuple(grads[i]), "grads", false);
        const KernelTable& k = active_kernels();
        const double m = a.f32.empty()
                             ? k.f64.norm_power_sum(a.f64.data(), a.f64_sizes.data(), 1, NormKind::inf, kInf)
                             : k.f32.norm_power_sum(a.f32.data(), a.f32_sizes.data(), 1, NormKind::inf, kInf);
        if (!std::isfinite(m)) return i;
    }
    return -1;
}

// Reads every group's options and checks every gradient (and every state array already
// fetched) against its parameter, before anything is written.
std::vector<GroupStep> read_groups(StepPlan& plan, const py::tuple& grads) {
    const RuleOps& rule = *plan.rule;
    const Py_ssize_t n_groups = static_cast<Py_ssize_t>(plan.layout.size());
    std::vector<GroupStep> steps(n_groups);
    for (Py_ssize_t gi = 0; gi < n_groups; ++gi) {  // no Python code runs in this loop
        steps[gi].group = py::reinterpret_borrow<py::object>(PyList_GET_ITEM(plan.groups.ptr(), gi));
        steps[gi].gstate = py::reinterpret_borrow<py::object>(PyList_GET_ITEM(plan.group_states.ptr(), gi));
    }
    Py_ssize_t first = 0;
    for (Py_ssize_t gi = 0; gi < n_groups; ++gi) {
        GroupStep& s = steps[gi];
        PyObject* g = s.group.ptr();
        PyObject* gs = s.gstate.ptr();
        if (!PyDict_Check(g) || !PyDict_Check(gs)) throw py::type_error("a parameter group and its state are dicts");
        StepPlan::Group& layout = plan.layout[gi];
        s.k = as_int64(lookup(gs, key_step()));
        s.need = rule.read(g, s.k, gi, s.options);
        PyObject* maximize = PyDict_GetItemWithError(g, key_maximize());
        if (!maximize && PyErr_Occurred()) throw py::error_already_set();
        s.sign = maximize && as_flag(maximize) ? -1.0 : 1.0;
        StepState st;
        st.step = s.k + 1;
        for (const ScalarInfo& c : rule.scalars) st.*c.field = as_double(lookup(gs, c.key));
        s.s32 = s.s64 = st;
        const Py_ssize_t n = PyTuple_GET_SIZE(layout.params.ptr());
        // (One group of every gradient, the common case: the tuple itself, not a new one each step.)
        s.grads = n == PyTuple_GET_SIZE(grads.ptr()) ? py::object(grads)
                                                      : py::reinterpret_steal<py::object>(PyTuple_GetSlice(grads.ptr(), first, first + n));
        first += n;
        s.missing = s.need & ~fetched(layout, rule.states.size());
        s.batch = gather(layout.params, s.grads,
                         s.missing ? std::vector<NamedArrays>{} : needed_states(rule, s.need, layout.states.data()));
    }
    return steps;
}

// The state lists a group's options need for the first time, from the optimizer (which
// creates the arrays that do not exist yet), then checked with the group's other arrays.
void fetch_states(StepPlan& plan, Py_ssize_t gi, GroupStep& s) {
    const RuleOps& rule = *plan.rule;
    StepPlan::Group& layout = plan.layout[gi];
    PyObject* g = s.group.ptr();
    py::list wanted;
    for (std::size_t i = 0; i < rule.states.size(); ++i)
        if (s.missing & (1u << i)) {
            const StateInfo& info = rule.states[i];
            wanted.append(py::make_tuple(info.name, info.initial ? as_double(lookup(g, info.initial)) : 0.0));
        }
    const py::sequence got = plan.state_lists(gi, wanted);
    if (got.size() != wanted.size()) throw py::value_error("state_lists returned the wrong number of lists");
    const std::size_t n = layout.params.size();
    layout.fresh_of.resize(n);
    std::size_t j = 0;
    for (std::size_t i = 0; i < rule.states.size(); ++i)
        if (s.missing & (1u << i)) {
            const py::tuple entry = got[j++];
            const py::sequence created = entry[1];
            if (created.size() != n) throw py::value_error("state_lists returned the wrong number of flags");
            layout.states[i] = entry[0];
            for (std::size_t p = 0; p < n; ++p)
                if (as_flag(created[p].ptr())) layout.fresh |= 1u << i, layout.fresh_of[p] |= 1u << i;
        }
    s.batch = gather(layout.params, s.grads, needed_states(rule, s.need, layout.states.data()));
}

// Every array the plan's steps write, its parameters and the state arrays fetched so far, in
// memory of its own: checked when the plan is made and when states are fetched, never per step
// (the gradients are only read).
void require_disjoint(const StepPlan& plan) {
    std::vector<Written> written;
    std::size_t first = 0;
    for (const StepPlan::Group& g : plan.layout) {
        add_written(written, g.params, "params", first);
        first += g.params.size();
    }
    first = 0;
    for (const StepPlan::Group& g : plan.layout) {
        for (std::size_t i = 0; i < plan.rule->states.size(); ++i)
            if (g.states[i]) add_written(written, g.states[i], "state", first, plan.rule->states[i].name);
        first += g.params.size();
    }
    require_disjoint(written);
}

// The groups' state lists not fetched yet (`missing`), from the optimizer (which creates those
// that do not exist: marked fresh), then every array the steps write checked for overlap; on
// an overlap the lists fetched here are dropped again (fetched, and checked, again by the
// next step). Clears each group's `missing`.
void fetch_missing(StepPlan& plan, std::vector<GroupStep>& steps) {
    const RuleOps& rule = *plan.rule;
    bool fetching = false;
    for (std::size_t gi = 0; gi < steps.size(); ++gi)
        if (steps[gi].missing) fetch_states(plan, static_cast<Py_ssize_t>(gi), steps[gi]), fetching = true;
    if (fetching) {
        try {
            require_disjoint(plan);
        } catch (...) {
            for (std::size_t gi = 0; gi < steps.size(); ++gi)
                for (std::size_t i = 0; i < rule.states.size(); ++i)
                    if (steps[gi].missing & (1u << i)) {
                        plan.layout[gi].states[i] = py::object();
                        plan.layout[gi].fresh &= ~(1u << i);
                        for (unsigned& f : plan.layout[gi].fresh_of) f &= ~(1u << i);
                    }
            throw;
        }
    }
    for (GroupStep& s : steps) s.missing = 0;
}

// The group split by which of its states are new, when that differs between its parameters (a
// state emptied through Optimizer.state for some of them only): each part then steps as a
// group of its own, so that only the new arrays start as new ones (SGD's momentum buffer
// from the gradient). None (the group is one part) in every other case.
std::vector<Part> fresh_parts(const RuleOps& rule, const StepPlan::Group& layout, const GroupStep& s) {
    const std::vector<unsigned>& fresh = layout.fresh_of;
    std::vector<Part> parts;
    if (layout.fresh == 0 || std::all_of(fresh.begin(), fresh.end(), [&](unsigned m) { return m == fresh[0]; }))
        return parts;
    for (std::size_t p = 0; p < fresh.size(); ++p) {
        auto part = std::find_if(parts.begin(), parts.end(), [&](const Part& q) { return q.fresh == fresh[p]; });
        if (part == parts.end()) {
            parts.emplace_back();
            part = parts.end() - 1;
            part->fresh = fresh[p];
            for (std::size_t i = 0; i < rule.states.size(); ++i)
                if (s.need & (1u << i)) part->states[i] = py::list();
        }
        part->params.append(layout.params[p]);
        part->grads.append(py::reinterpret_borrow<py::tuple>(s.grads)[p]);
        for (std::size_t i = 0; i < rule.states.size(); ++i)
            if (s.need & (1u << i))
                part->states[i].cast<py::list>().append(py::reinterpret_borrow<py::sequence>(layout.states[i])[p]);
    }
    for (Part& part : parts) part.batch = gather(part.params, part.grads, needed_states(rule, s.need, part.states.data()));
    return parts;
}

// The rule's kernels over a group, part by part when it has parts, each part from the group's
// scalars before the step (its fold advances them once, as for the whole group). Without the GIL.
void run_kernels(const RuleOps& rule, const KernelTable& kt, GroupStep& s, const GradTransform& transform) {
    if (s.parts.empty()) {
        rule.run(kt, s.options, s.batch, s.s32, s.s64, transform);
        return;
    }
    StepState r32 = s.s32, r64 = s.s64;
    for (const Part& part : s.parts) {
        StepState a32 = s.s32, a64 = s.s64;
        a32.fresh = a64.fresh = part.fresh;
        rule.run(kt, s.options, part.batch, a32, a64, transform);
        if (!part.batch.f32.empty()) r32 = a32;
        if (!part.batch.f64.empty()) r64 = a64;
    }
    s.s32 = r32, s.s64 = r64;
}

// The options of a group at its step, schedules evaluated: the dict itself when it has none.
py::object resolved_group(const RuleOps& rule, PyObject* g, std::int64_t k) {
    py::object group = py::reinterpret_borrow<py::object>(g);
    py::dict resolved;
    bool copied = false;
    for (PyObject* key : rule.schedulable) {
        PyObject* v = PyDict_GetItemWithError(g, key);
        if (!v || !PyCallable_Check(v)) continue;
        if (!copied) {
            resolved = py::reinterpret_steal<py::dict>(PyDict_Copy(g));  // py::dict(group) would be the group itself
            if (!resolved) throw py::error_already_set();
            copied = true;
        }
        resolved[key] = py::float_(as_double(py::reinterpret_borrow<py::object>(v)(k).ptr()));
    }
    return copied ? py::object(resolved) : group;
}

// A subclass's own per-group update, called in the place of the rule's kernel: once for the
// group, or once per part (each but the last on a copy of the group's step state, so that its
// scalars advance once).
void python_update(StepPlan& plan, Py_ssize_t gi, GroupStep& s, double grad_scale, double clip_value) {
    const RuleOps& rule = *plan.rule;
    const StepPlan::Group& layout = plan.layout[gi];
    const py::object group = resolved_group(rule, s.group.ptr(), s.k);
    auto call = [&](const py::list& params, const py::list& grads, const py::object* lists, unsigned fresh,
                    const py::object& gstate) {
        py::dict states;
        py::set created;
        for (std::size_t i = 0; i < rule.states.size(); ++i)
            if (s.need & (1u << i)) {
                states[rule.states[i].name] = lists[i];
                if (fresh & (1u << i)) created.add(rule.states[i].name);
            }
        plan.update(group, params, grads, states, s.k + 1, gstate, s.sign * grad_scale, clip_value, created);
    };
    if (s.parts.empty()) {
        call(py::list(layout.params), py::list(s.grads), layout.states.data(), layout.fresh, s.gstate);
        return;
    }
    for (std::size_t j = 0; j < s.parts.size(); ++j) {
        const Part& part = s.parts[j];
        const bool last = j + 1 == s.parts.size();
        call(part.params, part.grads, part.states.data(), part.fresh,
             last ? s.gstate : py::reinterpret_steal<py::object>(PyDict_Copy(s.gstate.ptr())));
    }
}

// A lazy step's array: the chosen coordinates' values and gradient (the caller's compact
// arrays), which the rule's kernel steps as one array, with their states read and written in
// the full state arrays at the coordinates (TensorRef::state_index). Returns the group's own
// array, into which scatter writes the values back.
template <class T> TensorRef<T> compact(std::vector<TensorRef<T>>& refs, const Coordinates& only) {
    TensorRef<T>& r = refs[0];
    const TensorRef<T> full = r;
    TensorRef<T> small;
    small.param = static_cast<T*>(only.values);
    small.grad = static_cast<const T*>(only.grad);
    for (std::size_t i = 0; i < kMaxStates; ++i) small.state[i] = r.state[i];
    small.size = only.n;
    small.state_index = only.index;
    r = small;
    return full;
}

template <class T> void scatter(const Coordinates& only, const TensorRef<T>& full) {
    const std::size_t n = only.n;
    const T* values = static_cast<const T*>(only.values);
    const T to_stored = static_cast<T>(only.store_scale);
    for (std::size_t a = 0; a < n; ++a)
        full.param[static_cast<std::size_t>(only.index[a])] = a < only.n_scaled ? values[a] * to_stored : values[a];
}

// Whether a lazy step fits the plan: one group of one array whose states exist and are not
// new (a new state starts from the whole gradient), stepped by the rule's kernel.
bool lazy_fits(const StepPlan& plan, const std::vector<GroupStep>& steps, const Coordinates& only) {
    if (steps.size() != 1 || !plan.update.is_none()) return false;
    const GroupStep& s = steps[0];
    if (s.missing != 0 || plan.layout[0].fresh != 0) return false;
    const Batch& b = s.batch;
    if (b.f32.size() + b.f64.size() != 1) return false;
    const std::size_t size = b.f32.size() == 1 ? b.f32[0].size : b.f64[0].size;
    if (only.bound != 0) return only.bound <= size;
    for (std::size_t a = 0; a < only.n; ++a)
        if (only.index[a] < 0 || static_cast<std::size_t>(only.index[a]) >= size) return false;
    return true;
}

}  // namespace

std::optional<Py_ssize_t> step(StepPlan& plan, const py::handle& grads_obj, const Coordinates* only,
                               bool* was_lazy) {
    StepControl& control = *plan.control;
    const RuleOps& rule = *plan.rule;
    const py::tuple grads = gradient_tuple(grads_obj);
    if (PyTuple_GET_SIZE(grads.ptr()) != plan.total)
        throw py::value_error("step() got " + std::to_string(PyTuple_GET_SIZE(grads.ptr())) + " gradients for " +
                              std::to_string(plan.total) +
                              " parameters; pass one gradient per parameter, in the order of the parameters");
    const auto n_groups = static_cast<Py_ssize_t>(plan.layout.size());
    if (PyList_GET_SIZE(plan.groups.ptr()) != n_groups || PyList_GET_SIZE(plan.group_states.ptr()) != n_groups)
        throw py::value_error("the parameter groups changed since the step plan was made (add groups with "
                              "add_param_group)");
    std::vector<GroupStep> steps = read_groups(plan, grads);
    // A lazy step needs its group's states, which a plan fetches at its first step: fetched
    // now, the states of a resumed fit (or of an earlier call) step lazily, as they would have
    // in one uninterrupted run; new ones still start from the whole gradient, in a whole step.
    if (only != nullptr && steps.size() == 1 && steps[0].missing != 0) fetch_missing(plan, steps);
    const bool lazy = only != nullptr && lazy_fits(plan, steps, *only);
    if (was_lazy != nullptr) *was_lazy = lazy;
    if (only != nullptr && !lazy) return std::nullopt;  // nothing done: the caller takes the whole step
    TensorRef<float> full32;  // a lazy step's parameter array, which scatter writes back into
    TensorRef<double> full64;
    if (lazy) {
        Batch& b = steps[0].batch;
        if (!b.f32.empty()) full32 = compact(b.f32, *only);
        else full64 = compact(b.f64, *only);
    }
    const Clip clip = clip_for_step(control);
    const double prescale = control.grad_prescale;

    double total_norm = 0.0, grad_scale = prescale;
    bool finite = true;
    {
        // Safe without the GIL: the norms read only raw buffers of arrays the batches keep
        // referenced, and no Python object.
        py::gil_scoped_release release;
        if (clip.by_norm) {
            total_norm = prescale * grad_norm(steps, clip.norm_type);  // the norm of the prescaled gradients
            grad_scale = prescale * clip_coefficient(clip.max_norm, total_norm);
        }
        // The clipping norm already read every gradient; else one read-only inf-norm pass,
        // NaN when any gradient holds a NaN.
        if (control.nonfinite != Nonfinite::ignore)
            finite = std::isfinite(clip.by_norm ? total_norm : grad_norm(steps, kInf));
    }
    if (clip.by_norm) control.last_grad_norm = total_norm;
    if (!finite) {
        if (control.nonfinite == Nonfinite::error) return first_nonfinite(grads);
        ++control.skipped_steps;  // as torch.amp.GradScaler skips: no state and no step count move
        return std::nullopt;
    }
    fetch_missing(plan, steps);
    for (Py_ssize_t gi = 0; gi < n_groups; ++gi) {
        GroupStep& s = steps[gi];
        s.s32.fresh = s.s64.fresh = plan.layout[gi].fresh;
        s.parts = fresh_parts(rule, plan.layout[gi], s);
    }
    if (plan.update.is_none()) {
        const KernelTable& kt = active_kernels();
        // As above: the kernels touch only raw buffers the batches keep referenced.
        py::gil_scoped_release release;
        for (GroupStep& s : steps) run_kernels(rule, kt, s, GradTransform{s.sign * grad_scale, clip.clip_value});
        if (lazy) {
            if (!steps[0].batch.f32.empty()) scatter(*only, full32);
            else scatter(*only, full64);
        }
    } else {
        for (Py_ssize_t gi = 0; gi < n_groups; ++gi) python_update(plan, gi, steps[gi], grad_scale, clip.clip_value);
    }
    for (Py_ssize_t gi = 0; gi < n_groups; ++gi) {
        const GroupStep& s = steps[gi];
        PyObject* gs = s.gstate.ptr();
        const py::int_ count(s.k + 1);
        if (PyDict_SetItem(gs, key_step(), count.ptr()) != 0) throw py::error_already_set();
        if (plan.update.is_none()) store_scalars(rule, gs, s.batch, s.s32, s.s64);
        plan.layout[gi].fresh = 0;
        plan.layout[gi].fresh_of.clear();
    }
    return std::nullopt;
}

double next_lr(const StepPlan& plan, Py_ssize_t gi) {
    PyObject* g = PyList_GET_ITEM(plan.groups.ptr(), gi);
    PyObject* gs = PyList_GET_ITEM(plan.group_states.ptr(), gi);
    static PyObject* const key_lr = intern("lr");
    PyObject* v = lookup(g, key_lr);
    if (!PyCallable_Check(v)) return as_double(v);
    const std::int64_t k = as_int64(lookup(gs, key_step()));
    return as_double(py::reinterpret_borrow<py::object>(v)(k).ptr());
}

namespace {

StepPlan make_plan(const std::string& rule, const py::object& control, const py::list& groups,
                   const py::list& group_states, const py::object& state_lists, const py::object& update) {
    if (!PyCallable_Check(state_lists.ptr())) throw py::type_error("state_lists must be callable");
    StepPlan p;
    p.rule = &rule_ops(rule);
    p.control = control.cast<StepControl*>();
    p.control_ref = control;
    p.groups = groups;
    p.group_states = group_states;
    p.state_lists = state_lists;
    p.update = update;
    if (group_states.size() != groups.size())
        throw py::value_error("one step state per parameter group: got " + std::to_string(group_states.size()) +
                              " for " + std::to_string(groups.size()));
    for (const py::handle g : groups) {
        if (!PyDict_Check(g.ptr())) throw py::type_error("a parameter group is a dict");
        StepPlan::Group layout;
        layout.params = py::tuple(py::reinterpret_borrow<py::object>(lookup(g.ptr(), key_params())));
        p.total += static_cast<Py_ssize_t>(layout.params.size());
        p.layout.push_back(std::move(layout));
    }
    require_disjoint(p);
    return p;
}

// Whether pybind11 has constructed the C++ object of a Python instance (before __init__ ran,
// or after a failed one, there is none to traverse).
bool constructed(PyObject* self) {
    return reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder().holder_constructed();
}

// A plan holds the optimizer's groups and callables that may hold the optimizer: the garbage
// collector must see those references to free an optimizer that refers to its own plan.
void collectable(PyHeapTypeObject* heap_type) {
    PyTypeObject* type = &heap_type->ht_type;
    type->tp_flags |= Py_TPFLAGS_HAVE_GC;
    type->tp_traverse = [](PyObject* self, visitproc visit, void* arg) -> int {
#if PY_VERSION_HEX >= 0x03090000
        Py_VISIT(Py_TYPE(self));
#endif
        if (!constructed(self)) return 0;
        const StepPlan& p = py::cast<const StepPlan&>(py::handle(self));
        Py_VISIT(p.control_ref.ptr());
        Py_VISIT(p.groups.ptr());
        Py_VISIT(p.group_states.ptr());
        Py_VISIT(p.state_lists.ptr());
        Py_VISIT(p.update.ptr());
        for (const StepPlan::Group& g : p.layout) {
            Py_VISIT(g.params.ptr());
            for (const py::object& s : g.states) Py_VISIT(s.ptr());
        }
        return 0;
    };
    type->tp_clear = [](PyObject* self) -> int {
        if (constructed(self)) {
            StepPlan& p = py::cast<StepPlan&>(py::handle(self));
            p.state_lists = py::none();
            p.update = py::none();
            p.groups = py::none();
            p.group_states = py::none();
            p.layout.clear();
        }
        return 0;
    };
}

}  // namespace

void register_step_plan(py::module_& m) {
    py::class_<StepControl>(m, "StepControl",
                            "What every step of one optimizer shares and leaves (see Optimizer): clipping, the\n"
                            "non-finite policy, the gradient pre-scale, skipped steps and the last gradient norm.")
        .def(py::init(&make_control), py::arg("clip_norm") = py::none(), py::arg("clip_value") = py::none(),
             py::arg("clip_norm_type") = 2.0, py::arg("nonfinite") = "ignore")
        .def_property(
            "clip_norm", [](const StepControl& c) { return c.clip_norm_set; }, &set_clip_norm)
        .def_property(
            "clip_value", [](const StepControl& c) { return c.clip_value_set; }, &set_clip_value)
        .def_property(
            "clip_norm_type", [](const StepControl& c) { return c.clip_norm_type_set; }, &set_clip_norm_type)
        .def_property(
            "nonfinite", [](const StepControl& c) { return c.nonfinite_set; }, &set_nonfinite)
        .def_property(
            "grad_prescale", [](const StepControl& c) { return c.grad_prescale; },
            [](StepControl& c, double v) {
                if (!(std::isfinite(v) && v > 0.0))
                    throw py::value_error("grad_prescale must be a finite number > 0, got " + text(py::float_(v)));
                c.grad_prescale = v;
            })
        .def_readwrite("skipped_steps", &StepControl::skipped_steps)
        .def_readwrite("last_grad_norm", &StepControl::last_grad_norm)
        .def(py::pickle(
            [](const StepControl& c) {
                return py::make_tuple(c.clip_norm_set, c.clip_value_set, c.clip_norm_type_set, c.nonfinite_set,
                                      c.grad_prescale, c.skipped_steps, c.last_grad_norm);
            },
            [](const py::tuple& t) {
                if (t.size() != 7) throw std::runtime_error("StepControl: bad pickled state");
                StepControl c;
                set_clip_norm(c, t[0]);
                set_clip_value(c, t[1]);
                set_clip_norm_type(c, t[2]);
                set_nonfinite(c, t[3]);
                c.grad_prescale = t[4].cast<double>();
                c.skipped_steps = t[5].cast<std::int64_t>();
                c.last_grad_norm = t[6].cast<std::optional<double>>();
                return c;
            }))
        .def_static(
            "check_nonfinite",
            [](const py::object& v) {
                if (nonfinite_of(v) == Nonfinite::invalid) bad_nonfinite(v);
            },
            "ValueError unless v is one of 'ignore', 'skip', 'error'.", py::arg("nonfinite"));

    py::class_<StepPlan>(m, "StepPlan", py::custom_type_setup(&collectable),
                         "An optimizer's step, set up once per change of its parameter groups (see fastgd._core.step).")
        .def(py::init(&make_plan), py::arg("rule"), py::arg("control"), py::arg("groups"), py::arg("group_states"),
             py::arg("state_lists"), py::arg("update") = py::none())
        .def_property_readonly("rule", [](const StepPlan& p) { return p.rule->name; });

    m.def(
        "check_disjoint",
        [](const py::object& arrays, const std::string& name) {
            std::vector<Written> written;
            add_written(written, arrays, name.c_str());
            require_disjoint(written);
        },
        "ValueError naming two of the arrays that share memory (arrays that only touch are fine), as a step\n"
        "plan refuses them; the arrays are named <name>[i].",
        py::arg("arrays"), py::arg("name"));

    m.def(
        "step",
        [](StepPlan& plan, const py::handle& grads) -> py::object {
            const std::optional<Py_ssize_t> bad = step(plan, grads);
            return bad ? py::object(py::int_(*bad)) : py::object(py::none());
        },
        "One optimizer step over every parameter group of the plan, in place: the gradients read with the\n"
        "grad_prescale, clipped, checked for NaN and Inf as the plan's StepControl says, the rule's kernel per\n"
        "group (or the plan's update), the step counts. Returns None; under nonfinite='error', for a gradient\n"
        "that is not finite, the index of the first such gradient (-1: their norm overflows), having written\n"
        "nothing.",
        py::arg("plan"), py::arg("grads"));
}

}  // namespace fastgd::bindings
