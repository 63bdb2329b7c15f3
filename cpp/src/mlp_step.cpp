// One training step of a ReLU network (see fastgd/mlp_step.hpp): the products by the caller's
// SGEMM, the element-wise work by the kernel table's fused kernels, the two blocks of a batch
// on two threads (this one and a persistent worker). Not compiled per instruction-set level: it
// only orchestrates calls.
#include "fastgd/mlp_step.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "fastgd/kernel_table.hpp"

namespace fastgd {

void Gemm::operator()(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
                      std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc) const {
    const int ta = trans_a ? kTrans : kNoTrans, tb = trans_b ? kTrans : kNoTrans;
    if (f64 != nullptr) {
        using I = std::int64_t;
        f64(kRowMajor, ta, tb, static_cast<I>(m), static_cast<I>(n), static_cast<I>(k), 1.0f, a, static_cast<I>(lda),
            b, static_cast<I>(ldb), 0.0f, c, static_cast<I>(ldc));
    } else {
        using I = std::int32_t;
        f32(kRowMajor, ta, tb, static_cast<I>(m), static_cast<I>(n), static_cast<I>(k), 1.0f, a, static_cast<I>(lda),
            b, static_cast<I>(ldb), 0.0f, c, static_cast<I>(ldc));
    }
}

std::size_t mlp_scratch_per_row(const std::int64_t* sizes, std::size_t n_layers) {
    std::size_t per_row = static_cast<std::size_t>(sizes[0]);
    for (std::size_t i = 0; i < n_layers; ++i)
        per_row += static_cast<std::size_t>(sizes[i + 1]) * (i + 1 < n_layers ? 3 : 2);
    return per_row;
}

namespace {

// Offsets of W_i and b_i in theta (and in a gradient buffer): the weights first, then the biases.
struct Layout {
    std::vector<std::size_t> s, w, b;
    std::size_t size = 0;
    Layout(const std::int64_t* sizes, std::size_t L) : s(sizes, sizes + L + 1), w(L), b(L) {
        std::size_t o = 0;
        for (std::size_t i = 0; i < L; ++i) w[i] = o, o += s[i] * s[i + 1];
        for (std::size_t i = 0; i < L; ++i) b[i] = o, o += s[i + 1];
        size = o;
    }
};

// Rows [lo, hi) of the batch: forward, loss and backward into `grad`, as Network._train_part
// (one product or kernel after the other, in its order). `scale` is 1 / (rows of the batch).
double train_block(const Gemm& gemm, const Layout& lay, const float* theta, float* grad, const MlpBatch& batch,
                   std::size_t lo, std::size_t hi, float* scratch, double scale) {
    const KernelSet<float>& k = active_kernels().f32;
    const std::size_t L = lay.w.size(), r = hi - lo;
    const std::vector<std::size_t>& s = lay.s;
    // The block's arrays, carved from the scratch: x, then per layer h, d (and a for hidden ones).
    float* x = scratch;
    std::vector<float*> h(L), d(L), a(L, nullptr);
    float* p = x + r * s[0];
    for (std::size_t i = 0; i < L; ++i) {
        h[i] = p, p += r * s[i + 1];
        d[i] = p, p += r * s[i + 1];
        if (i + 1 < L) a[i] = p, p += r * s[i + 1];
    }
    k.gather_rows(batch.X, s[0], batch.rows ? batch.rows + lo : nullptr, batch.first + lo, r, batch.mean, batch.scale,
                  x);
    const float* a_in = x;
    for (std::size_t i = 0; i < L; ++i) {
        gemm(false, false, r, s[i + 1], s[i], a_in, s[i], theta + lay.w[i], s[i + 1], h[i], s[i + 1]);
        if (i + 1 == L) {
            k.bias_add(h[i], theta + lay.b[i], r, s[i + 1]);
        } else {
            k.bias_relu(h[i], theta + lay.b[i], a[i], r, s[i + 1]);
            a_in = a[i];
        }
    }
    const double value = k.softmax_xent_grad(h[L - 1], batch.labels + lo, batch.w ? batch.w + lo : nullptr, d[L - 1],
                                             grad + lay.b[L - 1], r, s[L], scale);
    for (std::size_t i = L; i-- > 0;) {
        const float* in = i == 0 ? x : a[i - 1];
        gemm(true, false, s[i], s[i + 1], r, in, s[i], d[i], s[i + 1], grad + lay.w[i], s[i + 1]);
        if (i == 0) break;
        gemm(false, true, r, s[i], s[i + 1], d[i], s[i + 1], theta + lay.w[i], s[i + 1], d[i - 1], s[i]);
        // Layer i-1's ReLU derivative and bias gradient in one pass.
        k.activation_grad_colsum(0, d[i - 1], h[i - 1], d[i - 1], nullptr, r, s[i], 0.0, 0.0, grad + lay.b[i - 1]);
    }
    return value;
}

// The second thread of a step: a persistent worker that takes a block of the batch if it gets
// there first. The thread that posts a step takes blocks too and waits only for a block the
// worker has started, never for the worker to arrive: on cores shared with other processes a
// worker may wait a whole time slice to run, and then the poster takes both blocks (as an
// OpenMP team's closing barrier could not). The results do not depend on who takes a block.
class Sidekick {
  public:
    // Runs run(b) for b < blocks on this thread and the worker; returns when all have run.
    template <class Run> void run_blocks(int blocks, Run&& run) {
        std::lock_guard<std::mutex> one_step(step_mutex_);  // steps from several threads: one at a time
        job_ = [&run](int b) { run(b); };
        done_.store(0, std::memory_order_relaxed);
        const std::uint64_t epoch = ++epoch_;
        claim_.store(epoch << 4 | static_cast<std::uint64_t>(blocks) << 2, std::memory_order_seq_cst);
        if (sleeping_.load(std::memory_order_seq_cst)) {
            std::lock_guard<std::mutex> lk(wake_mutex_);
            wake_.notify_one();
        }
        for (int b; (b = claim(epoch)) >= 0;) {
            run(b);
            done_.fetch_add(1, std::memory_order_acq_rel);
        }
        // The worker's block, under way. Past a short spin, yield: on a busy machine the worker
        // may be waiting for this very core.
        for (int i = 0; done_.load(std::memory_order_acquire) < blocks; ++i) relax(i);
    }

    // The one worker of this process, started at its first use; a child process made by fork()
    // has no worker (its steps run their blocks on the calling thread).
    static Sidekick* get() {
        static Sidekick* const s = new Sidekick();  // never destroyed: the worker may outlive main()
        return s->pid_ == current_pid() ? s : nullptr;
    }

  private:
    Sidekick() : pid_(current_pid()) { std::thread([this] { work(); }).detach(); }

    static long current_pid() {
#if defined(__unix__) || defined(__APPLE__)
        return static_cast<long>(getpid());
#else
        return 0;
#endif
    }
    // A wait's i-th round: a pause instruction at first, then the core offered to any other
    // thread that is ready to run.
    static void relax(int i) {
#if defined(__x86_64__) || defined(__i386__)
        if (i < kPauses) {
            __builtin_ia32_pause();
            return;
        }
#endif
        (void)i;
        std::this_thread::yield();
    }

    // The next block of step `epoch` not yet taken, or -1.
    int claim(std::uint64_t epoch) {
        std::uint64_t s = claim_.load(std::memory_order_acquire);
        while ((s >> 4) == epoch && (s & 3) < ((s >> 2) & 3)) {
            if (claim_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) return static_cast<int>(s & 3);
        }
        return -1;
    }

    void work() {
        std::uint64_t seen = 0;
        for (;;) {
            // Spin a while for the next step (a training loop posts one every few hundred
            // microseconds, after a short stretch of Python), then sleep until woken.
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
            std::uint64_t epoch = claim_.load(std::memory_order_acquire) >> 4;
            for (int i = 0; epoch == seen; ++i) {
                relax(i);
                if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) {
                    std::unique_lock<std::mutex> lk(wake_mutex_);
                    sleeping_.store(true, std::memory_order_seq_cst);
                    wake_.wait(lk, [&] { return (claim_.load(std::memory_order_seq_cst) >> 4) != seen; });
                    sleeping_.store(false, std::memory_order_relaxed);
                }
                epoch = claim_.load(std::memory_order_acquire) >> 4;
            }
            seen = epoch;
            // A successful claim in this epoch means the step is not over: job_ is its job.
            for (int b; (b = claim(epoch)) >= 0;) {
                job_(b);
                done_.fetch_add(1, std::memory_order_acq_rel);
            }
        }
    }

    static constexpr int kSpinMicros = 200;
    static constexpr int kPauses = 256;
    const long pid_;
    std::mutex step_mutex_, wake_mutex_;
    std::condition_variable wake_;
    std::atomic<bool> sleeping_{false};
    std::atomic<std::uint64_t> claim_{0};  // (epoch << 4) | (blocks << 2) | next block
    std::atomic<int> done_{0};
    std::uint64_t epoch_ = 0;
    std::function<void(int)> job_;
};

}  // namespace

double mlp_train_step(const Gemm& gemm, const std::int64_t* sizes, std::size_t n_layers, const float* theta,
                      float* const grads[2], const MlpBatch& batch, std::size_t split, float* scratch, int threads) {
    const Layout lay(sizes, n_layers);
    const std::size_t n = batch.n, per_row = mlp_scratch_per_row(sizes, n_layers);
    const int blocks = split < n ? 2 : 1;
    const std::size_t bounds[3] = {0, split, n};
    const double scale = 1.0 / static_cast<double>(n);
    double values[2] = {0.0, 0.0};
    auto run = [&](int b) {
        const std::size_t lo = bounds[b], hi = bounds[b + 1];
        values[b] = train_block(gemm, lay, theta, grads[b], batch, lo, hi, scratch + lo * per_row, scale);
    };
    Sidekick* const sidekick = blocks == 2 && threads >= 2 ? Sidekick::get() : nullptr;
    if (sidekick != nullptr) {
        sidekick->run_blocks(blocks, run);
    } else {
        for (int b = 0; b < blocks; ++b) run(b);
    }
    if (blocks == 2) {
        float* g = grads[0];
        const float* g2 = grads[1];
        for (std::size_t i = 0; i < lay.size; ++i) g[i] += g2[i];
    }
    return blocks == 2 ? values[0] + values[1] : values[0];
}

}  // namespace fastgd
