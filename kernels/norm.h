// norm.h: Group Normalization (Wu & He 2018), PyTorch's nn.GroupNorm, fused forward and backward.
//
// x (N, C, S) with S the product of the spatial dims; the C channels are split into G groups of
// Cg = C / G consecutive channels. Each (n, g) is normalised over its M = Cg * S elements, which are
// contiguous in memory (x + (n*C + g*Cg)*S), with the biased variance:
//
//   mu = 1/M sum x,   var = 1/M sum (x - mu)^2,   rstd = 1 / sqrt(var + eps)
//   xhat = (x - mu) rstd,   y[n,c,s] = xhat w[c] + b[c]
//
// Backward (the closed form, one fused pass per group; gy = dy w[c], sums over the group's M elements):
//   dx = rstd (gy - 1/M sum gy - xhat 1/M sum gy xhat)
//   dw[c] += sum_{n,s} dy xhat,   db[c] += sum_{n,s} dy
// Per channel only two sums are needed, A = sum_s dy and B = sum_s dy (x - mu); then
//   sum gy = sum_c w[c] A_c,  sum gy xhat = rstd sum_c w[c] B_c,  dw[c] += rstd B_c,  db[c] += A_c.
//
// Numerics. x - mu loses every digit that x and mu share, so with x = 1000 + noise(0.01) a float mu
// (ulp 6e-5 at 1000) alone would put an error of ~3e-3 into xhat. The mean is therefore kept as an
// unevaluated sum mu = hi + lo with hi = the group's first element and lo = mean(x - hi): x - hi is
// exact when x and hi are within a factor 2 of each other (Sterbenz), so (x - hi) - lo is accurate
// to float rounding of a small number. The variance is the corrected two-pass form (Chan, Golub &
// LeVeque 1983): with d = (x - hi) - lo, var = (sum d^2 - (sum d)^2 / M) / M and lo += sum d / M,
// which cancels the first-order error of the first pass's mean. Never E[x^2] - E[x]^2, which at
// offset 1000 cancels to noise. The saved statistics are mean (N, G, 2) = (hi, lo) and rstd (N, G).
//
// Determinism: the CPU splits work over (n, g) with parallel_for, and reduces the per-(n, c) weight
// and bias partials over n afterwards in a fixed order; CUDA runs one block per (n, g) with block
// reductions (kernels/block_reduce.cuh), writes the same per-(n, c) partials, and a second kernel
// sums them over n, one thread per channel — no float atomics, so results repeat run to run.
//
//   gt::group_norm_forward_cpu(y, mean, rstd, x, w, b, N, C, H * W, G, 1e-5f);
//   gt::group_norm_backward_cuda(dx, dw, db, work, dy, x, mean, rstd, w, N, C, H * W, G);
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace gt {

// Finishes the statistics of one group from the second pass's sums sd = sum d, sd2 = sum d^2 with
// d = (x - hi) - lo over M elements: updates lo and returns rstd.
GT_HD inline float group_norm_finish(float* lo, float sd, float sd2, int64_t M, float eps) {
  const float inv_m = 1.f / (float)M;
  *lo += sd * inv_m;
  float var = (sd2 - sd * sd * inv_m) * inv_m;
  var = var > 0.f ? var : 0.f;  // rounding can leave -0 or a tiny negative for constant groups
  return 1.f / sqrtf(var + eps);
}

// dx of one group, rearranged so that the inner loop is two multiply-adds per element: with
// d = (x - hi) - lo (so xhat = d rstd) and the group sums sg = sum gy, sgx = sum gy xhat,
//   dx = rstd (w[c] dy - sg / M - d rstd sgx / M) = k_c dy + kx d + k0,
//   k_c = rstd w[c],  kx = -rstd^2 sgx / M,  k0 = -rstd sg / M.
struct GroupNormDx {
  float kx, k0;
};
GT_HD inline GroupNormDx group_norm_dx_coeffs(float rstd, float sg, float sgx, int64_t M) {
  const float inv_m = 1.f / (float)M;
  return {-rstd * rstd * sgx * inv_m, -rstd * sg * inv_m};
}

// y, x (N, C, S); weight, bias (C) or null (1 and 0: no affine transform); mean (N, G, 2) and
// rstd (N, G) receive the statistics backward needs. M = (C / G) * S must be > 0.
void group_norm_forward_cpu(float* y, float* mean, float* rstd, const float* x, const float* weight,
                            const float* bias, int64_t N, int64_t C, int64_t S, int64_t G, float eps);
void group_norm_forward_cuda(float* y, float* mean, float* rstd, const float* x, const float* weight,
                             const float* bias, int64_t N, int64_t C, int64_t S, int64_t G, float eps);

// dx (N, C, S), dweight, dbias (C) are accumulated (+=); any may be null (no gradient wanted).
// work (2, N, C) is scratch (the per-(n, c) sums rstd B and A), written before it is read.
// dy, x (N, C, S); mean (N, G, 2), rstd (N, G) from the forward; weight (C) or null.
// dx_overwrite: dx is written, not added to (its old contents are never read).
void group_norm_backward_cpu(float* dx, float* dweight, float* dbias, float* work, const float* dy, const float* x,
                             const float* mean, const float* rstd, const float* weight, int64_t N, int64_t C,
                             int64_t S, int64_t G, bool dx_overwrite = false);
// z = silu(group_norm(x)) fused (CPU): the forward writes z only; the backward takes dz and recomputes
// the normalised y from x and the statistics (so y is never stored), dy = dz silu'(y) per group in
// cache. Same arguments as above, plus the bias for the recomputation (null: no bias).
void group_norm_silu_forward_cpu(float* z, float* mean, float* rstd, const float* x, const float* weight,
                                 const float* bias, int64_t N, int64_t C, int64_t S, int64_t G, float eps);
void group_norm_silu_backward_cpu(float* dx, float* dweight, float* dbias, float* work, const float* dz,
                                  const float* x, const float* mean, const float* rstd, const float* weight,
                                  const float* bias, int64_t N, int64_t C, int64_t S, int64_t G,
                                  bool dx_overwrite = false);
void group_norm_backward_cuda(float* dx, float* dweight, float* dbias, float* work, const float* dy, const float* x,
                              const float* mean, const float* rstd, const float* weight, int64_t N, int64_t C,
                              int64_t S, int64_t G);

}  // namespace gt
