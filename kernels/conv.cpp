// conv.cpp: CPU convolution (im2col + GEMM), transposed convolution (GEMM + col2im), nearest
// upsampling and average pooling. The equations and derivatives are in kernels/conv.h; the
// per-element math (im2col_value, col2im_value, ...) is shared with conv.cu.
//
// Loops run in parallel over (image, channel) planes with gt::parallel_for; the GEMMs are Eigen's
// (kernels/matmul.h), which parallelise over the batch or inside one product. 3x3 convolutions with
// stride 1 and padding 1 skip im2col: with channels in multiples of the vector width (16 on
// AVX-512, 8 on AVX2) they are Winograd F(4x4, 3x3) (kernels/winograd.h: forward, input and weight
// gradients), otherwise the direct kernels of kernels/conv3x3.h.
#include "kernels/conv.h"

#include <algorithm>
#include <cstring>

#include <omp.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/conv3x3.h"
#include "kernels/matmul.h"
#include "kernels/parallel.h"
#include "kernels/winograd.h"

namespace gt {

// ---------------------------------------------------------------- geometry

Conv2dGeom conv2d_geom(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                       int64_t stride, int64_t pad) {
  GT_CHECK(B >= 0 && C >= 1 && H >= 1 && W >= 1 && O >= 1 && kh >= 1 && kw >= 1,
           "conv2d: invalid sizes: input (" << B << ", " << C << ", " << H << ", " << W << "), weight (" << O
                                            << ", " << C << ", " << kh << ", " << kw << ")");
  GT_CHECK(stride >= 1, "conv2d: stride must be >= 1, got " << stride);
  GT_CHECK(pad >= 0, "conv2d: padding must be >= 0, got " << pad);
  GT_CHECK(H + 2 * pad >= kh && W + 2 * pad >= kw,
           "conv2d: the " << kh << "x" << kw << " kernel does not fit the input (" << B << ", " << C << ", " << H
                          << ", " << W << ") padded by " << pad << ": the output would be empty");
  Conv2dGeom g;
  g.B = B, g.C = C, g.H = H, g.W = W, g.O = O, g.kh = kh, g.kw = kw, g.stride = stride, g.pad = pad;
  g.Ho = (H + 2 * pad - kh) / stride + 1;
  g.Wo = (W + 2 * pad - kw) / stride + 1;
  return g;
}

Conv2dGeom conv_transpose2d_geom(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                                 int64_t kw, int64_t stride, int64_t pad, int64_t output_padding) {
  GT_CHECK(B >= 0 && C >= 1 && H >= 1 && W >= 1 && O >= 1 && kh >= 1 && kw >= 1,
           "conv_transpose2d: invalid sizes: input (" << B << ", " << C << ", " << H << ", " << W
                                                      << "), weight (" << C << ", " << O << ", " << kh << ", "
                                                      << kw << ")");
  GT_CHECK(stride >= 1, "conv_transpose2d: stride must be >= 1, got " << stride);
  GT_CHECK(pad >= 0, "conv_transpose2d: padding must be >= 0, got " << pad);
  GT_CHECK(output_padding >= 0 && output_padding < stride,
           "conv_transpose2d: output_padding must be in [0, stride) = [0, " << stride << "), got "
                                                                          << output_padding);
  Conv2dGeom g;
  g.B = B, g.C = C, g.H = H, g.W = W, g.O = O, g.kh = kh, g.kw = kw, g.stride = stride, g.pad = pad;
  g.Ho = (H - 1) * stride - 2 * pad + kh + output_padding;
  g.Wo = (W - 1) * stride - 2 * pad + kw + output_padding;
  GT_CHECK(g.Ho >= 1 && g.Wo >= 1,
           "conv_transpose2d: output size would be (" << g.Ho << ", " << g.Wo << ") for input (" << B << ", " << C
                                                      << ", " << H << ", " << W << "), kernel " << kh << "x" << kw
                                                      << ", stride " << stride << ", padding " << pad
                                                      << ", output_padding " << output_padding);
  return g;
}

namespace detail {
ColGeom conv2d_col_geom(const Conv2dGeom& g) {
  return ColGeom{g.C, g.H, g.W, g.kh, g.kw, g.stride, g.pad, g.Ho, g.Wo};
}
ColGeom conv_transpose2d_col_geom(const Conv2dGeom& g) {
  // The image is the output (O, Ho, Wo); the kernel lands on the input's H x W positions.
  return ColGeom{g.O, g.Ho, g.Wo, g.kh, g.kw, g.stride, g.pad, g.H, g.W};
}
int64_t conv_chunk(int64_t B, int64_t per_image) {
  const int64_t n = per_image > 0 ? kConvColMaxFloats / per_image : B;
  return std::max<int64_t>(1, std::min<int64_t>(B, n));
}
}  // namespace detail

namespace {

// A 1x1, stride-1, unpadded kernel: the columns are the image itself, so im2col/col2im are skipped.
bool is_identity(const ColGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0 && g.Ho == g.H && g.Wo == g.W;
}

// Planes of `plane` elements per parallel_for grain, so a chunk does ~kElementwiseGrain work.
int64_t plane_grain(int64_t plane) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, plane)); }

// y (B, O, L) += bias[o].
void add_bias_cpu(float* y, const float* bias, int64_t B, int64_t O, int64_t L) {
  parallel_for(B * O, plane_grain(L), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float v = bias[p % O];
      float* row = y + p * L;
      for (int64_t l = 0; l < L; ++l) row[l] += v;
    }
  });
}

// db[o] += sum_{b,l} dy[b,o,l]; dy (B, O, L).
void channel_sum_cpu(const float* dy, int64_t B, int64_t O, int64_t L, float* db) {
  parallel_for(O, plane_grain(B * L), [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      double s = 0;  // B*L terms: accumulate in double, it costs nothing here
      for (int64_t b = 0; b < B; ++b) {
        const float* row = dy + (b * O + o) * L;
        float r = 0.0f;
        for (int64_t l = 0; l < L; ++l) r += row[l];
        s += r;
      }
      db[o] += (float)s;
    }
  });
}

// dw (M, N) += sum_{b < n} A_b (M, K) B_b^T, A_b = a + b sa (M, K), B_b = bm + b sb stored (N, K): the
// weight gradient of an im2col convolution, one product per image. Threads take contiguous runs of
// images and sum them into their own partial with single-threaded GEMMs — one fork/join for
// the batch instead of one per image, and no operand packed twice — and the partials are added to
// dw in thread order (deterministic for a given thread count). A modest gain (benchmarks/bench_conv,
// batch 64, interleaved): 3x3 stride 2 32->32 at 28x28 36-48 -> 50-52 GFLOP/s, where im2col's copies
// dominate; 1x1 96->32 at 28x28 79-81 -> 83-113.
// The GEMM kernel reads its B operand row-major (K, N), so one of the two (stored with K contiguous)
// is transposed per image: the smaller one. Where N > M (the column matrix of C kh kw rows is larger
// than dy's O rows, as in every such layer of the U-Net but one) the partials are dw^T = sum B_b
// A_b^T (N, M), which transposes A_b, and are added to dw transposed. (Transposing the 288 x 196
// column matrix of the stride-2 downsampling per image, instead of its 32 x 196 dy, cost more than
// its weight gradient's products.) Each element is the same k-ordered sum either way.
void sum_of_products_cpu(int64_t n, int64_t M, int64_t N, int64_t K, const float* a, int64_t sa, const float* bm,
                         int64_t sb, float* dw) {
  const int threads = omp_in_parallel() ? 1 : (int)std::min<int64_t>(omp_get_max_threads(), n);
  const bool transposed = N > M;
  if (threads <= 1 && !transposed) {
    for (int64_t b = 0; b < n; ++b) gemm_cpu(false, true, M, N, K, 1.0f, a + b * sa, bm + b * sb, 1.0f, dw);
    return;
  }
  Tensor partial = Tensor::empty({threads * M * N});
  const auto run = [&](int t, int nt) {
    float* mine = partial.data() + t * M * N;
    const int64_t b0 = n * t / nt, b1 = n * (t + 1) / nt;
    if (b0 == b1) std::fill(mine, mine + M * N, 0.0f);
    for (int64_t b = b0; b < b1; ++b) {  // inside the region gemm_cpu runs on this thread alone
      const float beta = b == b0 ? 0.0f : 1.0f;
      if (transposed) {
        gemm_cpu(false, true, N, M, K, 1.0f, bm + b * sb, a + b * sa, beta, mine);
      } else {
        gemm_cpu(false, true, M, N, K, 1.0f, a + b * sa, bm + b * sb, beta, mine);
      }
    }
  };
  if (threads <= 1) {
    run(0, 1);
  } else {
#pragma omp parallel num_threads(threads)
    run(omp_get_thread_num(), omp_get_num_threads());
  }
  const float* part = partial.data();
  if (transposed) {  // dw[m][j] += sum_t part_t[j][m]: rows of dw, each a strided gather
    parallel_for(M, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(N, 1)), [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m)
        for (int64_t j = 0; j < N; ++j) {
          float s = 0.0f;
          for (int t = 0; t < threads; ++t) s += part[t * M * N + j * M + m];
          dw[m * N + j] += s;
        }
    });
    return;
  }
  parallel_for(M * N, kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float s = 0.0f;
      for (int t = 0; t < threads; ++t) s += part[t * M * N + i];
      dw[i] += s;
    }
  });
}

}  // namespace

// ---------------------------------------------------------------- im2col / col2im

// The range of output columns ow whose input column ow*s - p + j lies inside [0, W): [lo, hi).
// Everything outside it reads padding. Computing it once per kernel row turns the inner loops into
// plain (for stride 1, contiguous) copies that the compiler vectorises; the element-wise bounds test
// of im2col_value made im2col a third of a U-Net training step.
static inline void valid_cols(const ColGeom& g, int64_t j, int64_t& lo, int64_t& hi) {
  const int64_t first = g.pad - j;  // ow * s >= p - j
  lo = first <= 0 ? 0 : (first + g.stride - 1) / g.stride;
  const int64_t last = g.W - 1 + g.pad - j;  // ow * s <= W - 1 + p - j
  hi = last < 0 ? 0 : std::min<int64_t>(g.Wo, last / g.stride + 1);
  lo = std::min(lo, hi);
}

void im2col_cpu(const float* x, int64_t B, const ColGeom& g, float* col) {
  const int64_t K2 = g.kh * g.kw, L = g.Ho * g.Wo;
  parallel_for(B * g.C, plane_grain(K2 * L), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t b = p / g.C, c = p % g.C;
      const float* img = x + (b * g.C + c) * g.H * g.W;
      float* dst = col + (b * g.C + c) * K2 * L;  // rows (c, i, j) of image b
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          int64_t lo, hi;
          valid_cols(g, j, lo, hi);
          for (int64_t oh = 0; oh < g.Ho; ++oh, dst += g.Wo) {
            const int64_t h = oh * g.stride - g.pad + i;
            if (h < 0 || h >= g.H) {
              std::fill(dst, dst + g.Wo, 0.0f);
              continue;
            }
            const float* src = img + h * g.W - g.pad + j;  // src[ow * s] is column ow's input
            std::fill(dst, dst + lo, 0.0f);
            if (g.stride == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.stride];
            }
            std::fill(dst + hi, dst + g.Wo, 0.0f);
          }
        }
    }
  });
}

// The adjoint of im2col, scattering each column entry back onto the pixel it read. Planes (b, c) are
// independent, so threads never write the same pixel; within a plane the sums run in a fixed order
// (kernel offset, then output position), so results do not depend on the thread count. (The CUDA
// kernel gathers per pixel instead, col2im_value: the same terms in another order.)
void col2im_cpu(const float* col, int64_t B, const ColGeom& g, float* x, bool accumulate) {
  const int64_t K2 = g.kh * g.kw, L = g.Ho * g.Wo;
  parallel_for(B * g.C, plane_grain(K2 * L), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      float* img = x + p * g.H * g.W;
      if (!accumulate) std::fill(img, img + g.H * g.W, 0.0f);
      const float* src = col + p * K2 * L;  // rows (c, i, j) of this plane's image
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          int64_t lo, hi;
          valid_cols(g, j, lo, hi);
          for (int64_t oh = 0; oh < g.Ho; ++oh, src += g.Wo) {
            const int64_t h = oh * g.stride - g.pad + i;
            if (h < 0 || h >= g.H) continue;
            float* dst = img + h * g.W - g.pad + j;
            if (g.stride == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.stride] += src[ow];
            }
          }
        }
    }
  });
}

// ---------------------------------------------------------------- conv2d

namespace {
// 3x3, stride 1, padding 1, channels in multiples of conv3x3_winograd_channels(), on AVX-512 or AVX2: the Winograd kernels (winograd.h).
bool winograd_applies(const Conv2dGeom& g) {
  return g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad == 1 && conv3x3_winograd_applies(g.C, g.O);
}
}  // namespace

bool conv2d_add_fused_cpu(const Conv2dGeom& g) { return winograd_applies(g); }

void conv2d_forward_add_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                            const float* addend, bool per_sample, float* y) {
  GT_CHECK(winograd_applies(g), "conv2d_forward_add_cpu: needs a 3x3, stride-1, padding-1 convolution with channels "
                                "in multiples of " << conv3x3_winograd_channels() << " (AVX-512 or AVX2), got "
                                    << g.C << " -> " << g.O << ", " << g.kh << "x" << g.kw << ", stride " << g.stride);
  const auto U = winograd_weights_cached(w, g.O, g.C, /*flipped=*/false);
  conv3x3_winograd_cpu(x, g.B, g.C, g.H, g.W, U->data(), g.O, bias, y, /*accumulate=*/false, addend,
                       per_sample ? Addend::PerSample : Addend::Full);
}

void conv2d_forward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y) {
  if (winograd_applies(g)) {  // F(4x4, 3x3): 4x fewer multiplications (winograd.h)
    const auto U = winograd_weights_cached(w, g.O, g.C, /*flipped=*/false);
    conv3x3_winograd_cpu(x, g.B, g.C, g.H, g.W, U->data(), g.O, bias, y, /*accumulate=*/false);
    return;
  }
  if (conv3x3_applies(g.kh, g.kw, g.stride, g.pad, g.W)) {  // direct, no column matrix (conv3x3.h)
    Tensor wt = Tensor::empty({g.C * 9 * g.O});
    conv3x3_weights_forward(w, g.O, g.C, wt.data());
    conv3x3_cpu(x, g.B, g.C, g.H, g.W, wt.data(), g.O, bias, y, /*accumulate=*/false);
    return;
  }
  const ColGeom cg = detail::conv2d_col_geom(g);
  const int64_t CK = g.C * g.kh * g.kw, L = g.Ho * g.Wo, xs = g.C * g.H * g.W, ys = g.O * L;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L});
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    const float* cols = x + b0 * xs;
    if (!identity) {
      im2col_cpu(x + b0 * xs, n, cg, col.data());
      cols = col.data();
    }
    // y[b] (O, L) = W (O, CK) col[b] (CK, L)
    gemm_batched_cpu(false, false, n, g.O, L, CK, 1.0f, w, 0, cols, CK * L, 0.0f, y + b0 * ys, ys);
  }
  if (bias) add_bias_cpu(y, bias, g.B, g.O, L);
}

void conv2d_backward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* dy, float* dx,
                         float* dw, float* db, bool dx_overwrite) {
  const ColGeom cg = detail::conv2d_col_geom(g);
  const int64_t CK = g.C * g.kh * g.kw, L = g.Ho * g.Wo, xs = g.C * g.H * g.W, ys = g.O * L;
  const bool wino = winograd_applies(g);
  const bool direct = conv3x3_applies(g.kh, g.kw, g.stride, g.pad, g.W);
  const bool wino_dw = wino && conv3x3_winograd_weight_grad_applies(g.C, g.O, omp_get_max_threads());
  const bool direct_dw = dw && (wino_dw || (direct && conv3x3_weight_grad_applies(g.O, g.C, omp_get_max_threads())));
  // db[o] += sum_{b,l} dy[b,o,l] (the direct weight gradients make it in their pass over dy)
  if (db && !direct_dw) channel_sum_cpu(dy, g.B, g.O, L, db);
  if (dx && wino) {
    // dx (+)= the Winograd convolution of dy with the flipped, channel-swapped kernel.
    const auto U = winograd_weights_cached(w, g.O, g.C, /*flipped=*/true);
    conv3x3_winograd_cpu(dy, g.B, g.O, g.H, g.W, U->data(), g.C, nullptr, dx, /*accumulate=*/!dx_overwrite);
    dx = nullptr;
  }
  if (dw && wino_dw) {
    conv3x3_winograd_weight_grad_cpu(x, dy, g.B, g.C, g.H, g.W, g.O, dw, db);
    dw = nullptr;
  }
  if (dx && direct) {
    // dx (+)= conv3x3(dy) with the flipped, channel-swapped kernel (conv3x3.h).
    Tensor wt = Tensor::empty({g.O * 9 * g.C});
    conv3x3_weights_backward(w, g.O, g.C, wt.data());
    conv3x3_cpu(dy, g.B, g.O, g.H, g.W, wt.data(), g.C, nullptr, dx, /*accumulate=*/!dx_overwrite);
    dx = nullptr;
  }
  if (dw && direct_dw) {
    conv3x3_weight_grad_cpu(x, dy, g.B, g.C, g.H, g.W, g.O, dw, db);
    dw = nullptr;
  }
  if (!dx && !dw) return;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L});
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    const float* dyc = dy + b0 * ys;
    if (dw) {
      // dW (O, CK) += dy[b] (O, L) col[b]^T (L, CK), summed over the batch
      const float* cols = x + b0 * xs;
      if (!identity) {
        im2col_cpu(x + b0 * xs, n, cg, col.data());
        cols = col.data();
      }
      sum_of_products_cpu(n, g.O, CK, L, dyc, ys, cols, CK * L, dw);
    }
    if (dx) {
      // dcol[b] (CK, L) = W^T (CK, O) dy[b] (O, L);  dx[b] += col2im(dcol[b])
      if (identity) {
        gemm_batched_cpu(true, false, n, CK, L, g.O, 1.0f, w, 0, dyc, ys, dx_overwrite ? 0.0f : 1.0f, dx + b0 * xs,
                         xs);
      } else {
        gemm_batched_cpu(true, false, n, CK, L, g.O, 1.0f, w, 0, dyc, ys, 0.0f, col.data(), CK * L);
        col2im_cpu(col.data(), n, cg, dx + b0 * xs, /*accumulate=*/!dx_overwrite);
      }
    }
  }
}

// ---------------------------------------------------------------- conv_transpose2d

void conv_transpose2d_forward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                  float* y) {
  const ColGeom cg = detail::conv_transpose2d_col_geom(g);
  const int64_t CK = g.O * g.kh * g.kw, L = g.H * g.W, xs = g.C * L, ys = g.O * g.Ho * g.Wo;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L});
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    // col[b] (CK, L) = W^T (CK, C) x[b] (C, L), W stored (C, O*kh*kw);  y[b] = col2im(col[b])
    if (identity) {
      gemm_batched_cpu(true, false, n, CK, L, g.C, 1.0f, w, 0, x + b0 * xs, xs, 0.0f, y + b0 * ys, ys);
    } else {
      gemm_batched_cpu(true, false, n, CK, L, g.C, 1.0f, w, 0, x + b0 * xs, xs, 0.0f, col.data(), CK * L);
      col2im_cpu(col.data(), n, cg, y + b0 * ys, /*accumulate=*/false);
    }
  }
  if (bias) add_bias_cpu(y, bias, g.B, g.O, g.Ho * g.Wo);
}

void conv_transpose2d_backward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* dy,
                                   float* dx, float* dw, float* db) {
  const ColGeom cg = detail::conv_transpose2d_col_geom(g);
  const int64_t CK = g.O * g.kh * g.kw, L = g.H * g.W, xs = g.C * L, ys = g.O * g.Ho * g.Wo;
  // db[o] += sum_{b,oh,ow} dy[b,o,oh,ow]
  if (db) channel_sum_cpu(dy, g.B, g.O, g.Ho * g.Wo, db);
  if (!dx && !dw) return;
  const bool identity = is_identity(cg);
  const int64_t nb = detail::conv_chunk(g.B, CK * L);
  Tensor col = identity ? Tensor() : Tensor::empty({nb * CK * L});
  for (int64_t b0 = 0; b0 < g.B; b0 += nb) {
    const int64_t n = std::min(nb, g.B - b0);
    const float* cols = dy + b0 * ys;  // im2col(dy[b]) (CK, L)
    if (!identity) {
      im2col_cpu(dy + b0 * ys, n, cg, col.data());
      cols = col.data();
    }
    // dx[b] (C, L) += W (C, CK) im2col(dy[b]) (CK, L)
    if (dx) gemm_batched_cpu(false, false, n, g.C, L, CK, 1.0f, w, 0, cols, CK * L, 1.0f, dx + b0 * xs, xs);
    // dW (C, CK) += x[b] (C, L) im2col(dy[b])^T (L, CK), summed over the batch
    if (dw) sum_of_products_cpu(n, g.C, CK, L, x + b0 * xs, xs, cols, CK * L, dw);
  }
}

// ---------------------------------------------------------------- upsample_nearest2d

void upsample_nearest2d_forward_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t scale,
                                    float* y) {
  const int64_t Ho = H * scale, Wo = W * scale;
  parallel_for(B * C, plane_grain(Ho * Wo), [&](int64_t begin, int64_t end) {
    // Row by row: input row h widened once into output row h*scale, then copied to the scale - 1
    // rows below it (no per-element division: that form, upsample_nearest2d_value, ran at ~1 ns per
    // output element, 4% of a sampling step).
    for (int64_t p = begin; p < end; ++p) {
      const float* src = x + p * H * W;
      float* dst = y + p * Ho * Wo;
      for (int64_t h = 0; h < H; ++h) {
        float* row = dst + h * scale * Wo;
        if (scale == 2) {
          for (int64_t w = 0; w < W; ++w) row[2 * w] = row[2 * w + 1] = src[h * W + w];
        } else {
          for (int64_t w = 0; w < W; ++w)
            for (int64_t k = 0; k < scale; ++k) row[w * scale + k] = src[h * W + w];
        }
        for (int64_t a = 1; a < scale; ++a) std::memcpy(row + a * Wo, row, (size_t)Wo * sizeof(float));
      }
    }
  });
}

void upsample_nearest2d_backward_cpu(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W,
                                     int64_t scale, float* dx, bool accumulate) {
  const int64_t Ho = H * scale, Wo = W * scale;
  parallel_for(B * C, plane_grain(Ho * Wo), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float* src = dy + p * Ho * Wo;
      float* dst = dx + p * H * W;
      for (int64_t h = 0; h < H; ++h) {
        const float* r0 = src + h * scale * Wo;
        if (scale == 2) {  // the 2 x 2 block of each input pixel, summed in the order of upsample_nearest2d_grad
          const float* r1 = r0 + Wo;
          for (int64_t w = 0; w < W; ++w) {
            const float g = ((r0[2 * w] + r0[2 * w + 1]) + r1[2 * w]) + r1[2 * w + 1];
            dst[h * W + w] = accumulate ? dst[h * W + w] + g : g;
          }
        } else {
          for (int64_t w = 0; w < W; ++w) {
            const float g = upsample_nearest2d_grad(src, W, scale, h, w);
            dst[h * W + w] = accumulate ? dst[h * W + w] + g : g;
          }
        }
      }
    }
  });
}

// ---------------------------------------------------------------- avg_pool2d

void avg_pool2d_forward_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                            float* y) {
  const int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
  parallel_for(B * C, plane_grain(Ho * Wo * k * k), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float* src = x + p * H * W;
      float* dst = y + p * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) dst[oh * Wo + ow] = avg_pool2d_value(src, W, k, s, oh, ow);
    }
  });
}

void avg_pool2d_backward_cpu(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                             float* dx) {
  const int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
  parallel_for(B * C, plane_grain(H * W), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float* src = dy + p * Ho * Wo;
      float* dst = dx + p * H * W;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) dst[h * W + w] += avg_pool2d_grad(src, Ho, Wo, k, s, h, w);
    }
  });
}

}  // namespace gt
