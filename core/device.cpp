// device.cpp: names, parsing and the CPU thread setting; CUDA queries live in cuda_context.cu and
// have CPU-only fallbacks here.
#include "core/device.h"

#include <omp.h>

#include "core/error.h"

namespace gt {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::I32: return "int32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
  }
  return "?";
}

size_t dtype_size(DType t) { return (t == DType::F32 || t == DType::I32) ? 4 : 2; }

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda") {
    GT_CHECK(cuda_available(), "device 'cuda' requested but " << cuda_unavailable_reason());
    return Device::CUDA;
  }
  if (s == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  GT_FAIL("unknown device '" << s << "' (expected cpu, cuda or auto)");
}

void set_num_threads(int n) {
  GT_CHECK(n >= 1, "set_num_threads: thread count must be >= 1, got " << n);
  omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

#if !GENTAPE_HAS_CUDA
bool cuda_available() { return false; }
std::string cuda_unavailable_reason() { return "gentape was built without CUDA (GENTAPE_CUDA=OFF or no nvcc)"; }
std::string cuda_device_name() { GT_FAIL("no CUDA device: " << cuda_unavailable_reason()); }
void cuda_synchronize() {}
#endif

}  // namespace gt
