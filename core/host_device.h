// host_device.h: GT_HD marks scalar math shared by the CPU reference and the CUDA kernels.
// Under nvcc it expands to __host__ __device__; under a plain C++ compiler to nothing, so the same
// inline function is compiled (and unit-tested) on the CPU. (tiny-cuda-nn does the same.)
#pragma once

#if defined(__CUDACC__)
#define GT_HD __host__ __device__
#define GT_DEVICE __device__
#else
#define GT_HD
#define GT_DEVICE
#endif
