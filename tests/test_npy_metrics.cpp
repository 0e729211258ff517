// test_npy_metrics.cpp: .npy round trips, byte-for-byte agreement with files NumPy wrote
// (tests/fixtures/npy, made by make_npy.py), damaged files; AUROC and PSNR against hand-computed values.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>

#include "models/metrics.h"
#include "tools/io/npy.h"

using namespace gt;

namespace {
std::string tmp_path(const std::string& name) {
  return "/tmp/gentape_test_npy_" + std::to_string(::getpid()) + "_" + name;
}
std::string fixture(const std::string& name) { return std::string(GENTAPE_FIXTURE_DIR) + "/npy/" + name; }
std::string read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& p, const std::string& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(b.data(), (std::streamsize)b.size());
}
// Replaces the one occurrence of `from` in b by `to` (same length, so the header length stays valid).
std::string patched(std::string b, const std::string& from, const std::string& to) {
  REQUIRE(from.size() == to.size());
  size_t at = b.find(from);
  REQUIRE(at != std::string::npos);
  b.replace(at, from.size(), to);
  return b;
}
}  // namespace

TEST_CASE("npy: float32 and int32 round trips, shapes (), (5,), (2, 3, 4)", "[io][npy]") {
  const std::string p = tmp_path("rt.npy");
  SECTION("float32 0-d") {
    io::save_npy(p, Tensor::scalar(-2.5f));
    Tensor t = io::load_npy(p);
    REQUIRE(t.dim() == 0);
    REQUIRE(t.dtype() == DType::F32);
    REQUIRE(t.to_vector() == std::vector<float>{-2.5f});
  }
  SECTION("float32 (5,)") {
    std::vector<float> v = {0.f, -1.f, 3.25f, 1e-30f, std::numeric_limits<float>::infinity()};
    io::save_npy(p, Tensor::from_vector(v, {5}));
    Tensor t = io::load_npy(p);
    REQUIRE(t.shape() == Shape{5});
    REQUIRE(t.to_vector() == v);
  }
  SECTION("float32 (2, 3, 4)") {
    std::vector<float> v(24);
    for (int i = 0; i < 24; ++i) v[(size_t)i] = 0.1f * (float)i - 1.f;
    io::save_npy(p, Tensor::from_vector(v, {2, 3, 4}));
    Tensor t = io::load_npy(p);
    REQUIRE(t.shape() == Shape{2, 3, 4});
    REQUIRE(t.to_vector() == v);
  }
  SECTION("int32 0-d, (5,), (2, 3, 4)") {
    io::save_npy(p, Tensor::from_indices({-7}, Shape{}));
    Tensor t0 = io::load_npy(p);
    REQUIRE(t0.dim() == 0);
    REQUIRE(t0.dtype() == DType::I32);
    REQUIRE(t0.to_vector_i32() == std::vector<int32_t>{-7});

    std::vector<int32_t> v5 = {1, -2, 2147483647, -2147483647 - 1, 0};
    io::save_npy(p, Tensor::from_indices(v5, {5}));
    Tensor t1 = io::load_npy(p);
    REQUIRE(t1.shape() == Shape{5});
    REQUIRE(t1.to_vector_i32() == v5);

    std::vector<int32_t> v24(24);
    for (int i = 0; i < 24; ++i) v24[(size_t)i] = 3 * i - 30;
    io::save_npy(p, Tensor::from_indices(v24, {2, 3, 4}));
    Tensor t3 = io::load_npy(p);
    REQUIRE(t3.shape() == Shape{2, 3, 4});
    REQUIRE(t3.dtype() == DType::I32);
    REQUIRE(t3.to_vector_i32() == v24);
  }
  REQUIRE_FALSE(std::ifstream(p + ".tmp." + std::to_string(::getpid())).good());
  std::remove(p.c_str());
}

TEST_CASE("npy: reads files NumPy wrote and writes the same bytes", "[io][npy]") {
  // a_f32.npy = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
  Tensor a = io::load_npy(fixture("a_f32.npy"));
  REQUIRE(a.shape() == Shape{3, 4});
  REQUIRE(a.dtype() == DType::F32);
  std::vector<float> want_a(12);
  for (int i = 0; i < 12; ++i) want_a[(size_t)i] = (float)i / 4.f;  // exact in binary
  REQUIRE(a.to_vector() == want_a);

  // b_i32.npy = np.array([[1, -2], [3, 4]], dtype=np.int32)
  Tensor b = io::load_npy(fixture("b_i32.npy"));
  REQUIRE(b.shape() == Shape{2, 2});
  REQUIRE(b.dtype() == DType::I32);
  REQUIRE(b.to_vector_i32() == std::vector<int32_t>{1, -2, 3, 4});

  // The whole files, header padding included, must match what NumPy wrote.
  const std::string pa = tmp_path("a.npy"), pb = tmp_path("b.npy");
  io::save_npy(pa, Tensor::from_vector(want_a, {3, 4}));
  io::save_npy(pb, Tensor::from_indices({1, -2, 3, 4}, {2, 2}));
  const std::string ga = read_bytes(pa), na = read_bytes(fixture("a_f32.npy"));
  const std::string gb = read_bytes(pb), nb = read_bytes(fixture("b_i32.npy"));
  REQUIRE(ga.size() == na.size());
  REQUIRE(ga == na);
  REQUIRE(gb == nb);
  REQUIRE(na.size() == 128 + 48);  // a 64-aligned 128-byte preamble + header, then 12 floats
  std::remove(pa.c_str());
  std::remove(pb.c_str());
}

TEST_CASE("npy: header layout of shapes () and (5,)", "[io][npy]") {
  // What NumPy 1.24 writes for np.zeros((), np.float32) and np.zeros(5, np.float32): the dict,
  // 21 - len("5") growth spaces for a non-empty shape, then spaces and '\n' up to 128 bytes.
  const std::string p = tmp_path("hdr.npy");
  const std::string d0 = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
  const std::string d5 = "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }";
  io::save_npy(p, Tensor::scalar(0.f));
  std::string s = read_bytes(p);
  REQUIRE(s.size() == 128 + 4);
  REQUIRE(s.substr(0, 10) == std::string("\x93NUMPY\x01\x00\x76\x00", 10));  // header length 118
  REQUIRE(s.substr(10, d0.size()) == d0);
  REQUIRE(s.substr(10 + d0.size(), 117 - 10 - d0.size()) == std::string(117 - 10 - d0.size(), ' '));
  REQUIRE(s[127] == '\n');
  io::save_npy(p, Tensor::zeros({5}));
  s = read_bytes(p);
  REQUIRE(s.size() == 128 + 20);
  REQUIRE(s.substr(10, d5.size()) == d5);
  REQUIRE(s.substr(10 + d5.size(), 117 - 10 - d5.size()) == std::string(117 - 10 - d5.size(), ' '));
  REQUIRE(s[127] == '\n');
  std::remove(p.c_str());
}

TEST_CASE("npy: version 2.0 headers are read", "[io][npy]") {
  // Version 2 differs only in a 4-byte header length.
  std::string v1 = read_bytes(fixture("b_i32.npy"));
  std::string v2 = v1.substr(0, 6) + std::string("\x02\x00", 2) + v1.substr(8, 2) + std::string(2, '\0') + v1.substr(10);
  const std::string p = tmp_path("v2.npy");
  write_bytes(p, v2);
  REQUIRE(io::load_npy(p).to_vector_i32() == std::vector<int32_t>{1, -2, 3, 4});
  std::remove(p.c_str());
}

TEST_CASE("npy: damaged files are named errors", "[io][npy]") {
  const std::string good = read_bytes(fixture("a_f32.npy"));
  const std::string p = tmp_path("bad.npy");

  write_bytes(p, "\x93NUMPX" + good.substr(6));
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("bad magic"));

  write_bytes(p, good.substr(0, good.size() - 4));
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("truncated") && Catch::Contains("48"));

  write_bytes(p, good.substr(0, 60));  // cut inside the header
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("truncated header"));

  write_bytes(p, good + "xx");
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("trailing"));

  write_bytes(p, patched(good, "'<f4'", "'<f8'"));
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("'<f8'") && Catch::Contains("not supported"));

  write_bytes(p, patched(good, "False", "True "));
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("fortran_order True"));

  write_bytes(p, patched(good, "(3, 4)", "(3; 4)"));
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("bad header"));

  std::string v3 = good;
  v3[6] = '\x03';
  write_bytes(p, v3);
  REQUIRE_THROWS_WITH(io::load_npy(p), Catch::Contains(p) && Catch::Contains("version 3.0"));

  const std::string missing = tmp_path("does_not_exist.npy");
  REQUIRE_THROWS_WITH(io::load_npy(missing), Catch::Contains(missing));
  std::remove(p.c_str());

  REQUIRE_THROWS_AS(io::save_npy(p, Tensor()), Error);
}

TEST_CASE("auroc: hand-computed cases", "[metrics]") {
  REQUIRE(auroc({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}) == 1.0);  // perfect separation
  REQUIRE(auroc({0.8, 0.9, 0.1, 0.2}, {0, 0, 1, 1}) == 0.0);  // reversed
  REQUIRE(auroc({0.5, 0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1, 1}) == 0.5);  // all tied: every pair counts 1/2
  // scores {0.1, 0.4, 0.35, 0.8, 0.4}, labels {0, 0, 1, 1, 1}: negatives {0.1, 0.4}, positives
  // {0.35, 0.8, 0.4}. Pairs (pos, neg): 0.35>0.1: 1, 0.35<0.4: 0, 0.8>0.1: 1, 0.8>0.4: 1,
  // 0.4>0.1: 1, 0.4=0.4: 1/2 -> 4.5 of 6 pairs = 0.75.
  REQUIRE(auroc({0.1, 0.4, 0.35, 0.8, 0.4}, {0, 0, 1, 1, 1}) == 0.75);
  // 1 positive among 3 negatives, beating exactly one: 1/3.
  REQUIRE(auroc({0.3, 0.1, 0.5, 0.9}, {1, 0, 0, 0}) == Approx(1.0 / 3.0).epsilon(1e-15));
}

TEST_CASE("auroc: invalid input is an error", "[metrics]") {
  REQUIRE_THROWS_WITH(auroc({0.1, 0.2}, {0, 0}), Catch::Contains("both classes"));
  REQUIRE_THROWS_WITH(auroc({0.1, 0.2}, {1, 1}), Catch::Contains("both classes"));
  REQUIRE_THROWS_WITH(auroc({}, {}), Catch::Contains("both classes"));
  REQUIRE_THROWS_WITH(auroc({0.1, 0.2}, {0}), Catch::Contains("labels"));
  REQUIRE_THROWS_WITH(auroc({0.1, 0.2}, {0, 2}), Catch::Contains("expected 0 or 1"));
  REQUIRE_THROWS_WITH(auroc({0.1, std::nan("")}, {0, 1}), Catch::Contains("NaN"));
}

TEST_CASE("psnr: identical inputs and a hand case", "[metrics]") {
  std::vector<float> a = {0.f, 0.25f, 0.5f, 1.f};
  REQUIRE(std::isinf(psnr(a.data(), a.data(), 4)));
  REQUIRE(psnr(a.data(), a.data(), 4) > 0);
  // Every element off by 0.1: MSE 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB. (0.1f is not exactly
  // 0.1, hence the tolerance.)
  std::vector<float> z(4, 0.f), t(4, 0.1f);
  REQUIRE(psnr(z.data(), t.data(), 4) == Approx(20.0).epsilon(1e-6));
  // Same error, max 255: 10 log10(255^2 / 0.01) = 20 log10(2550)
  REQUIRE(psnr(z.data(), t.data(), 4, 255.0) == Approx(20.0 * std::log10(2550.0)).epsilon(1e-6));
  // Exact in binary: errors 0.5 and 0 -> MSE 0.125, PSNR = 10 log10(8)
  std::vector<float> u = {0.5f, 0.f}, v = {0.f, 0.f};
  REQUIRE(psnr(u.data(), v.data(), 2) == Approx(10.0 * std::log10(8.0)).epsilon(1e-12));
  REQUIRE_THROWS_AS(psnr(u.data(), v.data(), 0), Error);
}
