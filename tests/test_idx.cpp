// test_idx.cpp: the IDX reader on good files (raw and gzip'd, and the real Fashion-MNIST when
// installed) and on every kind of damage it must name instead of crashing.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "core/error.h"
#include "tools/io/idx.h"

using gt::io::read_idx;
using gt::io::write_idx;

namespace {
std::string tmp_path(const std::string& name) {
  return "/tmp/gentape_test_idx_" + std::to_string(::getpid()) + "_" + name;
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}
// A valid 2x3 unsigned-byte file, byte by byte.
std::vector<uint8_t> good_bytes() { return {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6}; }
}  // namespace

TEST_CASE("idx: reads a hand-written file", "[io][idx]") {
  std::string p = tmp_path("good.idx");
  write_bytes(p, good_bytes());
  gt::io::IdxArray a = read_idx(p);
  REQUIRE(a.dims == std::vector<int64_t>{2, 3});
  REQUIRE(a.data == std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
  std::remove(p.c_str());
}

TEST_CASE("idx: write then read, raw and gzip'd", "[io][idx]") {
  std::vector<uint8_t> data(5 * 7 * 11);
  for (size_t i = 0; i < data.size(); ++i) data[i] = (uint8_t)(i * 37);
  for (const char* name : {"rt.idx", "rt.idx.gz"}) {
    std::string p = tmp_path(name);
    write_idx(p, {5, 7, 11}, data);
    gt::io::IdxArray a = read_idx(p);
    REQUIRE(a.dims == std::vector<int64_t>{5, 7, 11});
    REQUIRE(a.data == data);
    std::remove(p.c_str());
  }
}

TEST_CASE("idx: damaged files give errors naming the file and the problem", "[io][idx]") {
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* expect;
  };
  std::vector<uint8_t> g = good_bytes();
  std::vector<uint8_t> truncated(g.begin(), g.end() - 2);
  std::vector<uint8_t> trailing = g;
  trailing.push_back(9);
  std::vector<uint8_t> bad_magic = g;
  bad_magic[0] = 0x1f;
  bad_magic[1] = 0x00;
  std::vector<uint8_t> bad_type = g;
  bad_type[2] = 0x0D;  // float32: valid IDX, not supported
  std::vector<uint8_t> zero_dim = g;
  zero_dim[7] = 0;
  std::vector<uint8_t> short_header = {0, 0, 0x08};
  std::vector<uint8_t> missing_dim = {0, 0, 0x08, 3, 0, 0, 0, 2};
  std::vector<Case> cases = {
      {"truncated data", truncated, "truncated: the header promises 6 bytes of data, the file has 4"},
      {"trailing bytes", trailing, "trailing bytes"},
      {"bad magic", bad_magic, "bad magic"},
      {"unsupported type", bad_type, "0xd is not supported"},
      {"zero dimension", zero_dim, "dimension 0 is 0"},
      {"short header", short_header, "truncated header"},
      {"missing dimension", missing_dim, "dimension 1 missing"},
      {"empty file", {}, "truncated header"},
  };
  for (const Case& c : cases) {
    std::string p = tmp_path("bad.idx");
    write_bytes(p, c.bytes);
    INFO(c.what);
    REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains(p) && Catch::Contains(c.expect));
    std::remove(p.c_str());
  }
  REQUIRE_THROWS_WITH(read_idx(tmp_path("does-not-exist.idx")), Catch::Contains("cannot open IDX file"));
}

TEST_CASE("idx: a corrupted gzip stream is an error, not a crash", "[io][idx]") {
  std::string p = tmp_path("c.idx.gz");
  std::vector<uint8_t> data(4096, 7);
  write_idx(p, {4096}, data);
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  for (size_t i = 12; i < b.size() - 8; ++i) b[i] ^= 0x5A;  // scramble the deflate stream
  write_bytes(p, b);
  REQUIRE_THROWS_AS(read_idx(p), gt::Error);
  std::remove(p.c_str());
}

TEST_CASE("idx: Debian's Fashion-MNIST test set", "[io][idx][data]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (!std::ifstream(dir + "t10k-labels-idx1-ubyte.gz")) {
    WARN("SKIPPED: dataset-fashion-mnist is not installed (" << dir << ")");
    return;
  }
  gt::io::IdxArray x = read_idx(dir + "t10k-images-idx3-ubyte.gz");
  gt::io::IdxArray y = read_idx(dir + "t10k-labels-idx1-ubyte.gz");
  REQUIRE(x.dims == std::vector<int64_t>{10000, 28, 28});
  REQUIRE(y.dims == std::vector<int64_t>{10000});
  std::vector<int> per_class(10, 0);
  int out_of_range = 0;
  for (uint8_t l : y.data) {
    if (l < 10) per_class[l]++;
    else out_of_range++;
  }
  REQUIRE(out_of_range == 0);
  REQUIRE(per_class == std::vector<int>(10, 1000));  // the test set is balanced
}
