// shape.cu: CUDA permute, block copy and row gather / scatter-add (kernels/shape.h has the index
// maps). One thread per element of the contiguous side, grid-stride loops, launched on
// gt::cuda::stream(). Index checks cannot raise here without a host-device sync: out-of-range
// indices give NaN rows (forward) and are skipped (backward); see shape.h.
#include "kernels/shape.h"

#include <cmath>

#include "core/cuda_context.h"
#include "core/error.h"

namespace gt {

namespace {

constexpr int kThreads = cuda::kBlock;

// The permute's (coalesced) index map, passed by value in the kernel's parameter space.
struct PermuteMap {
  int nd;
  long long shape[kMaxPermuteDims];
  long long strides[kMaxPermuteDims];
};

PermuteMap make_map(int ndim, const int64_t* out_shape, const int64_t* x_strides, long long* n) {
  int64_t shape[kMaxPermuteDims], strides[kMaxPermuteDims];
  PermuteMap m{};
  m.nd = detail::coalesce_permute(ndim, out_shape, x_strides, shape, strides);
  *n = 1;
  for (int d = 0; d < m.nd; ++d) {
    m.shape[d] = shape[d];
    m.strides[d] = strides[d];
    *n *= shape[d];
  }
  return m;
}

__device__ __forceinline__ long long strided_offset(const PermuteMap& m, long long j) {
  long long off = 0;
  for (int d = m.nd - 1; d >= 0; --d) {
    off += (j % m.shape[d]) * m.strides[d];
    j /= m.shape[d];
  }
  return off;
}

__global__ void permute_forward_kernel(float* out, const float* x, PermuteMap m, long long n) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < n; j += (long long)gridDim.x * blockDim.x)
    out[j] = x[strided_offset(m, j)];
}

// A bijection: each dx element is written by exactly one thread, so += needs no atomics.
__global__ void permute_backward_kernel(float* dx, const float* dout, PermuteMap m, long long n) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < n; j += (long long)gridDim.x * blockDim.x)
    dx[strided_offset(m, j)] += dout[j];
}

// Element (o, t) of the (outer, count*inner) block: dst[(o*dst_n + dst_start)*inner + t] (+)= src[...]
template <bool kAccumulate>
__global__ void block_copy_kernel(float* dst, const float* src, long long outer, long long run, long long inner,
                                  long long dst_n, long long dst_start, long long src_n, long long src_start) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < outer * run;
       j += (long long)gridDim.x * blockDim.x) {
    const long long o = j / run, t = j % run;
    const float v = src[(o * src_n + src_start) * inner + t];
    float& d = dst[(o * dst_n + dst_start) * inner + t];
    if (kAccumulate)
      d += v;
    else
      d = v;
  }
}

__global__ void gather_rows_kernel(float* out, const float* x, const int32_t* idx, long long m, long long rows,
                                   long long row) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < m * row; j += (long long)gridDim.x * blockDim.x) {
    const long long r = j / row, c = j % row;
    const long long t = idx[r];
    out[j] = (t >= 0 && t < rows) ? x[t * row + c] : NAN;  // NaN: out-of-range index (not checked on the GPU)
  }
}

// Repeated indices make several threads add into one dx element: atomicAdd (order unspecified).
__global__ void scatter_add_rows_kernel(float* dx, const float* dout, const int32_t* idx, long long m,
                                        long long rows, long long row) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < m * row; j += (long long)gridDim.x * blockDim.x) {
    const long long r = j / row, c = j % row;
    const long long t = idx[r];
    if (t >= 0 && t < rows) atomicAdd(dx + t * row + c, dout[j]);
  }
}

}  // namespace

void permute_forward_cuda(float* out, const float* x, int ndim, const int64_t* out_shape, const int64_t* x_strides) {
  long long n = 0;
  const PermuteMap m = make_map(ndim, out_shape, x_strides, &n);
  if (n == 0) return;
  permute_forward_kernel<<<cuda::grid_for(n), kThreads, 0, cuda::stream()>>>(out, x, m, n);
  CUDA_CHECK(cudaGetLastError());
}

void permute_backward_cuda(float* dx, const float* dout, int ndim, const int64_t* out_shape,
                           const int64_t* x_strides) {
  long long n = 0;
  const PermuteMap m = make_map(ndim, out_shape, x_strides, &n);
  if (n == 0) return;
  permute_backward_kernel<<<cuda::grid_for(n), kThreads, 0, cuda::stream()>>>(dx, dout, m, n);
  CUDA_CHECK(cudaGetLastError());
}

void block_copy_cuda(float* dst, const float* src, int64_t outer, int64_t count, int64_t inner, int64_t dst_n,
                     int64_t dst_start, int64_t src_n, int64_t src_start, bool accumulate) {
  const long long run = count * inner;
  if (outer * run == 0) return;
  const unsigned grid = cuda::grid_for(outer * run);
  if (accumulate)
    block_copy_kernel<true><<<grid, kThreads, 0, cuda::stream()>>>(dst, src, outer, run, inner, dst_n, dst_start,
                                                                   src_n, src_start);
  else
    block_copy_kernel<false><<<grid, kThreads, 0, cuda::stream()>>>(dst, src, outer, run, inner, dst_n, dst_start,
                                                                    src_n, src_start);
  CUDA_CHECK(cudaGetLastError());
}

void index_select_forward_cuda(float* out, const float* x, const int32_t* idx, int64_t m, int64_t rows,
                               int64_t row) {
  if (m * row == 0) return;
  gather_rows_kernel<<<cuda::grid_for(m * row), kThreads, 0, cuda::stream()>>>(out, x, idx, m, rows, row);
  CUDA_CHECK(cudaGetLastError());
}

void index_select_backward_cuda(float* dx, const float* dout, const int32_t* idx, int64_t m, int64_t rows,
                                int64_t row) {
  if (m * row == 0) return;
  scatter_add_rows_kernel<<<cuda::grid_for(m * row), kThreads, 0, cuda::stream()>>>(dx, dout, idx, m, rows, row);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt
