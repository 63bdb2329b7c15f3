// The rule table (fastgd/rules.hpp) in the bindings: each rule's RuleOps, generated from its
// entry; fastgd._core.rule_specs(), the table as Python data; one function per rule for
// fastgd.functional; and run_group, one group's kernel step for an optimizer subclass that
// calls its rule's update from its own.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "register.hpp"
#include "rule_ops.hpp"

namespace fastgd::bindings {

PyObject* intern(const char* s) {
    PyObject* o = PyUnicode_InternFromString(s);
    if (!o) throw py::error_already_set();
    return o;
}

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

std::int64_t as_int64(PyObject* v) {
    const long long i = PyLong_AsLongLong(v);
    if (i == -1 && PyErr_Occurred()) throw py::error_already_set();
    return i;
}

bool as_flag(PyObject* v) {
    const int t = PyObject_IsTrue(v);
    if (t < 0) throw py::error_already_set();
    return t != 0;
}

std::vector<NamedArrays> needed_states(const RuleOps& rule, unsigned need, const py::object* lists) {
    std::vector<NamedArrays> named;
    for (std::size_t i = 0; i < rule.states.size(); ++i)
        if (need & (1u << i)) named.emplace_back(rule.states[i].arg, lists[i]);
    return named;
}

void store_scalars(const RuleOps& rule, PyObject* gstate, const Batch& batch, const StepState& s32,
                   const StepState& s64) {
    if (batch.f32.empty() && batch.f64.empty()) return;
    const StepState& s = batch.f32.empty() ? s64 : s32;
    for (const ScalarInfo& c : rule.scalars) {
        const py::float_ value(s.*c.field);
        if (PyDict_SetItem(gstate, c.key, value.ptr()) != 0) throw py::error_already_set();
    }
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// -- reading an option and checking it ------------------------------------------------------

// An option being read, for the messages of its checks.
struct OptionAt {
    const char* name;        // its key in the group, or its argument in fastgd.functional
    const char* label;       // in "Invalid <label>: <value>"; null: "<name> value"
    bool argument = false;   // an argument of a fastgd.functional function, not a group's option
    Py_ssize_t group = -1;   // the parameter group's index; -1: not known
    std::int64_t step = -1;  // the step count its schedule was called with; -1: no schedule

    std::string where() const {
        std::string s = argument ? "argument '" + std::string(name) + "'" : "option '" + std::string(name) + "' of ";
        if (!argument) s += group >= 0 ? "parameter group " + std::to_string(group) : "the parameter group";
        if (step >= 0) s += ", as its schedule gave it at step " + std::to_string(step);
        return s;
    }
};

std::string type_of(PyObject* v) { return Py_TYPE(v)->tp_name; }

// A value as str() shows it, cut short when long (an int of a thousand digits).
std::string value_text(PyObject* v) {
    std::string s = py::str(v).cast<std::string>();
    return s.size() <= 40 ? s : s.substr(0, 37) + "...";
}

// A real number, taken as torch.optim takes one: a float or an int (a bool too), any
// numbers.Real (NumPy's scalars, fractions.Fraction), or a 0-d NumPy array of booleans,
// integers or floats. None when v is none of these.
std::optional<double> real_number(PyObject* v) {
    if (PyFloat_Check(v)) return PyFloat_AS_DOUBLE(v);
    if (PyLong_Check(v)) {
        const double d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) {  // beyond every double: as an infinity, which no check passes
            PyErr_Clear();
            return kInf;
        }
        return d;
    }
    // Kept for the life of the process, as the interned keys are.
    static PyObject* const numpy_generic = py::object(py::module_::import("numpy").attr("generic")).release().ptr();
    static PyObject* const real = py::object(py::module_::import("numbers").attr("Real")).release().ptr();
    const auto is = [v](PyObject* type) {
        const int r = PyObject_IsInstance(v, type);
        if (r < 0) PyErr_Clear();
        return r == 1;
    };
    const bool array = py::detail::npy_api::get().PyArray_Check_(v);
    if (array || is(numpy_generic)) {
        const py::handle h(v);
        if (array && py::reinterpret_borrow<py::array>(h).ndim() != 0) return std::nullopt;
        const char kind = h.attr("dtype").attr("kind").cast<std::string>()[0];
        if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') return std::nullopt;
    } else if (!is(real)) {
        return std::nullopt;
    }
    const double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return std::nullopt;
    }
    return d;
}

// The option's number, which must pass its check (index: its place in a pair, or -1).
double checked(PyObject* v, Check check, const OptionAt& at, int index = -1) {
    const std::string place = index >= 0 ? " at index " + std::to_string(index) : "";
    const std::optional<double> d = real_number(v);
    if (!d) throw py::type_error(at.where() + place + " must be a real number, got " + type_of(v));
    if (!passes(check, *d))
        throw py::value_error("Invalid " + (at.label ? std::string(at.label) : std::string(at.name) + " value") + place +
                              ": " + value_text(v) + " (" + at.where() + ")");
    return *d;
}

// A pair option (betas): two numbers, each of which must pass the check.
std::pair<double, double> checked_pair(PyObject* v, Check check, const OptionAt& at) {
    const Py_ssize_t n = PySequence_Check(v) && !PyUnicode_Check(v) ? PySequence_Size(v) : -1;
    if (n < 0) {
        PyErr_Clear();
        throw py::type_error(at.where() + " must be a pair of real numbers, got " + type_of(v));
    }
    if (n != 2) throw py::value_error(at.where() + " must be a pair, got " + value_text(v));
    const auto item = [v](Py_ssize_t i) {
        PyObject* x = PySequence_GetItem(v, i);
        if (!x) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(x);
    };
    return {checked(item(0).ptr(), check, at, 0), checked(item(1).ptr(), check, at, 1)};
}

template <class O> std::string because(const StateSpec<O>& s) {
    const std::string option = s.option ? s.option : "";
    switch (s.need) {
        case Need::flag_set: return "when " + option + "=True";
        case Need::nonzero: return "when " + option + " != 0";
        case Need::positive: return "when " + option + " > 0";
        default: return "";
    }
}

const char* type_name(OptionType t) {
    switch (t) {
        case OptionType::flag: return "bool";
        case OptionType::pair: return "pair";
        default: return "float";
    }
}

py::object check_name(Check c) {
    switch (c) {
        case Check::finite: return py::str("finite");
        case Check::nonnegative: return py::str("nonnegative");
        case Check::unit_open: return py::str("unit_open");
        case Check::unit_closed: return py::str("unit_closed");
        default: return py::none();
    }
}

const char* need_name(Need n) {
    switch (n) {
        case Need::flag_set: return "true";
        case Need::nonzero: return "nonzero";
        case Need::positive: return "positive";
        default: return "always";
    }
}

// Arguments bound to names as Python binds them: positional ones first, then keywords.
class Arguments {
public:
    Arguments(std::string fn, std::vector<const char*> positional, std::vector<const char*> keyword_only,
              const py::args& args, const py::kwargs& kwargs)
        : fn_(std::move(fn)), names_(std::move(positional)), n_positional_(names_.size()) {
        names_.insert(names_.end(), keyword_only.begin(), keyword_only.end());
        values_.assign(names_.size(), nullptr);
        if (args.size() > n_positional_)
            throw py::type_error(fn_ + "() takes " + std::to_string(n_positional_) + " positional arguments but " +
                                 std::to_string(args.size()) + " were given");
        for (std::size_t i = 0; i < args.size(); ++i) values_[i] = args[i].ptr();
        for (const auto& [key, value] : kwargs) {
            const std::string k = py::str(key).cast<std::string>();
            std::size_t i = 0;
            while (i < names_.size() && k != names_[i]) ++i;
            if (i == names_.size()) throw py::type_error(fn_ + "() got an unexpected keyword argument '" + k + "'");
            if (values_[i]) throw py::type_error(fn_ + "() got multiple values for argument '" + k + "'");
            values_[i] = value.ptr();
        }
    }
    // The argument (borrowed), or `fallback` when not given; TypeError when it is required.
    PyObject* get(const char* name, PyObject* fallback = nullptr) const {
        for (std::size_t i = 0; i < names_.size(); ++i)
            if (std::strcmp(name, names_[i]) == 0) {
                if (values_[i]) return values_[i];
                if (fallback) return fallback;
                throw py::type_error(fn_ + "() missing required argument '" + name + "'");
            }
        throw std::logic_error("no argument " + std::string(name));
    }

private:
    std::string fn_;
    std::vector<const char*> names_;
    std::size_t n_positional_;
    std::vector<PyObject*> values_;
};

template <class R> struct Access {
    using O = typename R::Options;
    static constexpr std::size_t kOptions = R::options.size();

    static const std::array<PyObject*, kOptions>& keys() {
        static const std::array<PyObject*, kOptions> k = [] {
            std::array<PyObject*, kOptions> a{};
            for (std::size_t i = 0; i < kOptions; ++i) a[i] = intern(R::options[i].name);
            return a;
        }();
        return k;
    }

    static unsigned need(const O& o) {
        unsigned m = 0;
        for (std::size_t i = 0; i < R::states.size(); ++i)
            if (needed(R::states[i], o)) m |= 1u << i;
        return m;
    }

    // Every option of the group, each checked as the table says (those the kernel does not
    // read too); a schedule is called with k.
    static unsigned read(PyObject* group, std::int64_t k, Py_ssize_t index, AnyOptions& out) {
        O o{};
        const auto& key = keys();
        for (std::size_t i = 0; i < kOptions; ++i) {
            const OptionSpec<O>& s = R::options[i];
            PyObject* v = lookup(group, key[i]);
            OptionAt at{s.name, s.label, false, index};
            if (s.type == OptionType::flag) {
                o.*s.flag = as_flag(v);
            } else if (s.type == OptionType::pair) {
                const auto [a, b] = checked_pair(v, s.check, at);
                o.*s.real = a;
                o.*s.second = b;
            } else {
                py::object scheduled;
                if (s.schedulable && PyCallable_Check(v)) {
                    scheduled = py::reinterpret_borrow<py::object>(v)(k);
                    v = scheduled.ptr();
                    at.step = k;
                }
                const double d = checked(v, s.check, at);
                if (s.real) o.*s.real = d;
            }
        }
        out = o;
        return need(o);
    }

    static void run(const KernelTable& kt, const AnyOptions& any, const Batch& b, StepState& s32, StepState& s64,
                    const GradTransform& tr) {
        const O& o = std::get<O>(any);
        if (!b.f32.empty()) (kt.f32.*RuleKernel<R, float>::member)(b.f32.data(), b.f32.size(), o, s32, tr);
        if (!b.f64.empty()) (kt.f64.*RuleKernel<R, double>::member)(b.f64.data(), b.f64.size(), o, s64, tr);
    }

    static RuleOps ops(const char* name) {
        RuleOps r{name, {}, {}, {}, &read, &run};
        for (const auto& s : R::states)
            r.states.push_back({s.name, s.arg ? s.arg : s.name, s.initial_option ? intern(s.initial_option) : nullptr,
                                because(s)});
        for (const auto& c : R::scalars) r.scalars.push_back({c.name, intern(c.name), c.field, c.initial});
        for (std::size_t i = 0; i < kOptions; ++i)
            if (R::options[i].schedulable) r.schedulable.push_back(keys()[i]);
        return r;
    }

    // The rule as Python data, for fastgd._core.rule_specs().
    static py::dict spec(const char* name) {
        py::list options;
        for (const auto& o : R::options) {
            py::object initial = py::float_(o.initial[0]);
            if (o.type == OptionType::flag) initial = py::bool_(o.initial[0] != 0.0);
            if (o.type == OptionType::pair) initial = py::make_tuple(o.initial[0], o.initial[1]);
            py::tuple kernel = py::tuple();
            if (o.type == OptionType::pair) kernel = py::make_tuple(o.args[0], o.args[1]);
            else if (o.real || o.flag) kernel = py::make_tuple(o.args[0]);
            options.append(py::dict(py::arg("name") = o.name, py::arg("type") = type_name(o.type),
                                    py::arg("default") = initial, py::arg("schedulable") = o.schedulable,
                                    py::arg("check") = check_name(o.check),
                                    py::arg("label") = o.label ? std::string(o.label) : std::string(o.name) + " value",
                                    py::arg("kernel") = kernel));
        }
        // Every rule's gradient sign, read by the step itself (not by the rule's kernel).
        options.append(py::dict(py::arg("name") = "maximize", py::arg("type") = "bool", py::arg("default") = false,
                                py::arg("schedulable") = false, py::arg("check") = py::none(),
                                py::arg("label") = "maximize value", py::arg("kernel") = py::tuple()));
        py::list states;
        for (const auto& s : R::states) {
            const py::object when = s.option ? py::object(py::make_tuple(s.option, need_name(s.need))) : py::none();
            const py::object init = s.initial_option ? py::object(py::str(s.initial_option)) : py::object(py::float_(0.0));
            states.append(py::dict(py::arg("name") = s.name, py::arg("arg") = s.arg ? s.arg : s.name,
                                   py::arg("when") = when, py::arg("initial") = init));
        }
        py::dict scalars;
        for (const auto& c : R::scalars) scalars[c.name] = c.initial;
        return py::dict(py::arg("name") = name, py::arg("options") = options, py::arg("states") = states,
                        py::arg("group_scalars") = scalars);
    }

    // fastgd.functional's call: (params, grads, <states>, *, step, <group scalars>, <kernel
    // options>, grad_scale=1.0, clip_value=inf); returns the new group scalar(s), if any.
    static py::object functional(const RuleOps& rule, const py::args& args, const py::kwargs& kwargs) {
        std::vector<const char*> positional{"params", "grads"}, keyword{"step"};
        for (const StateInfo& s : rule.states) positional.push_back(s.arg);
        for (const ScalarInfo& c : rule.scalars) keyword.push_back(c.name);
        for (const auto& o : R::options)
            for (const char* a : o.args)
                if (a && (o.real || o.flag)) keyword.push_back(a);
        keyword.push_back("grad_scale");
        keyword.push_back("clip_value");
        const Arguments a(rule.name, positional, keyword, args, kwargs);

        O o{};
        for (const auto& s : R::options) {
            if (s.flag) o.*s.flag = as_flag(a.get(s.args[0]));
            else if (s.real) o.*s.real = checked(a.get(s.args[0]), s.check, {s.args[0], s.label, true}, s.second ? 0 : -1);
            if (s.second) o.*s.second = checked(a.get(s.args[1]), s.check, {s.args[1], s.label, true}, 1);
        }
        const unsigned need = Access::need(o);
        std::array<py::object, kMaxStates> lists;
        for (std::size_t i = 0; i < rule.states.size(); ++i) {
            lists[i] = py::reinterpret_borrow<py::object>(a.get(rule.states[i].arg));
            if ((need & (1u << i)) && lists[i].is_none() && !rule.states[i].because.empty())
                throw py::value_error(std::string(rule.states[i].arg) + " is required " + rule.states[i].because);
        }
        StepState st;
        st.step = as_int64(a.get("step"));
        if (st.step == 1) st.fresh = ~0u;  // the functional call's states are new at its first step
        for (const ScalarInfo& c : rule.scalars) st.*c.field = as_double(a.get(c.name));
        const py::float_ one(1.0), inf(kInf);
        const GradTransform transform{as_double(a.get("grad_scale", one.ptr())),
                                      as_double(a.get("clip_value", inf.ptr()))};
        if (st.step < 1)
            throw py::value_error("step must be >= 1 (the count after this step), got " + std::to_string(st.step));
        if (!(transform.clip_value > 0.0))
            throw py::value_error("clip_value must be > 0, got " + std::to_string(transform.clip_value));
        const py::object params = py::reinterpret_borrow<py::object>(a.get("params"));
        const std::vector<NamedArrays> states = needed_states(rule, need, lists.data());
        const Batch batch = gather(params, py::reinterpret_borrow<py::object>(a.get("grads")), states);
        // Every array written (the gradients are only read) in one place of memory.
        std::vector<Written> written;
        add_written(written, params, "params");
        for (const auto& [name, list] : states) add_written(written, list, name);
        require_disjoint(written);
        StepState s32 = st, s64 = st;
        {
            // Safe without the GIL: the kernels touch only raw buffers of arrays that `batch`
            // keeps referenced, and no Python object.
            py::gil_scoped_release release;
            run(active_kernels(), AnyOptions(o), batch, s32, s64, transform);
        }
        if (rule.scalars.empty()) return py::none();
        const StepState& s = batch.f32.empty() ? s64 : s32;
        if (rule.scalars.size() == 1) return py::float_(s.*rule.scalars[0].field);
        py::tuple out(rule.scalars.size());
        for (std::size_t i = 0; i < rule.scalars.size(); ++i) out[i] = py::float_(s.*rule.scalars[i].field);
        return std::move(out);
    }

    static std::string signature(const RuleOps& rule) {
        std::string s = std::string(rule.name) + "(params, grads";
        for (const StateInfo& st : rule.states) s += std::string(", ") + st.arg;
        s += ", *, step";
        for (const ScalarInfo& c : rule.scalars) s += std::string(", ") + c.name;
        for (const auto& o : R::options)
            for (const char* a : o.args)
                if (a && (o.real || o.flag)) s += std::string(", ") + a;
        return s + ", grad_scale=1.0, clip_value=inf)";
    }
};

const std::vector<RuleOps>& all_rules() {
    static const std::vector<RuleOps> rules = [] {
        std::vector<RuleOps> r;
#define FASTGD_OPS(R, name) r.push_back(Access<R>::ops(#name));
        FASTGD_RULES(FASTGD_OPS)
#undef FASTGD_OPS
        return r;
    }();
    return rules;
}

// One group's step by its rule's kernel, for Optimizer's default per-group update (which an
// optimizer subclass may call from its own): options from the group mapping (no schedules
// left in it), states from a dict of lists by name, the group scalars from and into gstate.
void run_group(const std::string& rule_name, const py::dict& group, const py::object& params, const py::object& grads,
               const py::dict& states, std::int64_t step, const py::dict& gstate, double grad_scale, double clip_value,
               const py::object& created) {
    const RuleOps& rule = rule_ops(rule_name);
    AnyOptions options;
    const unsigned need = rule.read(group.ptr(), step - 1, -1, options);
    std::array<py::object, kMaxStates> lists;
    StepState st;
    st.step = step;
    for (std::size_t i = 0; i < rule.states.size(); ++i) {
        if (!(need & (1u << i))) continue;
        if (!states.contains(rule.states[i].name))
            throw py::value_error(std::string(rule.states[i].name) + " is required " + rule.states[i].because);
        lists[i] = states[rule.states[i].name];
        if (py::reinterpret_borrow<py::object>(created).contains(rule.states[i].name)) st.fresh |= 1u << i;
    }
    for (const ScalarInfo& c : rule.scalars) st.*c.field = as_double(lookup(gstate.ptr(), c.key));
    const Batch batch = gather(params, grads, needed_states(rule, need, lists.data()));
    StepState s32 = st, s64 = st;
    {
        py::gil_scoped_release release;  // as in the functional calls
        rule.run(active_kernels(), options, batch, s32, s64, GradTransform{grad_scale, clip_value});
    }
    store_scalars(rule, gstate.ptr(), batch, s32, s64);
}

}  // namespace

const RuleOps& rule_ops(const std::string& name) {
    std::string known;
    for (const RuleOps& r : all_rules()) {
        if (name == r.name) return r;
        known += (known.empty() ? "" : ", ") + std::string(r.name);
    }
    throw py::value_error("unknown update rule '" + name + "' (known: " + known + ")");
}

void register_rules(py::module_& m) {
    m.def(
        "rule_specs",
        [] {
            py::list specs;
#define FASTGD_SPEC(R, name) specs.append(Access<R>::spec(#name));
            FASTGD_RULES(FASTGD_SPEC)
#undef FASTGD_SPEC
            return specs;
        },
        "Every update rule of the table, in its order: a dict with its name; its options (name, type 'float',\n"
        "'bool' or 'pair', default, schedulable, check: 'finite' | 'nonnegative' | 'unit_open' | 'unit_closed'\n"
        "(None for a flag), label, and kernel: its keyword(s) in the rule's function, none for an option the\n"
        "kernel does not read), 'maximize' last; its states in the kernel's\n"
        "order (name, arg: its name in the rule's function, when: None or (option, 'true' | 'nonzero' |\n"
        "'positive'), initial: 0.0 or the name of the option it starts at); and its group scalars\n"
        "(name: initial value).");

#define FASTGD_FUNCTIONAL(R, name)                                                                        \
    {                                                                                                     \
        const RuleOps& rule = rule_ops(#name);                                                            \
        m.def(                                                                                            \
            #name, [&rule](const py::args& a, const py::kwargs& k) { return Access<R>::functional(rule, a, k); }, \
            (Access<R>::signature(rule) +                                                                 \
             "\n\nOne step of " #name " over one parameter group, in place (see fastgd.functional).")    \
                .c_str());                                                                                \
    }
    {
        // The docstring's first line is the function's real signature (the rule's keywords);
        // pybind11's own would be "(*args, **kwargs) -> object", which help() and the API
        // reference would show instead.
        py::options options;
        options.disable_function_signatures();
        FASTGD_RULES(FASTGD_FUNCTIONAL)
    }
#undef FASTGD_FUNCTIONAL

    m.def(
        "check_group",
        [](const std::string& rule, const py::dict& group, Py_ssize_t index) {
            AnyOptions options;
            rule_ops(rule).read(group.ptr(), 0, index, options);
        },
        "The checks of every step on a parameter group's options (schedules called with step 0): TypeError or\n"
        "ValueError naming the option, the group (of that index) and the value.",
        py::arg("rule"), py::arg("group"), py::arg("index"));

    m.def("run_group", &run_group,
          "One group's step by the rule's kernel (Optimizer's default per-group update): the options of `group`,\n"
          "the state lists of `states` by name, the group scalars read from and written into `gstate`; `created`\n"
          "names the states new this step.",
          py::arg("rule"), py::arg("group"), py::arg("params"), py::arg("grads"), py::arg("states"), py::arg("step"),
          py::arg("gstate"), py::arg("grad_scale"), py::arg("clip_value"), py::arg("created"));
}

}  // namespace fastgd::bindings
