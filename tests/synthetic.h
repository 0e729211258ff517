// synthetic.h: a tiny learnable data set for model tests — n images of h x w binary pixels, each one
// of 4 random prototypes (its label) with 5% of the pixels flipped. Deterministic in the seed.
#pragma once

#include <vector>

#include "core/rng.h"
#include "models/data.h"

namespace gt::test {

inline Dataset synthetic(int64_t n, int64_t h, int64_t w, uint64_t seed) {
  Generator g(seed);
  const int64_t D = h * w;
  std::vector<float> proto = g.rand({4, D}).to_vector(), flip = g.rand({n, D}).to_vector();
  Dataset d;
  d.name = "synthetic";
  d.height = h;
  d.width = w;
  d.num_classes = 4;
  std::vector<float> img((size_t)(n * D));
  std::vector<int32_t> lab((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    lab[(size_t)i] = (int32_t)(i % 4);
    for (int64_t j = 0; j < D; ++j) {
      float p = proto[(size_t)((i % 4) * D + j)] > 0.5f ? 1.f : 0.f;
      img[(size_t)(i * D + j)] = flip[(size_t)(i * D + j)] < 0.05f ? 1.f - p : p;
    }
  }
  d.images = Tensor::from_vector(img, {n, D});
  d.labels = Tensor::from_indices(lab, {n});
  return d;
}

}  // namespace gt::test
