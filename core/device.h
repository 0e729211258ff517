// device.h: where a tensor lives and what its elements are, plus the CUDA runtime facts gentape
// needs (is a GPU present, its name, the one stream every kernel is launched on).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace gt {

enum class Device : uint8_t { CPU, CUDA };

// Element types. Every op computes in float32; I32 holds indices (index_select, labels). F16/BF16
// are named so half-precision storage can be added without changing the Tensor layout.
enum class DType : uint8_t { F32, I32, F16, BF16 };

const char* device_name(Device d);
const char* dtype_name(DType t);
size_t dtype_size(DType t);
// Parses "cpu", "cuda" or "auto" (auto: cuda when a device is present). Throws on anything else.
Device parse_device(const std::string& s);

inline std::ostream& operator<<(std::ostream& os, Device d) { return os << device_name(d); }
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

// True when gentape was built with CUDA (GENTAPE_CUDA=ON/AUTO with nvcc found).
constexpr bool built_with_cuda() { return GENTAPE_HAS_CUDA; }

// True when built with CUDA and a device can be used. When false, why() explains (no driver, no
// device, built without CUDA) — tests print it when they skip.
bool cuda_available();
std::string cuda_unavailable_reason();
// "NVIDIA H100 80GB HBM3 (sm_90)"; throws when no device.
std::string cuda_device_name();
// Blocks until all queued GPU work is done (no-op without CUDA). Only benchmarks and explicit
// reads call this; ops never do.
void cuda_synchronize();

// CPU threads used by gentape's own loops and by Eigen (OpenMP). Default: all cores.
void set_num_threads(int n);
int num_threads();

}  // namespace gt
