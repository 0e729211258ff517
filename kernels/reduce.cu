// reduce.cu: CUDA reductions (kernels/reduce.h has the equations; the scalar math max_wins and
// lse_finish is shared with the CPU reference).
//
// Three launch shapes:
//   - the full sum: two passes, no atomics. Pass 1 runs a fixed number of blocks (a function of N
//     only) that each write one partial (grid-stride loop, then a warp-shuffle block reduction);
//     pass 2 is one block over the partials. Same N, same grid, same order: deterministic.
//   - inner == 1 (rows contiguous, e.g. the last dim): a group of G threads per row — a warp
//     (G = 32) for short rows, the whole block (G = 256) once rows are long enough to keep 256
//     threads busy. Threads stride the row (coalesced), then reduce with shuffles (+ shared memory
//     across warps when G = 256).
//   - inner > 1: one thread per output (o, i) looping over k; neighbouring threads read
//     neighbouring i, so the loads are coalesced.
// Backward kernels are elementwise over x (one thread per element, grid-stride).
#include "kernels/reduce.h"

#include <climits>

#include "core/cuda_context.h"
#include "core/error.h"
#include "core/tensor.h"

namespace gt {

namespace {

constexpr int kThreads = cuda::kBlock;  // 256: 8 warps
constexpr int kWarps = kThreads / 32;
// Rows at least this long get a whole block; shorter ones a warp (a 256-thread block on a 10-wide
// row would leave 246 threads idle).
constexpr long long kBlockRowMin = 1024;
// Pass 1 of the full sum: each thread handles >= kSumPerThread elements, at most kSumMaxBlocks
// blocks (about two full waves of an H100).
constexpr long long kSumPerThread = 8;
constexpr long long kSumMaxBlocks = 1024;
constexpr long long kMaxGrid = 65535LL * 32;

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;  // every lane holds the sum
}
__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
// (value, index) maximum with max_wins' order (larger value, then smaller index): a strict total
// order on distinct indices, so every lane converges to the same winner.
__device__ __forceinline__ void warp_argmax(float& v, int& k) {
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, off);
    const int ok = __shfl_xor_sync(0xffffffffu, k, off);
    if (max_wins(ov, ok, v, k)) {
      v = ov;
      k = ok;
    }
  }
}

// Reductions over a group of G threads (G = 32: the calling warp; G = kThreads: the block, in
// which case every thread must call). Every thread of the group receives the result. The block
// versions combine the warps' results in warp order, so they are deterministic.
template <int G>
__device__ __forceinline__ float group_sum(float v, float* shm) {
  v = warp_sum(v);
  if (G == 32) return v;
  if ((threadIdx.x & 31) == 0) shm[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = 0.f;
  for (int w = 0; w < kWarps; ++w) s += shm[w];
  __syncthreads();  // shm may be reused by the next call
  return s;
}
template <int G>
__device__ __forceinline__ float group_max(float v, float* shm) {
  v = warp_max(v);
  if (G == 32) return v;
  if ((threadIdx.x & 31) == 0) shm[threadIdx.x >> 5] = v;
  __syncthreads();
  float m = shm[0];
  for (int w = 1; w < kWarps; ++w) m = fmaxf(m, shm[w]);
  __syncthreads();
  return m;
}
template <int G>
__device__ __forceinline__ void group_argmax(float& v, int& k, float* shm_v, int* shm_k) {
  warp_argmax(v, k);
  if (G == 32) return;
  if ((threadIdx.x & 31) == 0) {
    shm_v[threadIdx.x >> 5] = v;
    shm_k[threadIdx.x >> 5] = k;
  }
  __syncthreads();
  v = shm_v[0];
  k = shm_k[0];
  for (int w = 1; w < kWarps; ++w)
    if (max_wins(shm_v[w], shm_k[w], v, k)) {
      v = shm_v[w];
      k = shm_k[w];
    }
  __syncthreads();
}

// The row this group starts at, the stride between its rows, and the thread's lane in the group.
template <int G>
struct RowGroup {
  long long first, step;
  int lane;
  __device__ RowGroup() {
    if (G == 32) {
      first = (long long)blockIdx.x * kWarps + (threadIdx.x >> 5);
      step = (long long)gridDim.x * kWarps;
      lane = threadIdx.x & 31;
    } else {
      first = blockIdx.x;
      step = gridDim.x;
      lane = threadIdx.x;
    }
  }
};

template <int G>
unsigned row_grid(long long rows) {
  long long g = G == 32 ? (rows + kWarps - 1) / kWarps : rows;
  return (unsigned)(g < 1 ? 1 : (g > kMaxGrid ? kMaxGrid : g));
}

// ---------------------------------------------------------------- kernels: full sum
// out[blockIdx.x] = scale * (sum of the elements this block's grid-stride loop visits)
__global__ void sum_all_kernel(float* out, const float* x, long long n, float scale) {
  __shared__ float shm[32];
  float acc = 0.f;
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < n; j += (long long)gridDim.x * blockDim.x)
    acc += x[j];
  acc = group_sum<kThreads>(acc, shm);
  if (threadIdx.x == 0) out[blockIdx.x] = scale * acc;
}

__global__ void sum_all_backward_kernel(float* dx, const float* dout, long long n, float scale) {
  const float g = scale * dout[0];
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < n; j += (long long)gridDim.x * blockDim.x)
    dx[j] += g;
}

// ---------------------------------------------------------------- kernels: rows (inner == 1)
template <int G>
__global__ void sum_rows_kernel(float* out, const float* x, long long rows, long long n, float scale) {
  __shared__ float shm[32];
  RowGroup<G> g;
  for (long long r = g.first; r < rows; r += g.step) {
    const float* row = x + r * n;
    float acc = 0.f;
    for (long long k = g.lane; k < n; k += G) acc += row[k];
    acc = group_sum<G>(acc, shm);
    if (g.lane == 0) out[r] = scale * acc;
  }
}

template <int G>
__global__ void max_rows_kernel(float* out, int32_t* argmax, const float* x, long long rows, long long n) {
  __shared__ float shm_v[32];
  __shared__ int shm_k[32];
  RowGroup<G> g;
  for (long long r = g.first; r < rows; r += g.step) {
    const float* row = x + r * n;
    float best = -INFINITY;
    int bk = INT_MAX;  // "no element yet": loses to any element, -inf included
    for (long long k = g.lane; k < n; k += G)
      if (max_wins(row[k], k, best, bk)) {
        best = row[k];
        bk = (int)k;
      }
    group_argmax<G>(best, bk, shm_v, shm_k);
    if (g.lane == 0) {
      out[r] = best;
      if (argmax) argmax[r] = bk;
    }
  }
}

template <int G>
__global__ void logsumexp_rows_kernel(float* out, const float* x, long long rows, long long n) {
  __shared__ float shm[32];
  RowGroup<G> g;
  for (long long r = g.first; r < rows; r += g.step) {
    const float* row = x + r * n;
    float m = -INFINITY;
    for (long long k = g.lane; k < n; k += G) m = fmaxf(m, row[k]);
    m = group_max<G>(m, shm);
    float s = 0.f;
    for (long long k = g.lane; k < n; k += G) s += expf(row[k] - m);
    s = group_sum<G>(s, shm);
    if (g.lane == 0) out[r] = lse_finish(m, s);
  }
}

// ---------------------------------------------------------------- kernels: columns (inner > 1)
__global__ void sum_cols_kernel(float* out, const float* x, long long outer, long long n, long long inner,
                                float scale) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < outer * inner;
       j += (long long)gridDim.x * blockDim.x) {
    const long long o = j / inner, i = j % inner;
    const float* col = x + o * n * inner + i;
    float acc = 0.f;
    for (long long k = 0; k < n; ++k) acc += col[k * inner];
    out[j] = scale * acc;
  }
}

__global__ void max_cols_kernel(float* out, int32_t* argmax, const float* x, long long outer, long long n,
                                long long inner) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < outer * inner;
       j += (long long)gridDim.x * blockDim.x) {
    const long long o = j / inner, i = j % inner;
    const float* col = x + o * n * inner + i;
    float best = col[0];
    int bk = 0;
    for (long long k = 1; k < n; ++k)
      if (max_wins(col[k * inner], k, best, bk)) {
        best = col[k * inner];
        bk = (int)k;
      }
    out[j] = best;
    if (argmax) argmax[j] = bk;
  }
}

__global__ void logsumexp_cols_kernel(float* out, const float* x, long long outer, long long n, long long inner) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < outer * inner;
       j += (long long)gridDim.x * blockDim.x) {
    const long long o = j / inner, i = j % inner;
    const float* col = x + o * n * inner + i;
    float m = -INFINITY;
    for (long long k = 0; k < n; ++k) m = fmaxf(m, col[k * inner]);
    float s = 0.f;
    for (long long k = 0; k < n; ++k) s += expf(col[k * inner] - m);
    out[j] = lse_finish(m, s);
  }
}

// ---------------------------------------------------------------- kernels: backward
// dx[o,k,i] += scale * dout[o,i]
__global__ void sum_dim_backward_kernel(float* dx, const float* dout, long long total, long long n,
                                        long long inner, float scale) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < total; j += (long long)gridDim.x * blockDim.x) {
    const long long o = j / (n * inner), i = j % inner;
    dx[j] += scale * dout[o * inner + i];
  }
}

// dx[o, argmax[o,i], i] += dout[o,i]: one thread per output, so no two threads touch one element.
__global__ void max_dim_backward_kernel(float* dx, const float* dout, const int32_t* argmax, long long outer,
                                        long long n, long long inner) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < outer * inner;
       j += (long long)gridDim.x * blockDim.x) {
    const long long o = j / inner, i = j % inner;
    dx[(o * n + argmax[j]) * inner + i] += dout[j];
  }
}

// dx[o,k,i] += exp(x[o,k,i] - y[o,i]) * dout[o,i]
__global__ void logsumexp_backward_kernel(float* dx, const float* dout, const float* x, const float* y,
                                          long long total, long long n, long long inner) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < total; j += (long long)gridDim.x * blockDim.x) {
    const long long oi = (j / (n * inner)) * inner + j % inner;
    dx[j] += expf(x[j] - y[oi]) * dout[oi];
  }
}

}  // namespace

// ---------------------------------------------------------------- launchers
void sum_all_forward_cuda(float* out, const float* x, int64_t n, float scale) {
  cudaStream_t s = cuda::stream();
  long long blocks = (n + kThreads * kSumPerThread - 1) / (kThreads * kSumPerThread);
  blocks = blocks < 1 ? 1 : (blocks > kSumMaxBlocks ? kSumMaxBlocks : blocks);
  if (blocks == 1) {
    sum_all_kernel<<<1, kThreads, 0, s>>>(out, x, n, scale);
    CUDA_CHECK(cudaGetLastError());
    return;
  }
  // The partials' block goes back to the caching allocator when `partial` dies; that is safe
  // because any later user of it is queued on the same stream, after pass 2.
  Tensor partial = Tensor::empty(Shape{(int64_t)blocks}, Device::CUDA);
  sum_all_kernel<<<(unsigned)blocks, kThreads, 0, s>>>(partial.data(), x, n, 1.0f);
  CUDA_CHECK(cudaGetLastError());
  sum_all_kernel<<<1, kThreads, 0, s>>>(out, partial.data(), blocks, scale);
  CUDA_CHECK(cudaGetLastError());
}

void sum_all_backward_cuda(float* dx, const float* dout, int64_t n, float scale) {
  if (n == 0) return;
  sum_all_backward_kernel<<<cuda::grid_for(n), kThreads, 0, cuda::stream()>>>(dx, dout, n, scale);
  CUDA_CHECK(cudaGetLastError());
}

void sum_dim_forward_cuda(float* out, const float* x, int64_t outer, int64_t n, int64_t inner, float scale) {
  if (outer * inner == 0) return;
  cudaStream_t s = cuda::stream();
  if (inner == 1 && n >= kBlockRowMin)
    sum_rows_kernel<kThreads><<<row_grid<kThreads>(outer), kThreads, 0, s>>>(out, x, outer, n, scale);
  else if (inner == 1)
    sum_rows_kernel<32><<<row_grid<32>(outer), kThreads, 0, s>>>(out, x, outer, n, scale);
  else
    sum_cols_kernel<<<cuda::grid_for(outer * inner), kThreads, 0, s>>>(out, x, outer, n, inner, scale);
  CUDA_CHECK(cudaGetLastError());
}

void sum_dim_backward_cuda(float* dx, const float* dout, int64_t outer, int64_t n, int64_t inner, float scale) {
  const long long total = outer * n * inner;
  if (total == 0) return;
  sum_dim_backward_kernel<<<cuda::grid_for(total), kThreads, 0, cuda::stream()>>>(dx, dout, total, n, inner, scale);
  CUDA_CHECK(cudaGetLastError());
}

void max_dim_forward_cuda(float* out, int32_t* argmax, const float* x, int64_t outer, int64_t n, int64_t inner) {
  if (outer * inner == 0) return;
  cudaStream_t s = cuda::stream();
  if (inner == 1 && n >= kBlockRowMin)
    max_rows_kernel<kThreads><<<row_grid<kThreads>(outer), kThreads, 0, s>>>(out, argmax, x, outer, n);
  else if (inner == 1)
    max_rows_kernel<32><<<row_grid<32>(outer), kThreads, 0, s>>>(out, argmax, x, outer, n);
  else
    max_cols_kernel<<<cuda::grid_for(outer * inner), kThreads, 0, s>>>(out, argmax, x, outer, n, inner);
  CUDA_CHECK(cudaGetLastError());
}

void max_dim_backward_cuda(float* dx, const float* dout, const int32_t* argmax, int64_t outer, int64_t n,
                           int64_t inner) {
  if (outer * inner == 0) return;
  max_dim_backward_kernel<<<cuda::grid_for(outer * inner), kThreads, 0, cuda::stream()>>>(dx, dout, argmax, outer,
                                                                                          n, inner);
  CUDA_CHECK(cudaGetLastError());
}

void logsumexp_forward_cuda(float* out, const float* x, int64_t outer, int64_t n, int64_t inner) {
  if (outer * inner == 0) return;
  cudaStream_t s = cuda::stream();
  if (inner == 1 && n >= kBlockRowMin)
    logsumexp_rows_kernel<kThreads><<<row_grid<kThreads>(outer), kThreads, 0, s>>>(out, x, outer, n);
  else if (inner == 1)
    logsumexp_rows_kernel<32><<<row_grid<32>(outer), kThreads, 0, s>>>(out, x, outer, n);
  else
    logsumexp_cols_kernel<<<cuda::grid_for(outer * inner), kThreads, 0, s>>>(out, x, outer, n, inner);
  CUDA_CHECK(cudaGetLastError());
}

void logsumexp_backward_cuda(float* dx, const float* dout, const float* x, const float* out, int64_t outer,
                             int64_t n, int64_t inner) {
  const long long total = outer * n * inner;
  if (total == 0) return;
  logsumexp_backward_kernel<<<cuda::grid_for(total), kThreads, 0, cuda::stream()>>>(dx, dout, x, out, total, n,
                                                                                     inner);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt
