// cuda_context.cu: device discovery, the shared stream, synchronisation.
#include "core/cuda_context.h"
#include "core/device.h"
#include "core/error.h"

#include <mutex>

namespace gt {

namespace {
struct CudaProbe {
  bool ok = false;
  std::string reason;
  CudaProbe() {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      reason = std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")";
      cudaGetLastError();  // clear the sticky error so later calls are not confused by it
    } else if (n == 0) {
      reason = "no CUDA device present";
    } else {
      ok = true;
    }
  }
};
const CudaProbe& probe() {
  static CudaProbe p;
  return p;
}
}  // namespace

bool cuda_available() { return probe().ok; }
std::string cuda_unavailable_reason() { return probe().ok ? "" : probe().reason; }

std::string cuda_device_name() {
  GT_CHECK(cuda_available(), "no CUDA device: " << cuda_unavailable_reason());
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

void cuda_synchronize() {
  if (cuda_available()) CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
}

namespace cuda {
cudaStream_t stream() {
  static cudaStream_t s = [] {
    GT_CHECK(cuda_available(), "CUDA requested but " << cuda_unavailable_reason());
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    return st;
  }();
  return s;
}
}  // namespace cuda

}  // namespace gt
