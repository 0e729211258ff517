// linear.cu: CUDA versions of the passes around the fully connected layer's cuBLAS GEMMs
// (equations in linear.h). The epilogue is one thread per element; the backward pass is one
// thread per column, walking the rows in order (coalesced across the warp's adjacent columns), so
// the bias gradient's sum has a fixed order: deterministic, no atomics.
#include "core/cuda_context.h"
#include "core/error.h"
#include "kernels/linear.h"
#include "kernels/matmul.h"

namespace gt {

namespace {
using cuda::kBlock;

__global__ void linear_epilogue_kernel(float* y, const float* b, long long B, long long O, LinearAct act) {
  const long long n = B * O;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float v = b ? y[i] + b[i % O] : y[i];
    y[i] = linear_act(act, v);
  }
}

__global__ void linear_backward_act_kernel(float* g, float* db, const float* dy, const float* y, long long B,
                                           long long O, LinearAct act, float db_beta) {
  const long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (o >= O) return;
  float s = 0.f;
  for (long long r = 0; r < B; ++r) {
    const long long i = r * O + o;
    const float v = dy[i] * linear_act_grad(act, y[i]);
    g[i] = v;
    s += v;
  }
  if (db) db[o] = db_beta == 0.f ? s : db[o] + s;
}
}  // namespace

void linear_forward_cuda(float* y, const float* x, const float* w, const float* b, int64_t B, int64_t I, int64_t O,
                         LinearAct act) {
  gemm_cuda(false, true, B, O, I, 1.f, x, w, 0.f, y);  // cuBLAS, then the epilogue kernel
  linear_epilogue_cuda(y, b, B, O, act);
}

void linear_epilogue_cuda(float* y, const float* b, int64_t B, int64_t O, LinearAct act) {
  if ((!b && act == LinearAct::None) || B * O == 0) return;
  linear_epilogue_kernel<<<cuda::grid_for(B * O), kBlock, 0, cuda::stream()>>>(y, b, B, O, act);
  CUDA_CHECK(cudaGetLastError());
}

void linear_backward_act_cuda(float* g, float* db, const float* dy, const float* y, int64_t B, int64_t O,
                              LinearAct act, float db_beta) {
  if (O == 0) return;
  const unsigned grid = (unsigned)((O + kBlock - 1) / kBlock);
  linear_backward_act_kernel<<<grid, kBlock, 0, cuda::stream()>>>(g, db, dy, y, B, O, act, db_beta);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt
