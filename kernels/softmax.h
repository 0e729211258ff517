// softmax.h: softmax along one dim, fused forward and backward (attention's row normalisation).
//
// A contiguous x viewed as (outer, n, inner) around the softmax dim (as in kernels/reduce.h):
// element (o, k, i) sits at x[(o*n + k)*inner + i].
//
//   y[o,k,i] = exp(x[o,k,i] - m[o,i]) / sum_k' exp(x[o,k',i] - m[o,i]),   m[o,i] = max_k x[o,k,i]
//   (subtracting the maximum keeps every exp <= 1: exp(100) would overflow float32; the largest
//   term is exactly 1, so the sum is >= 1 and never underflows to 0)
//
//   dx[o,k,i] += y[o,k,i] (dy[o,k,i] - sum_k' dy[o,k',i] y[o,k',i])
//   (the Jacobian diag(y) - y y^T applied to dy; backward reads only y and dy, not x)
//
// A row of NaN stays NaN; a row of -inf gives NaN (0/0), as in PyTorch.
//
// Layouts: the last dim (inner == 1, attention's case) is the fast path — on the CPU one row per
// step with 8-lane vectorised sums, on CUDA a warp per row (a 256-thread block for rows of 1024 or
// more). Along another dim the CPU streams tiles of contiguous i and CUDA runs one thread per
// (o, i), neighbouring threads reading neighbouring i (coalesced). No atomics: deterministic.
//
//   gt::softmax_forward_cpu(y, x, B * heads * T, T, 1);   // over the last dim of (B*heads, T, T)
//   gt::softmax_backward_cuda(dx, dy, y, outer, n, inner);
#pragma once

#include <cstdint>

namespace gt {

// y, x (outer, n, inner); n >= 1
void softmax_forward_cpu(float* y, const float* x, int64_t outer, int64_t n, int64_t inner);
void softmax_forward_cuda(float* y, const float* x, int64_t outer, int64_t n, int64_t inner);
// dx (outer, n, inner) += y * (dy - sum_k dy y); dy, y (outer, n, inner)
void softmax_backward_cpu(float* dx, const float* dy, const float* y, int64_t outer, int64_t n, int64_t inner);
void softmax_backward_cuda(float* dx, const float* dy, const float* y, int64_t outer, int64_t n, int64_t inner);

}  // namespace gt
