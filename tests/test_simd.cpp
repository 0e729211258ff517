// kernels/simd.h's helpers that are more than one intrinsic: the division-free sigmoid of the fused
// GroupNorm-SiLU, and the partial store the Winograd strips end a row with.
//
// vsigmoid's error bound: the reciprocal estimate plus one Newton step is a few ulp from a true
// division; measured against the double-precision logistic over [-87, 100] (where the result is a
// normal float) at most 2.4e-7 relative (4 ulp of 2^-24) on AVX2 (AVX-512's rcp14 starts closer),
// so 5e-7 leaves 2x headroom. A wrong polynomial coefficient, a missing Newton step (2^-12) or a
// wrong branch (e s for t >= 0) each give errors of 1e-5 or more.
#include <cmath>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "core/aligned.h"
#include "kernels/simd.h"
#include "kernels/winograd.h"

using namespace gt;

TEST_CASE("simd: vsigmoid is the logistic to 5e-7 relative, NaN stays NaN in silu", "[ops]") {
#if GENTAPE_SIMD
  double worst = 0.0, at = 0.0;
  for (double t0 = -87.0; t0 <= 100.0; t0 += 0.0013) {
    float in[kSimdLanes], out[kSimdLanes];
    for (int l = 0; l < kSimdLanes; ++l) in[l] = (float)(t0 + l * 1e-4);
    vstore(out, vsigmoid(vload(in)));
    for (int l = 0; l < kSimdLanes; ++l) {
      const double want = 1.0 / (1.0 + std::exp(-(double)in[l]));
      const double rel = std::fabs(out[l] - want) / want;
      if (rel > worst) worst = rel, at = in[l];
    }
  }
  INFO("largest relative error " << worst << " at t = " << at);
  REQUIRE(worst <= 5e-7);
  // Below -87 the result is subnormal, down to the smallest one at the clamp; +-inf and NaN do not crash, and
  // silu = t sigmoid(t) of a NaN is NaN (no silent NaN-to-number).
  float in[kSimdLanes] = {}, out[kSimdLanes];
  in[0] = NAN, in[1] = INFINITY, in[2] = -INFINITY, in[3] = -120.f, in[4] = 0.f;
  vstore(out, vsigmoid(vload(in)));
  REQUIRE(std::isnan(in[0] * out[0]));
  REQUIRE(std::fabs(out[1] - 1.0f) <= 5e-7f);  // 1 within the bound above (not exactly: the Newton step)
  REQUIRE(out[2] >= 0.0f);
  REQUIRE(out[2] < 1e-38f);
  REQUIRE(out[3] >= 0.0f);
  REQUIRE(out[3] < 1e-44f);
  REQUIRE(std::fabs(out[4] - 0.5f) <= 0.5f * 5e-7f);
#else
  WARN("skipped: this build has neither AVX-512 nor AVX2 + FMA (no kernels/simd.h vectors)");
#endif
}

TEST_CASE("simd: vstore_first writes exactly the first n lanes", "[ops]") {
#if GENTAPE_SIMD
  float src[kSimdLanes];
  for (int l = 0; l < kSimdLanes; ++l) src[l] = (float)(l + 1);
  for (int n = 1; n <= kSimdLanes; ++n) {
    INFO("n = " << n);
    std::vector<float> dst(2 * kSimdLanes, -7.f);
    vstore_first(dst.data() + 3, n, vload(src));
    for (int i = 0; i < 2 * kSimdLanes; ++i) REQUIRE(dst[(size_t)i] == (i >= 3 && i < 3 + n ? src[i - 3] : -7.f));
  }
#else
  WARN("skipped: this build has neither AVX-512 nor AVX2 + FMA (no kernels/simd.h vectors)");
#endif
}

// The kernels' reused scratch buffers (core/aligned.h) start on a cache line whatever their size:
// with std::vector's 16-byte alignment, half the vector loads of a buffer straddled two lines and
// the Winograd weight gradient's worker thread ran 23% slower (docs/benchmarks.md).
TEST_CASE("AlignedVector: storage starts on a 64-byte boundary and keeps it when it grows", "[core]") {
  for (size_t n : {1, 3, 17, 1000, 123457}) {
    AlignedVector v(n, 1.0f);
    REQUIRE(reinterpret_cast<uintptr_t>(v.data()) % kBufferAlign == 0);
    v.resize(n * 3 + 1);
    REQUIRE(reinterpret_cast<uintptr_t>(v.data()) % kBufferAlign == 0);
    REQUIRE(v[0] == 1.0f);
    REQUIRE(v[n * 3] == 0.0f);
  }
  const std::vector<float> w(8 * 8 * 9, 0.5f);
  const auto U = winograd_weights_cached(w.data(), 8, 8, false);
  REQUIRE(reinterpret_cast<uintptr_t>(U->data()) % kBufferAlign == 0);
}
