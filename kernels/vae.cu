// vae.cu: CUDA versions of the fused VAE kernels. Elementwise parts run one thread per element;
// per-sample sums run one block per row and reduce with warp shuffles (fixed order, no atomics).
#include "core/cuda_context.h"
#include "kernels/block_reduce.cuh"
#include "core/error.h"
#include "core/philox.h"
#include "kernels/vae.h"

namespace gt {

namespace {
constexpr int kRowBlock = 256;

#define GT_GRID_STRIDE(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)


template <class Term>
__global__ void row_sum_kernel(float* out, long long D, Term term) {
  const long long b = blockIdx.x;
  float s = 0.f;
  for (long long j = threadIdx.x; j < D; j += blockDim.x) s += term(b, j);
  s = cuda::block_sum(s);
  if (threadIdx.x == 0) out[b] = s;
}

template <class Term>
void launch_row_sums(float* out, int64_t B, int64_t D, Term term) {
  if (B == 0) return;
  GT_CHECK(B <= 2147483647LL, "VAE loss: " << B << " rows exceed one CUDA grid");
  row_sum_kernel<<<(unsigned)B, kRowBlock, 0, cuda::stream()>>>(out, D, term);
  CUDA_CHECK(cudaGetLastError());
}

struct KlTerm {
  const float *mu, *lv;
  long long D;
  __device__ float operator()(long long b, long long j) const { return kl_term(mu[b * D + j], lv[b * D + j]); }
};
struct BceTerm {
  const float *l, *x;
  long long D;
  __device__ float operator()(long long b, long long j) const { return bce_logits_term(l[b * D + j], x[b * D + j]); }
};
struct GaussTerm {
  const float *m, *x, *lv;
  LogvarLayout layout;
  long long D;
  __device__ float operator()(long long b, long long j) const {
    return gaussian_nll_term(m[b * D + j], x[b * D + j], lv[logvar_index(layout, b, j, D)]);
  }
};

__global__ void reparam_forward_kernel(float* z, float* eps, const float* mu, const float* lv, long long n,
                                       unsigned long long seed, unsigned long long offset) {
  GT_GRID_STRIDE(i, n) {
    const float r = philox_normal(seed, offset + (unsigned long long)i);
    eps[i] = r;
    z[i] = mu[i] + expf(0.5f * lv[i]) * r;
  }
}
__global__ void reparam_backward_kernel(float* dmu, float* dlv, const float* dz, const float* eps, const float* lv,
                                        long long n) {
  GT_GRID_STRIDE(i, n) {
    if (dmu) dmu[i] += dz[i];
    if (dlv) dlv[i] += 0.5f * dz[i] * eps[i] * expf(0.5f * lv[i]);
  }
}
__global__ void kl_backward_kernel(float* dmu, float* dlv, const float* dkl, const float* mu, const float* lv,
                                   long long n, long long D) {
  GT_GRID_STRIDE(i, n) {
    const float g = dkl[i / D];
    if (dmu) dmu[i] += g * mu[i];
    if (dlv) dlv[i] += 0.5f * g * (expf(lv[i]) - 1.f);
  }
}
__global__ void bce_backward_kernel(float* dl, float* dx, const float* dnll, const float* l, const float* x,
                                    long long n, long long D) {
  GT_GRID_STRIDE(i, n) {
    const float g = dnll[i / D];
    if (dl) dl[i] += g * (stable_sigmoid(l[i]) - x[i]);
    if (dx) dx[i] += -g * l[i];
  }
}
__global__ void gauss_backward_kernel(float* dm, float* dx, float* dlv_full, const float* dnll, const float* m,
                                      const float* x, const float* lv, LogvarLayout layout, long long n,
                                      long long D) {
  GT_GRID_STRIDE(i, n) {
    const long long b = i / D, j = i % D;
    const float g = dnll[b];
    const float inv = expf(-lv[logvar_index(layout, b, j, D)]);
    const float d = x[i] - m[i];
    if (dm) dm[i] += -g * d * inv;
    if (dx) dx[i] += g * d * inv;
    if (dlv_full) dlv_full[i] = 0.5f * g * (1.f - d * d * inv);
  }
}

#define GT_LAUNCH_1D(kernel, n, ...)                                                      \
  do {                                                                                    \
    if ((n) > 0) {                                                                        \
      kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream()>>>(__VA_ARGS__);        \
      CUDA_CHECK(cudaGetLastError());                                                     \
    }                                                                                     \
  } while (0)
}  // namespace

void reparam_forward_cuda(float* z, float* eps, const float* mu, const float* logvar, int64_t n, uint64_t seed,
                          uint64_t offset) {
  GT_LAUNCH_1D(reparam_forward_kernel, n, z, eps, mu, logvar, n, seed, offset);
}
void reparam_backward_cuda(float* dmu, float* dlogvar, const float* dz, const float* eps, const float* logvar,
                           int64_t n) {
  GT_LAUNCH_1D(reparam_backward_kernel, n, dmu, dlogvar, dz, eps, logvar, n);
}
void kl_forward_cuda(float* kl, const float* mu, const float* logvar, int64_t B, int64_t D) {
  launch_row_sums(kl, B, D, KlTerm{mu, logvar, D});
}
void kl_backward_cuda(float* dmu, float* dlogvar, const float* dkl, const float* mu, const float* logvar, int64_t B,
                      int64_t D) {
  GT_LAUNCH_1D(kl_backward_kernel, B * D, dmu, dlogvar, dkl, mu, logvar, B * D, D);
}
void bernoulli_nll_forward_cuda(float* nll, const float* logits, const float* x, int64_t B, int64_t D) {
  launch_row_sums(nll, B, D, BceTerm{logits, x, D});
}
void bernoulli_nll_backward_cuda(float* dlogits, float* dx, const float* dnll, const float* logits, const float* x,
                                 int64_t B, int64_t D) {
  GT_LAUNCH_1D(bce_backward_kernel, B * D, dlogits, dx, dnll, logits, x, B * D, D);
}
void gaussian_nll_forward_cuda(float* nll, const float* mean, const float* x, const float* logvar,
                               LogvarLayout layout, int64_t B, int64_t D) {
  launch_row_sums(nll, B, D, GaussTerm{mean, x, logvar, layout, D});
}
void gaussian_nll_backward_cuda(float* dmean, float* dx, float* dlogvar_full, const float* dnll, const float* mean,
                                const float* x, const float* logvar, LogvarLayout layout, int64_t B, int64_t D) {
  GT_LAUNCH_1D(gauss_backward_kernel, B * D, dmean, dx, dlogvar_full, dnll, mean, x, logvar, layout, B * D, D);
}

}  // namespace gt
