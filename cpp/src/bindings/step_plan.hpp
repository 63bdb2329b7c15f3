// The one path of every optimizer step (see step_plan.cpp): Optimizer.step() and the linear
// models' loop over mini-batches both call step() with the optimizer's StepPlan. Needs the GIL.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pybind11.hpp"
#include "rule_ops.hpp"

namespace fastgd::bindings {

// What a step does with a NaN or Inf gradient; `invalid` keeps a bad setting until a step
// reports it (the setting may be changed between steps, like any other).
enum class Nonfinite : unsigned char { ignore, skip, error, invalid };

// What every step of one optimizer shares and leaves: clipping, the non-finite policy, the
// gradient pre-scale, the count of skipped steps and the last gradient norm. One per
// optimizer, for its life; its step plans read it at every step.
struct StepControl {
    py::object clip_norm_set = py::none(), clip_value_set = py::none(), clip_norm_type_set, nonfinite_set;
    std::optional<double> clip_norm, clip_value;
    double clip_norm_type = 2.0;
    Nonfinite nonfinite = Nonfinite::ignore;
    double grad_prescale = 1.0;
    std::int64_t skipped_steps = 0;
    std::optional<double> last_grad_norm;
};

// An optimizer's step, set up once per change of its parameter groups: the rule, the groups
// (their option dicts are read afresh every step), each group's step state dict and
// parameters, and its state lists, fetched from the optimizer when a step first needs them.
struct StepPlan {
    struct Group {
        py::tuple params;
        std::array<py::object, kMaxStates> states;  // null until fetched
        unsigned fresh = 0;                         // states created and not yet stepped on
        // With fresh != 0: each parameter's new states (they differ between parameters when
        // a state was emptied for some of them only, through Optimizer.state).
        std::vector<unsigned> fresh_of;
    };
    const RuleOps* rule = nullptr;
    py::object control_ref;
    StepControl* control = nullptr;
    py::object groups, group_states;  // lists
    // state_lists(group index, [(name, initial value), ...]) -> [(list of arrays, created), ...],
    // created: per parameter, whether its array is new
    py::object state_lists;
    // None, or a per-group update in Python that stands in for the rule's kernel.
    py::object update;
    std::vector<Group> layout;
    Py_ssize_t total = 0;
};

// A step on some coordinates of a plan's parameters: positions in the flat buffer of a plan
// with one group of one array (a sparse batch's active features, in a linear model's theta),
// with their gradient, and their values gathered (n each, of the array's dtype): the step
// updates `values` in place and writes them back at `index`.
// The first n_scaled values are stored back multiplied by store_scale (a parameter kept as a
// scalar times a vector: the vector's entries).
struct Coordinates {
    const std::int64_t* index;
    std::size_t n;
    void* values;
    const void* grad;
    std::size_t n_scaled = 0;
    double store_scale = 1.0;
    // Nonzero: every index is known to lie in [0, bound) (the step then checks the bound
    // against the array once, not each index).
    std::size_t bound = 0;
};

// One optimizer step: nothing (stepped, or skipped under nonfinite="skip"), or under
// nonfinite="error" the index of the first gradient that is not finite (-1: they all are, but
// their norm overflows), having written nothing.
//
// With `only`, a lazy step: the rule's update on those coordinates alone, as if the parameter
// were the vector of them (its gradient norm, clipping and state included); every other
// coordinate and its state stay as they are (PyTorch's SparseAdam, TensorFlow's LazyAdam). A
// plan it does not fit (several groups or arrays, states not created yet, a Python update)
// is not stepped at all: `was_lazy` is then false, and the caller takes a whole step itself.
std::optional<Py_ssize_t> step(StepPlan& plan, const py::handle& grads, const Coordinates* only = nullptr,
                               bool* was_lazy = nullptr);

}  // namespace fastgd::bindings

namespace fastgd::bindings {
// The learning rate of group `gi`'s next step (a schedule evaluated at its step count).
double next_lr(const StepPlan& plan, Py_ssize_t gi);
}  // namespace fastgd::bindings
