// What the kernels on CSR matrices share: the value and index types they are compiled for,
// and the checks of a matrix's structure they make as they read it, with their errors
// (std::out_of_range, naming the row).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

// M(T, I) for each pair of value type T and index type I a kernel takes (scipy's two of each).
#define FASTGD_CSR_TYPES(M) M(float, std::int32_t) M(float, std::int64_t) M(double, std::int32_t) M(double, std::int64_t)

namespace fastgd {

// Whether a row's extent [p0, p1) lies in [0, nnz) and does not decrease.
template <class I> bool sound_extent(I p0, I p1, std::size_t nnz) {
    return p0 >= 0 && p1 >= p0 && static_cast<std::size_t>(p1) <= nnz;
}

[[noreturn]] inline void bad_extent(std::size_t r, std::int64_t p0, std::int64_t p1, std::size_t nnz) {
    throw std::out_of_range("X: row " + std::to_string(r) + " spans nonzeros [" + std::to_string(p0) + ", " +
                            std::to_string(p1) + "), outside [0, " + std::to_string(nnz) +
                            ") or decreasing (indptr is malformed)");
}

[[noreturn]] inline void bad_column(std::int64_t j, std::size_t r, std::size_t d) {
    throw std::out_of_range("X: column index " + std::to_string(j) + " in row " + std::to_string(r) +
                            " is out of range for " + std::to_string(d) + " features");
}

}  // namespace fastgd
