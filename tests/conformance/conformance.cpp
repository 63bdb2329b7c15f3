// Every instruction-set level of fastgd's kernels against the portable scalar level, in one
// program without Python: every update rule (each option changed alone, zeroed, and all of
// them changed at once), both dtypes, array sizes around every vector width, eight steps of
// nonzero gradients, every clipping mode; then the clipping, norm and MLP kernels, with
// signed zeros, Inf and NaN. It runs where the Python package cannot, such as the NEON level
// of an AArch64 build under user-mode emulation (tests/aarch64.sh), and natively for the x86
// levels (tests/test_simd_conformance.py).
//
//   conformance [LEVEL...]     the levels to check (default: every one this CPU runs)
//
// The rules and their options come from fastgd/rules.hpp, the kernels from the level's
// KernelTable: a new rule or option is checked here without a line changed. Prints the checks
// made per level and the first mismatches (level, kernel, options, dtype, size, step, array,
// element); exits 1 on any mismatch, 2 when a level asked for is not compiled in or not runnable.
//
// What must agree: every element goes through the same operations at every level, whatever
// its lane or place in the tail (elementwise.hpp), so each level gives the same bits as the
// scalar level that rounds a*b+c as it does: "scalar" (twice) for the baseline, "scalar_fma"
// (once, std::fma) for the FMA levels. Signed zeros and infinities included; a NaN matches any
// NaN. The exception is a norm, summed in lanes of the level's width: within 1e-12 (the
// inf-norm exactly), and both levels then step with the reference's clipping coefficient.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fastgd/kernel_table.hpp"
#include "fastgd/norms.hpp"
#include "fastgd/rules.hpp"

namespace {

using namespace fastgd;

// Around every vector width (4/8/16 float lanes, 2/4/8 double lanes), one call of the kernel
// stepping an array of each size together; then one large array, past a thread chunk, alone
// (with fewer clipping modes: it costs as much as everything else together).
const std::vector<std::size_t> kSizes = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1023};
const std::vector<std::size_t> kLargeSizes = {65537};
// The gradients' scale at each step: moving averages shrink as well as grow (AMSGrad's and
// Adamax's maxima then matter), and eight steps let RAdam's default rectification start (step 6).
constexpr double kGradScales[] = {1.0, 0.5, 2.0, 0.05, 1.5, 0.2, 3.0, 0.01};

// -- comparing ------------------------------------------------------------------------------

template <class T> std::string show(T x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(x));
    return buf;
}

// The tally of one level against its reference.
struct Tally {
    std::string level, reference;
    long checks = 0, failures = 0;
    static constexpr long kShown = 25;

    void fail(const std::string& what) {
        if (++failures <= kShown)
            std::printf("MISMATCH %s vs %s: %s\n", level.c_str(), reference.c_str(), what.c_str());
    }
    // `got` (this level) against `want` (the reference), n elements, bit for bit (any NaN
    // matches any NaN: levels need not agree on a NaN's payload); a mismatch names `what`.
    template <class T> void same_bits(const T* got, const T* want, std::size_t n, const std::string& what) {
        ++checks;
        for (std::size_t i = 0; i < n; ++i) {
            const T g = got[i], w = want[i];
            if (std::isnan(g) && std::isnan(w)) continue;
            if (std::memcmp(&g, &w, sizeof(T)) != 0) {
                fail(what + ": element " + std::to_string(i) + " of " + std::to_string(n) + " is " + show(g) + ", " +
                     reference + " level " + show(w));
                return;
            }
        }
    }
    // A sum in double whose order may differ between levels (lanes): within rtol (0: the same bits).
    void close(double got, double want, double rtol, const std::string& what) {
        ++checks;
        const bool ok = std::isnan(want) ? std::isnan(got)
                                         : (got == want || std::fabs(got - want) <= rtol * std::fabs(want));
        if (!ok) fail(what + ": " + show(got) + ", " + reference + " level " + show(want));
    }
};

template <class T> const char* dtype_name() { return sizeof(T) == sizeof(float) ? "float32" : "float64"; }

// -- test data ------------------------------------------------------------------------------

// Standard normal values with |x| >= 1e-3 (no element untouched by accident), times `scale`.
template <class T> std::vector<T> normal(std::mt19937_64& rng, std::size_t n, double scale = 1.0) {
    std::normal_distribution<double> dist;
    std::vector<T> v(n);
    for (T& x : v) {
        double d = dist(rng);
        if (std::fabs(d) < 1e-3) d = d < 0 ? -1e-3 : 1e-3;
        x = static_cast<T>(d * scale);
    }
    return v;
}

// -- clipping modes -------------------------------------------------------------------------

// How a step reads its gradients (GradTransform): unclipped, clipped to a value, or scaled by
// the clipping coefficient of their global p-norm, each with or without maximize's sign flip.
struct ClipMode {
    const char* name;
    double norm_type;   // 0: no norm clipping
    double clip_value;  // inf: no value clipping
    bool maximize;
};
constexpr double kInf = HUGE_VAL;
constexpr ClipMode kClipModes[] = {
    {"none", 0.0, kInf, false},         {"maximize", 0.0, kInf, true},
    {"value", 0.0, 0.5, false},         {"value+maximize", 0.0, 0.5, true},
    {"norm1", 1.0, kInf, false},        {"norm2", 2.0, kInf, false},
    {"norm2+maximize", 2.0, kInf, true}, {"norm_inf", kInf, kInf, false},
    {"norm3", 3.0, kInf, false},
};
constexpr double kMaxNorm = 1.0;

// The p-norm of all the arrays' gradients together, by `kernels` (as a step clipping by norm).
template <class T> double grad_norm(const KernelSet<T>& kernels, const std::vector<TensorRef<T>>& t, double p) {
    std::vector<const T*> grads;
    std::vector<std::size_t> sizes;
    for (const auto& x : t) grads.push_back(x.grad), sizes.push_back(x.size);
    const NormKind kind = norm_kind(p);
    return norm_from_power_sum(kernels.norm_power_sum(grads.data(), sizes.data(), grads.size(), kind, p), kind, p);
}

// Norms sum in a different order at each level (their lanes): equal within this, the inf-norm exactly.
constexpr double kNormRtol = 1e-12;
double norm_rtol(double p) { return std::isinf(p) ? 0.0 : kNormRtol; }

// -- update rules ---------------------------------------------------------------------------

// One configuration of a rule: every option's value (a pair's two), as in rules.hpp's order.
template <class R> struct Variant {
    std::string label;
    std::array<std::array<double, 2>, R::options.size()> values;
};

// A valid value other than the default, of the size people use: flags flipped; a 0 becomes
// 0.1; a coefficient in [0, 1] moves twice as far from 1 (0.9 -> 0.8, 0.999 -> 0.998); any
// other number is halved.
template <class S> std::array<double, 2> changed(const S& spec) {
    if (spec.type == OptionType::flag) return {spec.initial[0] != 0.0 ? 0.0 : 1.0, 0.0};
    const bool unit = spec.check == Check::unit_open || spec.check == Check::unit_closed;
    auto other = [unit](double v) { return v == 0.0 ? 0.1 : unit ? 1.0 - 2.0 * (1.0 - v) : v * 0.5; };
    return {other(spec.initial[0]), other(spec.initial[1])};
}

template <class R> std::vector<Variant<R>> variants() {
    constexpr std::size_t N = R::options.size();
    Variant<R> defaults{"defaults", {}};
    for (std::size_t i = 0; i < N; ++i) defaults.values[i] = {R::options[i].initial[0], R::options[i].initial[1]};
    std::vector<Variant<R>> out{defaults};
    Variant<R> all = defaults;
    all.label = "all changed";
    auto number = [](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", v);
        return std::string(buf);
    };
    for (std::size_t i = 0; i < N; ++i) {
        const auto& s = R::options[i];
        const bool pair = s.type == OptionType::pair;
        Variant<R> v = defaults;
        v.values[i] = all.values[i] = changed(s);
        v.label = std::string(s.name) + "=" + number(v.values[i][0]) + (pair ? "," + number(v.values[i][1]) : "");
        out.push_back(v);
        // A number's edge: zero, where its check allows it and it is not the default.
        const bool nonzero = s.initial[0] != 0.0 || (pair && s.initial[1] != 0.0);
        if (s.type != OptionType::flag && nonzero && passes(s.check, 0.0)) {
            v.values[i] = {0.0, 0.0};
            v.label = std::string(s.name) + "=0";
            out.push_back(v);
        }
    }
    out.push_back(all);
    return out;
}

template <class R> typename R::Options options_of(const Variant<R>& v) {
    typename R::Options o{};
    for (std::size_t i = 0; i < R::options.size(); ++i) {
        const auto& s = R::options[i];
        if (s.flag) o.*s.flag = v.values[i][0] != 0.0;
        else if (s.real) o.*s.real = v.values[i][0];
        if (s.second) o.*s.second = v.values[i][1];
    }
    return o;
}

// The arrays of one level's run: param and the states the options need, per size.
template <class T> struct Arrays {
    std::vector<std::vector<T>> param, grad;
    std::vector<std::vector<std::vector<T>>> state;  // [size][state in use]
    std::vector<TensorRef<T>> refs;
};

template <class R, class T> struct RuleRun {
    using O = typename R::Options;
    const Variant<R>& variant;
    const ClipMode& mode;
    std::vector<const StateSpec<O>*> in_use;  // the states the options need, in the table's order
    std::vector<double> initial;              // each one's starting value

    RuleRun(const Variant<R>& v, const ClipMode& m) : variant(v), mode(m) {
        const O o = options_of(v);
        for (const auto& s : R::states) {
            if (!needed(s, o)) continue;
            in_use.push_back(&s);
            double start = 0.0;
            for (std::size_t i = 0; i < R::options.size(); ++i)
                if (s.initial_option && std::strcmp(s.initial_option, R::options[i].name) == 0) start = v.values[i][0];
            initial.push_back(start);
        }
    }

    Arrays<T> make(const std::vector<std::vector<T>>& params) const {
        Arrays<T> a;
        a.param = params;
        a.grad.resize(params.size());
        a.state.resize(params.size());
        for (std::size_t k = 0; k < params.size(); ++k)
            for (double start : initial) a.state[k].emplace_back(params[k].size(), static_cast<T>(start));
        for (std::size_t k = 0; k < params.size(); ++k) {
            TensorRef<T> r;
            r.param = a.param[k].data();
            for (std::size_t s = 0; s < in_use.size(); ++s) r.state[s] = a.state[k][s].data();
            r.size = params[k].size();
            a.refs.push_back(r);
        }
        return a;
    }

    void run(const char* rule, const std::vector<std::size_t>& sizes, const KernelSet<T>& test,
             const KernelSet<T>& ref, std::mt19937_64& rng, Tally& tally) const {
        const O o = options_of(variant);
        std::vector<std::vector<T>> params;
        for (std::size_t n : sizes) params.push_back(normal<T>(rng, n));
        Arrays<T> mine = make(params), theirs = make(params);
        StepState st_mine, st_theirs;
        const std::string where = std::string(rule) + " [" + variant.label + "] " + dtype_name<T>() + " clip=" +
                                  mode.name;
        const auto kernel = RuleKernel<R, T>::member;
        int step = 0;
        for (double scale : kGradScales) {
            ++step;
            for (std::size_t k = 0; k < params.size(); ++k) {
                mine.grad[k] = normal<T>(rng, params[k].size(), scale);
                theirs.grad[k] = mine.grad[k];
                mine.refs[k].grad = mine.grad[k].data();
                theirs.refs[k].grad = theirs.grad[k].data();
            }
            // Every state is new at the first step (SGD's momentum buffer then starts as the gradient).
            st_mine.step = st_theirs.step = step;
            st_mine.fresh = st_theirs.fresh = step == 1 ? ~0u : 0u;
            const std::string at = where + " step " + std::to_string(step);
            // Both levels step with the reference's clipping coefficient: the norms themselves
            // may differ in the last bits (checked here), the update of each element may not.
            GradTransform tr{mode.maximize ? -1.0 : 1.0, mode.clip_value};
            if (mode.norm_type != 0.0) {
                const double norm = grad_norm(ref, theirs.refs, mode.norm_type);
                tally.close(grad_norm(test, mine.refs, mode.norm_type), norm, norm_rtol(mode.norm_type),
                            at + " gradient norm");
                tr.scale *= clip_coefficient(kMaxNorm, norm);
            }
            (test.*kernel)(mine.refs.data(), mine.refs.size(), o, st_mine, tr);
            (ref.*kernel)(theirs.refs.data(), theirs.refs.size(), o, st_theirs, tr);

            tally.same_bits(&st_mine.mu_product, &st_theirs.mu_product, 1, at + " group scalars");
            for (std::size_t k = 0; k < params.size(); ++k) {
                const std::string arr = at + " size " + std::to_string(params[k].size());
                tally.same_bits(mine.param[k].data(), theirs.param[k].data(), params[k].size(), arr + " param");
                for (std::size_t s = 0; s < in_use.size(); ++s)
                    tally.same_bits(mine.state[k][s].data(), theirs.state[k][s].data(), params[k].size(),
                                    arr + " state " + in_use[s]->name);
            }
        }
    }
};

template <class R, class T>
void check_rule(const char* rule, const KernelTable& test, const KernelTable& ref, Tally& tally) {
    std::mt19937_64 rng(12345);
    for (const Variant<R>& v : variants<R>()) {
        for (const ClipMode& mode : kClipModes)
            RuleRun<R, T>(v, mode).run(rule, kSizes, test.of<T>(), ref.of<T>(), rng, tally);
        for (const ClipMode& mode : {kClipModes[0], kClipModes[6]})  // none, norm2+maximize
            RuleRun<R, T>(v, mode).run(rule, kLargeSizes, test.of<T>(), ref.of<T>(), rng, tally);
    }
}

template <class T> void check_rules(const KernelTable& test, const KernelTable& ref, Tally& tally) {
#define FASTGD_CHECK_RULE(R, name) check_rule<R, T>(#name, test, ref, tally);
    FASTGD_RULES(FASTGD_CHECK_RULE)
#undef FASTGD_CHECK_RULE
}

// -- clipping, norms and the MLP kernels -------------------------------------------------------

// Every size at once, and the large one: the arrays of one call.
std::vector<std::size_t> all_sizes() {
    std::vector<std::size_t> v = kSizes;
    v.insert(v.end(), kLargeSizes.begin(), kLargeSizes.end());
    return v;
}

// Normal values with zeros of both signs at every third element (where max/min could order
// them), and with `specials` an Inf, a -Inf and a NaN in the arrays long enough.
template <class T> std::vector<T> mixed(std::mt19937_64& rng, std::size_t n, bool specials = false) {
    std::vector<T> v = normal<T>(rng, n);
    for (std::size_t i = 0; i < n; i += 3) v[i] = (i / 3) % 2 ? T(-0.0) : T(0.0);
    if (specials && n >= 8) {
        v[n / 2] = HUGE_VAL;
        v[n / 2 + 1] = -HUGE_VAL;
        v[n - 1] = NAN;
    }
    return v;
}

// `run(kernels, arrays)` on a copy of `arrays` at each level; every array compared bit for
// bit, and what `run` returns (a sum in double) within `rtol`.
template <class T, class Run>
void run_both(const KernelSet<T>& test, const KernelSet<T>& ref, const std::vector<std::vector<T>>& arrays,
              double rtol, const std::string& what, Tally& tally, Run run) {
    std::vector<std::vector<T>> mine = arrays, theirs = arrays;
    const double got = run(test, mine), want = run(ref, theirs);
    tally.close(got, want, rtol, what + " returned value");
    for (std::size_t k = 0; k < arrays.size(); ++k)
        tally.same_bits(mine[k].data(), theirs[k].data(), mine[k].size(), what + " array " + std::to_string(k));
}

template <class T> std::vector<T*> pointers(std::vector<std::vector<T>>& a) {
    std::vector<T*> p;
    for (auto& x : a) p.push_back(x.data());
    return p;
}

// clip_grad_value_'s clamp, clip_grad_norm_'s scale and the norms, over every size in one call.
template <class T> void check_clipping(const KernelSet<T>& test, const KernelSet<T>& ref, Tally& tally) {
    std::mt19937_64 rng(777);
    const std::vector<std::size_t> sizes = all_sizes();
    for (bool specials : {false, true}) {
        std::vector<std::vector<T>> grads;
        for (std::size_t n : sizes) grads.push_back(mixed<T>(rng, n, specials));
        const std::string data = std::string(dtype_name<T>()) + (specials ? " with Inf and NaN" : "");
        for (double c : {0.5, 1e-30, 1e30, HUGE_VAL})
            run_both(test, ref, grads, 0.0, "clamp to " + show(c) + " " + data, tally,
                     [&](const KernelSet<T>& k, std::vector<std::vector<T>>& a) {
                         k.clamp(pointers(a).data(), sizes.data(), a.size(), c);
                         return 0.0;
                     });
        for (double f : {0.3, -1.7, 1e-30, 0.0})
            run_both(test, ref, grads, 0.0, "scale by " + show(f) + " " + data, tally,
                     [&](const KernelSet<T>& k, std::vector<std::vector<T>>& a) {
                         k.scale(pointers(a).data(), sizes.data(), a.size(), f);
                         return 0.0;
                     });
        for (double p : {1.0, 2.0, HUGE_VAL, 3.0, 0.5})
            run_both(test, ref, grads, norm_rtol(p), "norm_power_sum p=" + show(p) + " " + data, tally,
                     [&](const KernelSet<T>& k, std::vector<std::vector<T>>& a) {
                         std::vector<const T*> x(a.size());
                         for (std::size_t i = 0; i < a.size(); ++i) x[i] = a[i].data();
                         return k.norm_power_sum(x.data(), sizes.data(), a.size(), norm_kind(p), p);
                     });
    }
}

// GELU's tanh approximation constants (fastgd.models.mlp_layers).
const double kGeluC = std::sqrt(2.0 / 3.141592653589793), kGeluK = 0.044715;

// The MLP layers' element-wise kernels: rows of every width.
template <class T> void check_mlp(const KernelSet<T>& test, const KernelSet<T>& ref, Tally& tally) {
    std::mt19937_64 rng(4242);
    constexpr std::size_t rows = 3;
    for (std::size_t cols : all_sizes()) {
        const std::size_t n = rows * cols;
        const std::string at = std::string(dtype_name<T>()) + " rows " + std::to_string(rows) + " cols " +
                               std::to_string(cols);
        std::vector<T> h = mixed<T>(rng, n), b = mixed<T>(rng, cols), d = normal<T>(rng, n), a(n), t(n);
        for (std::size_t i = 0; i < n; ++i) {
            a[i] = static_cast<T>(1.0 / (1.0 + std::exp(-static_cast<double>(h[i]))));  // a sigmoid's output
            t[i] = static_cast<T>(std::tanh(static_cast<double>(h[i])));
        }
        // arrays: 0 h, 1 b, 2 a (out)
        run_both(test, ref, {h, b, a}, 0.0, "bias_relu " + at, tally, [&](const KernelSet<T>& k, auto& x) {
            k.bias_relu(x[0].data(), x[1].data(), x[2].data(), rows, cols);
            return 0.0;
        });
        run_both(test, ref, {h, b}, 0.0, "bias_add " + at, tally, [&](const KernelSet<T>& k, auto& x) {
            k.bias_add(x[0].data(), x[1].data(), rows, cols);
            return 0.0;
        });
        // arrays: 0 d (in/out), 1 h, 2 a, 3 t, 4 gb (out)
        for (int kind = 0; kind < 4; ++kind) {
            const std::string which = " kind " + std::to_string(kind) + " " + at;
            const std::vector<std::vector<T>> in = {d, h, a, t, std::vector<T>(cols)};
            run_both(test, ref, in, 0.0, "activation_grad" + which, tally, [&](const KernelSet<T>& k, auto& x) {
                k.activation_grad(kind, x[0].data(), x[1].data(), x[2].data(), x[3].data(), n, kGeluC, kGeluK);
                return 0.0;
            });
            run_both(test, ref, in, 0.0, "activation_grad_colsum" + which, tally, [&](const KernelSet<T>& k, auto& x) {
                k.activation_grad_colsum(kind, x[0].data(), x[1].data(), x[2].data(), x[3].data(), rows, cols, kGeluC,
                                         kGeluK, x[4].data());
                return 0.0;
            });
        }
        // arrays: 0 h, 1 u or t, 2 out
        run_both(test, ref, {h, std::vector<T>(n)}, 0.0, "gelu_inner " + at, tally,
                 [&](const KernelSet<T>& k, auto& x) {
                     k.gelu_inner(x[0].data(), x[1].data(), n, kGeluC, kGeluK);
                     return 0.0;
                 });
        run_both(test, ref, {h, t, std::vector<T>(n)}, 0.0, "gelu_outer " + at, tally,
                 [&](const KernelSet<T>& k, auto& x) {
                     k.gelu_outer(x[0].data(), x[1].data(), x[2].data(), n);
                     return 0.0;
                 });
        // Softmax cross-entropy over `cols` classes (cols >= 1), weighted or not, with and without
        // the column sums. arrays: 0 z, 1 w, 2 d, 3 gb
        if (cols == 0) continue;
        std::vector<std::int64_t> labels(rows);
        for (std::size_t r = 0; r < rows; ++r) labels[r] = static_cast<std::int64_t>(rng() % cols);
        std::vector<T> z = normal<T>(rng, n, 3.0), w = normal<T>(rng, rows);
        for (T& x : w) x = std::fabs(x);
        for (bool weighted : {false, true})
            for (bool sums : {false, true})
                run_both(test, ref, {z, w, std::vector<T>(n), std::vector<T>(cols)}, 0.0,
                         std::string("softmax_xent_grad") + (weighted ? " weighted" : "") +
                             (sums ? " with column sums " : " ") + at,
                         tally, [&](const KernelSet<T>& k, auto& x) {
                             return k.softmax_xent_grad(x[0].data(), labels.data(), weighted ? x[1].data() : nullptr,
                                                        x[2].data(), sums ? x[3].data() : nullptr, rows, cols, 0.25);
                         });
    }
}

// One level against its reference, every kernel, both dtypes.
long check_level(const std::string& level, const std::string& reference) {
    set_active_level(reference);
    const KernelTable& ref = active_kernels();
    set_active_level(level);
    const KernelTable& test = active_kernels();
    Tally tally{level, reference};
    check_rules<float>(test, ref, tally);
    check_rules<double>(test, ref, tally);
    const long rules = tally.checks;
    check_clipping(test.f32, ref.f32, tally);
    check_clipping(test.f64, ref.f64, tally);
    check_mlp(test.f32, ref.f32, tally);
    check_mlp(test.f64, ref.f64, tally);
    std::printf("%s vs %s: %ld checks (%ld of update rules, %ld of clipping, norm and MLP kernels), %ld mismatches\n",
                level.c_str(), reference.c_str(), tally.checks, rules, tally.checks - rules, tally.failures);
    return tally.failures;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> compiled = compiled_levels(), supported = supported_levels();
    const auto has = [](const std::vector<std::string>& v, const std::string& x) {
        return std::find(v.begin(), v.end(), x) != v.end();
    };
    const auto is_reference = [](const std::string& l) { return l == "scalar" || l == "scalar_fma"; };
    if (!has(compiled, "scalar") || !has(compiled, "scalar_fma")) {
        std::fprintf(stderr, "conformance: build with FASTGD_EXTRA_LEVELS=\"scalar;scalar_fma\" (CMakeLists.txt)\n");
        return 2;
    }
    std::vector<std::string> wanted(argv + 1, argv + argc);
    if (wanted.empty())
        for (const std::string& l : supported)
            if (!is_reference(l)) wanted.push_back(l);
    if (wanted.empty()) {
        std::fprintf(stderr, "conformance: no level to check besides the scalar ones\n");
        return 2;
    }
    for (const std::string& l : wanted)
        if (is_reference(l) || !has(supported, l)) {
            std::fprintf(stderr, "conformance: level '%s' is %s (this build has:", l.c_str(),
                         is_reference(l) ? "a reference" : has(compiled, l) ? "not runnable on this CPU"
                                                                            : "not compiled in");
            for (const std::string& c : compiled) std::fprintf(stderr, " %s", c.c_str());
            std::fprintf(stderr, ")\n");
            return 2;
        }
    long failures = 0;
    for (const std::string& level : wanted) {
        set_active_level(level);
        // The reference rounds a*b+c as the level does: once where it has FMA, else twice.
        failures += check_level(level, active_kernels().fused_multiply_add ? "scalar_fma" : "scalar");
    }
    return failures ? 1 : 0;
}
