// png.h: pictures — PNG files (written with libpng, the reference implementation) and a small RGB
// canvas with what the course's figures need: image grids, scatter points, poly-lines.
//
//   gt::io::Canvas c = gt::io::image_grid(x.data(), 64, 28, 28, 8);   // 8 per row, [0,1] pixels
//   gt::io::write_png("runs/demo/samples.png", c);                     // atomic: temp + rename
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gt::io {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return w_; }
  int height() const { return h_; }
  void set(int x, int y, Rgb c);  // ignores points outside
  Rgb get(int x, int y) const;
  void disc(double cx, double cy, double radius, Rgb c);
  void line(double x0, double y0, double x1, double y1, Rgb c);
  void rect(int x0, int y0, int x1, int y1, Rgb c);  // outline
  // Pastes a grey image (values in [0, 1], clamped) with its top-left corner at (x, y).
  void paste_gray(const float* img, int h, int w, int x, int y);
  const std::vector<uint8_t>& pixels() const { return px_; }  // row-major RGB

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

// A grid of n grey h x w images in [0, 1] (row-major, one after another), `per_row` per row,
// separated by `pad` pixels of mid-grey.
Canvas image_grid(const float* images, int n, int h, int w, int per_row, int pad = 2);

// Ten distinguishable colours (matplotlib's tab10), for classes.
Rgb class_colour(int k);

// Writes the canvas as an 8-bit RGB PNG, atomically (temp file, then rename).
void write_png(const std::string& path, const Canvas& c);
// Reads an 8-bit PNG back (grey, RGB or RGBA; for tests and tools).
Canvas read_png(const std::string& path);

}  // namespace gt::io
