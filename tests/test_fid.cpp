// test_fid.cpp: the Fréchet distance (models/fid.h) against closed forms.
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "core/error.h"
#include "models/fid.h"
#include "models/fid_net.h"
#include "tests/synthetic.h"

using namespace gt;

namespace {

FeatureStats stats(std::vector<double> mean, std::vector<double> cov) {
  FeatureStats s;
  s.dim = (int64_t)mean.size();
  s.n = 100;
  s.mean = std::move(mean);
  s.cov = std::move(cov);
  return s;
}

}  // namespace

TEST_CASE("feature_stats: mean and unbiased covariance", "[fid]") {
  // rows (1, 2), (3, 2), (5, 8): mean (3, 4); centred (-2,-2), (0,-2), (2,4)
  const float f[] = {1, 2, 3, 2, 5, 8};
  FeatureStats s = feature_stats(f, 3, 2);
  CHECK(s.mean[0] == Approx(3));
  CHECK(s.mean[1] == Approx(4));
  CHECK(s.cov[0] == Approx((4 + 0 + 4) / 2.0));
  CHECK(s.cov[1] == Approx((4 + 0 + 8) / 2.0));
  CHECK(s.cov[2] == Approx((4 + 0 + 8) / 2.0));
  CHECK(s.cov[3] == Approx((4 + 4 + 16) / 2.0));
}

TEST_CASE("frechet_distance: identical sets give 0, a shift gives its squared length", "[fid]") {
  std::vector<float> a, b;
  for (int i = 0; i < 200; ++i)
    for (int j = 0; j < 5; ++j) {
      const float v = std::sin(0.37f * i * (j + 1)) + 0.1f * j * std::cos(1.3f * i);
      a.push_back(v);
      b.push_back(v + 0.5f * j);  // shift (0, .5, 1, 1.5, 2): |c|^2 = 7.5
    }
  FeatureStats sa = feature_stats(a.data(), 200, 5), sb = feature_stats(b.data(), 200, 5);
  CHECK(frechet_distance(sa, sa) == Approx(0).margin(1e-9));
  CHECK(frechet_distance(sa, sb) == Approx(7.5).epsilon(1e-5));
  CHECK(frechet_distance(sb, sa) == Approx(7.5).epsilon(1e-5));
}

TEST_CASE("frechet_distance: commuting covariances give sum (sqrt a - sqrt b)^2", "[fid]") {
  // S1 = Q diag(4, 1) Q^T, S2 = Q diag(1, 9) Q^T with Q a 30-degree rotation
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  auto rot = [&](double x, double y) {
    return std::vector<double>{c * c * x + s * s * y, c * s * (x - y), c * s * (x - y), s * s * x + c * c * y};
  };
  FeatureStats a = stats({0, 0}, rot(4, 1)), b = stats({1, 2}, rot(1, 9));
  const double expected = 5 + (2 - 1) * (2 - 1) + (1 - 3) * (1 - 3);
  CHECK(frechet_distance(a, b) == Approx(expected).epsilon(1e-10));
}

TEST_CASE("frechet_distance: non-commuting 2x2 covariances against the 2x2 trace-sqrt formula", "[fid]") {
  // For 2x2 PSD M: Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M)); with M = S1^1/2 S2 S1^1/2,
  // Tr M = Tr(S1 S2) and det M = det S1 det S2.
  const std::vector<double> S1 = {2, 0.5, 0.5, 1}, S2 = {1, -0.3, -0.3, 3};
  const double tr12 = S1[0] * S2[0] + S1[1] * S2[2] + S1[2] * S2[1] + S1[3] * S2[3];
  const double det1 = S1[0] * S1[3] - S1[1] * S1[2], det2 = S2[0] * S2[3] - S2[1] * S2[2];
  const double tr_sqrt = std::sqrt(tr12 + 2 * std::sqrt(det1 * det2));
  const double expected = 0.25 + (S1[0] + S1[3]) + (S2[0] + S2[3]) - 2 * tr_sqrt;
  CHECK(frechet_distance(stats({0, 0}, S1), stats({0.5, 0}, S2)) == Approx(expected).epsilon(1e-10));
}

TEST_CASE("fid: bad input is named", "[fid]") {
  const float one[] = {1, 2};
  CHECK_THROWS_WITH(feature_stats(one, 1, 2), Catch::Contains("at least 2"));
  const float nan[] = {1, 2, 3, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH(feature_stats(nan, 2, 2), Catch::Contains("feature 1 of row 1"));
  CHECK_THROWS_WITH(frechet_distance(stats({0}, {1}), stats({0, 0}, {1, 0, 0, 1})),
                    Catch::Contains("dimensions differ"));
}

TEST_CASE("fid: the feature network learns the classes; FID separates distributions", "[fid]") {
  Dataset train = test::synthetic(256, 28, 28, 5), test_set = test::synthetic(128, 28, 28, 5);
  Generator init(1);
  FidNet net(init, 4);
  FidNetReport r = train_fid_net(net, train, test_set, 2, 3);
  INFO("epoch losses " << r.epoch_loss[0] << ", " << r.epoch_loss[1]);
  CHECK(r.epoch_loss[1] < r.epoch_loss[0]);
  CHECK(r.test_accuracy > 0.9);
  Tensor f;
  std::vector<int32_t> pred;
  net.evaluate(test_set.images, &f, &pred, 50);  // batches of 50: the last one partial
  REQUIRE(f.shape() == Shape{128, FidNet::kFeatures});
  REQUIRE(pred.size() == 128);
  // Two halves of one distribution are close; one class against the rest is far.
  std::vector<float> fv = f.to_vector();
  std::vector<float> even, odd, cls0, rest;
  for (int i = 0; i < 128; ++i) {
    auto row = fv.begin() + (size_t)i * FidNet::kFeatures;
    auto& half = (i / 4) % 2 ? odd : even;  // both halves hold all four classes
    half.insert(half.end(), row, row + FidNet::kFeatures);
    auto& split = i % 4 == 0 ? cls0 : rest;
    split.insert(split.end(), row, row + FidNet::kFeatures);
  }
  const int64_t F = FidNet::kFeatures;
  const double same = frechet_distance(feature_stats(even.data(), 64, F), feature_stats(odd.data(), 64, F));
  const double diff = frechet_distance(feature_stats(cls0.data(), 32, F), feature_stats(rest.data(), 96, F));
  INFO("FID same distribution " << same << ", class 0 vs the rest " << diff);
  CHECK(diff > 3 * same);
}
