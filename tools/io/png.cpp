// png.cpp: the canvas primitives and libpng I/O.
#include "tools/io/png.h"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace gt::io {

Canvas::Canvas(int width, int height, Rgb bg) : w_(width), h_(height) {
  GT_CHECK(width > 0 && height > 0 && (int64_t)width * height <= (int64_t(1) << 28),
           "canvas size " << width << "x" << height << " is not valid");
  px_.resize((size_t)w_ * h_ * 3);
  for (size_t i = 0; i < px_.size(); i += 3) {
    px_[i] = bg.r;
    px_[i + 1] = bg.g;
    px_[i + 2] = bg.b;
  }
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  size_t i = ((size_t)y * w_ + x) * 3;
  px_[i] = c.r;
  px_[i + 1] = c.g;
  px_[i + 2] = c.b;
}

Rgb Canvas::get(int x, int y) const {
  GT_CHECK(x >= 0 && y >= 0 && x < w_ && y < h_, "pixel (" << x << ", " << y << ") outside " << w_ << "x" << h_);
  size_t i = ((size_t)y * w_ + x) * 3;
  return {px_[i], px_[i + 1], px_[i + 2]};
}

void Canvas::disc(double cx, double cy, double r, Rgb c) {
  for (int y = (int)std::floor(cy - r); y <= (int)std::ceil(cy + r); ++y)
    for (int x = (int)std::floor(cx - r); x <= (int)std::ceil(cx + r); ++x)
      if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) set(x, y, c);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c) {
  int steps = (int)std::ceil(std::max(std::fabs(x1 - x0), std::fabs(y1 - y0))) + 1;
  for (int i = 0; i <= steps; ++i) {
    double t = (double)i / steps;
    set((int)std::lround(x0 + t * (x1 - x0)), (int)std::lround(y0 + t * (y1 - y0)), c);
  }
}

void Canvas::rect(int x0, int y0, int x1, int y1, Rgb c) {
  line(x0, y0, x1, y0, c);
  line(x1, y0, x1, y1, c);
  line(x1, y1, x0, y1, c);
  line(x0, y1, x0, y0, c);
}

void Canvas::paste_gray(const float* img, int h, int w, int x, int y) {
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) {
      float v = img[(size_t)i * w + j];
      v = std::isfinite(v) ? std::min(1.f, std::max(0.f, v)) : 0.f;
      uint8_t g = (uint8_t)std::lround(v * 255.f);
      set(x + j, y + i, {g, g, g});
    }
}

Canvas image_grid(const float* images, int n, int h, int w, int per_row, int pad) {
  GT_CHECK(n >= 1 && per_row >= 1, "image_grid: " << n << " images, " << per_row << " per row");
  int rows = (n + per_row - 1) / per_row, cols = std::min(n, per_row);
  Canvas c(cols * (w + pad) + pad, rows * (h + pad) + pad, {128, 128, 128});
  for (int k = 0; k < n; ++k)
    c.paste_gray(images + (size_t)k * h * w, h, w, pad + (k % per_row) * (w + pad), pad + (k / per_row) * (h + pad));
  return c;
}

Rgb class_colour(int k) {
  static const Rgb tab10[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                                {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return tab10[((k % 10) + 10) % 10];
}

void write_png(const std::string& path, const Canvas& c) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  GT_CHECK(f, "cannot write " << tmp << ": " << std::strerror(errno));
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    std::remove(tmp.c_str());
    GT_FAIL("libpng failed writing " << tmp);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)c.width(), (png_uint_32)c.height(), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < c.height(); ++y)
    png_write_row(png, const_cast<png_bytep>(c.pixels().data() + (size_t)y * c.width() * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  bool ok = std::fclose(f) == 0;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    GT_FAIL("cannot write " << path << ": " << std::strerror(errno));
  }
}

Canvas read_png(const std::string& path) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  GT_CHECK(png_image_begin_read_from_file(&img, path.c_str()), "cannot read PNG " << path << ": " << img.message);
  img.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> buf(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, buf.data(), 0, nullptr)) {
    std::string m = img.message;
    png_image_free(&img);
    GT_FAIL("cannot read PNG " << path << ": " << m);
  }
  Canvas c((int)img.width, (int)img.height);
  for (int y = 0; y < (int)img.height; ++y)
    for (int x = 0; x < (int)img.width; ++x) {
      size_t i = ((size_t)y * img.width + x) * 3;
      c.set(x, y, {buf[i], buf[i + 1], buf[i + 2]});
    }
  return c;
}

}  // namespace gt::io
