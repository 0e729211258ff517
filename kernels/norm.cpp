// norm.cpp: CPU GroupNorm (equations and the numerics in kernels/norm.h). Groups (n, g) run in
// parallel; a group's M elements are contiguous, so every inner loop is a unit-stride sweep on
// simd.h vectors (sums in 2 x kSimdLanes lanes). A group of the U-Net (4 channels x 28 x 28 floats,
// 12.5 KiB) stays in L1/L2 across the three sweeps of the forward.
#include "kernels/norm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/aligned.h"
#include "kernels/elementwise.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

namespace gt {

namespace {

// Groups per parallel chunk: enough elements to be worth a thread.
int64_t group_grain(int64_t M) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(M, 1)); }

// The sweeps on simd.h's vectors, sums in 2 x kSimdLanes lanes added across in one fixed order at
// the end. (On 16-float GCC vector extensions, AVX2 builds spilled them to the stack in 128-bit
// halves and the statistics sweep took a third of the fused GroupNorm-SiLU's time; written as
// `float acc[8]` indexed by i % 8, GCC 12 vectorised it with a de-interleaving permute per load.)
float vcombine(vfloat a, vfloat b) {
  float t[kSimdLanes];
  vstore(t, vadd(a, b));
  for (int w = kSimdLanes / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) t[l] += t[l + w];
  return t[0];
}

float shifted_sum(const float* x, int64_t n, float shift) {
  vfloat a0 = vzero(), a1 = vzero();
  const vfloat sh = vset1(shift);
  int64_t i = 0;
  for (; i + 2 * kSimdLanes <= n; i += 2 * kSimdLanes) {
    a0 = vadd(a0, vsub(vload(x + i), sh));
    a1 = vadd(a1, vsub(vload(x + i + kSimdLanes), sh));
  }
  float tail = 0.f;
  for (; i < n; ++i) tail += x[i] - shift;
  return vcombine(a0, a1) + tail;
}

void centred_sums(const float* x, int64_t n, float hi, float lo, float* sd, float* sd2) {
  vfloat a0 = vzero(), a1 = vzero(), b0 = vzero(), b1 = vzero();
  const vfloat h = vset1(hi), o = vset1(lo);
  int64_t i = 0;
  for (; i + 2 * kSimdLanes <= n; i += 2 * kSimdLanes) {
    const vfloat du = vsub(vsub(vload(x + i), h), o), dv = vsub(vsub(vload(x + i + kSimdLanes), h), o);
    a0 = vadd(a0, du);
    a1 = vadd(a1, dv);
    b0 = vfmadd(du, du, b0);
    b1 = vfmadd(dv, dv, b1);
  }
  float ta = 0.f, tb = 0.f;
  for (; i < n; ++i) {
    const float d = (x[i] - hi) - lo;
    ta += d;
    tb += d * d;
  }
  *sd = vcombine(a0, a1) + ta;
  *sd2 = vcombine(b0, b1) + tb;
}

void channel_sums(const float* dy, const float* x, int64_t n, float hi, float lo, float* A, float* B) {
  vfloat a0 = vzero(), a1 = vzero(), b0 = vzero(), b1 = vzero();
  const vfloat h = vset1(hi), o = vset1(lo);
  int64_t i = 0;
  for (; i + 2 * kSimdLanes <= n; i += 2 * kSimdLanes) {
    const vfloat g0 = vload(dy + i), g1 = vload(dy + i + kSimdLanes);
    a0 = vadd(a0, g0);
    a1 = vadd(a1, g1);
    b0 = vfmadd(g0, vsub(vsub(vload(x + i), h), o), b0);
    b1 = vfmadd(g1, vsub(vsub(vload(x + i + kSimdLanes), h), o), b1);
  }
  float ta = 0.f, tb = 0.f;
  for (; i < n; ++i) {
    ta += dy[i];
    tb += dy[i] * ((x[i] - hi) - lo);
  }
  *A = vcombine(a0, a1) + ta;
  *B = vcombine(b0, b1) + tb;
}


// y[s] = silu(t), t = ((x[s] - hi) - lo) a + b, for s < S: vectors through simd.h's vsigmoid
// (division-free), the last S mod kSimdLanes elements through SiluOp.
void silu_affine(const float* x, int64_t S, float hi, float lo, float a, float b, float* y) {
  int64_t s = 0;
#if GENTAPE_SIMD
  const vfloat vh = vset1(hi), vl = vset1(lo), va = vset1(a), vb = vset1(b);
  for (; s + kSimdLanes <= S; s += kSimdLanes) {
    const vfloat t = vfmadd(vsub(vsub(vload(x + s), vh), vl), va, vb);
    vstore(y + s, vmul(t, vsigmoid(t)));
  }
#endif
  for (; s < S; ++s) y[s] = SiluOp::forward(((x[s] - hi) - lo) * a + b, 0.f);
}

// g[s] = dz[s] silu'(t) = dz[s] sigmoid(t) (1 + t (1 - sigmoid(t))), t as above.
void silu_affine_grad(const float* x, const float* dz, int64_t S, float hi, float lo, float a, float b, float* g) {
  int64_t s = 0;
#if GENTAPE_SIMD
  const vfloat vh = vset1(hi), vl = vset1(lo), va = vset1(a), vb = vset1(b), one = vset1(1.0f);
  for (; s + kSimdLanes <= S; s += kSimdLanes) {
    const vfloat t = vfmadd(vsub(vsub(vload(x + s), vh), vl), va, vb);
    const vfloat sg = vsigmoid(t);
    vstore(g + s, vmul(vload(dz + s), vmul(sg, vfmadd(t, vsub(one, sg), one))));
  }
#endif
  for (; s < S; ++s) g[s] = dz[s] * SiluOp::grad(((x[s] - hi) - lo) * a + b, 0.f, 0.f);
}

}  // namespace

namespace {
template <bool kSilu>
void forward_impl(float* y, float* mean, float* rstd, const float* x, const float* weight, const float* bias, int64_t N,
                  int64_t C, int64_t S, int64_t G, float eps) {
  const int64_t Cg = C / G, M = Cg * S;
  parallel_for(N * G, group_grain(M), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * M;
      float* yr = y + r * M;
      const float hi = xr[0];
      float lo = shifted_sum(xr, M, hi) / (float)M;
      float sd, sd2;
      centred_sums(xr, M, hi, lo, &sd, &sd2);
      const float rs = group_norm_finish(&lo, sd, sd2, M, eps);
      mean[2 * r] = hi;
      mean[2 * r + 1] = lo;
      rstd[r] = rs;
      const int64_t c0 = (r % G) * Cg;
      for (int64_t c = 0; c < Cg; ++c) {
        const float a = rs * (weight ? weight[c0 + c] : 1.f);
        const float b = bias ? bias[c0 + c] : 0.f;
        const float* xc = xr + c * S;
        float* yc = yr + c * S;
        if (kSilu) {
          silu_affine(xc, S, hi, lo, a, b, yc);
        } else {
          for (int64_t s = 0; s < S; ++s) yc[s] = ((xc[s] - hi) - lo) * a + b;
        }
      }
    }
  });
}
}  // namespace

void group_norm_forward_cpu(float* y, float* mean, float* rstd, const float* x, const float* weight,
                            const float* bias, int64_t N, int64_t C, int64_t S, int64_t G, float eps) {
  forward_impl<false>(y, mean, rstd, x, weight, bias, N, C, S, G, eps);
}

void group_norm_silu_forward_cpu(float* z, float* mean, float* rstd, const float* x, const float* weight,
                                 const float* bias, int64_t N, int64_t C, int64_t S, int64_t G, float eps) {
  forward_impl<true>(z, mean, rstd, x, weight, bias, N, C, S, G, eps);
}

// dx = k_c dy + kx d + k0 per group (norm.h); dw[c] += sum_n rstd B[n,c], db[c] += sum_n A[n,c].
namespace {
// kSilu: dy is the gradient of z = silu(y); the group's dy = dz silu'(y) is made first, into scratch,
// from y recomputed out of x and the saved statistics (bias needed for that).
template <bool kSilu>
void backward_impl(float* dx, float* dweight, float* dbias, float* work, const float* dy, const float* x,
                   const float* mean, const float* rstd, const float* weight, const float* bias, int64_t N, int64_t C,
                   int64_t S, int64_t G, bool dx_overwrite) {
  const int64_t Cg = C / G, M = Cg * S;
  float* wB = work;          // (N, C): rstd * B, this sample's share of dw
  float* wA = work + N * C;  // (N, C): A, this sample's share of db
  parallel_for(N * G, group_grain(M), [&](int64_t r0, int64_t r1) {
    // This thread's buffer for one group's dy, grown once and then reused (no allocation per call).
    thread_local AlignedVector scratch;
    if (kSilu && scratch.size() < (size_t)M) scratch.resize((size_t)M);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / G, c0 = (r % G) * Cg;
      const float hi = mean[2 * r], lo = mean[2 * r + 1], rs = rstd[r];
      const float* xr = x + r * M;
      const float* dyr = dy + r * M;
      if (kSilu) {
        for (int64_t c = 0; c < Cg; ++c) {
          const float a = rs * (weight ? weight[c0 + c] : 1.f), b = bias ? bias[c0 + c] : 0.f;
          const float* xc = xr + c * S;
          const float* dzc = dyr + c * S;
          float* gc = scratch.data() + c * S;
          silu_affine_grad(xc, dzc, S, hi, lo, a, b, gc);
        }
        dyr = scratch.data();
      }
      float sg = 0.f, sgx = 0.f;
      for (int64_t c = 0; c < Cg; ++c) {
        float A, B;
        channel_sums(dyr + c * S, xr + c * S, S, hi, lo, &A, &B);
        const float w = weight ? weight[c0 + c] : 1.f;
        wB[n * C + c0 + c] = rs * B;
        wA[n * C + c0 + c] = A;
        sg += w * A;
        sgx += w * rs * B;
      }
      if (!dx) continue;
      const GroupNormDx k = group_norm_dx_coeffs(rs, sg, sgx, M);
      float* dxr = dx + r * M;
      for (int64_t c = 0; c < Cg; ++c) {
        const float kc = rs * (weight ? weight[c0 + c] : 1.f);
        const float* xc = xr + c * S;
        const float* dyc = dyr + c * S;
        float* dxc = dxr + c * S;
        if (dx_overwrite) {
          for (int64_t s = 0; s < S; ++s) dxc[s] = kc * dyc[s] + k.kx * ((xc[s] - hi) - lo) + k.k0;
        } else {
          for (int64_t s = 0; s < S; ++s) dxc[s] += kc * dyc[s] + k.kx * ((xc[s] - hi) - lo) + k.k0;
        }
      }
    }
  });
  // The sum over n, in sample order (as the CUDA kernel does it): N * C is small (64 x 64 in the
  // U-Net), and a fixed order keeps the result independent of the thread count.
  for (int64_t c = 0; c < C; ++c) {
    float sw = 0.f, sb = 0.f;
    for (int64_t n = 0; n < N; ++n) {
      sw += wB[n * C + c];
      sb += wA[n * C + c];
    }
    if (dweight) dweight[c] += sw;
    if (dbias) dbias[c] += sb;
  }
}
}  // namespace

void group_norm_backward_cpu(float* dx, float* dweight, float* dbias, float* work, const float* dy, const float* x,
                             const float* mean, const float* rstd, const float* weight, int64_t N, int64_t C,
                             int64_t S, int64_t G, bool dx_overwrite) {
  backward_impl<false>(dx, dweight, dbias, work, dy, x, mean, rstd, weight, nullptr, N, C, S, G, dx_overwrite);
}

void group_norm_silu_backward_cpu(float* dx, float* dweight, float* dbias, float* work, const float* dz,
                                  const float* x, const float* mean, const float* rstd, const float* weight,
                                  const float* bias, int64_t N, int64_t C, int64_t S, int64_t G, bool dx_overwrite) {
  backward_impl<true>(dx, dweight, dbias, work, dz, x, mean, rstd, weight, bias, N, C, S, G, dx_overwrite);
}

}  // namespace gt
