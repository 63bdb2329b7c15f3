// The rule table (fastgd/rules.hpp) as the bindings use it: each rule's options read from a
// parameter group, its states, its group scalars and its kernels, behind one RuleOps per rule,
// generated from the table. Needs the GIL, except RuleOps::run.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "array_checks.hpp"
#include "fastgd/kernel_table.hpp"
#include "fastgd/rules.hpp"
#include "pybind11.hpp"

namespace fastgd::bindings {

// Any rule's options.
#define FASTGD_OPTIONS_TYPE(R, name) , R::Options
using AnyOptions = std::variant<std::monostate FASTGD_RULES(FASTGD_OPTIONS_TYPE)>;
#undef FASTGD_OPTIONS_TYPE

struct StateInfo {
    const char* name;     // its key in Optimizer.state[i]
    const char* arg;      // its name in fastgd.functional and in error messages
    PyObject* initial;    // the key of the option it starts at, or null: it starts at 0
    std::string because;  // "when amsgrad=True": the condition that needs it ("" for always)
};

struct ScalarInfo {
    const char* name;
    PyObject* key;
    double StepState::*field;
    double initial;
};

struct RuleOps {
    const char* name;
    std::vector<StateInfo> states;
    std::vector<ScalarInfo> scalars;
    std::vector<PyObject*> schedulable;  // keys of the options a schedule may drive
    // A group's options from its dict, schedules called with k (the group's step count so
    // far), each checked as the rule table says (ValueError naming the option, the group of
    // that index and the value); returns the states they need (bit i: states[i]).
    unsigned (*read)(PyObject* group, std::int64_t k, Py_ssize_t index, AnyOptions& out);
    // The rule's kernels over a group's arrays, float32 then float64; runs without the GIL.
    void (*run)(const KernelTable& kernels, const AnyOptions& options, const Batch& batch, StepState& s32,
                StepState& s64, const GradTransform& transform);
};

// The rule of that name; ValueError naming the known ones otherwise.
const RuleOps& rule_ops(const std::string& name);

// The state lists a group's options need, named for the checks, from lists aligned with the
// rule's states (a null or None entry where a state is not needed).
std::vector<NamedArrays> needed_states(const RuleOps& rule, unsigned need, const py::object* lists);

// Writes the rule's group scalars after a step into a group's state dict (from the float32
// batch's step state if it ran, else the float64 one's; unchanged if neither ran).
void store_scalars(const RuleOps& rule, PyObject* gstate, const Batch& batch, const StepState& s32,
                   const StepState& s64);

// -- reading Python values --------------------------------------------------------------------

// An interned str made once (and kept for the life of the process).
PyObject* intern(const char* s);
// dict[key] (borrowed); KeyError naming the option when it is missing.
PyObject* lookup(PyObject* dict, PyObject* key);
double as_double(PyObject* v);
std::int64_t as_int64(PyObject* v);
bool as_flag(PyObject* v);

}  // namespace fastgd::bindings
