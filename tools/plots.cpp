// plots.cpp: inverse normal CDF, 2-D PCA, a 5x7 bitmap font, line and scatter plots.
#include "tools/plots.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/error.h"

namespace gt::tools {

// ---------------------------------------------------------------------------------------------
// Phi^-1: P. J. Acklam, "An algorithm for computing the inverse normal cumulative distribution
// function" (2003). Three rational approximations (lower tail, centre, upper tail), then one step
// of Halley's method on f(x) = Phi(x) - p with Phi(x) = erfc(-x / sqrt 2) / 2:
//   x <- x - u / (1 + x u / 2),  u = (Phi(x) - p) sqrt(2 pi) e^{x^2 / 2}  (= f / f').
double inverse_normal_cdf(double p) {
  if (std::isnan(p)) return p;
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double p_low = 0.02425, p_high = 1 - p_low;
  double x;
  if (p < p_low) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= p_high) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // Halley refinement. In the upper tail compare with the upper tail probability, where 1 - p is
  // exact, so the step does not lose the digits that p itself cannot hold.
  const double sqrt2pi = 2.5066282746310002;
  const double e = p > 0.5 ? (1 - p) - 0.5 * std::erfc(x / std::sqrt(2.0))
                           : 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * sqrt2pi * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

// ---------------------------------------------------------------------------------------------
// PCA

std::vector<double> pca_2d(const std::vector<float>& x, int64_t n, int64_t d) {
  GT_CHECK(n >= 1 && d >= 1 && (int64_t)x.size() == n * d,
           "pca_2d: " << x.size() << " values are not " << n << " points of dimension " << d);
  Eigen::MatrixXd X(n, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) X(i, j) = x[(size_t)(i * d + j)];
  Eigen::RowVectorXd mean = X.colwise().mean();
  X.rowwise() -= mean;
  std::vector<double> out((size_t)(n * 2), 0.0);
  if (d == 1) {
    for (int64_t i = 0; i < n; ++i) out[(size_t)(2 * i)] = X(i, 0);
    return out;
  }
  Eigen::MatrixXd cov = (X.transpose() * X) / (double)std::max<int64_t>(1, n - 1);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cov);
  GT_CHECK(es.info() == Eigen::Success, "pca_2d: the eigen solver did not converge");
  Eigen::MatrixXd V(d, 2);
  V.col(0) = es.eigenvectors().col(d - 1);  // eigenvalues ascend: the last is the largest
  V.col(1) = es.eigenvectors().col(d - 2);
  for (int k = 0; k < 2; ++k) {
    Eigen::Index imax;
    V.col(k).cwiseAbs().maxCoeff(&imax);
    if (V(imax, k) < 0) V.col(k) *= -1;
  }
  Eigen::MatrixXd P = X * V;
  for (int64_t i = 0; i < n; ++i) {
    out[(size_t)(2 * i)] = P(i, 0);
    out[(size_t)(2 * i + 1)] = P(i, 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// a 5x7 bitmap font

namespace {
struct Glyph {
  char ch;
  const char* rows[7];
};
// clang-format off
const Glyph kFont[] = {
  {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
  {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
  {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
  {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
  {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
  {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
  {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
  {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
  {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
  {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
  {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
  {'D', {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."}},
  {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
  {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
  {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
  {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
  {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
  {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
  {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
  {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
  {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
  {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
  {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
  {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
  {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
  {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
  {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
  {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
  {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
  {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
  {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
  {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
  {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
  {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
  {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
  {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
  {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
  {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
  {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
  {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
  {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
  {'^', {"..#..", ".#.#.", "#...#", ".....", ".....", ".....", "....."}},
};
// clang-format on
constexpr int kGlyphW = 5, kGlyphH = 7, kAdvance = 6;

const Glyph* find_glyph(char ch) {
  if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
  for (const Glyph& g : kFont)
    if (g.ch == ch) return &g;
  return nullptr;  // space and anything unknown: blank
}

// "%.4g" without a trailing exponent mess for the tick labels.
std::string tick_label(double v) {
  char buf[32];
  if (std::fabs(v) < 1e-12) v = 0;
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Nice round tick positions covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> t;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target), mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

const io::Rgb kAxis{60, 60, 60}, kGrid{225, 225, 225}, kText{30, 30, 30};
}  // namespace

int text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : ((int)text.size() * kAdvance - 1) * scale;
}

int draw_text(io::Canvas& c, int x, int y, const std::string& text, io::Rgb colour, int scale) {
  int cx = x;
  for (char ch : text) {
    if (const Glyph* g = find_glyph(ch))
      for (int r = 0; r < kGlyphH; ++r)
        for (int col = 0; col < kGlyphW; ++col)
          if (g->rows[r][col] == '#')
            for (int dy = 0; dy < scale; ++dy)
              for (int dx = 0; dx < scale; ++dx) c.set(cx + col * scale + dx, y + r * scale + dy, colour);
    cx += kAdvance * scale;
  }
  return cx - x;
}

io::Canvas upscale(const io::Canvas& c, int k) {
  if (k <= 1) return c;
  io::Canvas out(c.width() * k, c.height() * k);
  for (int y = 0; y < out.height(); ++y)
    for (int x = 0; x < out.width(); ++x) out.set(x, y, c.get(x / k, y / k));
  return out;
}

// ---------------------------------------------------------------------------------------------
// plots

namespace {
// The plotting frame shared by both plots: maps data to pixels, draws grid, axes and tick labels.
struct Frame {
  int left, top, right, bottom;  // pixel box of the plot area
  double x0, x1, y0, y1;         // data range
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }

  void draw(io::Canvas& c, bool integer_x) const {
    std::vector<double> xt = nice_ticks(x0, x1, 8), yt = nice_ticks(y0, y1, 6);
    if (integer_x) {
      xt.erase(std::remove_if(xt.begin(), xt.end(), [](double v) { return std::fabs(v - std::round(v)) > 1e-9; }), xt.end());
      if (xt.empty()) xt.push_back(std::round((x0 + x1) / 2));
    }
    for (double v : yt) {
      const int y = (int)std::lround(py(v));
      c.line(left, y, right, y, kGrid);
      const std::string s = tick_label(v);
      draw_text(c, left - 6 - text_width(s), y - 3, s, kText);
    }
    for (double v : xt) {
      const int x = (int)std::lround(px(v));
      c.line(x, top, x, bottom, kGrid);
      c.line(x, bottom, x, bottom + 4, kAxis);
      const std::string s = tick_label(v);
      draw_text(c, x - text_width(s) / 2, bottom + 8, s, kText);
    }
    c.rect(left, top, right, bottom, kAxis);
  }
};

void pad_range(double& lo, double& hi, double frac) {
  if (!(hi > lo)) {
    const double m = std::max(1.0, std::fabs(lo)) * 0.05;
    lo -= m;
    hi += m;
    return;
  }
  const double p = (hi - lo) * frac;
  lo -= p;
  hi += p;
}
}  // namespace

io::Canvas line_plot(const std::vector<Series>& series, const std::string& xlabel, const std::string& title, int width,
                     int height) {
  io::Canvas c(width, height);
  double y0 = std::numeric_limits<double>::infinity(), y1 = -y0;
  size_t n = 0;
  for (const Series& s : series) {
    n = std::max(n, s.y.size());
    for (double v : s.y)
      if (std::isfinite(v)) y0 = std::min(y0, v), y1 = std::max(y1, v);
  }
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  pad_range(y0, y1, 0.05);
  Frame f{80, 40, width - 20, height - 50, 1.0, std::max<double>(2.0, (double)n), y0, y1};
  f.draw(c, true);
  draw_text(c, f.left, 14, title, kText, 2);
  draw_text(c, (f.left + f.right) / 2 - text_width(xlabel) / 2, height - 22, xlabel, kText);
  for (const Series& s : series) {
    bool have_prev = false;
    double px = 0, py = 0;
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        have_prev = false;
        continue;
      }
      const double x = f.px((double)(i + 1)), y = f.py(s.y[i]);
      if (have_prev)
        for (int o = -1; o <= 1; ++o) c.line(px, py + o, x, y + o, s.colour);  // 3 px thick
      c.disc(x, y, 3.5, s.colour);
      px = x, py = y, have_prev = true;
    }
  }
  // Legend, top right inside the plot.
  int ly = f.top + 10;
  for (const Series& s : series) {
    const int lx = f.right - 24 - text_width(s.name) - 10;
    for (int o = -1; o <= 1; ++o) c.line(lx, ly + 3 + o, lx + 18, ly + 3 + o, s.colour);
    draw_text(c, lx + 24, ly, s.name, kText);
    ly += 18;
  }
  return c;
}

io::Canvas scatter_plot(const std::vector<double>& xy, const std::vector<int32_t>& classes, const std::string& title,
                        int size) {
  GT_CHECK(xy.size() == 2 * classes.size(), "scatter_plot: " << xy.size() / 2 << " points but " << classes.size() << " classes");
  io::Canvas c(size, size);
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (size_t i = 0; i < classes.size(); ++i) {
    x0 = std::min(x0, xy[2 * i]), x1 = std::max(x1, xy[2 * i]);
    y0 = std::min(y0, xy[2 * i + 1]), y1 = std::max(y1, xy[2 * i + 1]);
  }
  if (classes.empty()) x0 = y0 = -1, x1 = y1 = 1;
  pad_range(x0, x1, 0.04);
  pad_range(y0, y1, 0.04);
  Frame f{70, 40, size - 20, size - 40, x0, x1, y0, y1};
  f.draw(c, false);
  draw_text(c, f.left, 14, title, kText, 2);
  for (size_t i = 0; i < classes.size(); ++i)
    c.disc(f.px(xy[2 * i]), f.py(xy[2 * i + 1]), 2.2, io::class_colour(classes[i]));
  return c;
}

}  // namespace gt::tools
