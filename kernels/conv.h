// conv.h: 2-D convolution, transposed convolution, nearest upsampling and average pooling on raw
// NCHW float32 pointers.
//
// conv2d (PyTorch's Conv2d, cross-correlation):
//   y[b,o,oh,ow] = bias[o] + sum_{c,i,j} w[o,c,i,j] x[b,c, oh*s - p + i, ow*s - p + j]
// computed as im2col + GEMM: col[b] (C*kh*kw, Ho*Wo) holds the receptive fields, y[b] = W col[b]
// with W viewed as (O, C*kh*kw). Its derivatives:
//   dW += sum_b dy[b] col[b]^T,   dcol[b] = W^T dy[b],   dx[b] += col2im(dcol[b]),
//   db[o] += sum_{b,oh,ow} dy[b,o,oh,ow]
// where col2im is the adjoint of im2col (it sums every column entry back onto the pixel it read).
//
// conv_transpose2d (PyTorch's ConvTranspose2d) is the adjoint of conv2d in its input:
//   y[b,o, h*s - p + i, w*s - p + j] += x[b,c,h,w] w[c,o,i,j]   (+ bias[o]),
//   Ho = (H-1)*s - 2p + kh + output_padding
// so its forward is conv2d's data-backward (col = W^T x[b], then col2im) and its backward uses
// im2col of dy: dx[b] += W im2col(dy[b]), dW += sum_b x[b] im2col(dy[b])^T.
//
// upsample_nearest2d: y[b,c,h,w] = x[b,c, h/s, w/s]; dx[b,c,h,w] += sum of dy over its s x s block.
// avg_pool2d (no padding): y[b,c,oh,ow] = 1/k^2 sum_{i,j<k} x[b,c, oh*s+i, ow*s+j]; dx gets dy/k^2
// from every window that covers it.
//
// Usage (benchmarks call these directly):
//   gt::Conv2dGeom g = gt::conv2d_geom(B, C, H, W, O, 3, 3, /*stride*/ 1, /*pad*/ 1);
//   gt::conv2d_forward_cpu(g, x, w, bias, y);                   // y (B, O, g.Ho, g.Wo) written
//   gt::conv2d_backward_cpu(g, x, w, dy, dx, dw, nullptr);      // dx, dw accumulated; no bias grad
//
// Forward outputs are written (=); backward gradients are accumulated (+=), and any gradient
// pointer may be nullptr to skip it. Workspaces (the column buffer) come from Tensor::empty, i.e.
// the caching allocator; the batch is processed in chunks so the column buffer stays below
// kConvColMaxFloats. CUDA versions take device pointers and run asynchronously on gt::cuda::stream().
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace gt {

// ---------------------------------------------------------------- geometry

// One convolution's sizes. For conv2d: x (B, C, H, W), w (O, C, kh, kw), y (B, O, Ho, Wo).
// For conv_transpose2d: x (B, C, H, W), w (C, O, kh, kw), y (B, O, Ho, Wo). stride s, padding p.
struct Conv2dGeom {
  int64_t B = 0, C = 0, H = 0, W = 0;
  int64_t O = 0, Ho = 0, Wo = 0;
  int64_t kh = 0, kw = 0, stride = 1, pad = 0;
};
// Validate (stride >= 1, padding >= 0, non-empty output) and compute Ho, Wo; a gt::Error names the
// sizes. conv2d: Ho = (H + 2p - kh) / s + 1.
Conv2dGeom conv2d_geom(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh, int64_t kw,
                       int64_t stride, int64_t pad);
// conv_transpose2d: Ho = (H-1)*s - 2p + kh + output_padding, with 0 <= output_padding < stride.
Conv2dGeom conv_transpose2d_geom(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                                 int64_t kw, int64_t stride, int64_t pad, int64_t output_padding);

// The column buffer's cap, in floats (64 MiB): larger batches are processed in chunks.
constexpr int64_t kConvColMaxFloats = int64_t(1) << 24;

// im2col's view of one image: image (C, H, W), a kh x kw kernel sliding with `stride` over the
// image padded by `pad`, landing on Ho x Wo positions. Its columns are (C*kh*kw, Ho*Wo), row
// (c*kh + i)*kw + j, column oh*Wo + ow.
struct ColGeom {
  int64_t C = 0, H = 0, W = 0, kh = 0, kw = 0, stride = 1, pad = 0, Ho = 0, Wo = 0;
};

// col[(c,i,j), (oh,ow)] = x[c, oh*s - p + i, ow*s - p + j], or 0 in the padding. x: one image (C, H, W).
GT_HD inline float im2col_value(const float* x, const ColGeom& g, int64_t c, int64_t i, int64_t j,
                                int64_t oh, int64_t ow) {
  const int64_t h = oh * g.stride - g.pad + i;
  const int64_t w = ow * g.stride - g.pad + j;
  return (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[(c * g.H + h) * g.W + w] : 0.0f;
}

// The adjoint of im2col at pixel (c, h, w): the sum of every column entry that read it, i.e. over
// the (oh, ow) with 0 <= h + p - oh*s < kh (same for w), at kernel offset i = h + p - oh*s.
// Gathering per pixel (instead of scattering per column entry) needs no atomics and sums in a fixed
// order, so CPU and CUDA agree. col: one image's columns (C*kh*kw, Ho*Wo).
GT_HD inline float col2im_value(const float* col, const ColGeom& g, int64_t c, int64_t h, int64_t w) {
  const int64_t hp = h + g.pad, wp = w + g.pad;
  const int64_t oh0 = hp < g.kh ? 0 : (hp - g.kh) / g.stride + 1;
  const int64_t ow0 = wp < g.kw ? 0 : (wp - g.kw) / g.stride + 1;
  const int64_t oh1 = hp / g.stride + 1 < g.Ho ? hp / g.stride + 1 : g.Ho;  // exclusive
  const int64_t ow1 = wp / g.stride + 1 < g.Wo ? wp / g.stride + 1 : g.Wo;
  const int64_t L = g.Ho * g.Wo;
  float s = 0.0f;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const int64_t i = hp - oh * g.stride;
    for (int64_t ow = ow0; ow < ow1; ++ow) {
      const int64_t j = wp - ow * g.stride;
      s += col[((c * g.kh + i) * g.kw + j) * L + oh * g.Wo + ow];
    }
  }
  return s;
}

// y = x[h/s, w/s] for one plane x (H, W) upsampled by s.
GT_HD inline float upsample_nearest2d_value(const float* x, int64_t W, int64_t scale, int64_t oh, int64_t ow) {
  return x[(oh / scale) * W + ow / scale];
}
// dL/dx[h, w] = sum of dy over its s x s block; dy: one plane (H*s, W*s).
GT_HD inline float upsample_nearest2d_grad(const float* dy, int64_t W, int64_t scale, int64_t h, int64_t w) {
  const int64_t Wo = W * scale;
  float s = 0.0f;
  for (int64_t a = 0; a < scale; ++a)
    for (int64_t b = 0; b < scale; ++b) s += dy[(h * scale + a) * Wo + w * scale + b];
  return s;
}

// The mean of the k x k window at (oh, ow); x: one plane (H, W).
GT_HD inline float avg_pool2d_value(const float* x, int64_t W, int64_t k, int64_t s, int64_t oh, int64_t ow) {
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) sum += x[(oh * s + i) * W + ow * s + j];
  return sum / (float)(k * k);
}
// dL/dx[h, w] = 1/k^2 sum of dy over the windows covering (h, w): 0 <= h - oh*s < k, oh < Ho.
// dy: one plane (Ho, Wo).
GT_HD inline float avg_pool2d_grad(const float* dy, int64_t Ho, int64_t Wo, int64_t k, int64_t s, int64_t h,
                                   int64_t w) {
  const int64_t oh0 = h < k ? 0 : (h - k) / s + 1, ow0 = w < k ? 0 : (w - k) / s + 1;
  const int64_t oh1 = h / s + 1 < Ho ? h / s + 1 : Ho, ow1 = w / s + 1 < Wo ? w / s + 1 : Wo;
  float sum = 0.0f;
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t ow = ow0; ow < ow1; ++ow) sum += dy[oh * Wo + ow];
  return sum / (float)(k * k);
}

// ---------------------------------------------------------------- CPU

// col (B, C*kh*kw, Ho*Wo) = im2col(x (B, C, H, W)).
void im2col_cpu(const float* x, int64_t B, const ColGeom& g, float* col);
// x (B, C, H, W) (+)= col2im(col (B, C*kh*kw, Ho*Wo)); `accumulate` false overwrites x.
void col2im_cpu(const float* col, int64_t B, const ColGeom& g, float* x, bool accumulate);

// x (B, C, H, W), w (O, C, kh, kw), bias (O) or nullptr -> y (B, O, Ho, Wo).
void conv2d_forward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y);
// Whether conv2d_forward_add_cpu serves g: a 3x3, stride-1, padding-1 convolution on the Winograd
// kernels (kernels/winograd.h), whose store can add the addend at no extra pass.
bool conv2d_add_fused_cpu(const Conv2dGeom& g);
// y (B, O, Ho, Wo) = conv2d(x) + bias + addend, addend (B, O) per image and channel when per_sample,
// else (B, O, Ho, Wo). Requires conv2d_add_fused_cpu(g).
void conv2d_forward_add_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                            const float* addend, bool per_sample, float* y);
// dy (B, O, Ho, Wo) -> dx (B, C, H, W) +=, dw (O, C, kh, kw) +=, db (O) +=; each may be nullptr.
// dx_overwrite: dx is written instead (its old contents, possibly garbage, are never read) — the
// first gradient into a fresh buffer needs no zero-fill (autograd's grad_target).
void conv2d_backward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* dy, float* dx,
                         float* dw, float* db, bool dx_overwrite = false);
// x (B, C, H, W), w (C, O, kh, kw), bias (O) or nullptr -> y (B, O, Ho, Wo).
void conv_transpose2d_forward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                  float* y);
// dy (B, O, Ho, Wo) -> dx (B, C, H, W) +=, dw (C, O, kh, kw) +=, db (O) +=; each may be nullptr.
void conv_transpose2d_backward_cpu(const Conv2dGeom& g, const float* x, const float* w, const float* dy,
                                   float* dx, float* dw, float* db);

// x (B, C, H, W) -> y (B, C, H*scale, W*scale).
void upsample_nearest2d_forward_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t scale,
                                    float* y);
// dy (B, C, H*scale, W*scale) -> dx (B, C, H, W) += (= with accumulate false: dx's first gradient
// written, no zero fill first).
void upsample_nearest2d_backward_cpu(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W,
                                     int64_t scale, float* dx, bool accumulate = true);
// x (B, C, H, W) -> y (B, C, (H-k)/s+1, (W-k)/s+1).
void avg_pool2d_forward_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                            float* y);
// dy (B, C, (H-k)/s+1, (W-k)/s+1) -> dx (B, C, H, W) +=.
void avg_pool2d_backward_cpu(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                             float* dx);

// ---------------------------------------------------------------- CUDA (same contracts, device pointers)

void im2col_cuda(const float* x, int64_t B, const ColGeom& g, float* col);
void col2im_cuda(const float* col, int64_t B, const ColGeom& g, float* x, bool accumulate);
void conv2d_forward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* dy, float* dx,
                          float* dw, float* db);
void conv_transpose2d_forward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* bias,
                                   float* y);
void conv_transpose2d_backward_cuda(const Conv2dGeom& g, const float* x, const float* w, const float* dy,
                                    float* dx, float* dw, float* db);
void upsample_nearest2d_forward_cuda(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t scale,
                                     float* y);
void upsample_nearest2d_backward_cuda(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W,
                                      int64_t scale, float* dx);
void avg_pool2d_forward_cuda(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                             float* y);
void avg_pool2d_backward_cuda(const float* dy, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k,
                              int64_t s, float* dx);

namespace detail {
// ColGeom of conv2d's input side (image x, columns at the output positions) and of
// conv_transpose2d's output side (image y, columns at the input positions).
ColGeom conv2d_col_geom(const Conv2dGeom& g);
ColGeom conv_transpose2d_col_geom(const Conv2dGeom& g);
// How many images per chunk keep a column buffer of per_image floats under kConvColMaxFloats.
int64_t conv_chunk(int64_t B, int64_t per_image);
}  // namespace detail

}  // namespace gt
