// rng.cpp: Generator — cuRAND Philox4x32-10 host and device generators sharing seed and offset.
#include "core/rng.h"

#include <vector>

#include "core/philox.h"

#if GENTAPE_HAS_CUDA
#include <curand.h>

#include "core/cuda_context.h"
#include "core/cuda_memory.h"
#endif

namespace gt {

#if GENTAPE_HAS_CUDA
namespace {
const char* curand_status_name(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS: return "success";
    case CURAND_STATUS_ALLOCATION_FAILED: return "allocation failed";
    case CURAND_STATUS_INITIALIZATION_FAILED: return "initialization failed";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE: return "length not a multiple of 2";
    case CURAND_STATUS_LAUNCH_FAILURE: return "launch failure";
    case CURAND_STATUS_OUT_OF_RANGE: return "out of range";
    default: return "error";
  }
}
}  // namespace
#define CURAND_CHECK(call)                                                              \
  do {                                                                                  \
    curandStatus_t st_ = (call);                                                        \
    GT_CHECK(st_ == CURAND_STATUS_SUCCESS, "cuRAND " #call " failed: " << curand_status_name(st_) \
                                               << " (" << (int)st_ << ")");            \
  } while (0)

struct Generator::Handles {
  curandGenerator_t host = nullptr;
  curandGenerator_t device = nullptr;
  ~Handles() {
    if (host) curandDestroyGenerator(host);
    if (device) curandDestroyGenerator(device);
  }
  // Lazily creates the generator for `dev`, pinned to Philox4x32-10 with legacy ordering.
  curandGenerator_t get(Device dev, uint64_t seed, uint64_t offset) {
    curandGenerator_t& g = dev == Device::CPU ? host : device;
    if (!g) {
      if (dev == Device::CPU) {
        CURAND_CHECK(curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10));
      } else {
        CURAND_CHECK(curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10));
        CURAND_CHECK(curandSetStream(g, cuda::stream()));
      }
      CURAND_CHECK(curandSetGeneratorOrdering(g, CURAND_ORDERING_PSEUDO_LEGACY));
    }
    CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(g, seed));
    CURAND_CHECK(curandSetGeneratorOffset(g, offset));
    return g;
  }
};
bool Generator::uses_curand() { return true; }
#else
struct Generator::Handles {};
bool Generator::uses_curand() { return false; }
#endif

Generator::Generator(uint64_t seed) : seed_(seed), h_(std::make_unique<Handles>()) {}
Generator::~Generator() = default;

void Generator::manual_seed(uint64_t seed) {
  seed_ = seed;
  offset_ = 0;
}

void Generator::normal(float* out, int64_t n, Device device, float mean, float stddev) {
  GT_CHECK(n >= 0, "normal: negative count " << n);
  if (n == 0) return;
  offset_ = (offset_ + 1) & ~uint64_t(1);  // Box-Muller pairs start at even elements
#if GENTAPE_HAS_CUDA
  // cuRAND draws normals in Box-Muller pairs: an odd count draws the last pair into a scratch
  // tensor (from the caching allocator) and keeps its first value.
  curandGenerator_t g = h_->get(device, seed_, offset_);
  int64_t even = n & ~int64_t(1);
  if (even) CURAND_CHECK(curandGenerateNormal(g, out, (size_t)even, mean, stddev));
  if (n & 1) {
    Tensor pair = Tensor::empty({2}, device);
    if (even) CURAND_CHECK(curandSetGeneratorOffset(g, offset_ + (uint64_t)even));
    CURAND_CHECK(curandGenerateNormal(g, pair.data(), 2, mean, stddev));
    if (device == Device::CPU) {
      out[n - 1] = pair.data()[0];
    } else {
      detail::cuda_copy(out + n - 1, pair.data(), sizeof(float), detail::CopyKind::DeviceToDevice);
    }
  }
#else
  GT_CHECK(device == Device::CPU, "normal: " << cuda_unavailable_reason());
  for (int64_t i = 0; i < n; ++i) out[i] = mean + stddev * philox_normal(seed_, offset_ + (uint64_t)i);
#endif
  offset_ += (uint64_t)((n + 1) & ~int64_t(1));
}

void Generator::uniform(float* out, int64_t n, Device device) {
  GT_CHECK(n >= 0, "uniform: negative count " << n);
  if (n == 0) return;
#if GENTAPE_HAS_CUDA
  CURAND_CHECK(curandGenerateUniform(h_->get(device, seed_, offset_), out, (size_t)n));
#else
  GT_CHECK(device == Device::CPU, "uniform: " << cuda_unavailable_reason());
  for (int64_t i = 0; i < n; ++i) out[i] = philox_uniform(seed_, offset_ + (uint64_t)i);
#endif
  offset_ += (uint64_t)n;
}

Tensor Generator::randn(const Shape& shape, Device device) {
  Tensor t = Tensor::empty(shape, device);
  normal(t.data(), t.numel(), device);
  return t;
}

Tensor Generator::rand(const Shape& shape, Device device) {
  Tensor t = Tensor::empty(shape, device);
  uniform(t.data(), t.numel(), device);
  return t;
}

Generator& default_generator() {
  static Generator* g = new Generator(0);
  return *g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace gt
