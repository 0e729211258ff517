// rng.cpp: Generator — Philox4x32-10 from core/philox.h on the CPU and cuRAND's device generator on
// CUDA, sharing seed and offset (one stream).
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
  curandGenerator_t device = nullptr;
  ~Handles() {
    if (device) curandDestroyGenerator(device);
  }
  // Lazily creates the device generator, pinned to Philox4x32-10 with legacy ordering.
  curandGenerator_t get(Device dev, uint64_t seed, uint64_t offset) {
    GT_CHECK(dev == Device::CUDA, "rng: the cuRAND generator serves CUDA draws only");
    curandGenerator_t& g = device;
    if (!g) {
      CURAND_CHECK(curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10));
      CURAND_CHECK(curandSetStream(g, cuda::stream()));
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

// The CPU streams, computed with core/philox.h one 4-word block at a time (threads for big draws).
// The same numbers as cuRAND's host generator (tests/test_rng.cpp compares them), without its cost:
// curandGenerateUniform on the host takes ~15-30 ms per call here whatever the count, which made
// every small draw (timesteps, masks, x_T) a bottleneck.
namespace {

constexpr int64_t kParallelDraw = 1 << 18;  // below: ~1 ms on one thread, less than waking another

void fill_uniform_cpu(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  const uint64_t g0 = offset >> 2, g1 = (offset + (uint64_t)n + 3) >> 2;
#pragma omp parallel for schedule(static) if (n >= kParallelDraw)
  for (int64_t gi = (int64_t)g0; gi < (int64_t)g1; ++gi) {
    const Philox4 b = philox_block(seed, (uint64_t)gi);
    for (int j = 0; j < 4; ++j) {
      const uint64_t i = (uint64_t)gi * 4 + j;
      if (i >= offset && i < offset + (uint64_t)n) out[i - offset] = philox_to_uniform(b.v[j]);
    }
  }
}

// offset is even (normal() rounds it): pairs (4g, 4g+1) and (4g+2, 4g+3) never straddle a block.
void fill_normal_cpu(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev) {
  const uint64_t g0 = offset >> 2, g1 = (offset + (uint64_t)n + 3) >> 2;
#pragma omp parallel for schedule(static) if (n >= kParallelDraw)
  for (int64_t gi = (int64_t)g0; gi < (int64_t)g1; ++gi) {
    float z[4];
    philox_normal4(seed, (uint64_t)gi, z);
    for (int j = 0; j < 4; ++j) {
      const uint64_t i = (uint64_t)gi * 4 + j;
      if (i >= offset && i < offset + (uint64_t)n) out[i - offset] = mean + stddev * z[j];
    }
  }
}

}  // namespace

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
  if (device == Device::CPU) {
    fill_normal_cpu(out, n, seed_, offset_, mean, stddev);
    offset_ += (uint64_t)((n + 1) & ~int64_t(1));
    return;
  }
  curandGenerator_t g = h_->get(device, seed_, offset_);
  int64_t even = n & ~int64_t(1);
  if (even) CURAND_CHECK(curandGenerateNormal(g, out, (size_t)even, mean, stddev));
  if (n & 1) {
    Tensor pair = Tensor::empty({2}, device);
    if (even) CURAND_CHECK(curandSetGeneratorOffset(g, offset_ + (uint64_t)even));
    CURAND_CHECK(curandGenerateNormal(g, pair.data(), 2, mean, stddev));
    detail::cuda_copy(out + n - 1, pair.data(), sizeof(float), detail::CopyKind::DeviceToDevice);
  }
#else
  GT_CHECK(device == Device::CPU, "normal: " << cuda_unavailable_reason());
  fill_normal_cpu(out, n, seed_, offset_, mean, stddev);
#endif
  offset_ += (uint64_t)((n + 1) & ~int64_t(1));
}

void Generator::uniform(float* out, int64_t n, Device device) {
  GT_CHECK(n >= 0, "uniform: negative count " << n);
  if (n == 0) return;
  if (device == Device::CPU) {
    fill_uniform_cpu(out, n, seed_, offset_);
  } else {
#if GENTAPE_HAS_CUDA
    CURAND_CHECK(curandGenerateUniform(h_->get(device, seed_, offset_), out, (size_t)n));
#else
    GT_CHECK(false, "uniform: " << cuda_unavailable_reason());
#endif
  }
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
