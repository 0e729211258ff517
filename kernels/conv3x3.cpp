// conv3x3.cpp: the direct 3x3 convolution (equations and the reason for it in conv3x3.h).
//
// The row tiles are written on kernels/simd.h's vectors (16 floats on AVX-512, 8 on AVX2, 4 in a
// build with neither); the tile sizes below keep the accumulators in registers for each: 16
// (forward) or 24 (weight gradient) of AVX-512's 32 registers, 8 or 9 of AVX2's 16. (Until
// 2026-12-03 they were GCC vector extensions of 16 floats whatever the target: on AVX2 every
// accumulator then lived on the stack, and the weight gradients of conv_in and conv_out ran at 6
// GFLOP/s.) The AVX-512 forward on flat planes below uses its intrinsics directly. This file is
// compiled with -ffp-contract=fast (CMakeLists.txt).
#include "kernels/conv3x3.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/tensor.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

#include <omp.h>

namespace gt {

namespace {

constexpr int kLanes = kSimdLanes;  // floats per vector of the row tiles
// Vectors per padded row: NV vectors hold W <= kConv3x3MaxWidth columns.
constexpr int kMaxNV = (int)((kConv3x3MaxWidth + kLanes - 1) / kLanes);
int row_vectors(int64_t W) { return (int)((W + kLanes - 1) / kLanes); }

#if defined(__AVX512F__)
constexpr int kRegsForAcc = 16;  // of 32 vector registers
#else
constexpr int kRegsForAcc = 8;   // of 16 (AVX2's ymm, or SSE's xmm): + the loaded row + a broadcast
#endif

// f(std::integral_constant<int, NV>) for the runtime NV in 1..kMaxNV.
template <int N = 1, class F>
void with_nv(int nv, F&& f) {
  if constexpr (N <= kMaxNV) {
    if (nv == N) {
      f(std::integral_constant<int, N>{});
      return;
    }
    with_nv<N + 1>(nv, std::forward<F>(f));
  }
}

// One tile: output channels [o0, o0 + MR), rows [h0, h0 + R), all W columns of one image.
// xp: the image padded to (C, H+2, S); wt (C*9, O) tap-major; y: the image's output (O, H, W).
template <int NV, int MR, int R>
void tile(const float* xp, int64_t C, int64_t S, int64_t plane, const float* wt, int64_t O, int64_t o0, int64_t h0,
          float* y, int64_t H, int64_t W, const float* bias, bool accumulate) {
  vfloat acc[MR][R][NV];
  for (int t = 0; t < MR; ++t)
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[t][r][v] = vzero();
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = xp + c * plane + h0 * S;
    const float* wc = wt + c * 9 * O + o0;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        const float* wk = wc + (i * 3 + j) * O;
        vfloat xv[R][NV];
        for (int r = 0; r < R; ++r)
          for (int v = 0; v < NV; ++v) xv[r][v] = vload(xc + (r + i) * S + j + v * kLanes);
        for (int t = 0; t < MR; ++t) {
          const vfloat b = vset1(wk[t]);
          for (int r = 0; r < R; ++r)
            for (int v = 0; v < NV; ++v) acc[t][r][v] = vfmadd(b, xv[r][v], acc[t][r][v]);
        }
      }
  }
  for (int t = 0; t < MR; ++t) {
    const float bv = bias ? bias[o0 + t] : 0.0f;
    for (int r = 0; r < R; ++r) {
      float out[NV * kLanes];
      for (int v = 0; v < NV; ++v) vstore(out + v * kLanes, acc[t][r][v]);
      float* row = y + (o0 + t) * H * W + (h0 + r) * W;
      if (accumulate) {
        for (int64_t w = 0; w < W; ++w) row[w] += out[w] + bv;
      } else {
        for (int64_t w = 0; w < W; ++w) row[w] = out[w] + bv;
      }
    }
  }
}

// Every tile of channels [o0, o0 + MR) of one image, rows in blocks of R with a 1-row tail.
template <int NV, int MR, int R>
void channel_block(const float* xp, int64_t C, int64_t S, int64_t plane, const float* wt, int64_t O, int64_t o0,
                   float* y, int64_t H, int64_t W, const float* bias, bool accumulate) {
  int64_t h = 0;
  for (; h + R <= H; h += R) tile<NV, MR, R>(xp, C, S, plane, wt, O, o0, h, y, H, W, bias, accumulate);
  for (; h < H; ++h) tile<NV, MR, 1>(xp, C, S, plane, wt, O, o0, h, y, H, W, bias, accumulate);
}

template <int NV>
void run(const float* xpad, int64_t B, int64_t C, int64_t H, int64_t W, int64_t S, const float* wt, int64_t O,
         const float* bias, float* y, bool accumulate) {
  // MR output channels x R rows x NV vectors of accumulators, within the register budget.
  constexpr int R = kRegsForAcc >= 8 && NV == 1 ? 2 : 1;
  constexpr int MR = kRegsForAcc / (R * NV) > 0 ? kRegsForAcc / (R * NV) : 1;
  const int64_t plane = (H + 2) * S;
  const int64_t tiles = (O + MR - 1) / MR;
  // One task per (image, channel tile): ~9*C*MR*H*W multiply-adds each.
  const int64_t work = 9 * C * MR * H * W;
  parallel_for(B * tiles, std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(work, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t task = begin; task < end; ++task) {
                   const int64_t b = task / tiles, o0 = task % tiles * MR;
                   const float* xp = xpad + b * C * plane;
                   float* yb = y + b * O * H * W;
                   if (o0 + MR <= O) {
                     channel_block<NV, MR, R>(xp, C, S, plane, wt, O, o0, yb, H, W, bias, accumulate);
                   } else {
                     for (int64_t o = o0; o < O; ++o)
                       channel_block<NV, 1, R>(xp, C, S, plane, wt, O, o, yb, H, W, bias, accumulate);
                   }
                 }
               });
}

#if defined(__AVX512F__)
// ---- forward on flat planes (AVX-512) ----
//
// The row tiles above give each output row NV whole vectors: 28 of 32 lanes do work at W = 28, 14
// of 16 at W = 14. Here a plane of H*W outputs is one run of pixels, cut into vectors of 16
// consecutive ones whatever their rows (784 = 49 x 16 at 28 x 28). The input plane is laid out
// flat too, with W + 1 zeros before and after (xf): output pixel p's tap (i, j) is then
// xf[p + i W + j] — rows -1 and H fall into the zeros — except that tap j = 0 at column 0 and tap
// j = 2 at column W - 1 would wrap into the neighbouring row: those lanes are masked off the load.
constexpr int kFlatMR = 8;   // output channels per tile
constexpr int kFlatNV = 3;   // vectors of 16 pixels per tile: 24 accumulators

template <int MR, int NV>
void flat_tile(const float* xf, int64_t C, int64_t P, const float* wt, int64_t O, int64_t o0, int64_t p0,
               int64_t HW, int64_t W, float* y, const float* bias, bool accumulate) {
  // xf: this image's padded planes (C, P); y: its output (O, HW); pixels [p0, p0 + 16 NV).
  __mmask16 left[NV], right[NV], live[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    unsigned l = 0, r = 0, a = 0;
    for (int lane = 0; lane < kLanes; ++lane) {
      const int64_t p = p0 + v * kLanes + lane;
      if (p >= HW) continue;
      const int64_t w = p % W;
      a |= 1u << lane;
      if (w != 0) l |= 1u << lane;
      if (w != W - 1) r |= 1u << lane;
    }
    left[v] = (__mmask16)l;
    right[v] = (__mmask16)r;
    live[v] = (__mmask16)a;
  }
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int t = 0; t < MR; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = xf + c * P + p0;
    const float* wc = wt + c * 9 * O + o0;
#pragma GCC unroll 3
    for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
      for (int j = 0; j < 3; ++j) {
        const float* src = xc + i * W + j;
        __m512 xv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          xv[v] = j == 0   ? _mm512_maskz_loadu_ps(left[v], src + v * kLanes)
                  : j == 2 ? _mm512_maskz_loadu_ps(right[v], src + v * kLanes)
                           : _mm512_loadu_ps(src + v * kLanes);  // lanes past HW read zeros, never stored
        const float* wk = wc + (i * 3 + j) * O;
#pragma GCC unroll 8
        for (int t = 0; t < MR; ++t) {
          const __m512 b = _mm512_set1_ps(wk[t]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[t][v] = _mm512_fmadd_ps(b, xv[v], acc[t][v]);
        }
      }
  }
#pragma GCC unroll 8
  for (int t = 0; t < MR; ++t) {
    const __m512 b = _mm512_set1_ps(bias ? bias[o0 + t] : 0.0f);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* dst = y + (o0 + t) * HW + p0 + v * kLanes;
      __m512 r = _mm512_add_ps(acc[t][v], b);
      if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(live[v], dst));
      _mm512_mask_storeu_ps(dst, live[v], r);
    }
  }
}

// Every pixel tile of channels [o0, o0 + MR) of one image; the last tile has 1..kFlatNV vectors.
template <int MR>
void flat_channels(const float* xf, int64_t C, int64_t P, const float* wt, int64_t O, int64_t o0, int64_t HW,
                   int64_t W, float* y, const float* bias, bool accumulate) {
  constexpr int64_t step = kFlatNV * kLanes;
  int64_t p0 = 0;
  for (; p0 + step <= HW; p0 += step) flat_tile<MR, kFlatNV>(xf, C, P, wt, O, o0, p0, HW, W, y, bias, accumulate);
  static_assert(kFlatNV == 3, "the tail below handles 1..3 vectors");
  switch ((HW - p0 + kLanes - 1) / kLanes) {  // 0..kFlatNV vectors left, the last one possibly partial
    case 1: flat_tile<MR, 1>(xf, C, P, wt, O, o0, p0, HW, W, y, bias, accumulate); break;
    case 2: flat_tile<MR, 2>(xf, C, P, wt, O, o0, p0, HW, W, y, bias, accumulate); break;
    case 3: flat_tile<MR, 3>(xf, C, P, wt, O, o0, p0, HW, W, y, bias, accumulate); break;
    default: break;
  }
}

// Planes (n, H*W) -> (n, P), P = H*W + 2(W+1) + 16: W+1 zeros, the pixels, W+1 zeros, and 16 more
// so that a last vector's unmasked centre-tap load stays inside the plane.
int64_t flat_plane(int64_t H, int64_t W) { return H * W + 2 * (W + 1) + kLanes; }
void pad_flat(const float* x, int64_t n, int64_t H, int64_t W, float* xf) {
  const int64_t HW = H * W, P = flat_plane(H, W);
  parallel_for(n, std::max<int64_t>(1, kElementwiseGrain / P), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      float* dst = xf + q * P;
      std::fill(dst, dst + W + 1, 0.0f);
      std::memcpy(dst + W + 1, x + q * HW, (size_t)HW * sizeof(float));
      std::fill(dst + W + 1 + HW, dst + P, 0.0f);
    }
  });
}

void run_flat(const float* xf, int64_t B, int64_t C, int64_t H, int64_t W, const float* wt, int64_t O,
              const float* bias, float* y, bool accumulate) {
  const int64_t HW = H * W, P = flat_plane(H, W);
  const int64_t tiles = (O + kFlatMR - 1) / kFlatMR;
  const int64_t work = 9 * C * kFlatMR * HW;  // multiply-adds per (image, channel tile) task
  parallel_for(B * tiles, std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(work, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t task = begin; task < end; ++task) {
                   const int64_t b = task / tiles, o0 = task % tiles * kFlatMR;
                   const float* xb = xf + b * C * P;
                   float* yb = y + b * O * HW;
                   if (o0 + kFlatMR <= O) {
                     flat_channels<kFlatMR>(xb, C, P, wt, O, o0, HW, W, yb, bias, accumulate);
                   } else {
                     for (int64_t o = o0; o < O; ++o) flat_channels<1>(xb, C, P, wt, O, o, HW, W, yb, bias, accumulate);
                   }
                 }
               });
}
#endif

// Planes (n, H, W) -> (n, H+2, S): a zero border of one pixel, rows of S >= W+2 floats, zeros after
// the row's W+1 entries. A load of NV vectors at tap offset j <= 2 then stays inside its row, and the
// lanes past W read zeros or real pixels (finite numbers: never stored, or multiplied by 0).
void pad_planes(const float* x, int64_t n, int64_t H, int64_t W, int64_t S, float* xp) {
  const int64_t plane = (H + 2) * S;
  parallel_for(n, std::max<int64_t>(1, kElementwiseGrain / plane), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      float* dst = xp + p * plane;
      const float* src = x + p * H * W;
      std::fill(dst, dst + S, 0.0f);                    // row -1
      std::fill(dst + (H + 1) * S, dst + plane, 0.0f);  // row H
      for (int64_t h = 0; h < H; ++h) {
        float* row = dst + (h + 1) * S;
        row[0] = 0.0f;
        std::memcpy(row + 1, src + h * W, (size_t)W * sizeof(float));
        std::fill(row + 1 + W, row + S, 0.0f);
      }
    }
  });
}

// ---- weight gradient: dw[o, c, i, j] += sum_{b,h,w} dy[b,o,h,w] xp[b,c,h+i,w+j] ----
//
// A tile is MRW output channels x one input channel x one kernel row i (its 3 taps j) over a block
// of images. Its 3*MRW accumulators are 16-lane partial sums over the columns w: a row of NV vectors
// is walked one vector at a time into the same accumulators, so the tile does not grow with the
// width. At the end of the tile they are added into a per-thread buffer holding one 16-lane vector
// per weight (dwv), summed across lanes once at the very end. dy comes padded to rows of
// V = NV*16 floats with zeros past W, so the lanes past W add nothing.
template <int NV, int MRW>
void wgrad_tile(const float* xc, const float* dyo, int64_t nimg, int64_t xs, int64_t ys, int64_t H, int64_t S,
                float* dwv, int64_t C) {
  // xc: padded plane (b, c) from row i; dyo: the MRW planes of dy (b, o0..); the block's images are
  // xs / ys floats apart; dwv: the partials of weight (o0, c, i, 0), consecutive o's C*9 weights apart.
  constexpr int64_t V = NV * kLanes;
  vfloat acc[MRW][3];
  for (int t = 0; t < MRW; ++t)
    for (int j = 0; j < 3; ++j) acc[t][j] = vzero();
  for (int64_t b = 0; b < nimg; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int v = 0; v < NV; ++v) {
        // The 3 shifted x vectors stay in registers while each channel's dy vector is loaded once and
        // used for its 3 taps: 3*MRW accumulators + 3 + 1 live vectors (28 of AVX-512's 32 registers
        // at MRW = 8; holding all MRW dy vectors instead would need 33 and spill).
        const float* xr = xc + b * xs + h * S + v * kLanes;
        vfloat xv[3];
        for (int j = 0; j < 3; ++j) xv[j] = vload(xr + j);
        for (int t = 0; t < MRW; ++t) {
          vfloat d = vload(dyo + b * ys + (t * H + h) * V + v * kLanes);
#if defined(__AVX512F__)
          // Keep d in a register: left alone, GCC folds the load into each of the 3 FMAs, and the
          // 24 loads per 24 FMAs (instead of 11) made the load ports the limit (~180 GFLOP/s).
          asm("" : "+v"(d));
#endif
          for (int j = 0; j < 3; ++j) acc[t][j] = vfmadd(d, xv[j], acc[t][j]);
        }
      }
  for (int t = 0; t < MRW; ++t)
    for (int j = 0; j < 3; ++j) {
      float* dst = dwv + (t * C * 9 + j) * kLanes;
      vstore(dst, vadd(vload(dst), acc[t][j]));
    }
}

// dwv += the weight-gradient partials of nimg consecutive images.
template <int NV>
void wgrad_images(const float* xp, const float* dyp, int64_t nimg, int64_t C, int64_t O, int64_t H, int64_t S,
                  float* dwv) {
#if defined(__AVX512F__)
  // 8 output channels: 24 accumulators; per row vector 8 loads of dy and 3 of x feed 24 FMAs (all
  // 9 taps of one channel pair would need 10 loads for 9).
  constexpr int MRW = 8;
#else
  constexpr int MRW = 3;  // 9 accumulators, 3 x vectors and 1 of dy: 13 of 16 registers
#endif
  constexpr int64_t V = NV * kLanes;
  const int64_t plane = (H + 2) * S, xs = C * plane, ys = O * H * V;
  for (int64_t o0 = 0; o0 < O; o0 += MRW) {
    const int64_t mr = std::min<int64_t>(MRW, O - o0);
    for (int64_t c = 0; c < C; ++c)
      for (int i = 0; i < 3; ++i) {
        const float* xc = xp + c * plane + i * S;
        float* dst = dwv + ((o0 * C + c) * 9 + i * 3) * kLanes;
        if (mr == MRW) {
          wgrad_tile<NV, MRW>(xc, dyp + o0 * H * V, nimg, xs, ys, H, S, dst, C);
        } else {
          for (int64_t t = 0; t < mr; ++t)
            wgrad_tile<NV, 1>(xc, dyp + (o0 + t) * H * V, nimg, xs, ys, H, S, dst + t * C * 9 * kLanes, C);
        }
      }
  }
}

}  // namespace

bool conv3x3_applies(int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t W) {
  return kh == 3 && kw == 3 && stride == 1 && pad == 1 && W >= 1 && W <= kConv3x3MaxWidth;
}

bool conv3x3_weight_grad_applies(int64_t O, int64_t C, int threads) {
  return O * C * 9 * kLanes * (int64_t)std::max(threads, 1) <= kConv3x3MaxPartialFloats;
}

void conv3x3_weight_grad_cpu(const float* x, const float* dy, int64_t B, int64_t C, int64_t H, int64_t W, int64_t O,
                             float* dw, float* db) {
  if (B == 0) return;
  const int NV = row_vectors(W);
  const int64_t S = NV * kLanes + 2, V = NV * kLanes;
  Tensor xpad = Tensor::empty({B * C * (H + 2) * S}), dypad = Tensor::empty({B * O * H * V});
  Tensor rows = db ? Tensor::empty({B * O * H}) : Tensor();
  pad_planes(x, B * C, H, W, S, xpad.data());
  float* dyp = dypad.data();
  float* rs = db ? rows.data() : nullptr;
  // dy padded to rows of V floats; with db, each row's sum on the way (dy is read once for both).
  parallel_for(B * O * H, std::max<int64_t>(1, kElementwiseGrain / V), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      std::memcpy(dyp + r * V, dy + r * W, (size_t)W * sizeof(float));
      std::fill(dyp + r * V + W, dyp + (r + 1) * V, 0.0f);
      if (rs) {
        float s = 0.0f;
        for (int64_t w = 0; w < W; ++w) s += dy[r * W + w];
        rs[r] = s;
      }
    }
  });
  if (db) {  // db[o] += sum_{b,h} rows[b,o,h], in (b, h) order: deterministic
    parallel_for(O, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(B * H, 1)), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        double s = 0;
        for (int64_t b = 0; b < B; ++b)
          for (int64_t h = 0; h < H; ++h) s += rs[(b * O + o) * H + h];
        db[o] += (float)s;
      }
    });
  }
  // Threads take contiguous runs of images, each summing into its own 16-lane partials of dw; the
  // partials are summed across lanes and threads, in thread order, at the end (deterministic for a
  // given thread count).
  const int64_t n = O * C * 9;
  const int threads = omp_in_parallel() ? 1 : (int)std::min<int64_t>(omp_get_max_threads(), B);
  Tensor partial = Tensor::empty({threads * n * kLanes});
  const int64_t xs = C * (H + 2) * S, ys = O * H * V;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    float* mine = partial.data() + t * n * kLanes;
    std::fill(mine, mine + n * kLanes, 0.0f);
    // Blocks of images with >= 896 floats of rows (56 vectors of 16): the tile's partials are read
    // and written once per block, and its dy and x rows (<= 8 planes + 1 of each image) still fit in L1.
    const int64_t rv = 896 / kLanes, block = std::max<int64_t>(1, (rv + H * NV - 1) / (H * NV));
    const int64_t b1 = B * (t + 1) / threads;
    for (int64_t b = B * t / threads; b < b1; b += block) {
      const int64_t nimg = std::min(block, b1 - b);
      with_nv(NV, [&](auto nv) { wgrad_images<nv.value>(xpad.data() + b * xs, dyp + b * ys, nimg, C, O, H, S, mine); });
    }
  }
  parallel_for(n, kElementwiseGrain / kLanes, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      float sum = 0.0f;
      for (int t = 0; t < threads; ++t) {
        const float* p = partial.data() + (t * n + k) * kLanes;
        float s = 0.0f;
        for (int l = 0; l < kLanes; ++l) s += p[l];
        sum += s;
      }
      dw[k] += sum;
    }
  });
}

void conv3x3_weights_forward(const float* w, int64_t O, int64_t C, float* wt) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t k = 0; k < C * 9; ++k) wt[k * O + o] = w[o * C * 9 + k];
}

void conv3x3_weights_backward(const float* w, int64_t O, int64_t C, float* wt) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) wt[((o * 3 + i) * 3 + j) * C + c] = w[((o * C + c) * 3 + (2 - i)) * 3 + (2 - j)];
}

void conv3x3_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, const float* wt, int64_t O,
                 const float* bias, float* y, bool accumulate) {
#if defined(__AVX512F__)
  if (B == 0) return;
  Tensor pad = Tensor::empty({B * C * flat_plane(H, W)});
  pad_flat(x, B * C, H, W, pad.data());
  run_flat(pad.data(), B, C, H, W, wt, O, bias, y, accumulate);
#else
  conv3x3_rows_cpu(x, B, C, H, W, wt, O, bias, y, accumulate);
#endif
}

void conv3x3_rows_cpu(const float* x, int64_t B, int64_t C, int64_t H, int64_t W, const float* wt, int64_t O,
                      const float* bias, float* y, bool accumulate) {
  if (B == 0) return;
  const int NV = row_vectors(W);
  const int64_t S = NV * kLanes + 2, plane = (H + 2) * S;
  Tensor pad = Tensor::empty({B * C * plane});
  float* xp = pad.data();
  pad_planes(x, B * C, H, W, S, xp);
  with_nv(NV, [&](auto nv) { run<nv.value>(xp, B, C, H, W, S, wt, O, bias, y, accumulate); });
}

}  // namespace gt
