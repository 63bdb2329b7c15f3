// Threads and SIMD level: what is in use, and the knobs to change it.
#include <stdexcept>

#include "fastgd/kernel_table.hpp"
#include "fastgd/runtime.hpp"
#include "register.hpp"

namespace fastgd::bindings {

void register_runtime(py::module_& m) {
    m.def("simd_level", [] { return std::string(active_kernels().name); }, "The instruction-set level in use.");
    m.def("compiled_simd_levels", &compiled_levels, "Levels compiled into this build, lowest first.");
    m.def("supported_simd_levels", &supported_levels, "Compiled levels this CPU can run, lowest first.");
    m.def(
        "set_simd_level",
        [](const std::string& name) {
            try {
                set_active_level(name);
            } catch (const std::invalid_argument& e) {
                throw py::value_error(e.what());
            }
        },
        "Switch the instruction-set level (one of supported_simd_levels()).", py::arg("name"));
    m.def(
        "set_num_threads",
        [](int n) {
            if (n < 0) throw py::value_error("n must be >= 0 (0 = follow OpenMP's setting), got " + std::to_string(n));
            set_num_threads(n);
        },
        "Threads for the kernels; 0 follows OMP_NUM_THREADS / threadpoolctl.", py::arg("n"));
    m.def("get_num_threads", &get_num_threads, "Threads the kernels use for large calls (at most thread_limit()).");
    m.def("available_cpus", &available_cpus, "The CPUs this process may run on (its affinity mask on Linux).");
    m.def("thread_limit", &thread_limit, "The most threads a kernel runs on: threads_per_cpu times available_cpus().");
    m.attr("threads_per_cpu") = kThreadsPerCpu;
    m.def("forked_serial", &forked_serial,
          "Whether this is a child forked after a parallel region, running serially until set_num_threads(n >= 2).");
    m.def("set_parallel_threshold", &set_parallel_threshold, "Elements per call below which kernels run serially.",
          py::arg("elements"));
    m.def("get_parallel_threshold", &get_parallel_threshold);
    m.def("openmp_enabled", &openmp_enabled, "Whether this build runs kernels on several threads.");
    m.attr("chunk_elements") = kChunkElements;
}

}  // namespace fastgd::bindings
