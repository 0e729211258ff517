// npy.cpp: the .npy writer and a validating reader with a small parser for the header's dict literal
// (only the three keys NumPy writes; values are a string, a bool and a tuple of ints).
#include "tools/io/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace gt::io {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.cpp copies elements as they are in memory and so assumes a little-endian host"
#endif

namespace {
const char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
// NumPy's GROWTH_AXIS_MAX_DIGITS: spaces reserved so the first axis' length can grow to 21 digits.
constexpr int kGrowthAxisMaxDigits = 21;

// The header dict exactly as NumPy 1.24 writes it (keys sorted, "'k': repr(v), " each), padded.
std::string npy_header(const char* descr, const Shape& s) {
  std::string shape = "(";
  for (int i = 0; i < s.size(); ++i) {
    if (i) shape += ", ";
    shape += std::to_string(s[i]);
  }
  if (s.size() == 1) shape += ",";
  shape += ")";
  std::string h = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  if (s.size() > 0) h.append((size_t)(kGrowthAxisMaxDigits - (int)std::to_string(s[0]).size()), ' ');
  // magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64
  const size_t used = 10 + h.size() + 1;
  h.append((64 - used % 64) % 64, ' ');
  h += '\n';
  return h;
}

void write_all(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    GT_CHECK(w > 0, "save_npy: writing " << path << " failed: " << std::strerror(errno));
    c += w;
    n -= (size_t)w;
  }
}

// A cursor over the header text; every failure names the file and shows the header.
struct HeaderParser {
  const std::string& h;
  const std::string& path;
  size_t i = 0;

  [[noreturn]] void fail(const std::string& what) const {
    GT_FAIL(".npy file " << path << ": bad header (" << what << " at character " << i << "): " << h);
  }
  void ws() {
    while (i < h.size() && std::isspace((unsigned char)h[i])) ++i;
  }
  void expect(char c) {
    ws();
    if (i >= h.size() || h[i] != c) fail(std::string("expected '") + c + "'");
    ++i;
  }
  bool peek(char c) {
    ws();
    return i < h.size() && h[i] == c;
  }
  std::string string_lit() {
    ws();
    if (i >= h.size() || (h[i] != '\'' && h[i] != '"')) fail("expected a quoted string");
    const char q = h[i++];
    size_t end = h.find(q, i);
    if (end == std::string::npos) fail("unterminated string");
    std::string s = h.substr(i, end - i);
    i = end + 1;
    return s;
  }
  bool bool_lit() {
    ws();
    if (h.compare(i, 4, "True") == 0) { i += 4; return true; }
    if (h.compare(i, 5, "False") == 0) { i += 5; return false; }
    fail("expected True or False");
  }
  int64_t int_lit() {
    ws();
    size_t start = i;
    int64_t v = 0;
    while (i < h.size() && std::isdigit((unsigned char)h[i])) {
      if (v > (INT64_MAX - 9) / 10) fail("dimension too large");
      v = v * 10 + (h[i++] - '0');
    }
    if (i < h.size() && h[i] == 'L') ++i;  // Python 2 wrote longs as 3L
    if (i == start) fail("expected a non-negative integer");
    return v;
  }
  std::vector<int64_t> tuple_lit() {
    expect('(');
    std::vector<int64_t> dims;
    while (!peek(')')) {
      dims.push_back(int_lit());
      if (peek(',')) ++i;
      else if (!peek(')')) fail("expected ',' or ')' in the shape");
    }
    ++i;
    return dims;
  }
};
}  // namespace

void save_npy(const std::string& path, const Tensor& t) {
  check_defined("save_npy", t, path.c_str());
  const DType dt = t.dtype();
  GT_CHECK(dt == DType::F32 || dt == DType::I32,
           "save_npy " << path << ": dtype " << dt << " cannot be saved (float32 and int32 only)");
  std::vector<float> f;
  std::vector<int32_t> n;
  const void* src;
  if (dt == DType::F32) {
    f = t.to_vector();
    src = f.data();
  } else {
    n = t.to_vector_i32();
    src = n.data();
  }
  const size_t bytes = (size_t)t.numel() * 4;
  const std::string h = npy_header(dt == DType::F32 ? "<f4" : "<i4", t.shape());
  GT_CHECK(h.size() <= 65535, "save_npy " << path << ": header too long for version 1.0 (" << h.size() << " bytes)");
  std::string pre(kMagic, 6);
  pre += '\x01';
  pre += '\x00';
  pre += (char)(h.size() & 0xff);
  pre += (char)(h.size() >> 8);
  pre += h;

  // A temporary name unique to this process: concurrent writers of one path each write a whole file.
  const std::string tmp = path + ".tmp." + std::to_string((long)::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  GT_CHECK(fd >= 0, "save_npy: cannot write " << tmp << ": " << std::strerror(errno));
  try {
    write_all(fd, pre.data(), pre.size(), tmp);
    if (bytes) write_all(fd, src, bytes, tmp);
    GT_CHECK(::fsync(fd) == 0, "save_npy: flushing " << tmp << " failed: " << std::strerror(errno));
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    std::remove(tmp.c_str());
    GT_FAIL("save_npy: closing " << tmp << " failed: " << std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    GT_FAIL("save_npy: cannot move " << tmp << " to " << path << ": " << std::strerror(e));
  }
}

Tensor load_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GT_CHECK(in, "cannot open .npy file " << path << ": " << std::strerror(errno));
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  GT_CHECK(!in.bad(), ".npy file " << path << ": read error");
  GT_CHECK(b.size() >= 10, ".npy file " << path << ": too short for a header (" << b.size() << " bytes)");
  GT_CHECK(std::memcmp(b.data(), kMagic, 6) == 0, ".npy file " << path << ": bad magic (expected \\x93NUMPY): not a .npy file");
  const int major = (uint8_t)b[6], minor = (uint8_t)b[7];
  GT_CHECK(major == 1 || major == 2, ".npy file " << path << ": format version " << major << "." << minor
                                                   << " is not supported (1.x and 2.x only)");
  size_t hlen = 0, hstart = 0;
  if (major == 1) {
    hlen = (size_t)(uint8_t)b[8] | ((size_t)(uint8_t)b[9] << 8);
    hstart = 10;
  } else {
    GT_CHECK(b.size() >= 12, ".npy file " << path << ": too short for a version 2 header");
    for (int k = 0; k < 4; ++k) hlen |= (size_t)(uint8_t)b[8 + k] << (8 * k);
    hstart = 12;
  }
  GT_CHECK(hlen <= b.size() - hstart, ".npy file " << path << ": truncated header (" << hlen << " bytes promised, "
                                                    << b.size() - hstart << " present)");
  const std::string h(b.begin() + (long)hstart, b.begin() + (long)(hstart + hlen));

  HeaderParser p{h, path};
  std::string descr;
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  std::vector<int64_t> dims;
  p.expect('{');
  while (!p.peek('}')) {
    const std::string key = p.string_lit();
    p.expect(':');
    if (key == "descr") {
      descr = p.string_lit();
      have_descr = true;
    } else if (key == "fortran_order") {
      fortran = p.bool_lit();
      have_order = true;
    } else if (key == "shape") {
      dims = p.tuple_lit();
      have_shape = true;
    } else {
      p.fail("unexpected key '" + key + "'");
    }
    if (p.peek(',')) ++p.i;
    else if (!p.peek('}')) p.fail("expected ',' or '}'");
  }
  ++p.i;
  p.ws();
  if (p.i != h.size()) p.fail("text after the dict");
  GT_CHECK(have_descr && have_order && have_shape,
           ".npy file " << path << ": header lacks " << (!have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'")
                        << ": " << h);
  GT_CHECK(descr == "<f4" || descr == "<i4", ".npy file " << path << ": dtype '" << descr
                                                          << "' is not supported ('<f4' float32 and '<i4' int32 only)");
  GT_CHECK(!fortran, ".npy file " << path << ": fortran_order True is not supported (C order only)");
  GT_CHECK((int)dims.size() <= Shape::kMaxDims, ".npy file " << path << ": " << dims.size()
                                                             << " dimensions (at most " << Shape::kMaxDims << ")");
  int64_t numel = 1;
  for (int64_t d : dims) {
    GT_CHECK(d == 0 || numel <= (int64_t(1) << 40) / d, ".npy file " << path << ": implausibly large shape");
    numel *= d;
  }
  const size_t want = (size_t)numel * 4, have = b.size() - hstart - hlen;
  GT_CHECK(have >= want, ".npy file " << path << ": truncated: the header promises " << want << " bytes of data, the file has "
                                      << have);
  GT_CHECK(have == want, ".npy file " << path << ": " << have - want << " trailing bytes after the " << want
                                      << " bytes of data the header promises");
  const Shape shape(dims);
  Tensor t = Tensor::empty(shape, Device::CPU, descr == "<f4" ? DType::F32 : DType::I32);
  if (want) {
    void* dst = descr == "<f4" ? (void*)t.data() : (void*)t.data_i32();
    std::memcpy(dst, b.data() + hstart + hlen, want);
  }
  return t;
}

}  // namespace gt::io
