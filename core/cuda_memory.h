// cuda_memory.h: the CUDA halves of Tensor copies and fills (tensor_cuda.cu), declared without
// CUDA headers so plain C++ files can call them. Only present in builds with GENTAPE_HAS_CUDA.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gt::detail {
enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
void cuda_copy(void* dst, const void* src, size_t bytes, CopyKind kind);
void cuda_fill(float* p, int64_t n, float value);
}  // namespace gt::detail
