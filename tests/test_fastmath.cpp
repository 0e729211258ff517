// test_fastmath.cpp: accuracy of core/fastmath.h's exp and log1p against double precision over the
// whole float range, and their special values.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "core/fastmath.h"

using namespace gt;

TEST_CASE("fastmath: exp within a few ulp of the exact value", "[fastmath]") {
  double worst = 0;
  float at = 0;
  for (int i = 0; i <= 2000000; ++i) {
    float x = -87.f + 175.f * (float)i / 2000000.f;  // results in the normal range
    double want = std::exp((double)x);
    double rel = std::fabs((double)fast_expf(x) - want) / want;
    if (rel > worst) {
      worst = rel;
      at = x;
    }
  }
  INFO("worst relative error " << worst << " at x = " << at);
  REQUIRE(worst < 4 * 5.96e-8);  // 4 ulp of float32 (2^-24 = 5.96e-8 relative half-ulp)
  REQUIRE(fast_expf(0.f) == 1.f);
  REQUIRE(std::isinf(fast_expf(89.f)));
  REQUIRE(std::isinf(fast_expf(std::numeric_limits<float>::infinity())));
  REQUIRE(fast_expf(-std::numeric_limits<float>::infinity()) == 0.f);
  REQUIRE(fast_expf(-200.f) == 0.f);
  REQUIRE(std::isnan(fast_expf(std::nanf(""))));
  // Subnormal results keep their relative accuracy to within the subnormal spacing.
  REQUIRE(std::fabs(fast_expf(-100.f) - std::exp(-100.0)) < 1.5e-45);
}

TEST_CASE("fastmath: log1p within a few ulp, including tiny arguments", "[fastmath]") {
  double worst = 0;
  float at = 0;
  for (int i = 0; i <= 2000000; ++i) {
    // log-spaced over (1e-30, 1e30) and linear over (-0.999, 1)
    float x = i % 2 ? std::pow(10.f, -30.f + 60.f * (float)i / 2000000.f) : -0.999f + 1.999f * (float)i / 2000000.f;
    double want = std::log1p((double)x);
    if (want == 0) continue;
    double rel = std::fabs((double)fast_log1pf(x) - want) / std::fabs(want);
    if (rel > worst) {
      worst = rel;
      at = x;
    }
  }
  INFO("worst relative error " << worst << " at x = " << at);
  REQUIRE(worst < 4 * 5.96e-8);
  REQUIRE(fast_log1pf(0.f) == 0.f);
  REQUIRE(fast_log1pf(1e-30f) == 1e-30f);
  REQUIRE(fast_log1pf(-1.f) == -std::numeric_limits<float>::infinity());
  REQUIRE(std::isnan(fast_log1pf(-2.f)));
  REQUIRE(std::isinf(fast_log1pf(std::numeric_limits<float>::infinity())));
}
