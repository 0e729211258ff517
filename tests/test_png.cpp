// test_png.cpp: PNG round trip through libpng, and the image grid layout.
#include <catch2/catch.hpp>

#include <cstdio>
#include <unistd.h>

#include "core/error.h"
#include "tools/io/png.h"

using namespace gt;

TEST_CASE("png: write then read back the same pixels", "[io][png]") {
  std::string p = "/tmp/gentape_test_png_" + std::to_string(::getpid()) + ".png";
  io::Canvas c(5, 3);
  c.set(0, 0, {255, 0, 0});
  c.set(4, 2, {0, 0, 255});
  c.line(0, 1, 4, 1, {0, 128, 0});
  io::write_png(p, c);
  io::Canvas r = io::read_png(p);
  REQUIRE(r.width() == 5);
  REQUIRE(r.height() == 3);
  REQUIRE(r.pixels() == c.pixels());
  std::remove(p.c_str());
  REQUIRE_THROWS_WITH(io::read_png(p), Catch::Contains(p));
  REQUIRE_THROWS_AS(io::write_png("/nonexistent-dir/x.png", c), Error);
}

TEST_CASE("png: image grid places each image and clamps values", "[io][png]") {
  std::vector<float> imgs(3 * 2 * 2, 0.f);
  imgs[4] = 1.f;   // image 1, pixel (0,0)
  imgs[11] = 7.f;  // image 2, pixel (1,1): clamped to 1
  io::Canvas g = io::image_grid(imgs.data(), 3, 2, 2, 2, 1);
  REQUIRE(g.width() == 2 * 3 + 1);
  REQUIRE(g.height() == 2 * 3 + 1);
  REQUIRE(g.get(0, 0).r == 128);              // padding
  REQUIRE(g.get(1, 1).r == 0);                // image 0
  REQUIRE(g.get(4, 1).r == 255);              // image 1 at column 1
  REQUIRE(g.get(1 + 1, 4 + 1).r == 255);      // image 2 at row 1, its pixel (1,1)
}
