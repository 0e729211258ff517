// optim.cu: CUDA fused optimiser steps — one thread per element, the same scalar update as the CPU.
#include "core/cuda_context.h"
#include "core/error.h"
#include "kernels/optim.h"

namespace gt {

namespace {
__global__ void adam_step_kernel(float* p, const float* g, float* m, float* v, long long n, AdamHyper h) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    adam_update(p[i], g[i], m[i], v[i], h);
}
__global__ void sgd_step_kernel(float* p, const float* g, float* buf, long long n, SgdHyper h) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    sgd_update(p[i], g[i], buf ? buf + i : nullptr, h);
}
__global__ void ema_update_kernel(float* ema, const float* p, long long n, float w) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    ema_update(ema[i], p[i], w);
}
}  // namespace

void ema_update_cuda(float* ema, const float* p, int64_t n, float decay) {
  if (n == 0) return;
  ema_update_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(ema, p, n, 1.f - decay);
  CUDA_CHECK(cudaGetLastError());
}

void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h) {
  if (n == 0) return;
  adam_step_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(p, g, m, v, n, h);
  CUDA_CHECK(cudaGetLastError());
}

void sgd_step_cuda(float* p, const float* g, float* buf, int64_t n, const SgdHyper& h) {
  if (n == 0) return;
  sgd_step_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(p, g, buf, n, h);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt
