// plots.h: the figures the CLI draws (loss curves, latent scatter plots), the text on them (a 5x7
// bitmap font), and the two pieces of numerics they need: the inverse normal CDF (for the latent
// manifold of Kingma & Welling 2014, Fig. 4) and a 2-D PCA projection (for latents > 2).
//
//   gt::io::Canvas c = gt::tools::line_plot({{"train loss", ys, colour}}, "epoch", "nats");
//   gt::io::write_png("runs/x/loss.png", c);
//   double z = gt::tools::inverse_normal_cdf(0.975);   // 1.959963985...
#pragma once

#include <string>
#include <vector>

#include "tools/io/png.h"

namespace gt::tools {

// Phi^-1(p) for p in (0, 1): Acklam's rational approximation (relative error < 1.15e-9), refined
// by one Halley step on erfc, which brings it to double precision. p <= 0 or p >= 1 give -inf/+inf.
double inverse_normal_cdf(double p);

// Projects n points of dimension d (row-major) onto their first two principal components
// (eigenvectors of the covariance, Eigen's self-adjoint solver). Returns (n, 2) row-major.
// Each component's sign is fixed so its largest-magnitude loading is positive (deterministic).
// d == 1 gives the coordinate and zeros; d == 2 still rotates (use the raw means to skip PCA).
std::vector<double> pca_2d(const std::vector<float>& x, int64_t n, int64_t d);

// Draws `text` with a 5x7 bitmap font (upper-case letters, digits, . - + : / ( ) = , % _ ^;
// lower case prints as upper case) with its top-left corner at (x, y); each font pixel is a
// scale x scale block. Returns the width drawn in pixels.
int draw_text(io::Canvas& c, int x, int y, const std::string& text, io::Rgb colour, int scale = 1);
int text_width(const std::string& text, int scale = 1);

struct Series {
  std::string name;
  std::vector<double> y;  // y[i] at x = i + 1 (epochs); non-finite values are skipped
  io::Rgb colour;
};
// A line plot with axes, tick labels and a legend (e.g. train loss and test -ELBO per epoch).
io::Canvas line_plot(const std::vector<Series>& series, const std::string& xlabel, const std::string& title,
                     int width = 720, int height = 440);

// A scatter plot of (n, 2) points coloured by class with class_colour (tab10), axes with ticks,
// no legend.
io::Canvas scatter_plot(const std::vector<double>& xy, const std::vector<int32_t>& classes, const std::string& title,
                        int size = 640);

// Nearest-neighbour enlargement by an integer factor.
io::Canvas upscale(const io::Canvas& c, int factor);

}  // namespace gt::tools
