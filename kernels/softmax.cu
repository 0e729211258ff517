// softmax.cu: CUDA softmax (kernels/softmax.h has the equations).
//
//   - inner == 1 (the last dim): a group of G threads per row — a warp (G = 32) for short rows
//     (attention's 49 or 196), the whole 256-thread block once rows reach 1024. Threads stride the
//     row (coalesced), then reduce max and sum with shuffles (+ shared memory across warps).
//   - inner > 1: one thread per column (o, i) looping over k; neighbouring threads read
//     neighbouring i, so the loads are coalesced.
// Every reduction has a fixed order (no atomics), so results repeat run to run.
#include "core/cuda_context.h"
#include "core/error.h"
#include "kernels/softmax.h"

namespace gt {

namespace {

constexpr int kThreads = cuda::kBlock;  // 256: 8 warps
constexpr int kWarps = kThreads / 32;
constexpr long long kBlockRowMin = 1024;
constexpr long long kMaxGrid = 65535LL * 32;

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Sum / max over a group of G threads (32: the calling warp; kThreads: the block, every thread
// calls); every thread of the group receives the result, combined in warp order.
template <int G>
__device__ __forceinline__ float group_sum(float v, float* shm) {
  v = warp_sum(v);
  if (G == 32) return v;
  if ((threadIdx.x & 31) == 0) shm[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = 0.f;
  for (int w = 0; w < kWarps; ++w) s += shm[w];
  __syncthreads();
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

// First row of this thread's group, the stride between its rows, and its lane in the group.
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
  const long long g = G == 32 ? (rows + kWarps - 1) / kWarps : rows;
  return (unsigned)(g < 1 ? 1 : (g > kMaxGrid ? kMaxGrid : g));
}

// The row loop's trip count is the same for every thread of a group, so the group reductions
// inside it are reached by all of the group's threads.
template <int G>
__global__ void softmax_rows_kernel(float* y, const float* x, long long rows, long long n) {
  __shared__ float shm[32];
  RowGroup<G> g;
  for (long long r = g.first; r < rows; r += g.step) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY;
    for (long long k = g.lane; k < n; k += G) m = fmaxf(m, xr[k]);
    m = group_max<G>(m, shm);
    float s = 0.f;
    for (long long k = g.lane; k < n; k += G) {
      const float e = expf(xr[k] - m);
      yr[k] = e;
      s += e;
    }
    const float inv = 1.f / group_sum<G>(s, shm);
    for (long long k = g.lane; k < n; k += G) yr[k] *= inv;  // each thread rescales what it wrote
  }
}

template <int G>
__global__ void softmax_backward_rows_kernel(float* dx, const float* dy, const float* y, long long rows, long long n) {
  __shared__ float shm[32];
  RowGroup<G> g;
  for (long long r = g.first; r < rows; r += g.step) {
    const float* yr = y + r * n;
    const float* dyr = dy + r * n;
    float* dxr = dx + r * n;
    float dot = 0.f;
    for (long long k = g.lane; k < n; k += G) dot += dyr[k] * yr[k];
    dot = group_sum<G>(dot, shm);
    for (long long k = g.lane; k < n; k += G) dxr[k] += yr[k] * (dyr[k] - dot);
  }
}

__global__ void softmax_cols_kernel(float* y, const float* x, long long outer, long long n, long long inner) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < outer * inner;
       j += (long long)gridDim.x * blockDim.x) {
    const long long base = (j / inner) * n * inner + j % inner;
    float m = -INFINITY;
    for (long long k = 0; k < n; ++k) m = fmaxf(m, x[base + k * inner]);
    float s = 0.f;
    for (long long k = 0; k < n; ++k) {
      const float e = expf(x[base + k * inner] - m);
      y[base + k * inner] = e;
      s += e;
    }
    const float inv = 1.f / s;
    for (long long k = 0; k < n; ++k) y[base + k * inner] *= inv;
  }
}

__global__ void softmax_backward_cols_kernel(float* dx, const float* dy, const float* y, long long outer, long long n,
                                             long long inner) {
  for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < outer * inner;
       j += (long long)gridDim.x * blockDim.x) {
    const long long base = (j / inner) * n * inner + j % inner;
    float dot = 0.f;
    for (long long k = 0; k < n; ++k) dot += dy[base + k * inner] * y[base + k * inner];
    for (long long k = 0; k < n; ++k) {
      const long long e = base + k * inner;
      dx[e] += y[e] * (dy[e] - dot);
    }
  }
}

}  // namespace

void softmax_forward_cuda(float* y, const float* x, int64_t outer, int64_t n, int64_t inner) {
  if (outer * n * inner == 0) return;
  cudaStream_t s = cuda::stream();
  if (inner == 1 && n >= kBlockRowMin)
    softmax_rows_kernel<kThreads><<<row_grid<kThreads>(outer), kThreads, 0, s>>>(y, x, outer, n);
  else if (inner == 1)
    softmax_rows_kernel<32><<<row_grid<32>(outer), kThreads, 0, s>>>(y, x, outer, n);
  else
    softmax_cols_kernel<<<cuda::grid_for(outer * inner), kThreads, 0, s>>>(y, x, outer, n, inner);
  CUDA_CHECK(cudaGetLastError());
}

void softmax_backward_cuda(float* dx, const float* dy, const float* y, int64_t outer, int64_t n, int64_t inner) {
  if (outer * n * inner == 0) return;
  cudaStream_t s = cuda::stream();
  if (inner == 1 && n >= kBlockRowMin)
    softmax_backward_rows_kernel<kThreads><<<row_grid<kThreads>(outer), kThreads, 0, s>>>(dx, dy, y, outer, n);
  else if (inner == 1)
    softmax_backward_rows_kernel<32><<<row_grid<32>(outer), kThreads, 0, s>>>(dx, dy, y, outer, n);
  else
    softmax_backward_cols_kernel<<<cuda::grid_for(outer * inner), kThreads, 0, s>>>(dx, dy, y, outer, n, inner);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt
