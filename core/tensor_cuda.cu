// tensor_cuda.cu: the CUDA halves of Tensor copies and fills, all queued on gentape's stream.
// Device-to-host copies wait for the stream: that read-back is the one synchronisation point.
#include "core/cuda_context.h"
#include "core/cuda_memory.h"
#include "core/error.h"

namespace gt::detail {

void cuda_copy(void* dst, const void* src, size_t bytes, CopyKind kind) {
  cudaStream_t s = cuda::stream();
  switch (kind) {
    case CopyKind::HostToDevice:
      // src is pageable host memory: cudaMemcpyAsync stages it before returning, so the caller
      // may free it at once.
      CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
      break;
    case CopyKind::DeviceToHost:
      CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
      CUDA_CHECK(cudaStreamSynchronize(s));
      break;
    case CopyKind::DeviceToDevice:
      CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
      break;
  }
}

__global__ void fill_kernel(float* p, long long n, float v) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] = v;
}

void cuda_fill(float* p, int64_t n, float value) {
  if (n == 0) return;
  if (value == 0.0f) {
    CUDA_CHECK(cudaMemsetAsync(p, 0, (size_t)n * sizeof(float), cuda::stream()));
    return;
  }
  fill_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(p, n, value);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt::detail
