// test_rng.cpp: the Philox stream — determinism, offsets, distribution moments, gentape's own
// Philox (core/philox.h) against cuRAND's host generator bit for bit, and CPU vs CUDA.
#include <catch2/catch.hpp>

#if GENTAPE_HAS_CUDA
#include <curand.h>
#endif

#include <cmath>

#include "core/philox.h"
#include "core/rng.h"
#include "tests/op_table.h"

using namespace gt;

TEST_CASE("rng: same seed and offset give the same stream", "[rng]") {
  Generator a(7), b(7), c(8);
  REQUIRE(a.randn({1001}).to_vector() == b.randn({1001}).to_vector());
  REQUIRE(a.rand({33}).to_vector() == b.rand({33}).to_vector());
  Generator d(7);
  REQUIRE(c.randn({1001}).to_vector() != d.randn({1001}).to_vector());
  // Drawing n then m values equals drawing n + m at once: offsets count values.
  Generator whole(3), parts(3);
  std::vector<float> w = whole.rand({300}).to_vector();
  std::vector<float> p1 = parts.rand({100}).to_vector(), p2 = parts.rand({200}).to_vector();
  p1.insert(p1.end(), p2.begin(), p2.end());
  REQUIRE(p1 == w);
  REQUIRE(parts.offset() == 300);
  // Re-seeding restarts the stream.
  parts.manual_seed(3);
  REQUIRE(parts.rand({300}).to_vector() == w);
}

TEST_CASE("rng: odd counts and odd offsets keep normals paired", "[rng]") {
  Generator g(11);
  g.uniform(Tensor::empty({3}).data(), 3, Device::CPU);  // offset 3 (odd)
  std::vector<float> n = g.randn({5}).to_vector();        // starts at 4, draws 6
  REQUIRE(g.offset() == 10);
  for (int i = 0; i < 5; ++i) REQUIRE(n[(size_t)i] == Approx(philox_normal(11, 4 + (uint64_t)i)).margin(1e-6));
}

TEST_CASE("rng: moments of normal and uniform streams", "[rng]") {
  const int n = 200000;
  Generator g(2024);
  std::vector<float> x = g.randn({n}).to_vector();
  double m = 0, v = 0;
  for (float f : x) m += f;
  m /= n;
  for (float f : x) v += (f - m) * (f - m);
  v /= n;
  // Standard error of the mean is 1/sqrt(n) = 0.0022; of the variance sqrt(2/n) = 0.0032. 5 sigma:
  REQUIRE(std::fabs(m) < 0.012);
  REQUIRE(std::fabs(v - 1.0) < 0.016);
  std::vector<float> u = g.rand({n}).to_vector();
  double mu = 0, lo = 1, hi = 0;
  for (float f : u) {
    mu += f;
    lo = std::min<double>(lo, f);
    hi = std::max<double>(hi, f);
  }
  mu /= n;
  REQUIRE(std::fabs(mu - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  REQUIRE(lo > 0.0);   // U(0, 1]: log(u) is always finite
  REQUIRE(hi <= 1.0);
}

TEST_CASE("rng: gentape's Philox equals cuRAND's host generator", "[rng]") {
#if GENTAPE_HAS_CUDA
  // cuRAND's host generator runs without a GPU: the reference for core/philox.h and so for every CPU
  // draw (Generator's CPU path is philox.h) and every kernel that draws its own noise.
  const uint64_t seed = 0x123456789abcdefull;
  const int n = 300000;  // > 4 * 65536: crosses a step of cuRAND's subsequence layout
  curandGenerator_t host;
  REQUIRE(curandCreateGeneratorHost(&host, CURAND_RNG_PSEUDO_PHILOX4_32_10) == CURAND_STATUS_SUCCESS);
  REQUIRE(curandSetGeneratorOrdering(host, CURAND_ORDERING_PSEUDO_LEGACY) == CURAND_STATUS_SUCCESS);
  REQUIRE(curandSetPseudoRandomGeneratorSeed(host, seed) == CURAND_STATUS_SUCCESS);
  REQUIRE(curandSetGeneratorOffset(host, 12345) == CURAND_STATUS_SUCCESS);
  std::vector<float> ref(n);
  REQUIRE(curandGenerateUniform(host, ref.data(), n) == CURAND_STATUS_SUCCESS);
  Generator g(seed);
  g.set_offset(12345);
  std::vector<float> u = g.rand({n}).to_vector();
  int mismatches = 0;
  for (int i = 0; i < n; ++i) mismatches += ref[(size_t)i] != philox_uniform(seed, 12345 + (uint64_t)i) || u[(size_t)i] != ref[(size_t)i];
  REQUIRE(mismatches == 0);
  REQUIRE(curandSetGeneratorOffset(host, 1000000) == CURAND_STATUS_SUCCESS);
  REQUIRE(curandGenerateNormal(host, ref.data(), n, 0.f, 1.f) == CURAND_STATUS_SUCCESS);
  g.set_offset(1000000);
  std::vector<float> z = g.randn({n}).to_vector();
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    worst = std::max(worst, (double)std::fabs(ref[(size_t)i] - philox_normal(seed, 1000000 + (uint64_t)i)));
    worst = std::max(worst, (double)std::fabs(ref[(size_t)i] - z[(size_t)i]));
  }
  curandDestroyGenerator(host);
  // sin/cos/log of cuRAND and libm may differ in the last bit; |z| < 6, so a few 1e-7.
  REQUIRE(worst < 1e-6);
#else
  WARN("SKIPPED: this build has no cuRAND to compare with; the stream comes from core/philox.h");
#endif
}

TEST_CASE("rng: CPU and CUDA streams are the same", "[rng][cuda]") {
  if (!test::cuda_or_skip()) return;
  for (uint64_t seed : {0ull, 42ull, 0xdeadbeefcafeull}) {
    Generator c(seed), d(seed);
    std::vector<float> uc = c.rand({100003}).to_vector();
    std::vector<float> ud = d.rand({100003}, Device::CUDA).to_vector();
    REQUIRE(uc == ud);  // uniforms: bit-identical
    std::vector<float> nc = c.randn({100001}).to_vector();
    std::vector<float> nd = d.randn({100001}, Device::CUDA).to_vector();
    test::require_close("normal stream CUDA vs CPU", nd, nc, 1e-6, 1e-6);
    REQUIRE(c.offset() == d.offset());
  }
}
