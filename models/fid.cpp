// fid.cpp: feature statistics and the Fréchet distance (fid.h has the maths).
#include "models/fid.h"

#include <cmath>

#include <Eigen/Dense>

#include "core/error.h"

namespace gt {

FeatureStats feature_stats(const float* feats, int64_t n, int64_t dim) {
  GT_CHECK(n >= 2, "feature_stats: need at least 2 feature vectors for a covariance, got " << n);
  GT_CHECK(dim >= 1, "feature_stats: feature dimension must be >= 1, got " << dim);
  FeatureStats s;
  s.n = n;
  s.dim = dim;
  Eigen::MatrixXd X(n, dim);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) {
      const float v = feats[i * dim + j];
      GT_CHECK(std::isfinite(v), "feature_stats: feature " << j << " of row " << i << " is " << v);
      X(i, j) = v;
    }
  const Eigen::RowVectorXd mu = X.colwise().mean();
  X.rowwise() -= mu;
  const Eigen::MatrixXd S = (X.transpose() * X) / double(n - 1);
  s.mean.assign(mu.data(), mu.data() + dim);
  s.cov.resize(dim * dim);
  for (int64_t i = 0; i < dim; ++i)
    for (int64_t j = 0; j < dim; ++j) s.cov[i * dim + j] = S(i, j);
  return s;
}

namespace {

Eigen::MatrixXd as_matrix(const FeatureStats& s) {
  Eigen::MatrixXd m(s.dim, s.dim);
  for (int64_t i = 0; i < s.dim; ++i)
    for (int64_t j = 0; j < s.dim; ++j) m(i, j) = s.cov[i * s.dim + j];
  return 0.5 * (m + m.transpose());  // exactly symmetric for the eigen-solver
}

}  // namespace

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  GT_CHECK(a.dim == b.dim && a.dim > 0,
           "frechet_distance: feature dimensions differ (" << a.dim << " vs " << b.dim << ")");
  const int64_t d = a.dim;
  double mean_term = 0;
  for (int64_t j = 0; j < d; ++j) mean_term += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]);

  const Eigen::MatrixXd S1 = as_matrix(a), S2 = as_matrix(b);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> e1(S1);
  const Eigen::VectorXd l1 = e1.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  const Eigen::MatrixXd R = e1.eigenvectors() * l1.asDiagonal() * e1.eigenvectors().transpose();  // S1^1/2
  Eigen::MatrixXd M = R * S2 * R;
  M = 0.5 * (M + M.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> em(M, Eigen::EigenvaluesOnly);
  const double tr_sqrt = em.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  const double fid = mean_term + S1.trace() + S2.trace() - 2.0 * tr_sqrt;
  return fid > 0 ? fid : 0.0;  // round-off can give -1e-12 for identical sets
}

}  // namespace gt
