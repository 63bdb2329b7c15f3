// Entry points of this level's kernel sources, gathered into its KernelTable by target_table.cpp.
#pragma once
#include "fastgd/kernel_table.hpp"
#include "simd.hpp"

namespace fastgd::FASTGD_NS {

template <class T> void fill_rules(KernelSet<T>& k);
template <class T> void fill_reductions(KernelSet<T>& k);
template <class T> void fill_activations(KernelSet<T>& k);
template <class T> void fill_linear(KernelSet<T>& k);
template <class T> void fill_column_stats(KernelSet<T>& k);
const KernelTable& table();

}  // namespace fastgd::FASTGD_NS
