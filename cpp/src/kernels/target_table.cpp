// This level's KernelTable: the entry point dispatch.cpp picks from.
#include "update_rules.hpp"

namespace fastgd::FASTGD_NS {

const KernelTable& table() {
    static const KernelTable t = [] {
        KernelTable k{FASTGD_LEVEL_NAME, kFusedMulAdd, {}, {}};
        fill_rules(k.f32);
        fill_rules(k.f64);
        fill_reductions(k.f32);
        fill_reductions(k.f64);
        fill_activations(k.f32);
        fill_activations(k.f64);
        fill_linear(k.f32);
        fill_linear(k.f64);
        fill_column_stats(k.f32);
        fill_column_stats(k.f64);
        return k;
    }();
    return t;
}

}  // namespace fastgd::FASTGD_NS
