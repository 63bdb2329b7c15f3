// Run-time choice of the instruction-set level: the highest one both compiled in and
// supported by this CPU (and its OS), unless FASTGD_ISA asks for a lower one.
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastgd/kernel_table.hpp"

namespace fastgd {

// Each level's table, defined in its own copy of the kernel sources.
#define FASTGD_DECLARE_LEVEL(ns) \
    namespace ns {               \
    const KernelTable& table();  \
    }
#if defined(FASTGD_HAVE_SSE2)
FASTGD_DECLARE_LEVEL(target_sse2)
#endif
#if defined(FASTGD_HAVE_AVX2)
FASTGD_DECLARE_LEVEL(target_avx2)
#endif
#if defined(FASTGD_HAVE_AVX512)
FASTGD_DECLARE_LEVEL(target_avx512)
#endif
#if defined(FASTGD_HAVE_NEON)
FASTGD_DECLARE_LEVEL(target_neon)
#endif
#if defined(FASTGD_HAVE_SCALAR)
FASTGD_DECLARE_LEVEL(target_scalar)
#endif
#if defined(FASTGD_HAVE_SCALAR_FMA)
FASTGD_DECLARE_LEVEL(target_scalar_fma)
#endif

namespace {

struct Level {
    std::string name;
    const KernelTable& (*table)();
    bool supported;
};

bool cpu_has(const char* feature) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    // libgcc's check covers the OS side too (XSAVE-enabled AVX / AVX-512 register state).
    const std::string f(feature);
    if (f == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (f == "avx512") return __builtin_cpu_supports("avx512f");
    return false;
#else
    (void)feature;
    return false;
#endif
}

const std::vector<Level>& levels() {
    static const std::vector<Level> all = [] {
        std::vector<Level> v;
#if defined(FASTGD_HAVE_SCALAR)
        v.push_back({"scalar", &target_scalar::table, true});
#endif
#if defined(FASTGD_HAVE_SCALAR_FMA)  // tests/conformance only (simd.hpp)
        v.push_back({"scalar_fma", &target_scalar_fma::table, true});
#endif
#if defined(FASTGD_HAVE_SSE2)
        v.push_back({"baseline", &target_sse2::table, true});
#endif
#if defined(FASTGD_HAVE_NEON)
        v.push_back({"neon", &target_neon::table, true});
#endif
#if defined(FASTGD_HAVE_AVX2)
        v.push_back({"avx2", &target_avx2::table, cpu_has("avx2")});
#endif
#if defined(FASTGD_HAVE_AVX512)
        v.push_back({"avx512", &target_avx512::table, cpu_has("avx512")});
#endif
        return v;
    }();
    return all;
}

const KernelTable* pick(const std::string& name) {
    for (const Level& l : levels()) {
        if (l.name != name) continue;
        if (!l.supported) throw std::invalid_argument("SIMD level '" + name + "' is not supported by this CPU");
        return &l.table();
    }
    std::string known;
    for (const Level& l : levels()) known += (known.empty() ? "" : ", ") + l.name;
    throw std::invalid_argument("unknown SIMD level '" + name + "' (this build has: " + known + ")");
}

const KernelTable* initial() {
    // FASTGD_ISA may only lower the level; an unknown or unsupported name falls back to the
    // best level (the Python package warns about it). "baseline" is the portable level's
    // name everywhere, also where that level is NEON or scalar.
    if (const char* env = std::getenv("FASTGD_ISA"); env && *env) {
        std::string want(env);
        if (want == "baseline" && !levels().empty()) want = levels().front().name;
        try {
            return pick(want);
        } catch (const std::invalid_argument&) {
        }
    }
    const KernelTable* best = nullptr;
    for (const Level& l : levels())
        if (l.supported) best = &l.table();
    return best;
}

const KernelTable* g_active = nullptr;

}  // namespace

std::vector<std::string> compiled_levels() {
    std::vector<std::string> v;
    for (const Level& l : levels()) v.push_back(l.name);
    return v;
}

std::vector<std::string> supported_levels() {
    std::vector<std::string> v;
    for (const Level& l : levels())
        if (l.supported) v.push_back(l.name);
    return v;
}

const KernelTable& active_kernels() {
    // First use happens at import (the module asks for its level there), under the GIL.
    if (!g_active) g_active = initial();
    return *g_active;
}

void set_active_level(const std::string& name) { g_active = pick(name); }

}  // namespace fastgd
