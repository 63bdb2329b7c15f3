// What a kernel sees of the arrays it updates: raw pointers and a count, nothing else.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>

#include "fastgd/rules.hpp"

namespace fastgd {

// One parameter array with its gradient and the rule's state arrays in use (the rule's
// states whose option needs them, in the table's order), all of `size` elements. With
// state_index, element i's states are state[k][state_index[i]] (a lazy step on some
// coordinates of larger arrays: the kernel reads and writes them where they are).
template <class T> struct TensorRef {
    T* param = nullptr;
    const T* grad = nullptr;
    T* state[kMaxStates] = {};
    std::size_t size = 0;
    const std::int64_t* state_index = nullptr;
};

// How every update rule reads a gradient element, fused into its single pass:
//   g <- clamp(scale * g, -clip_value, clip_value)
// `scale` carries the global-norm clipping coefficient and the sign flip of `maximize`, so
// clipping costs no extra pass of writes; clip_value = +inf disables value clipping.
struct GradTransform {
    double scale = 1.0;
    double clip_value = std::numeric_limits<double>::infinity();
};

}  // namespace fastgd
