// embedding.cu: CUDA sinusoidal timestep embedding, one thread per output element, the same
// double-precision GT_HD math as the CPU (kernels/embedding.h).
#include "core/cuda_context.h"
#include "core/error.h"
#include "kernels/embedding.h"

namespace gt {

namespace {
__global__ void timestep_embedding_kernel(float* out, const float* t, long long B, long long dim) {
  const long long half = dim / 2;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < B * dim; e += (long long)gridDim.x * blockDim.x)
    out[e] = timestep_embedding_value(t[e / dim], e % dim, half);
}
}  // namespace

void timestep_embedding_cuda(float* out, const float* t, int64_t B, int64_t dim) {
  if (B * dim == 0) return;
  timestep_embedding_kernel<<<cuda::grid_for(B * dim), cuda::kBlock, 0, cuda::stream()>>>(out, t, B, dim);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt
