// conv3x3.h: direct 3x3 convolution with stride 1 and padding 1 on the CPU — every 3x3 layer of the
// DDPM U-Net except its stride-2 downsampling — for rows of at most kConv3x3MaxWidth pixels.
//
//   y[b,o,h,w] (+)= bias[o] + sum_{c,i,j} wt[(c*3 + i)*3 + j, o] x[b,c, h-1+i, w-1+j]    (zero outside x)
//
// Why not im2col + GEMM (kernels/conv.cpp): the column matrix copies every input pixel 9 times, and
// the GEMM then packs that matrix once more, so at 28x28 with 32 channels the copies cost about as
// much as the multiply-adds. Here the input is zero-padded once to (C, H+2, S); the input row that
// tap (i, j) needs for output row h is then the contiguous run xp[c, h+i, j : j+W], and a register
// tile of outputs — MR output channels x R output rows x W columns, W in NV vectors (kernels/simd.h:
// 16 floats on AVX-512, 8 on AVX2) —
// accumulates straight from it: per tap, R*NV vector loads and MR broadcasts feed MR*R*NV fused
// multiply-adds. No column matrix, no packing. With AVX-512 the forward tiles run along the
// flattened plane instead (kernels/conv3x3.cpp, "forward on flat planes"): 16 consecutive pixels per
// vector whatever their rows, the taps that would wrap across a row edge masked off the load, so
// that no lane idles when W is not a multiple of 16 (28 of 32 lanes worked at W = 28 with row tiles).
//
// The weights come tap-major, wt (C*9, O), so a tap's MR weights are adjacent:
//   forward:      wt[(c*3+i)*3+j, o] = w[o, c, i, j]                      (conv3x3_weights_forward)
//   input grad:   dx = conv3x3(dy) with wt[(o*3+i)*3+j, c] = w[o, c, 2-i, 2-j]  (conv3x3_weights_backward):
//                 dx[c,h,w] = sum_{o,i,j} w[o,c,i,j] dy[o, h+1-i, w+1-j], a 3x3 convolution of dy
//                 with the kernel flipped and the channel roles swapped.
// The weight gradient is direct too (conv3x3_weight_grad_cpu): dw[o,c,i,j] += sum_{b,h,w}
// dy[b,o,h,w] xp[b,c,h+i,w+j], a tile's 3 taps x MRW output channels summed in vector registers over
// a block of images, and across lanes once at the end.
//
//   std::vector<float> wt(C * 9 * O);
//   gt::conv3x3_weights_forward(w, O, C, wt.data());
//   gt::conv3x3_cpu(x, B, C, H, W, wt.data(), O, bias, y, /*accumulate=*/false);
#pragma once

#include <cstdint>

namespace gt {

constexpr int64_t kConv3x3MaxWidth = 32;

// True when conv3x3_cpu serves this convolution (3x3, stride 1, padding 1, W <= kConv3x3MaxWidth).
bool conv3x3_applies(int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t W);

// wt (C*9, O) from w (O, C, 3, 3).
void conv3x3_weights_forward(const float* w, int64_t O, int64_t C, float* wt);
// wt (O*9, C) from w (O, C, 3, 3): flipped taps, channels swapped (the input-gradient convolution).
void conv3x3_weights_backward(const float* w, int64_t O, int64_t C, float* wt);

// y (B, O, H, W) = (or += when accumulate) conv3x3(x (B, C, H, W)) with tap-major weights wt (C*9, O);
// bias (O) or nullptr. Threads split the (image, channel tile) pairs. With AVX-512 the tiles run
// along the flattened plane (16 consecutive pixels per vector whatever their rows, the taps that
// would wrap across a row edge masked off: no idle lanes at W = 28 or 14); otherwise
// conv3x3_rows_cpu.
void conv3x3_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, const float* wt, int64_t O,
                 const float* bias, float* y, bool accumulate);
// The same with row tiles (MR channels x R rows x NV vectors per row; any vector ISA): the kernel
// without AVX-512, kept callable so that tests can check the two against each other.
void conv3x3_rows_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, const float* wt, int64_t O,
                      const float* bias, float* y, bool accumulate);

// dw (O, C, 3, 3) += the weight gradient of conv3x3 (stride 1, padding 1): x (B, C, H, W), dy (B, O, H, W).
// Threads split the images; each sums 16-lane partials of dw (O*C*9*16 floats per thread), added in
// thread order. conv3x3_weight_grad_applies says whether those partials stay small enough
// (kConv3x3MaxPartialFloats over all threads); above it, use im2col + GEMM.
constexpr int64_t kConv3x3MaxPartialFloats = int64_t(1) << 24;  // 64 MiB
bool conv3x3_weight_grad_applies(int64_t O, int64_t C, int threads);
// db (O) += the bias gradient sum_{b,h,w} dy[b,o,h,w] when not null: computed in the pass that lays
// out dy for the weight gradient, so dy is read once for both.
void conv3x3_weight_grad_cpu(const float* x, const float* dy, int64_t B, int64_t C, int64_t H, int64_t W, int64_t O,
                             float* dw, float* db = nullptr);

}  // namespace gt
