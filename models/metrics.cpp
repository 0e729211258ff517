// metrics.cpp: AUROC through average ranks (Mann-Whitney U) and PSNR, both accumulated in double.
#include "models/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace gt {

double auroc(const std::vector<double>& scores, const std::vector<int>& labels) {
  GT_CHECK(scores.size() == labels.size(),
           "auroc: " << scores.size() << " scores but " << labels.size() << " labels");
  const size_t n = scores.size();
  int64_t n_pos = 0;
  for (size_t i = 0; i < n; ++i) {
    GT_CHECK(labels[i] == 0 || labels[i] == 1, "auroc: label " << i << " is " << labels[i] << " (expected 0 or 1)");
    GT_CHECK(!std::isnan(scores[i]), "auroc: score " << i << " is NaN");
    n_pos += labels[i];
  }
  const int64_t n_neg = (int64_t)n - n_pos;
  GT_CHECK(n_pos > 0 && n_neg > 0, "auroc: needs both classes, got " << n_pos << " positive (label 1) and " << n_neg
                                                                      << " negative (label 0) examples");
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Ranks are 1-based; a tie group occupying ranks i+1 .. j shares the average (i + 1 + j) / 2.
  double rank_sum_pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = 0.5 * (double)(i + 1 + j);
    for (size_t k = i; k < j; ++k)
      if (labels[order[k]] == 1) rank_sum_pos += avg_rank;
    i = j;
  }
  const double u = rank_sum_pos - 0.5 * (double)n_pos * (double)(n_pos + 1);
  return u / ((double)n_pos * (double)n_neg);
}

double psnr(const float* a, const float* b, int64_t n, double max_value) {
  GT_CHECK(n > 0, "psnr: " << n << " elements");
  GT_CHECK(a && b, "psnr: null input pointer");
  GT_CHECK(max_value > 0, "psnr: max_value " << max_value << " must be positive");
  double sse = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = (double)a[i] - (double)b[i];
    sse += d * d;
  }
  const double mse = sse / (double)n;
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(max_value * max_value / mse);
}

}  // namespace gt
