// Optimizer.step() in one call, for other bindings that step an optimizer themselves (the
// linear models' loop over mini-batches): see step_plan.cpp. Needs the GIL.
#pragma once
#include "pybind11.hpp"

namespace fastgd::bindings {

// One step from the optimizer's plan tuple; False, having written nothing, when the step
// needs the Python path (Optimizer.step).
bool step_groups(const py::tuple& plan, const py::object& grads);

}  // namespace fastgd::bindings
