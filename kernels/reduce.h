// reduce.h: reductions — sum, mean, max and logsumexp, over all elements or along one dim.
//
// A reduction along dim d of a contiguous tensor is a (outer, n, inner) problem: outer is the
// product of the dims before d, n = shape[d], inner the product of the dims after d. Element
// (o, k, i) sits at x[(o*n + k)*inner + i] and output (o, i) at out[o*inner + i].
//
//   sum:        y[o,i] = scale * sum_k x[o,k,i]         (scale 1: sum; 1/n: mean)
//               dx[o,k,i] += scale * dy[o,i]
//   max:        y[o,i] = x[o,k*,i], k* = the FIRST k with the largest value (NaN counts as largest)
//               dx[o,k*,i] += dy[o,i]                    (all other dx untouched: a subgradient)
//   logsumexp:  y[o,i] = m + log sum_k exp(x[o,k,i] - m),  m = max_k x[o,k,i]
//               (subtracting m keeps exp <= 1: exp(100) would overflow float32)
//               dx[o,k,i] += exp(x[o,k,i] - y[o,i]) * dy[o,i]     (= softmax_k * dy)
//
// Accumulation: the full sum (sum_all) accumulates in double on the CPU (fixed 8192-element blocks
// with 8 lanes each, combined in a fixed order, so the result does not depend on the thread count)
// and in float on CUDA with a tree (block-shuffle) order, whose error grows like log n. Sums along
// a dim accumulate in float: 8 interleaved lanes when the reduced elements are contiguous
// (inner == 1), sequentially over k otherwise. CUDA sums use no atomics, so every result is
// deterministic run to run.
//
// CUDA launchers queue on gt::cuda::stream(), never synchronise and never cudaMalloc (the full sum's
// per-block partials come from Tensor::empty, i.e. the caching allocator).
//
//   // mean over the last dim of x (B, D): outer = B, n = D, inner = 1
//   gt::sum_dim_forward_cpu(out, x, B, D, 1, 1.0f / D);
//   gt::logsumexp_backward_cuda(dx, dout, x, out, B, D, 1);
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace gt {

// ---- shared scalar math (CPU reference and CUDA kernels) ----

// True when element (v, k) should replace the running maximum (best, best_k): a larger value, or an
// equal value at a smaller index — so the first maximum wins whatever order threads visit elements
// in. NaN beats every number (max propagates NaN, as torch.max does); among NaNs the first wins.
GT_HD inline bool max_wins(float v, int64_t k, float best, int64_t best_k) {
  const bool v_nan = v != v, best_nan = best != best;
  if (v_nan || best_nan) return v_nan && (!best_nan || k < best_k);
  return v > best || (v == best && k < best_k);
}

// The end of logsumexp: m + log(s), where s = sum_k exp(x_k - m). When m is infinite the sum is
// NaN or meaningless (inf - inf), and the answer is m itself: all -inf gives -inf, any +inf gives
// +inf.
GT_HD inline float lse_finish(float m, float s) {
  if (m == INFINITY || m == -INFINITY) return m;
  return m + logf(s);
}

// ---- sum of all elements ----
// out (1) = scale * sum_i x[i]; x (N)
void sum_all_forward_cpu(float* out, const float* x, int64_t n, float scale);
void sum_all_forward_cuda(float* out, const float* x, int64_t n, float scale);
// dx (N) += scale * dout[0]; dout (1), read on the device (no host copy)
void sum_all_backward_cpu(float* dx, const float* dout, int64_t n, float scale);
void sum_all_backward_cuda(float* dx, const float* dout, int64_t n, float scale);

// ---- sum / mean along a dim ----
// out (outer, inner) = scale * sum_k x (outer, n, inner)
void sum_dim_forward_cpu(float* out, const float* x, int64_t outer, int64_t n, int64_t inner, float scale);
void sum_dim_forward_cuda(float* out, const float* x, int64_t outer, int64_t n, int64_t inner, float scale);
// dx (outer, n, inner) += scale * dout (outer, inner), broadcast along n
void sum_dim_backward_cpu(float* dx, const float* dout, int64_t outer, int64_t n, int64_t inner, float scale);
void sum_dim_backward_cuda(float* dx, const float* dout, int64_t outer, int64_t n, int64_t inner,
                           float scale);

// ---- max along a dim (n >= 1) ----
// out (outer, inner) = max_k x (outer, n, inner); argmax (outer, inner) = the first k attaining it
// (argmax may be null when no backward will need it).
void max_dim_forward_cpu(float* out, int32_t* argmax, const float* x, int64_t outer, int64_t n, int64_t inner);
void max_dim_forward_cuda(float* out, int32_t* argmax, const float* x, int64_t outer, int64_t n,
                          int64_t inner);
// dx (outer, n, inner): dx[o, argmax[o,i], i] += dout[o,i]; dout, argmax (outer, inner)
void max_dim_backward_cpu(float* dx, const float* dout, const int32_t* argmax, int64_t outer, int64_t n,
                          int64_t inner);
void max_dim_backward_cuda(float* dx, const float* dout, const int32_t* argmax, int64_t outer, int64_t n,
                           int64_t inner);

// ---- logsumexp along a dim ----
// out (outer, inner) = logsumexp_k x (outer, n, inner)
void logsumexp_forward_cpu(float* out, const float* x, int64_t outer, int64_t n, int64_t inner);
void logsumexp_forward_cuda(float* out, const float* x, int64_t outer, int64_t n, int64_t inner);
// dx (outer, n, inner) += exp(x - out) * dout; x (outer, n, inner), out and dout (outer, inner)
void logsumexp_backward_cpu(float* dx, const float* dout, const float* x, const float* out, int64_t outer,
                            int64_t n, int64_t inner);
void logsumexp_backward_cuda(float* dx, const float* dout, const float* x, const float* out, int64_t outer,
                             int64_t n, int64_t inner);

}  // namespace gt
