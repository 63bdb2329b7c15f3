// The machine's bounds for bench/compare.py, measured with plain loops (no fastgd code):
//
//   machine_peak read <MiB> <threads> <repetitions>   read-only bandwidth: a float32 sum
//   machine_peak fma <threads> <repetitions>          float32 FMA peak: independent FMA chains
//   machine_peak rows <MiB> <floats> <threads> <reps> rows of <floats> float32 read in a random
//                                                     order (a permutation, as a shuffled epoch
//                                                     reads them), each summed, with software
//                                                     prefetch a few rows ahead
//
// Each prints one JSON object: the best and the median of the repetitions. Built by
// machine_bounds.py with -O3 -march=native -fopenmp: it measures this machine, so it uses
// every instruction this CPU has (it is never shipped).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float vec __attribute__((vector_size(kLanes * sizeof(float))));

// Enough independent chains to cover the FMA latency on every port (4-5 cycles x 2 ports).
constexpr int kChains = 12;
// Enough independent sums that the loads, not the additions, set the pace of the read.
constexpr int kSums = 8;

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static void report(const char* what, const char* unit, std::vector<double>& rates, int threads, double extra) {
  std::sort(rates.begin(), rates.end());
  std::printf("{\"what\": \"%s\", \"unit\": \"%s\", \"threads\": %d, \"best\": %.4f, \"median\": %.4f, "
              "\"lanes\": %d, \"check\": %g}\n",
              what, unit, threads, rates.back(), rates[rates.size() / 2], kLanes, extra);
}

// body(thread, threads) on `threads` threads, `reps` times: the rates, `amount` / seconds / 1e9;
// `total` sums what the bodies return (used, so that the compiler keeps their work).
template <class Body>
static std::vector<double> repeated(int threads, int reps, double amount, double& total, Body body) {
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    double sum = 0;
    const double t = now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    sum += body(omp_get_thread_num(), omp_get_num_threads());
    rates.push_back(amount / (now() - t) / 1e9);
    total += sum;
  }
  return rates;
}

static int read_bandwidth(long mib, int threads, int reps) {
  const long n = mib * (1L << 20) / sizeof(float) / (kLanes * kSums) * (kLanes * kSums);
  float* a = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (a == nullptr) return 1;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long i = 0; i < n; ++i) a[i] = 1.0f;  // first touch by the thread that reads it later
  double total = 0;
  std::vector<double> rates = repeated(threads, reps, double(n) * sizeof(float), total, [&](int tid, int nt) {
    const long blocks = n / (kLanes * kSums);
    const long lo = blocks * tid / nt, hi = blocks * (tid + 1) / nt;
    vec s[kSums] = {};
    const vec* p = reinterpret_cast<const vec*>(a);
    for (long b = lo; b < hi; ++b)
      for (int k = 0; k < kSums; ++k) s[k] += p[b * kSums + k];
    for (int k = 1; k < kSums; ++k) s[0] += s[k];
    double sum = 0;
    for (int j = 0; j < kLanes; ++j) sum += s[0][j];
    return sum;
  });
  report("read", "GB/s", rates, threads, total / reps / n);
  std::free(a);
  return 0;
}

// Rows asked for this many positions of the permutation ahead of the one being summed.
constexpr long kRowsAhead = 16;

static int random_rows(long mib, long floats, int threads, int reps) {
  const long row_bytes = floats * static_cast<long>(sizeof(float));
  const long rows = mib * (1L << 20) / row_bytes;
  const std::size_t bytes = (rows * row_bytes + (2L << 20) - 1) / (2L << 20) * (2L << 20);
  float* a = static_cast<float*>(std::aligned_alloc(2L << 20, bytes));
  if (a == nullptr || rows < 1) return 1;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Huge pages where the kernel offers them, as NumPy asks for its large arrays: a random row
  // then costs a page walk per 2 MiB, not per 4 KiB, as it does in fastgd's fits.
  madvise(a, bytes, MADV_HUGEPAGE);
#endif
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long i = 0; i < rows * floats; ++i) a[i] = 1.0f;
  std::vector<std::int64_t> order(rows);
  for (long i = 0; i < rows; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(0));
  double total = 0;
  std::vector<double> rates = repeated(threads, reps, double(rows) * row_bytes, total, [&](int tid, int nt) {
    const long lo = rows * tid / nt, hi = rows * (tid + 1) / nt;
    vec s[kSums] = {};
    float tail = 0;
    const long full = floats / kLanes;
    for (long q = lo; q < hi; ++q) {
      if (q + kRowsAhead < hi) {
        const char* next = reinterpret_cast<const char*>(a + order[q + kRowsAhead] * floats);
        for (long l = 0; l < row_bytes; l += 64) __builtin_prefetch(next + l);
        __builtin_prefetch(next + row_bytes - 1);
      }
      const float* x = a + order[q] * floats;
      for (long k = 0; k < full; ++k) {
        vec v;
        std::memcpy(&v, x + k * kLanes, sizeof(v));  // rows need not be vector-aligned
        s[k % kSums] += v;
      }
      for (long j = full * kLanes; j < floats; ++j) tail += x[j];
    }
    for (int k = 1; k < kSums; ++k) s[0] += s[k];
    double sum = tail;
    for (int j = 0; j < kLanes; ++j) sum += s[0][j];
    return sum;
  });
  report("rows", "GB/s", rates, threads, total / reps / (rows * floats));
  std::free(a);
  return 0;
}

static int fma_peak(int threads, int reps) {
  const long iters = 100'000'000 / kLanes;  // about 40 ms per repetition at 60 GFLOP/s
  double check = 0;
  const double flops = 2.0 * iters * kChains * kLanes * threads;
  std::vector<double> rates = repeated(threads, reps, flops, check, [&](int, int) {
    vec acc[kChains], mul, add;
    for (int j = 0; j < kLanes; ++j) {
      mul[j] = 0.999999f;
      add[j] = 1e-6f;
    }
    for (int k = 0; k < kChains; ++k)
      for (int j = 0; j < kLanes; ++j) acc[k][j] = 1.0f + k + j;
    for (long i = 0; i < iters; ++i)
      for (int k = 0; k < kChains; ++k) acc[k] = acc[k] * mul + add;
    double sink = 0;
    for (int k = 0; k < kChains; ++k)
      for (int j = 0; j < kLanes; ++j) sink += acc[k][j];
    return sink;
  });
  report("fma", "GFLOP/s", rates, threads, check / reps);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "read") == 0)
    return read_bandwidth(std::atol(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]));
  if (argc == 4 && std::strcmp(argv[1], "fma") == 0) return fma_peak(std::atoi(argv[2]), std::atoi(argv[3]));
  if (argc == 6 && std::strcmp(argv[1], "rows") == 0)
    return random_rows(std::atol(argv[2]), std::atol(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]));
  std::fprintf(stderr, "usage: %s read MIB THREADS REPS | fma THREADS REPS | rows MIB FLOATS THREADS REPS\n", argv[0]);
  return 2;
}
