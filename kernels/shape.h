// shape.h: data movement for the shape ops — permute (and transpose), block copies (concat,
// slice), and row gather / scatter-add (index_select, embeddings). No arithmetic except the
// accumulating backward copies; every backward is the adjoint of its forward copy:
//
//   permute:      out[i_0..i_{r-1}] = x[sum_d i_d * x_strides[d]]
//                 dx[sum_d i_d * x_strides[d]] += dout[i_0..i_{r-1}]     (the inverse permutation)
//   block copy:   dst[o, dst_start + k, i] = src[o, src_start + k, i],  k < count   (or +=)
//                 concat forward/backward and slice forward/backward are all this one copy:
//                   concat fwd:  block_copy(out, x,    outer, n_x, inner, n_out, offset, n_x,   0)
//                   concat bwd:  block_copy(dx,  dout, outer, n_x, inner, n_x,   0,      n_out, offset, true)
//                   slice fwd:   block_copy(out, x,    outer, len, inner, len,   0,      n,     start)
//                   slice bwd:   block_copy(dx,  dout, outer, len, inner, n,     start,  len,   0,      true)
//   gather rows:  out[r, :] = x[idx[r], :]                          (index_select forward)
//                 dx[idx[r], :] += dout[r, :]                       (backward: repeated indices add up)
//
// Index checking: the CPU kernels throw gt::Error naming the index, its position and the number of
// rows before touching memory. The CUDA kernels cannot raise without a host-device sync, so they
// never read or write out of bounds instead: a forward row with an out-of-range index is filled
// with NaN (visible downstream) and the backward skips it. Callers that need a hard error on the
// GPU must check indices on the host.
//
// Determinism: everything is deterministic except index_select_backward_cuda, which scatter-adds
// with atomicAdd: repeated indices add in an unspecified order (float sums may differ in the last
// bits run to run). The CPU version partitions destination rows over threads instead.
//
//   int64_t out_shape[8], strides[8];
//   gt::permute_plan(x_shape, 3, dims, out_shape, strides);        // e.g. dims = {2, 0, 1}
//   gt::permute_forward_cpu(out, x, 3, out_shape, strides);
//   gt::index_select_forward_cuda(out, table, ids, B, V, D);         // embedding lookup
#pragma once

#include <cstdint>

namespace gt {

// Most dims a permute handles (the Shape limit).
constexpr int kMaxPermuteDims = 8;

// For x of shape x_shape (ndim dims, contiguous) permuted by dims (out dim d = x dim dims[d]):
// out_shape[d] = x_shape[dims[d]] and x_strides[d] = the element stride of x dim dims[d].
// dims must be a permutation of 0..ndim-1 (validated by the op, not here).
inline void permute_plan(const int64_t* x_shape, int ndim, const int* dims, int64_t* out_shape,
                         int64_t* x_strides) {
  int64_t stride[kMaxPermuteDims];
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    stride[d] = s;
    s *= x_shape[d];
  }
  for (int d = 0; d < ndim; ++d) {
    out_shape[d] = x_shape[dims[d]];
    x_strides[d] = stride[dims[d]];
  }
}

namespace detail {
// Simplifies a permute's index map without changing it: drops size-1 dims and merges out dims d-1
// and d when x stores them contiguously too (stride[d-1] == stride[d] * shape[d]). A transpose of
// (B, H, W) -> (B, W, H) stays 3-d; permuting (A, B, C, D) by (2, 3, 0, 1) becomes a 2-d transpose.
// Returns the new dim count (>= 1).
inline int coalesce_permute(int ndim, const int64_t* shape, const int64_t* strides, int64_t* cshape,
                            int64_t* cstrides) {
  int n = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    if (n > 0 && cstrides[n - 1] == strides[d] * shape[d]) {
      cshape[n - 1] *= shape[d];
      cstrides[n - 1] = strides[d];
    } else {
      cshape[n] = shape[d];
      cstrides[n] = strides[d];
      ++n;
    }
  }
  if (n == 0) {
    cshape[0] = 1;
    cstrides[0] = 1;
    n = 1;
  }
  return n;
}
}  // namespace detail

// ---- permute (transpose is the 2-dim-swap case) ----
// out (out_shape[0..ndim)) contiguous; x read at the strides x_strides (ndim <= kMaxPermuteDims).
void permute_forward_cpu(float* out, const float* x, int ndim, const int64_t* out_shape, const int64_t* x_strides);
void permute_forward_cuda(float* out, const float* x, int ndim, const int64_t* out_shape,
                          const int64_t* x_strides);
// dx (x's shape) += dout (out_shape) sent back through the same index map.
void permute_backward_cpu(float* dx, const float* dout, int ndim, const int64_t* out_shape,
                          const int64_t* x_strides);
void permute_backward_cuda(float* dx, const float* dout, int ndim, const int64_t* out_shape,
                           const int64_t* x_strides);

// ---- strided block copy (concat, slice) ----
// dst (outer, dst_n, inner), src (outer, src_n, inner); for k < count:
//   dst[o, dst_start + k, i] = src[o, src_start + k, i]     (accumulate: +=)
void block_copy_cpu(float* dst, const float* src, int64_t outer, int64_t count, int64_t inner, int64_t dst_n,
                    int64_t dst_start, int64_t src_n, int64_t src_start, bool accumulate = false);
void block_copy_cuda(float* dst, const float* src, int64_t outer, int64_t count, int64_t inner, int64_t dst_n,
                     int64_t dst_start, int64_t src_n, int64_t src_start, bool accumulate = false);

// ---- gather rows / scatter-add rows (index_select along dim 0) ----
// out (m, row) = x (rows, row) at idx (m): out[r, :] = x[idx[r], :]
void index_select_forward_cpu(float* out, const float* x, const int32_t* idx, int64_t m, int64_t rows,
                              int64_t row);
void index_select_forward_cuda(float* out, const float* x, const int32_t* idx, int64_t m, int64_t rows,
                               int64_t row);
// dx (rows, row): dx[idx[r], :] += dout[r, :]; dout (m, row), idx (m)
void index_select_backward_cpu(float* dx, const float* dout, const int32_t* idx, int64_t m, int64_t rows,
                               int64_t row);
void index_select_backward_cuda(float* dx, const float* dout, const int32_t* idx, int64_t m, int64_t rows,
                                int64_t row);

}  // namespace gt
