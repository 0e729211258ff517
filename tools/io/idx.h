// idx.h: reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.), raw or gzip'd.
//
// Layout: bytes 0-1 are zero; byte 2 is the element type (0x08 = unsigned byte, the only type these
// data sets use); byte 3 the number of dimensions n; then n big-endian uint32 sizes; then the
// elements, row-major. The reader checks every one of these against the file and throws gt::Error
// naming the file and what is wrong (bad magic, unsupported type, a dimension of 0, truncated data,
// trailing bytes) — a damaged download never crashes or yields garbage.
//
//   gt::io::IdxArray a = gt::io::read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
//   // a.dims == {10000, 28, 28}, a.data.size() == 7840000
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gt::io {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
  int64_t count() const { return dims.empty() ? 0 : dims[0]; }
};

// Reads a .gz or plain IDX file (gzip is detected from the content, not the name).
IdxArray read_idx(const std::string& path);
// Writes unsigned-byte IDX, gzip'd when the path ends in ".gz"; atomically (a temp file unique to
// this process, then rename), so concurrent writers of the same file never see a partial one.
void write_idx(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& data);

}  // namespace gt::io
