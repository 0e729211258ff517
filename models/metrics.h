// metrics.h: evaluation numbers for generative models — AUROC for anomaly detection by
// reconstruction error, and PSNR for reconstructions.
//
// AUROC = P(score of a random positive > score of a random negative) + 1/2 P(equal), computed exactly
// from the Mann-Whitney U statistic (Mann & Whitney 1947; Hanley & McNeil 1982):
//   U = R_pos - n_pos (n_pos + 1) / 2,   AUROC = U / (n_pos n_neg),
// where R_pos is the sum of the positives' ranks among all scores (ascending, ties given their average
// rank, which is what makes a tied pair count 1/2). O(N log N), no thresholds, no interpolation.
// PSNR = 10 log10(max^2 / MSE) in dB; +inf for identical inputs.
//
//   double a = gt::auroc({0.1, 0.9, 0.4}, {0, 1, 0});   // 1.0: label 1 (anomalous) scores higher
//   double p = gt::psnr(x.data(), y.data(), x.numel());  // images in [0, 1]
#pragma once

#include <cstdint>
#include <vector>

namespace gt {

// scores (N), labels (N) each 0 (normal) or 1 (anomalous/positive). Throws gt::Error when the
// sizes differ, a label is not 0/1, a score is NaN, or either class is empty.
double auroc(const std::vector<double>& scores, const std::vector<int>& labels);

// a (N), b (N) host arrays; max_value is the largest possible pixel value (1 for [0, 1] images).
// Throws when n <= 0 or max_value <= 0.
double psnr(const float* a, const float* b, int64_t n, double max_value = 1.0);

}  // namespace gt
