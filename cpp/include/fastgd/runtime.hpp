// Thread control shared by every kernel, and the work-splitting constants.
#pragma once
#include <cstddef>

namespace fastgd {

// Arrays are cut into chunks of this many elements for the threads. A multiple of every
// vector width, so chunk borders never change which elements a vector sees. Chosen in the
// flat optimum between chunks small enough to share among threads and large enough that
// scheduling costs nothing: bench/bench_tuning.cpp sweeps it (figures in bench/README.md).
inline constexpr std::size_t kChunkElements = 16384;
// Every chunk size in use is a multiple of this (the widest vector: 16 floats, 8 doubles).
inline constexpr std::size_t kChunkAlign = 16;

// Threads for a call that touches `elements` elements in total: 1 below the parallel
// threshold (thread start-up would cost more than it saves), else the configured count.
int threads_for(std::size_t elements);

// The kernels run on at most this many threads per CPU available to the process: a few
// threads more than CPUs cost little and let a small machine run the thread counts whose
// results tests compare (the bits never depend on the count); far more only slow the
// kernels, which are bound by memory, and some thousands exhaust the OpenMP runtime.
inline constexpr int kThreadsPerCpu = 4;
// The CPUs this process may run on (its affinity mask on Linux, else the hardware threads),
// read at each call; and the cap on every kernel's thread count, kThreadsPerCpu times that.
int available_cpus();
int thread_limit();

// 0 = follow OpenMP's own setting (OMP_NUM_THREADS, threadpoolctl) at each call.
// Either way get_num_threads() is at most thread_limit().
// In a child forked after this process ran a parallel region, get_num_threads() is 1 (and
// the OpenMP runtime is not asked) until set_num_threads(n >= 2) is called: see runtime.cpp.
void set_num_threads(int n);
int get_num_threads();
// Whether this process is such a child, running serially.
bool forked_serial();
void set_parallel_threshold(std::size_t elements);
std::size_t get_parallel_threshold();
bool openmp_enabled();
// The chunk size the kernels use: kChunkElements unless changed here (bench/bench_tuning.cpp
// sweeps it). Rounded up to a multiple of kChunkAlign; 0 restores kChunkElements. Results
// never depend on it: chunks only decide which thread updates which elements.
void set_chunk_elements(std::size_t elements);
std::size_t get_chunk_elements();

}  // namespace fastgd
