// test_safetensors.cpp: checkpoint round trip, the exact byte layout (so other readers agree),
// atomic replacement, and damaged files.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "tools/io/safetensors.h"

using namespace gt;

namespace {
std::string tmp_path(const std::string& name) {
  return "/tmp/gentape_test_st_" + std::to_string(::getpid()) + "_" + name;
}
std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}
}  // namespace

TEST_CASE("safetensors: round trip of tensors and metadata", "[io][safetensors]") {
  std::string p = tmp_path("rt.safetensors");
  Tensor w = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({-0.5f}, {1});
  Tensor idx = Tensor::from_indices({7, 8, 9}, {3});
  io::save_safetensors(p, {{"fc1.weight", w}, {"fc1.bias", b}, {"step", idx}}, {{"config", "{\"latent\": 20}"}});
  io::Checkpoint c = io::load_safetensors(p);
  REQUIRE(c.tensors.size() == 3);
  REQUIRE(c.tensors.at("fc1.weight").shape() == Shape{2, 3});
  REQUIRE(c.tensors.at("fc1.weight").to_vector() == w.to_vector());
  REQUIRE(c.tensors.at("fc1.bias").to_vector() == b.to_vector());
  REQUIRE(c.tensors.at("step").to_vector_i32() == std::vector<int32_t>{7, 8, 9});
  REQUIRE(c.metadata.at("config") == "{\"latent\": 20}");
  std::remove(p.c_str());
}

TEST_CASE("safetensors: byte layout follows the spec", "[io][safetensors]") {
  std::string p = tmp_path("layout.safetensors");
  io::save_safetensors(p, {{"a", Tensor::from_vector({1.0f, -2.0f}, {2})}});
  std::vector<uint8_t> b = read_bytes(p);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= (uint64_t)b[(size_t)i] << (8 * i);
  REQUIRE(n % 8 == 0);  // data block 8-byte aligned
  REQUIRE(b.size() == 8 + n + 8);
  std::string header(b.begin() + 8, b.begin() + 8 + (long)n);
  REQUIRE(header.find("\"a\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[2]}") != std::string::npos);
  // 1.0f and -2.0f, little-endian IEEE 754
  std::vector<uint8_t> data(b.end() - 8, b.end());
  REQUIRE(data == std::vector<uint8_t>{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0});
  std::remove(p.c_str());
}

TEST_CASE("safetensors: a failed save leaves the previous checkpoint intact", "[io][safetensors]") {
  std::string p = tmp_path("atomic.safetensors");
  io::save_safetensors(p, {{"w", Tensor::from_vector({1, 2}, {2})}});
  std::vector<uint8_t> before = read_bytes(p);
  Tensor undefined;
  REQUIRE_THROWS_AS(io::save_safetensors(p, {{"w", Tensor::from_vector({3, 4}, {2})}, {"z", undefined}}), Error);
  REQUIRE(read_bytes(p) == before);
  REQUIRE_FALSE(std::ifstream(p + ".tmp").good());
  std::remove(p.c_str());
}

TEST_CASE("safetensors: damaged files are named errors", "[io][safetensors]") {
  std::string p = tmp_path("bad.safetensors");
  io::save_safetensors(p, {{"w", Tensor::from_vector({1, 2, 3, 4}, {4})}});
  std::vector<uint8_t> good = read_bytes(p);

  write_bytes(p, std::vector<uint8_t>(good.begin(), good.end() - 4));  // truncated data
  REQUIRE_THROWS_WITH(io::load_safetensors(p), Catch::Contains(p) && Catch::Contains("'w'") &&
                                                   Catch::Contains("outside the data block"));
  write_bytes(p, std::vector<uint8_t>(good.begin(), good.begin() + 5));  // no header length
  REQUIRE_THROWS_WITH(io::load_safetensors(p), Catch::Contains("too short"));
  std::vector<uint8_t> huge = good;
  huge[6] = 0xff;  // header length far past the end
  write_bytes(p, huge);
  REQUIRE_THROWS_WITH(io::load_safetensors(p), Catch::Contains("exceeds the file"));
  std::vector<uint8_t> garbage = good;
  garbage[9] = '#';  // break the JSON
  write_bytes(p, garbage);
  REQUIRE_THROWS_WITH(io::load_safetensors(p), Catch::Contains("not valid JSON"));
  REQUIRE_THROWS_WITH(io::load_safetensors(tmp_path("missing")), Catch::Contains("cannot open checkpoint"));
  std::remove(p.c_str());
}
