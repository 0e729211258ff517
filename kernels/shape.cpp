// shape.cpp: CPU permute, block copy and row gather / scatter-add (kernels/shape.h has the index
// maps). All are parallel_for loops over the contiguous side of the copy; the strided side is
// walked with an odometer (permute) or row arithmetic (the others), never with a per-element
// division.
#include "kernels/shape.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/parallel.h"

namespace gt {

namespace {

// Calls fn(j, off, len, stride) for the runs of the contiguous index range [j0, j1) of an array of
// shape `shape` (nd dims): elements j .. j+len-1 map to off, off + stride, ... in the strided array.
template <class F>
void for_strided_runs(int64_t j0, int64_t j1, int nd, const int64_t* shape, const int64_t* strides, F&& fn) {
  int64_t idx[kMaxPermuteDims];
  int64_t off = 0, rest = j0;
  for (int d = nd - 1; d >= 0; --d) {
    idx[d] = rest % shape[d];
    rest /= shape[d];
    off += idx[d] * strides[d];
  }
  const int last = nd - 1;
  for (int64_t j = j0; j < j1;) {
    const int64_t len = std::min(shape[last] - idx[last], j1 - j);
    fn(j, off, len, strides[last]);
    j += len;
    idx[last] += len;
    off += len * strides[last];
    for (int d = last; d > 0 && idx[d] == shape[d]; --d) {  // carry
      off -= idx[d] * strides[d];
      idx[d] = 0;
      ++idx[d - 1];
      off += strides[d - 1];
    }
  }
}

// Throws before any memory is touched when an index is outside [0, rows).
void check_indices(const char* what, const int32_t* idx, int64_t m, int64_t rows) {
  for (int64_t r = 0; r < m; ++r)
    GT_CHECK(idx[r] >= 0 && idx[r] < rows, what << ": index " << idx[r] << " (at position " << r
                                                 << ") is out of range for dim 0 of size " << rows);
}

}  // namespace

// ---------------------------------------------------------------- permute
void permute_forward_cpu(float* out, const float* x, int ndim, const int64_t* out_shape, const int64_t* x_strides) {
  int64_t shape[kMaxPermuteDims], strides[kMaxPermuteDims];
  const int nd = detail::coalesce_permute(ndim, out_shape, x_strides, shape, strides);
  int64_t n = 1;
  for (int d = 0; d < nd; ++d) n *= shape[d];
  parallel_for(n, kElementwiseGrain, [&](int64_t j0, int64_t j1) {
    for_strided_runs(j0, j1, nd, shape, strides, [&](int64_t j, int64_t off, int64_t len, int64_t st) {
      for (int64_t t = 0; t < len; ++t) out[j + t] = x[off + t * st];
    });
  });
}

// Permuting is a bijection, so the backward scatter through the same map is the inverse
// permutation: every dx element receives exactly one dout element (no races between threads).
void permute_backward_cpu(float* dx, const float* dout, int ndim, const int64_t* out_shape,
                          const int64_t* x_strides) {
  int64_t shape[kMaxPermuteDims], strides[kMaxPermuteDims];
  const int nd = detail::coalesce_permute(ndim, out_shape, x_strides, shape, strides);
  int64_t n = 1;
  for (int d = 0; d < nd; ++d) n *= shape[d];
  parallel_for(n, kElementwiseGrain, [&](int64_t j0, int64_t j1) {
    for_strided_runs(j0, j1, nd, shape, strides, [&](int64_t j, int64_t off, int64_t len, int64_t st) {
      for (int64_t t = 0; t < len; ++t) dx[off + t * st] += dout[j + t];
    });
  });
}

// ---------------------------------------------------------------- block copy
// For each o, both blocks are one contiguous run of count*inner floats.
void block_copy_cpu(float* dst, const float* src, int64_t outer, int64_t count, int64_t inner, int64_t dst_n,
                    int64_t dst_start, int64_t src_n, int64_t src_start, bool accumulate) {
  const int64_t run = count * inner;
  if (run == 0) return;
  parallel_for(outer * run, kElementwiseGrain, [&](int64_t j0, int64_t j1) {
    int64_t o = j0 / run, t = j0 % run;
    for (int64_t j = j0; j < j1;) {
      const int64_t len = std::min(run - t, j1 - j);
      float* d = dst + (o * dst_n + dst_start) * inner + t;
      const float* s = src + (o * src_n + src_start) * inner + t;
      if (accumulate) {
        for (int64_t e = 0; e < len; ++e) d[e] += s[e];
      } else {
        std::copy(s, s + len, d);
      }
      j += len;
      t = 0;
      ++o;
    }
  });
}

// ---------------------------------------------------------------- gather / scatter-add rows
void index_select_forward_cpu(float* out, const float* x, const int32_t* idx, int64_t m, int64_t rows,
                              int64_t row) {
  check_indices("index_select", idx, m, rows);
  parallel_for(m, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, row)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::copy(x + idx[r] * row, x + (idx[r] + 1) * row, out + r * row);
  });
}

// d out[r, c] / d x[t, c] = [idx[r] == t]: each destination row t sums the dout rows that picked it.
// Threads own disjoint ranges of destination rows and each scans all of idx, so repeated indices
// never race and always add in increasing r: deterministic for any thread count.
void index_select_backward_cpu(float* dx, const float* dout, const int32_t* idx, int64_t m, int64_t rows,
                               int64_t row) {
  check_indices("index_select backward", idx, m, rows);
  const int64_t grain = m * row >= kElementwiseGrain ? 1 : rows + 1;  // small: one thread
  parallel_for(rows, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t r = 0; r < m; ++r) {
      const int64_t t = idx[r];
      if (t < t0 || t >= t1) continue;
      float* d = dx + t * row;
      const float* g = dout + r * row;
      for (int64_t c = 0; c < row; ++c) d[c] += g[c];
    }
  });
}

}  // namespace gt
