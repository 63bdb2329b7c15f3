// One register_<topic> per binding file; module.cpp only calls them.
#pragma once
#include "pybind11.hpp"

namespace fastgd::bindings {
void register_rules(py::module_& m);
void register_clipping(py::module_& m);
void register_runtime(py::module_& m);
void register_activations(py::module_& m);
void register_mlp(py::module_& m);
void register_step_plan(py::module_& m);
void register_linear(py::module_& m);
void register_sparse_linear(py::module_& m);
void register_training(py::module_& m);
void register_stats(py::module_& m);
void register_shuffling(py::module_& m);
}  // namespace fastgd::bindings
