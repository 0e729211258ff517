// rng.h: random numbers — Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as
// 1, 2, 3"), cuRAND's stream.
//
// The guarantee: one seed and one offset give the same uniform and normal streams on the CPU and on
// any CUDA GPU. CUDA uses cuRAND's device generator, Philox4x32-10 with the ordering pinned to
// CURAND_ORDERING_PSEUDO_LEGACY, so the stream does not depend on the GPU model. The CPU computes the
// same stream with core/philox.h, which reproduces cuRAND's layout; tests/test_rng.cpp checks it
// against cuRAND's host generator (curandCreateGeneratorHost): uniforms bit for bit, normals to
// ~1 ulp. (The host generator itself is not used: it costs 15-30 ms per call whatever the count.)
// (PyTorch explicitly does not promise CPU/GPU equality.) A model trained on CPU and on GPU from the
// same seed sees the same noise.
//
// Offsets count values: each call starts at offset() and advances it by the number of values
// drawn. Normals come in Box-Muller pairs, so a normal draw first rounds the offset up to even and
// advances by an even count; the same sequence of calls gives the same numbers on both devices.
//
// core/philox.h computes element i of the stream directly, so fused kernels can draw their own noise
// and builds without the CUDA toolkit get the same numbers.
//
//   gt::Generator gen(42);
//   gt::Tensor eps = gen.randn({128, 20}, gt::Device::CPU);
//   gen.normal(ptr, n, gt::Device::CUDA);   // raw pointer form, for kernels
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace gt {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  void manual_seed(uint64_t seed);  // also resets the offset to 0
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

  // out[0..n) ~ N(mean, stddev^2), in memory of `device`.
  void normal(float* out, int64_t n, Device device, float mean = 0.0f, float stddev = 1.0f);
  // out[0..n) ~ U(0, 1] (cuRAND's convention: 0 excluded, 1 included).
  void uniform(float* out, int64_t n, Device device);

  Tensor randn(const Shape& shape, Device device = Device::CPU);
  Tensor rand(const Shape& shape, Device device = Device::CPU);

  // True when the streams come from cuRAND (the cross-device guarantee holds).
  static bool uses_curand();

 private:
  struct Handles;
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
  std::unique_ptr<Handles> h_;
};

// The generator used where no other is given (parameter initialisation, dropout, sampling).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace gt
