// fixtures.h: reference values from an independent implementation (PyTorch, float64), written by
// tests/fixtures/make_fixtures.py into small text files under tests/fixtures/ and read here. The
// tests need no torch: the files are committed.
//
//   gt::test::Fixture f = gt::test::load_fixture("conv2d");       // tests/fixtures/conv2d.txt
//   gt::Tensor x = f.tensor("x", gt::Device::CUDA);                 // float32, on any device
//   const std::vector<double>& want = f.values("out");              // the float64 reference
//   int stride = f.attr_int("stride");
//
// File format, one item per line (blank lines allowed):
//   # a comment
//   @key value                     an attribute of the op (stride, padding, dim, ...)
//   name d0,d1,...: v0 v1 ...      a tensor, row-major; the values are decimal numbers (%.9g)
//   name : v                       a scalar, shape ()
// A missing file, a malformed line, a value count that does not match the shape, or a name used
// twice throws gt::Error naming the file and the line.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace gt::test {

struct FixtureTensor {
  Shape shape;
  std::vector<double> values;  // row-major, as stored (float64)
};

class Fixture {
 public:
  std::string name;  // "conv2d"
  std::string path;  // the file it came from
  std::map<std::string, FixtureTensor> tensors;
  std::map<std::string, std::string> attrs;

  bool has(const std::string& key) const { return tensors.count(key) != 0; }
  // The stored tensor; throws gt::Error naming the file when absent.
  const FixtureTensor& get(const std::string& key) const;
  const Shape& shape(const std::string& key) const { return get(key).shape; }
  const std::vector<double>& values(const std::string& key) const { return get(key).values; }
  // The stored values rounded to float32, as a tensor on `device` (inputs are stored as
  // float32-representable values, so this is exact for them).
  Tensor tensor(const std::string& key, Device device = Device::CPU) const;
  // An attribute; throws gt::Error naming the file when absent or (attr_int) not an integer.
  const std::string& attr(const std::string& key) const;
  int attr_int(const std::string& key) const;
};

// Reads GENTAPE_FIXTURE_DIR/<name>.txt (the compile definition set by tests/CMakeLists.txt).
Fixture load_fixture(const std::string& name);
// Parses a fixture file at an explicit path (`name` is only used in messages).
Fixture load_fixture_file(const std::string& path, const std::string& name);

}  // namespace gt::test
