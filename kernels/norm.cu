// norm.cu: CUDA GroupNorm (equations and numerics in kernels/norm.h). One block per group (n, g):
// its M = Cg * S elements are contiguous, so the block's threads stride them with coalesced loads;
// the statistics are block reductions (kernels/block_reduce.cuh) in a fixed order. The weight and
// bias gradients are not accumulated with atomics: the backward block writes its per-(n, c) sums,
// and a second kernel adds them over n, one thread per channel — deterministic run to run.
#include <climits>

#include "core/cuda_context.h"
#include "core/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/norm.h"

namespace gt {

namespace {

constexpr int kThreads = 256;  // 8 warps per group's block

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;  // every lane holds the sum
}

// Block r = n * G + g: the three sweeps of norm.h's forward (shifted mean, centred sums, output).
__global__ void group_norm_forward_kernel(float* y, float* mean, float* rstd, const float* x, const float* w,
                                          const float* b, long long C, long long S, long long G, long long M,
                                          float eps) {
  __shared__ float stats[2];
  const long long r = blockIdx.x;
  const float* xr = x + r * M;
  float* yr = y + r * M;
  const float hi = xr[0];
  float s = 0.f;
  for (long long i = threadIdx.x; i < M; i += blockDim.x) s += xr[i] - hi;
  s = cuda::block_sum(s);
  if (threadIdx.x == 0) stats[0] = s / (float)M;
  __syncthreads();
  float lo = stats[0];
  float sd = 0.f, sd2 = 0.f;
  for (long long i = threadIdx.x; i < M; i += blockDim.x) {
    const float d = (xr[i] - hi) - lo;
    sd += d;
    sd2 += d * d;
  }
  sd = cuda::block_sum(sd);
  sd2 = cuda::block_sum(sd2);  // its barriers also order every read of stats[0] before the rewrite
  if (threadIdx.x == 0) {
    const float rs = group_norm_finish(&lo, sd, sd2, M, eps);
    mean[2 * r] = hi;
    mean[2 * r + 1] = lo;
    rstd[r] = rs;
    stats[0] = lo;
    stats[1] = rs;
  }
  __syncthreads();
  lo = stats[0];
  const float rs = stats[1];
  const long long c0 = (r % G) * (C / G);
  for (long long i = threadIdx.x; i < M; i += blockDim.x) {
    const long long c = c0 + i / S;
    const float a = rs * (w ? w[c] : 1.f);
    yr[i] = ((xr[i] - hi) - lo) * a + (b ? b[c] : 0.f);
  }
}

// Block r = n * G + g. Each warp takes whole channels: A = sum dy, B = sum dy d over S elements,
// written to wA / wB (N, C) as this sample's db and dw (= rstd B) shares. Then the block sums
// sg = sum_c w A and sgx = sum_c w rstd B and applies dx += k_c dy + kx d + k0.
__global__ void group_norm_backward_kernel(float* dx, float* wB, float* wA, const float* dy, const float* x,
                                           const float* mean, const float* rstd, const float* w, long long C,
                                           long long S, long long G, long long M) {
  __shared__ float sums[2];
  const long long r = blockIdx.x;
  const long long n = r / G, Cg = C / G, c0 = (r % G) * Cg;
  const float hi = mean[2 * r], lo = mean[2 * r + 1], rs = rstd[r];
  const float* xr = x + r * M;
  const float* dyr = dy + r * M;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (long long c = warp; c < Cg; c += warps) {  // uniform per warp: every lane shuffles
    const float* xc = xr + c * S;
    const float* dyc = dyr + c * S;
    float A = 0.f, B = 0.f;
    for (long long s = lane; s < S; s += 32) {
      A += dyc[s];
      B += dyc[s] * ((xc[s] - hi) - lo);
    }
    A = warp_sum(A);
    B = warp_sum(B);
    if (lane == 0) {
      wB[n * C + c0 + c] = rs * B;
      wA[n * C + c0 + c] = A;
    }
  }
  if (!dx) return;  // the same for every thread of the block
  __syncthreads();  // the block's writes to wA / wB are visible to all its threads after this
  float sg = 0.f, sgx = 0.f;
  for (long long c = threadIdx.x; c < Cg; c += blockDim.x) {
    const float wc = w ? w[c0 + c] : 1.f;
    sg += wc * wA[n * C + c0 + c];
    sgx += wc * wB[n * C + c0 + c];
  }
  sg = cuda::block_sum(sg);
  sgx = cuda::block_sum(sgx);
  if (threadIdx.x == 0) {
    sums[0] = sg;
    sums[1] = sgx;
  }
  __syncthreads();
  const GroupNormDx k = group_norm_dx_coeffs(rs, sums[0], sums[1], M);
  float* dxr = dx + r * M;
  for (long long i = threadIdx.x; i < M; i += blockDim.x) {
    const float kc = rs * (w ? w[c0 + i / S] : 1.f);
    dxr[i] += kc * dyr[i] + k.kx * ((xr[i] - hi) - lo) + k.k0;
  }
}

// dw[c] += sum_n wB[n, c], db[c] += sum_n wA[n, c]: one thread per channel, n in order.
__global__ void group_norm_param_grad_kernel(float* dw, float* db, const float* wB, const float* wA, long long N,
                                             long long C) {
  for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < C; c += (long long)gridDim.x * blockDim.x) {
    float sw = 0.f, sb = 0.f;
    for (long long n = 0; n < N; ++n) {
      sw += wB[n * C + c];
      sb += wA[n * C + c];
    }
    if (dw) dw[c] += sw;
    if (db) db[c] += sb;
  }
}

void check_grid(int64_t N, int64_t G) {
  GT_CHECK(N * G <= (int64_t)INT_MAX, "group_norm: " << N << " x " << G << " groups exceed one CUDA grid");
}

}  // namespace

void group_norm_forward_cuda(float* y, float* mean, float* rstd, const float* x, const float* weight,
                             const float* bias, int64_t N, int64_t C, int64_t S, int64_t G, float eps) {
  if (N * G == 0) return;
  check_grid(N, G);
  const int64_t M = (C / G) * S;
  group_norm_forward_kernel<<<(unsigned)(N * G), kThreads, 0, cuda::stream()>>>(y, mean, rstd, x, weight, bias, C, S,
                                                                                G, M, eps);
  CUDA_CHECK(cudaGetLastError());
}

void group_norm_backward_cuda(float* dx, float* dweight, float* dbias, float* work, const float* dy, const float* x,
                              const float* mean, const float* rstd, const float* weight, int64_t N, int64_t C,
                              int64_t S, int64_t G) {
  if (N * G == 0) return;
  check_grid(N, G);
  const int64_t M = (C / G) * S;
  float* wB = work;
  float* wA = work + N * C;
  cudaStream_t s = cuda::stream();
  group_norm_backward_kernel<<<(unsigned)(N * G), kThreads, 0, s>>>(dx, wB, wA, dy, x, mean, rstd, weight, C, S, G,
                                                                    M);
  CUDA_CHECK(cudaGetLastError());
  if (dweight || dbias) {
    group_norm_param_grad_kernel<<<cuda::grid_for(C), kThreads, 0, s>>>(dweight, dbias, wB, wA, N, C);
    CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace gt
