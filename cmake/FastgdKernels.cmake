# The kernel sources, compiled once per instruction-set level into object libraries, each
# level in its own namespace; dispatch.cpp picks one at run time from the CPU's features.
# Nothing here uses -march=native: the baseline level runs on any CPU of the architecture.
#
# In: FASTGD_CPP (the cpp/ folder). Out: FASTGD_LEVEL_OBJECTS (to link into a target with
# dispatch.cpp and runtime.cpp) and FASTGD_LEVEL_DEFINITIONS (FASTGD_HAVE_<LEVEL>, for them).
# Used by the package's CMakeLists.txt and by bench/CMakeLists.txt alike.

find_package(OpenMP COMPONENTS CXX)
if(NOT OpenMP_CXX_FOUND)
  message(WARNING "OpenMP not found: fastgd's kernels will run on one thread")
endif()

set(FASTGD_KERNEL_SOURCES
    ${FASTGD_CPP}/src/kernels/update_rules.cpp
    ${FASTGD_CPP}/src/kernels/reductions.cpp
    ${FASTGD_CPP}/src/kernels/activations.cpp
    ${FASTGD_CPP}/src/kernels/linear_objective.cpp
    ${FASTGD_CPP}/src/kernels/column_stats.cpp
    ${FASTGD_CPP}/src/kernels/target_table.cpp)
set(FASTGD_LEVEL_OBJECTS "")
set(FASTGD_LEVEL_DEFINITIONS "")

function(fastgd_add_level level)
  add_library(fastgd_kernels_${level} OBJECT ${FASTGD_KERNEL_SOURCES})
  string(TOUPPER ${level} LEVEL)
  target_compile_definitions(fastgd_kernels_${level} PRIVATE FASTGD_TARGET_${LEVEL})
  target_include_directories(fastgd_kernels_${level} PRIVATE ${FASTGD_CPP}/include ${FASTGD_CPP}/src/kernels)
  set_target_properties(fastgd_kernels_${level} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  # Explicit intrinsics decide where FMA is used; the compiler must not contract others.
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(fastgd_kernels_${level} PRIVATE -Wall -Wextra -ffp-contract=off ${ARGN})
  else()
    target_compile_options(fastgd_kernels_${level} PRIVATE ${ARGN})
  endif()
  if(OpenMP_CXX_FOUND)
    target_link_libraries(fastgd_kernels_${level} PRIVATE OpenMP::OpenMP_CXX)
  endif()
  set(FASTGD_LEVEL_OBJECTS ${FASTGD_LEVEL_OBJECTS} $<TARGET_OBJECTS:fastgd_kernels_${level}> PARENT_SCOPE)
  set(FASTGD_LEVEL_DEFINITIONS ${FASTGD_LEVEL_DEFINITIONS} FASTGD_HAVE_${LEVEL} PARENT_SCOPE)
endfunction()

# This architecture's levels, lowest (the baseline) first, and the flags of those that need any.
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" FASTGD_ARCH)
if(FASTGD_ARCH MATCHES "x86_64|amd64|x64")
  set(FASTGD_ARCH_LEVELS sse2 avx2 avx512)
elseif(FASTGD_ARCH MATCHES "aarch64|arm64")
  set(FASTGD_ARCH_LEVELS neon)
else()
  set(FASTGD_ARCH_LEVELS scalar)
endif()
if(MSVC)
  set(FASTGD_FLAGS_avx2 /arch:AVX2)
  set(FASTGD_FLAGS_avx512 /arch:AVX512)
else()
  set(FASTGD_FLAGS_avx2 -mavx2 -mfma)
  set(FASTGD_FLAGS_avx512 -mavx512f -mavx2 -mfma)
endif()

# FASTGD_EXTRA_LEVELS, set before this file is included, compiles more levels than the
# architecture's: tests/conformance adds the portable scalar level, and its a*b+c-rounded-once
# twin scalar_fma (simd.hpp), to check the others against.
set(FASTGD_LEVELS ${FASTGD_EXTRA_LEVELS} ${FASTGD_ARCH_LEVELS})
list(REMOVE_DUPLICATES FASTGD_LEVELS)
foreach(level IN LISTS FASTGD_LEVELS)
  fastgd_add_level(${level} ${FASTGD_FLAGS_${level}})
endforeach()
