// embedding.h: the sinusoidal timestep embedding of DDPM (Ho et al. 2020, after the Transformer's
// position encoding, Vaswani et al. 2017): a timestep t becomes a vector of sines and cosines whose
// wavelengths run geometrically from 2 pi to 10000 * 2 pi, so nearby timesteps get nearby vectors
// and the network can read t at every scale.
//
//   half = dim / 2,   freq_j = exp(-ln(10000) j / half),   j = 0 .. half-1
//   out[b, j] = sin(t_b freq_j),   out[b, half + j] = cos(t_b freq_j)
//
// It is a constant input to the network (no gradient flows into t). The argument t freq_j reaches
// ~1000 radians, where one float32 rounding of the product alone moves the sine by ~6e-5, so the
// argument and the sine are computed in double and only the result is rounded: every element is
// within half an ulp (plus libm's error) of the exact value, on CPU and CUDA alike. The embedding is
// B x dim numbers (64 x 32 per training step): double costs nothing here.
//
//   gt::timestep_embedding_cpu(out, t, B, 32);   // t (B) float32 timesteps -> out (B, 32)
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace gt {

constexpr double kLn10000 = 9.2103403719761836;  // ln(10000)

// Element j (0 <= j < 2 half) of the embedding of timestep t.
GT_HD inline float timestep_embedding_value(float t, int64_t j, int64_t half) {
  const int64_t k = j < half ? j : j - half;
  const double a = (double)t * ::exp(-kLn10000 * (double)k / (double)half);
  return (float)(j < half ? ::sin(a) : ::cos(a));
}

// out (B, dim) from t (B); dim even, >= 2.
void timestep_embedding_cpu(float* out, const float* t, int64_t B, int64_t dim);
void timestep_embedding_cuda(float* out, const float* t, int64_t B, int64_t dim);

}  // namespace gt
