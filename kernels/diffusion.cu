// diffusion.cu: CUDA versions of the fused DDPM kernels. The per-element kernels run one thread per
// element and gather their sample's coefficients (b = i / D) from the tables; the ε-loss runs one
// block per sample with a shuffle reduction (fixed order, no atomics: deterministic). The maths are
// the GT_HD terms of diffusion.h, shared with the CPU references in diffusion.cpp.
#include "core/cuda_context.h"
#include "core/error.h"
#include "core/philox.h"
#include "kernels/block_reduce.cuh"
#include "kernels/diffusion.h"

namespace gt {

namespace {
constexpr int kRowBlock = 256;

#define GT_GRID_STRIDE(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ float nan_f() { return __int_as_float(0x7fc00000); }

__global__ void q_sample_kernel(float* xt, float* eps, const float* x0, const int* t, DiffusionTables tab,
                                long long n, long long D, unsigned long long seed, unsigned long long offset) {
  GT_GRID_STRIDE(i, n) {
    const int tb = t[i / D];
    const bool ok = timestep_ok(tb, 0, tab.T);
    const float e = philox_normal(seed, offset + (unsigned long long)i);
    eps[i] = e;
    xt[i] = ok ? q_sample_term(x0[i], e, tab.sqrt_alpha_bar[tb], tab.sqrt_beta_bar[tb]) : nan_f();
  }
}

__global__ void eps_loss_forward_kernel(float* mse, const float* p, const float* e, long long D) {
  const long long o = blockIdx.x * D;
  float s = 0.f;
  for (long long j = threadIdx.x; j < D; j += blockDim.x) s += eps_loss_term(p[o + j], e[o + j]);
  s = cuda::block_sum(s);
  if (threadIdx.x == 0) mse[blockIdx.x] = s * (1.f / (float)D);
}

__global__ void eps_loss_backward_kernel(float* dp, float* de, const float* dmse, const float* p, const float* e,
                                         long long n, long long D) {
  // d mse_b / d ε̂_bj = 2 (ε̂_bj − ε_bj) / D = −d mse_b / d ε_bj
  GT_GRID_STRIDE(i, n) {
    const float g = 2.f * dmse[i / D] / (float)D * (p[i] - e[i]);
    if (dp) dp[i] += g;
    if (de) de[i] -= g;
  }
}

__global__ void ddpm_step_kernel(float* x_prev, float* x0_pred, const float* xt, const float* ep, const int* t,
                                 DiffusionTables tab, long long n, long long D, unsigned long long seed,
                                 unsigned long long offset) {
  GT_GRID_STRIDE(i, n) {
    const int tb = t[i / D];
    if (!timestep_ok(tb, 1, tab.T)) {
      x_prev[i] = nan_f();
      if (x0_pred) x0_pred[i] = nan_f();
      continue;
    }
    // z̃_1 = 0: the last step returns the mean (and skips the draw)
    const float z = tb > 1 ? philox_normal(seed, offset + (unsigned long long)i) : 0.f;
    x_prev[i] = ddpm_step_term(xt[i], ep[i], tab.inv_sqrt_alpha[tb], tab.eps_coef[tb], tab.sigma[tb], z);
    if (x0_pred) x0_pred[i] = x0_from_eps(xt[i], ep[i], tab.sqrt_alpha_bar[tb], tab.sqrt_beta_bar[tb]);
  }
}

__global__ void ddim_step_kernel(float* x_next, float* x0_pred, const float* xt, const float* ep, const int* t,
                                 const int* t_next, DiffusionTables tab, long long n, long long D) {
  GT_GRID_STRIDE(i, n) {
    const long long b = i / D;
    const int tb = t[b], tn = t_next[b];
    if (!(timestep_ok(tb, 1, tab.T) && timestep_ok(tn, 0, (long long)tb - 1))) {
      x_next[i] = nan_f();
      if (x0_pred) x0_pred[i] = nan_f();
      continue;
    }
    const float x0 = x0_from_eps(xt[i], ep[i], tab.sqrt_alpha_bar[tb], tab.sqrt_beta_bar[tb]);
    if (x0_pred) x0_pred[i] = x0;
    x_next[i] = ddim_step_term(x0, ep[i], tab.sqrt_alpha_bar[tn], tab.sqrt_beta_bar[tn]);
  }
}

#define GT_LAUNCH_1D(kernel, n, ...)                                               \
  do {                                                                             \
    if ((n) > 0) {                                                                 \
      kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(__VA_ARGS__); \
      CUDA_CHECK(cudaGetLastError());                                              \
    }                                                                              \
  } while (0)
}  // namespace

void q_sample_cuda(float* xt, float* eps, const float* x0, const int32_t* t, DiffusionTables tab, int64_t B,
                   int64_t D, uint64_t seed, uint64_t offset) {
  GT_LAUNCH_1D(q_sample_kernel, B * D, xt, eps, x0, t, tab, B * D, D, seed, offset);
}

void ddpm_eps_loss_forward_cuda(float* mse, const float* eps_pred, const float* eps, int64_t B, int64_t D) {
  if (B == 0) return;
  GT_CHECK(B <= 2147483647LL, "ddpm_eps_loss: " << B << " rows exceed one CUDA grid");
  eps_loss_forward_kernel<<<(unsigned)B, kRowBlock, 0, cuda::stream()>>>(mse, eps_pred, eps, D);
  CUDA_CHECK(cudaGetLastError());
}

void ddpm_eps_loss_backward_cuda(float* deps_pred, float* deps, const float* dmse, const float* eps_pred,
                                 const float* eps, int64_t B, int64_t D) {
  GT_LAUNCH_1D(eps_loss_backward_kernel, B * D, deps_pred, deps, dmse, eps_pred, eps, B * D, D);
}

void ddpm_step_cuda(float* x_prev, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                    DiffusionTables tab, int64_t B, int64_t D, uint64_t seed, uint64_t offset) {
  GT_LAUNCH_1D(ddpm_step_kernel, B * D, x_prev, x0_pred, xt, eps_pred, t, tab, B * D, D, seed, offset);
}

void ddim_step_cuda(float* x_next, float* x0_pred, const float* xt, const float* eps_pred, const int32_t* t,
                    const int32_t* t_next, DiffusionTables tab, int64_t B, int64_t D) {
  GT_LAUNCH_1D(ddim_step_kernel, B * D, x_next, x0_pred, xt, eps_pred, t, t_next, tab, B * D, D);
}

}  // namespace gt
