// elementwise.cu: CUDA elementwise kernels, running the GT_HD math of kernels/elementwise.h.
//
//   unary:      y = f(x),            dx += dy * f'(x, y)
//   binary:     out = a op b,        g = dout * d(a op b)/da  (or /db), a and b broadcast
//   reduction:  dx += scale * sum over the broadcast dims of g
//
// Every kernel is a grid-stride loop; launchers queue on gt::cuda::stream() and end with
// CUDA_CHECK(cudaGetLastError()). Broadcasting maps out element i to its a and b elements with an
// index functor chosen by the plan: SameIndex (no arithmetic), PatternIndex ((i / div) % mod: a
// scalar, a row vector, a per-channel vector) or GeneralIndex (div/mod over up to 8 dims).
//
// sum_to_shape is deterministic without atomics: each x element is summed by one thread (when g's
// innermost dim is kept, so neighbouring threads read neighbouring addresses) or one block (when
// the reduced elements are contiguous). When there are too few x elements to fill the GPU, the
// reduced range is split into R chunks whose partial sums (from Tensor::empty) a second kernel
// adds in a fixed order. R depends only on the shapes.
#include "kernels/elementwise.h"

#include <algorithm>

#include "core/cuda_context.h"
#include "kernels/block_reduce.cuh"
#include "core/error.h"

namespace gt {

namespace {

using cuda::kBlock;

// ---------------------------------------------------------------- unary

template <class Op>
__global__ void unary_forward_kernel(float* y, const float* x, int64_t n, float p) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = Op::forward(x[i], p);
}

template <class Op>
__global__ void unary_backward_kernel(float* dx, const float* dy, const float* x, const float* y, int64_t n,
                                      float p) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dx[i] += dy[i] * Op::grad(Op::kUsesX ? x[i] : 0.f, Op::kUsesY ? y[i] : 0.f, p);
}

// ---------------------------------------------------------------- binary

using detail::GeneralIndex;
using detail::PatternIndex;
using detail::SameIndex;

// Calls f with the cheapest index functor that describes the plan.
template <class F>
void with_index(const BroadcastPlan& p, F f) {
  switch (p.kind) {
    case BroadcastPlan::Same: f(SameIndex{}); return;
    case BroadcastPlan::General: f(GeneralIndex{p}); return;
    default: f(detail::pattern_index(p)); return;
  }
}

template <class Op, class Index>
__global__ void binary_forward_kernel(float* out, const float* a, const float* b, Index idx, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ia, ib;
    idx.map(i, ia, ib);
    out[i] = Op::forward(a[ia], b[ib]);
  }
}

// g = dout * d(a op b)/da (kSide 0) or /db (kSide 1); kAccumulate adds instead of writing.
template <class Op, class Index, int kSide, bool kAccumulate>
__global__ void binary_backward_kernel(float* g, const float* dout, const float* a, const float* b, Index idx,
                                       int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ia, ib;
    idx.map(i, ia, ib);
    const float v = dout[i] * (kSide == 0 ? Op::da(a[ia], b[ib]) : Op::db(a[ia], b[ib]));
    if (kAccumulate) {
      g[i] += v;
    } else {
      g[i] = v;
    }
  }
}

template <class Op, int kSide, bool kAccumulate>
void launch_binary_backward(float* g, const float* dout, const float* a, const float* b, const BroadcastPlan& plan) {
  with_index(plan, [&](auto idx) {
    binary_backward_kernel<Op, decltype(idx), kSide, kAccumulate>
        <<<cuda::grid_for(plan.n), kBlock, 0, cuda::stream()>>>(g, dout, a, b, idx, plan.n);
  });
}

// ---------------------------------------------------------------- sum_to_shape

__global__ void axpy_kernel(float* dx, const float* g, int64_t n, float scale) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dx[i] += scale * g[i];
}

using detail::strided_offset;

// Either dx[j] += scale * s (no partials) or partial[rc * n_out + j] = s.
__device__ void store_sum(float* dx, float* partial, const ReducePlan& p, int64_t j, int64_t rc, float s,
                          float scale) {
  if (partial) {
    partial[rc * p.n_out + j] = s;
  } else {
    dx[j] += scale * s;
  }
}

// g's innermost dim is kept: thread j (of x) sums reduced chunk blockIdx.y sequentially; the
// threads of a warp read consecutive addresses.
__global__ void sum_to_shape_thread_kernel(float* dx, float* partial, const float* g, ReducePlan p, float scale) {
  const int64_t R = gridDim.y, rc = blockIdx.y;
  const int64_t r0 = p.n_red * rc / R, r1 = p.n_red * (rc + 1) / R;
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < p.n_out; j += (int64_t)gridDim.x * blockDim.x)
    store_sum(dx, partial, p, j, rc, detail::reduce_range_sum(g, p, j, r0, r1), scale);
}


// g's innermost dim is reduced: block j (of x) sums reduced chunk blockIdx.y, its threads reading
// consecutive elements of each contiguous run.
__global__ void sum_to_shape_block_kernel(float* dx, float* partial, const float* g, ReducePlan p, float scale) {
  const int64_t R = gridDim.y, rc = blockIdx.y;
  const int64_t r0 = p.n_red * rc / R, r1 = p.n_red * (rc + 1) / R;
  for (int64_t j = blockIdx.x; j < p.n_out; j += gridDim.x) {
    const int64_t base = strided_offset(j, p.nk, p.kshape, p.kstride);
    float s = 0.f;
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) s += g[base + strided_offset(r, p.nr, p.rshape, p.rstride)];
    s = cuda::block_sum(s);
    if (threadIdx.x == 0) store_sum(dx, partial, p, j, rc, s, scale);
  }
}

// dx[j] += scale * sum_rc partial[rc * n_out + j], in rc order.
__global__ void sum_partials_kernel(float* dx, const float* partial, int64_t n_out, int64_t R, float scale) {
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < n_out; j += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.f;
    for (int64_t rc = 0; rc < R; ++rc) s += partial[rc * n_out + j];
    dx[j] += scale * s;
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

// ---------------------------------------------------------------- launchers

template <class Op>
void unary_forward_cuda(float* y, const float* x, int64_t n, float p) {
  if (n == 0) return;
  unary_forward_kernel<Op><<<cuda::grid_for(n), kBlock, 0, cuda::stream()>>>(y, x, n, p);
  CUDA_CHECK(cudaGetLastError());
}

template <class Op>
void unary_backward_cuda(float* dx, const float* dy, const float* x, const float* y, int64_t n, float p) {
  if (n == 0) return;
  unary_backward_kernel<Op><<<cuda::grid_for(n), kBlock, 0, cuda::stream()>>>(dx, dy, x, y, n, p);
  CUDA_CHECK(cudaGetLastError());
}

template <class Op>
void binary_forward_cuda(float* out, const float* a, const float* b, const BroadcastPlan& plan) {
  if (plan.n == 0) return;
  with_index(plan, [&](auto idx) {
    binary_forward_kernel<Op, decltype(idx)><<<cuda::grid_for(plan.n), kBlock, 0, cuda::stream()>>>(out, a, b, idx, plan.n);
  });
  CUDA_CHECK(cudaGetLastError());
}

template <class Op>
void binary_backward_cuda(float* g, const float* dout, const float* a, const float* b, const BroadcastPlan& plan,
                          int side, bool accumulate) {
  // d(a op b)/da = Op::da(a, b), d(a op b)/db = Op::db(a, b), times the incoming gradient.
  if (plan.n == 0) return;
  if (side == 0 && accumulate) {
    launch_binary_backward<Op, 0, true>(g, dout, a, b, plan);
  } else if (side == 0) {
    launch_binary_backward<Op, 0, false>(g, dout, a, b, plan);
  } else if (accumulate) {
    launch_binary_backward<Op, 1, true>(g, dout, a, b, plan);
  } else {
    launch_binary_backward<Op, 1, false>(g, dout, a, b, plan);
  }
  CUDA_CHECK(cudaGetLastError());
}

void sum_to_shape_cuda(float* dx, const float* g, const ReducePlan& p, float scale) {
  if (p.n_out == 0 || p.n_red == 0) return;  // an empty sum adds nothing
  cudaStream_t s = cuda::stream();
  if (p.n_red == 1) {  // x has out's layout: a plain axpy
    axpy_kernel<<<cuda::grid_for(p.n_out), kBlock, 0, s>>>(dx, g, p.n_out, scale);
    CUDA_CHECK(cudaGetLastError());
    return;
  }
  // Chunks of the reduced range: enough threads (inner kept) or blocks (inner reduced) to fill
  // the GPU, but each still summing a useful number of elements.
  int64_t R;
  if (p.inner_kept) {
    R = std::min(ceil_div(32768, p.n_out), ceil_div(p.n_red, 64));
  } else {
    R = std::min(ceil_div(512, p.n_out), ceil_div(p.n_red, 4096));
  }
  R = std::max<int64_t>(1, std::min<int64_t>(R, 1024));
  Tensor partial = R > 1 ? Tensor::empty(Shape{R, p.n_out}, Device::CUDA) : Tensor();
  float* part = R > 1 ? partial.data() : nullptr;
  if (p.inner_kept) {
    dim3 grid((unsigned)std::min<int64_t>(ceil_div(p.n_out, kBlock), 65535LL * 32), (unsigned)R);
    sum_to_shape_thread_kernel<<<grid, kBlock, 0, s>>>(dx, part, g, p, scale);
  } else {
    dim3 grid((unsigned)std::min<int64_t>(p.n_out, 65535LL * 32), (unsigned)R);
    sum_to_shape_block_kernel<<<grid, kBlock, 0, s>>>(dx, part, g, p, scale);
  }
  CUDA_CHECK(cudaGetLastError());
  if (part) {
    sum_partials_kernel<<<cuda::grid_for(p.n_out), kBlock, 0, s>>>(dx, part, p.n_out, R, scale);
    CUDA_CHECK(cudaGetLastError());
  }
  // `partial` returns to the caching allocator here; the stream orders its reuse after these kernels.
}

// ---------------------------------------------------------------- instantiations

#define GT_INSTANTIATE_UNARY(OP)                                                          \
  template void unary_forward_cuda<OP>(float*, const float*, int64_t, float);             \
  template void unary_backward_cuda<OP>(float*, const float*, const float*, const float*, int64_t, float);
GT_UNARY_OPS(GT_INSTANTIATE_UNARY)
#undef GT_INSTANTIATE_UNARY

#define GT_INSTANTIATE_BINARY(OP)                                                                   \
  template void binary_forward_cuda<OP>(float*, const float*, const float*, const BroadcastPlan&); \
  template void binary_backward_cuda<OP>(float*, const float*, const float*, const float*,         \
                                         const BroadcastPlan&, int, bool);
GT_BINARY_OPS(GT_INSTANTIATE_BINARY)
#undef GT_INSTANTIATE_BINARY

}  // namespace gt
