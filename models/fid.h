// fid.h: the Fréchet distance between two sets of feature vectors (Heusel et al. 2017, "FID").
//
// Each set is summarised by a Gaussian fitted to its features: mean mu and covariance S (unbiased,
// N - 1). The Fréchet (2-Wasserstein) distance between N(mu1, S1) and N(mu2, S2) is
//
//   d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)
//
// The trace of the matrix square root is computed from eigenvalues of symmetric matrices only:
// R = S1^1/2 (S1's eigen-decomposition, negative round-off eigenvalues clamped to 0), then
// Tr((R S2 R)^1/2) = sum_i sqrt(lambda_i(R S2 R)) — R S2 R is symmetric positive semi-definite, so this
// avoids the complex square roots a general sqrtm(S1 S2) produces. All in double (Eigen).
//
// In gentape the features come from a classifier trained on the same data set (models/fid_net.h,
// `gentape fid`), not from Inception: FID values are comparable only within gentape and one data set.
//
//   gt::FeatureStats real = gt::feature_stats(test_feats.data(), n, 128);
//   gt::FeatureStats fake = gt::feature_stats(sample_feats.data(), m, 128);
//   double fid = gt::frechet_distance(real, fake);
#pragma once

#include <cstdint>
#include <vector>

namespace gt {

struct FeatureStats {
  int64_t n = 0, dim = 0;
  std::vector<double> mean;  // (dim)
  std::vector<double> cov;   // (dim, dim), row-major, unbiased (divides by n - 1)
};

// feats: n rows of dim floats (host). Throws gt::Error when n < 2, dim < 1 or a value is not finite
// (naming the row and column).
FeatureStats feature_stats(const float* feats, int64_t n, int64_t dim);

// Throws gt::Error when the dimensions differ.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

}  // namespace gt
