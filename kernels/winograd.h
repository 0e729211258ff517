// winograd.h: the 3x3 convolution (stride 1, padding 1) by Winograd's minimal filtering F(4x4, 3x3)
// (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks") on AVX-512 or AVX2 + FMA
// (kernels/simd.h) — the U-Net's ResBlock and upsampling convolutions, whose channel counts are
// multiples of 16.
//
// One 4x4 block of outputs of one output channel o, from the 6x6 input patch d_c that covers it in
// each input channel c (rows 4ty-1 .. 4ty+4, columns 4tx-1 .. 4tx+4 of the zero-padded input):
//
//   Y = A^T [ sum_c (G w[o,c] G^T) ⊙ (B^T d_c B) ] A          (⊙: elementwise over the 6x6 = 36 points)
//
// with the constant matrices of the interpolation points 0, 1, -1, 2, -2 and infinity:
//
//   B^T = [4  0 -5  0 1 0]    G = [ 1/4     0     0 ]    A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]        [-1/6  -1/6  -1/6 ]          [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]        [-1/6   1/6  -1/6 ]          [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]        [1/24  1/12   1/6 ]          [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]        [1/24 -1/12   1/6 ]
//         [0  4  0 -5 0 1]        [ 0      0     1  ]
//
// So per point xi of the 36, the sum over c is a matrix product over the tiles t:
//   M[xi] (tiles, O) = V[xi] (tiles, C) U[xi] (C, O),  V = B^T d B,  U = G w G^T   (winograd_weights)
// 36 products of C*O multiply-adds per 16 outputs, against 9*16 = 144 for the direct kernel: 4x
// fewer multiplications where the 4x4 tiles cover the plane exactly (28x28), 3.5x at 14x14 (on
// the canvas below; 3.1x with 4 x 4 tiles per image). The transforms themselves are a few dozen
// additions per 6x6 patch, run on vectors of L channels (L = kSimdLanes: 16 on AVX-512, 8 on AVX2).
//
// Tiling: where 4 does not divide the plane, tiles on their own images waste outputs (at 14x14,
// 16 tiles make 16x16 outputs of which 196 are kept), so images are laid side by side and stacked
// on a canvas that shares the zero borders between neighbours: one zero column (row) is the right
// (bottom) padding of one image and the left (top) padding of the next. The outputs that land on
// a shared border are computed and dropped. The U-Net's batch of 64 at 14x14 takes 900 tiles on
// 16 x 4 images instead of 1024; at 28x28 each image stays alone (conv3x3_winograd_tiling).
//
// Layout: channels go in the vector lanes. Tiles are processed in groups of whole tile rows,
// small enough for their V and M (36 x group x (C + O) floats) to stay in the 1 MB L2 cache: for
// each L-channel block the 6 input rows of a tile row are transposed from NCHW into an L1 strip
// of vectors of L channels with a zero border (TY x TX tiles per canvas), so that a
// patch is 36 plain vector loads; the group's 36 products run on gentape's GEMM kernel
// (kernels/gemm_simd.h); the output transform writes a strip of 4 rows in the same layout, which
// is transposed straight back into NCHW with the bias (and an optional addend). Every output is
// computed in a fixed order, the same for any thread count.
//
// Input gradient: dx is the convolution of dy with the flipped, channel-swapped kernel
// (kernels/conv3x3.h), so the same function runs it on U of conv3x3_weights_backward's weights.
//
// Weight gradient (the adjoint of each step above, conv3x3_winograd_weight_grad_cpu):
//   dM = A dY A^T per tile and output channel (dY: the tile's 4x4 block of dy, zero past H, W),
//   dU[xi] (C, O) = sum_t V[xi][t]^T dM[xi][t]     (36 products with K = the tiles: a GEMM),
//   dw[o,c] += G^T dU[o,c] G.
//
// Accuracy: the transforms multiply by constants up to 8 and divide by up to 24, so rounding errors
// are larger than the direct sum's: about 1e-6 relative to sum |w| |x| (tests/test_winograd.cpp
// measures it against a double loop at the U-Net's sizes). cuDNN and oneDNN use the same F(4x4, 3x3).
//
//   std::vector<float> wt(C * 9 * O), U(36 * C * O);
//   gt::conv3x3_weights_forward(w, O, C, wt.data());
//   gt::winograd_weights(wt.data(), C, O, U.data());
//   gt::conv3x3_winograd_cpu(x, B, C, H, W, U.data(), O, bias, y, /*accumulate=*/false);
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/aligned.h"

namespace gt {

constexpr int kWinogradPoints = 36;  // 6 x 6

// Which algorithm conv2d uses for a 3x3 stride-1 convolution whose channels suit both: Winograd
// when available (the default), or the direct kernel. Read once from the environment variable
// GENTAPE_CONV3X3 (winograd | direct) and settable here (benchmarks time both).
enum class Conv3x3Algo { Winograd, Direct };
Conv3x3Algo conv3x3_algo();
void set_conv3x3_algo(Conv3x3Algo algo);

// True when this build has the kernels (compiled with AVX-512F, or AVX2 and FMA).
bool conv3x3_winograd_available();
// The channel counts the kernels take are multiples of this: the vector width, 16 (AVX-512) or 8 (AVX2).
int conv3x3_winograd_channels();
// True when conv2d sends a 3x3, stride 1, padding 1 convolution C -> O here: available, C and O
// multiples of conv3x3_winograd_channels(), and conv3x3_algo() is Winograd.
bool conv3x3_winograd_applies(int64_t C, int64_t O);

// U (36, C, O) = G w G^T for every (c, o), from tap-major weights wt (C*9, O)
// (conv3x3_weights_forward, or conv3x3_weights_backward for the input gradient with C and O swapped).
void winograd_weights(const float* wt, int64_t C, int64_t O, float* U);

// U of the weights w (O, C, 3, 3) for the forward convolution C -> O, or, when `flipped`, for the
// input gradient's convolution O -> C (conv3x3_weights_backward's kernel), through a small cache:
// an entry per (w pointer, direction) keeps a copy of w and is used only while w's contents are
// unchanged (compared exactly), so sampling, whose weights are fixed, transforms each kernel once,
// and a training step, whose weights change, recomputes it in place without allocating. At most
// kWinogradCacheEntries entries, the least recently used replaced.
constexpr int kWinogradCacheEntries = 64;
std::shared_ptr<const AlignedVector> winograd_weights_cached(const float* w, int64_t O, int64_t C, bool flipped);

// y (B, O, H, W) = (or += when accumulate) conv3x3(x (B, C, H, W)) + bias (O, or nullptr) [+ addend],
// with U from winograd_weights. C and O multiples of conv3x3_winograd_channels(). The addend is added in the same store (no
// separate pass over y): Addend::PerSample, addend (B, O), one value per image and channel (the
// U-Net's time embedding); Addend::Full, addend (B, O, H, W) (a residual connection).
enum class Addend { None, PerSample, Full };
void conv3x3_winograd_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, const float* U, int64_t O,
                          const float* bias, float* y, bool accumulate, const float* addend = nullptr,
                          Addend kind = Addend::None);

// How the tiles cover a batch of B images of H x W (the same for any channel counts): px images
// side by side sharing their zero columns, and, when `stacked`, those rows of images stacked
// sharing their zero rows; `tiles` 4x4 output tiles in all. Chosen for the fewest tiles (B * 4 * 4
// for 14x14 images alone; 900 instead of 1024 for the U-Net's batch of 64 at 14x14).
struct WinogradTiling {
  int64_t px;
  bool stacked;
  int64_t tiles;
};
WinogradTiling conv3x3_winograd_tiling(int64_t B, int64_t H, int64_t W);

// Both directions use at most kWinogradMaxThreads threads. Whether the weight gradient's per-thread
// partials dU (36 C O floats per thread) stay within kWinogradMaxPartialFloats over all threads (64 MiB; the
// U-Net's largest, 128 -> 64, needs 1.2 MB per thread); above it conv2d uses im2col + GEMM.
constexpr int kWinogradMaxThreads = 64;
constexpr int64_t kWinogradMaxPartialFloats = int64_t(1) << 24;
bool conv3x3_winograd_weight_grad_applies(int64_t C, int64_t O, int threads);

// dw (O, C, 3, 3) += the weight gradient of the convolution above, and db (O) += sum_{b,h,w} dy when
// not null: x (B, C, H, W), dy (B, O, H, W). Threads split the tiles, each summing into its own dU;
// the partials are added in thread order (deterministic for a given thread count).
void conv3x3_winograd_weight_grad_cpu(const float* x, const float* dy, int64_t B, int64_t C, int64_t H, int64_t W,
                                      int64_t O, float* dw, float* db = nullptr);

}  // namespace gt
