// conv.cu: CUDA convolution (im2col + cuBLAS GEMM), transposed convolution (GEMM + col2im), nearest
// upsampling and average pooling. Equations and derivatives are in kernels/conv.h; every kernel's
// per-thread body is the GT_HD function the CPU reference uses.
//
// Threading: im2col has one thread per column element; col2im, the upsample/pool backward passes
// gather, one thread per input pixel summing the entries that touch it, so no atomics are needed
// and the sums are deterministic. Bias gradients are a per-channel block reduction. Everything runs
// asynchronously on gt::cuda::stream(); workspaces come from Tensor::empty (caching allocator).
#include "kernels/conv.h"

#include <algorithm>

#include "core/cuda_context.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/matmul.h"

namespace gt {

namespace {

using cuda::grid_for;
using cuda::kBlock;

// Grid-stride loop over [0, n): grid_for caps the grid, so large tensors take several strides.
#define GT_KERNEL_LOOP(i, n)                                                              \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);              \
       i += (int64_t)gridDim.x * blockDim.x)

__global__ void im2col_kernel(const float* x, int64_t B, ColGeom g, float* col) {
  const int64_t L = g.Ho * g.Wo, K2 = g.kh * g.kw, CK = g.C * K2, n = B * CK * L;
  GT_KERNEL_LOOP(idx, n) {
    const int64_t l = idx % L, row = (idx / L) % CK, b = idx / (CK * L);
    const int64_t c = row / K2, i = (row % K2) / g.kw, j = row % g.kw;
    col[idx] = im2col_value(x + b * g.C * g.H * g.W, g, c, i, j, l / g.Wo, l % g.Wo);
  }
}

__global__ void col2im_kernel(const float* col, int64_t B, ColGeom g, float* x, bool accumulate) {
  const int64_t HW = g.H * g.W, n = B * g.C * HW, CKL = g.C * g.kh * g.kw * g.Ho * g.Wo;
  GT_KERNEL_LOOP(idx, n) {
    const int64_t w = idx % g.W, h = (idx / g.W) % g.H, c = (idx / HW) % g.C, b = idx / (g.C * HW);
    const float v = col2im_value(col + b * CKL, g, c, h, w);
    if (accumulate)
      x[idx] += v;
    else
      x[idx] = v;
  }
}

// y (B, O, L) += bias[o]
__global__ void add_bias_kernel(float* y, const float* bias, int64_t B, int64_t O, int64_t L) {
  GT_KERNEL_LOOP(idx, B * O * L) { y[idx] += bias[(idx / L) % O]; }
}

// db[o] += sum_{b,l} dy[b,o,l]: one block per channel, a fixed-order tree reduction.
__global__ void channel_sum_kernel(const float* dy, int64_t B, int64_t O, int64_t L, float* db) {
  const int64_t o = blockIdx.x;
  float s = 0.0f;
  for (int64_t t = threadIdx.x; t < B * L; t += blockDim.x) s += dy[((t / L) * O + o) * L + t % L];
  __shared__ float partial[kBlock];
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if ((int)threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[o] += partial[0];
}

__global__ void upsample_nearest2d_forward_kernel(const float* x, int64_t B, int64_t C, int64_t H, int64_t W,
                                                  int64_t scale, float* y) {
  const int64_t Ho = H * scale, Wo = W * scale, n = B * C * Ho * Wo;
  GT_KERNEL_LOOP(idx, n) {
    const int64_t ow = idx % Wo, oh = (idx / Wo) % Ho, p = idx / (Ho * Wo);
    y[idx] = upsample_nearest2d_value(x + p * H * W, W, scale, oh, ow);
  }
}

__global__ void upsample_nearest2d_backward_kernel(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W,
                                                   int64_t scale, float* dx) {
  const int64_t n = B * C * H * W, plane_out = H * scale * W * scale;
  GT_KERNEL_LOOP(idx, n) {
    const int64_t w = idx % W, h = (idx / W) % H, p = idx / (H * W);
    dx[idx] += upsample_nearest2d_grad(dy + p * plane_out, W, scale, h, w);
  }
}

__global__ void avg_pool2d_forward_kernel(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k,
                                          int64_t s, float* y) {
  const int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1, n = B * C * Ho * Wo;
  GT_KERNEL_LOOP(idx, n) {
    const int64_t ow = idx % Wo, oh = (idx / Wo) % Ho, p = idx / (Ho * Wo);
    y[idx] = avg_pool2d_value(x + p * H * W, W, k, s, oh, ow);
  }
}

__global__ void avg_pool2d_backward_kernel(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k,
                                           int64_t s, float* dx) {
  const int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1, n = B * C * H * W;
  GT_KERNEL_LOOP(idx, n) {
    const int64_t w = idx % W, h = (idx / W) % H, p = idx / (H * W);
    dx[idx] += avg_pool2d_grad(dy + p * Ho * Wo, Ho, Wo, k, s, h, w);
  }
}

bool is_identity(const ColGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0 && g.Ho == g.H && g.Wo == g.W;
}

void add_bias_cuda(float* y, const float* bias, int64_t B, int64_t O, int64_t L) {
  const int64_t n = B * O * L;
  if (n == 0) return;
  add_bias_kernel<<<grid_for(n), kBlock, 0, cuda::stream()>>>(y, bias, B, O, L);
  CUDA_CHECK(cudaGetLastError());
}

void channel_sum_cuda(const float* dy, int64_t B, int64_t O, int64_t L, float* db) {
  if (O == 0) return;
  channel_sum_kernel<<<(unsigned)O, kBlock, 0, cuda::stream()>>>(dy, B, O, L, db);
  CUDA_CHECK(cudaGetLastError());
}

// dW (M, N) += sum_{b<n} op(A_b) op(B_b) with A_b = A + b*sa, B_b = B + b*sb (shared K). A batched
// GEMM cannot reduce over its batch, so the per-image products go to `partial` (n, M*N) and are
// summed by one more GEMM, ones (1, n) partial (n, M*N), accumulating into dW with beta = 1.
void gemm_batch_sum_cuda(bool ta, bool tb, int64_t n, int64_t M, int64_t N, int64_t K, const float* A, int64_t sa,
                         const float* B, int64_t sb, float* partial, const float* ones, float* dw) {
  if (n == 1) {
    gemm_cuda(ta, tb, M, N, K, 1.0f, A, B, 1.0f, dw);
    return;
  }
  gemm_batched_cuda(ta, tb, n, M, N, K, 1.0f, A, sa, B, sb, 0.0f, partial, M * N);
  gemm_cuda(false, false, 1, M * N, n, 1.0f, ones, partial, 1.0f, dw);
}

}  // namespace

// ---------------------------------------------------------------- im2col / col2im

void im2col_cuda(const float* x, int64_t B, const ColGeom& g, float* col) {
  const int64_t n = B * g.C * g.kh * g.kw * g.Ho * g.Wo;
  if (n == 0) return;
  im2col_kernel<<<grid_for(n), kBlock, 0, cuda::stream()>>>(x, B, g, col);
  CUDA_CHECK(cudaGetLastError());
}

void col2im_cuda(const float* col, int64_t B, const ColGeom& g, float* x, bool accumulate) {
  const int64_t n = B * g.C * g.H * g.W;
  if (n == 0) return;
  col2im_kernel<<<grid_for(n), kBlock, 0, cuda::stream()>>>(col, B, g, x, accumulate);
  CUDA_CHECK(cudaGetLastError());
}

// ---------------------------------------------------------------- conv2d

void conv2d_forward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y) {
  const ColGeom cg = detail::conv2d_col_geom(g);
  const int64_t CK = g.C * g.kh * g.kw, L = g.Ho * g.Wo, xs = g.C * g.H * g.W, ys = g.O * L;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L}, Device::CUDA);
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    const float* cols = x + b0 * xs;
    if (!identity) {
      im2col_cuda(x + b0 * xs, n, cg, col.data());
      cols = col.data();
    }
    // y[b] (O, L) = W (O, CK) col[b] (CK, L)
    gemm_batched_cuda(false, false, n, g.O, L, CK, 1.0f, w, 0, cols, CK * L, 0.0f, y + b0 * ys, ys);
  }
  if (bias) add_bias_cuda(y, bias, g.B, g.O, L);
}

void conv2d_backward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* dy, float* dx,
                          float* dw, float* db) {
  const ColGeom cg = detail::conv2d_col_geom(g);
  const int64_t CK = g.C * g.kh * g.kw, L = g.Ho * g.Wo, xs = g.C * g.H * g.W, ys = g.O * L;
  // db[o] += sum_{b,l} dy[b,o,l]
  if (db) channel_sum_cuda(dy, g.B, g.O, L, db);
  if (!dx && !dw) return;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L}, Device::CUDA);
  Tensor partial, ones;
  if (dw && nb > 1) {
    partial = Tensor::empty({nb * g.O * CK}, Device::CUDA);
    ones = Tensor::ones({nb}, Device::CUDA);
  }
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    const float* dyc = dy + b0 * ys;
    if (dw) {
      // dW (O, CK) += sum_b dy[b] (O, L) col[b]^T (L, CK)
      const float* cols = x + b0 * xs;
      if (!identity) {
        im2col_cuda(x + b0 * xs, n, cg, col.data());
        cols = col.data();
      }
      gemm_batch_sum_cuda(false, true, n, g.O, CK, L, dyc, ys, cols, CK * L,
                          partial.defined() ? partial.data() : nullptr, ones.defined() ? ones.data() : nullptr, dw);
    }
    if (dx) {
      // dcol[b] (CK, L) = W^T (CK, O) dy[b] (O, L);  dx[b] += col2im(dcol[b])
      if (identity) {
        gemm_batched_cuda(true, false, n, CK, L, g.O, 1.0f, w, 0, dyc, ys, 1.0f, dx + b0 * xs, xs);
      } else {
        gemm_batched_cuda(true, false, n, CK, L, g.O, 1.0f, w, 0, dyc, ys, 0.0f, col.data(), CK * L);
        col2im_cuda(col.data(), n, cg, dx + b0 * xs, /*accumulate=*/true);
      }
    }
  }
}

// ---------------------------------------------------------------- conv_transpose2d

void conv_transpose2d_forward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                   float* y) {
  const ColGeom cg = detail::conv_transpose2d_col_geom(g);
  const int64_t CK = g.O * g.kh * g.kw, L = g.H * g.W, xs = g.C * L, ys = g.O * g.Ho * g.Wo;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L}, Device::CUDA);
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    // col[b] (CK, L) = W^T (CK, C) x[b] (C, L), W stored (C, O*kh*kw);  y[b] = col2im(col[b])
    if (identity) {
      gemm_batched_cuda(true, false, n, CK, L, g.C, 1.0f, w, 0, x + b0 * xs, xs, 0.0f, y + b0 * ys, ys);
    } else {
      gemm_batched_cuda(true, false, n, CK, L, g.C, 1.0f, w, 0, x + b0 * xs, xs, 0.0f, col.data(), CK * L);
      col2im_cuda(col.data(), n, cg, y + b0 * ys, /*accumulate=*/false);
    }
  }
  if (bias) add_bias_cuda(y, bias, g.B, g.O, g.Ho * g.Wo);
}

void conv_transpose2d_backward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* dy,
                                    float* dx, float* dw, float* db) {
  const ColGeom cg = detail::conv_transpose2d_col_geom(g);
  const int64_t CK = g.O * g.kh * g.kw, L = g.H * g.W, xs = g.C * L, ys = g.O * g.Ho * g.Wo;
  // db[o] += sum_{b,oh,ow} dy[b,o,oh,ow]
  if (db) channel_sum_cuda(dy, g.B, g.O, g.Ho * g.Wo, db);
  if (!dx && !dw) return;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L}, Device::CUDA);
  Tensor partial, ones;
  if (dw && nb > 1) {
    partial = Tensor::empty({nb * g.C * CK}, Device::CUDA);
    ones = Tensor::ones({nb}, Device::CUDA);
  }
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    const float* cols = dy + b0 * ys;  // im2col(dy[b]) (CK, L)
    if (!identity) {
      im2col_cuda(dy + b0 * ys, n, cg, col.data());
      cols = col.data();
    }
    // dx[b] (C, L) += W (C, CK) im2col(dy[b]) (CK, L)
    if (dx) gemm_batched_cuda(false, false, n, g.C, L, CK, 1.0f, w, 0, cols, CK * L, 1.0f, dx + b0 * xs, xs);
    // dW (C, CK) += sum_b x[b] (C, L) im2col(dy[b])^T (L, CK)
    if (dw)
      gemm_batch_sum_cuda(false, true, n, g.C, CK, L, x + b0 * xs, xs, cols, CK * L,
                          partial.defined() ? partial.data() : nullptr, ones.defined() ? ones.data() : nullptr, dw);
  }
}

// ---------------------------------------------------------------- upsample_nearest2d

void upsample_nearest2d_forward_cuda(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t scale,
                                     float* y) {
  const int64_t n = B * C * H * scale * W * scale;
  if (n == 0) return;
  upsample_nearest2d_forward_kernel<<<grid_for(n), kBlock, 0, cuda::stream()>>>(x, B, C, H, W, scale, y);
  CUDA_CHECK(cudaGetLastError());
}

void upsample_nearest2d_backward_cuda(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W,
                                      int64_t scale, float* dx) {
  const int64_t n = B * C * H * W;
  if (n == 0) return;
  upsample_nearest2d_backward_kernel<<<grid_for(n), kBlock, 0, cuda::stream()>>>(dy, B, C, H, W, scale, dx);
  CUDA_CHECK(cudaGetLastError());
}

// ---------------------------------------------------------------- avg_pool2d

void avg_pool2d_forward_cuda(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                             float* y) {
  const int64_t n = B * C * ((H - k) / s + 1) * ((W - k) / s + 1);
  if (n == 0) return;
  avg_pool2d_forward_kernel<<<grid_for(n), kBlock, 0, cuda::stream()>>>(x, B, C, H, W, k, s, y);
  CUDA_CHECK(cudaGetLastError());
}

void avg_pool2d_backward_cuda(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                              float* dx) {
  const int64_t n = B * C * H * W;
  if (n == 0) return;
  avg_pool2d_backward_kernel<<<grid_for(n), kBlock, 0, cuda::stream()>>>(dy, B, C, H, W, k, s, dx);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace gt
