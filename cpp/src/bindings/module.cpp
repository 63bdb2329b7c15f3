// fastgd._core: the compiled core behind the public fastgd package.
#include "register.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastgd's compiled kernels (private: use the fastgd package).";
    fastgd::bindings::register_runtime(m);
    fastgd::bindings::register_rules(m);
    fastgd::bindings::register_clipping(m);
    fastgd::bindings::register_activations(m);
    fastgd::bindings::register_mlp(m);
    fastgd::bindings::register_step_plan(m);
    fastgd::bindings::register_linear(m);
    fastgd::bindings::register_sparse_linear(m);
    fastgd::bindings::register_training(m);
    fastgd::bindings::register_stats(m);
    fastgd::bindings::register_shuffling(m);
}
