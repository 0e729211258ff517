// idx.cpp: IDX read/write through zlib's gz* functions, which read plain files transparently.
#include "tools/io/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <unistd.h>

#include "core/error.h"

namespace gt::io {

namespace {
struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly n bytes or reports how many were there.
int64_t read_some(gzFile f, uint8_t* dst, int64_t n, const std::string& path) {
  int64_t got = 0;
  while (got < n) {
    unsigned chunk = (unsigned)std::min<int64_t>(n - got, 1 << 30);
    int r = gzread(f, dst + got, chunk);
    if (r < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      GT_FAIL("IDX file " << path << ": read error (" << (msg ? msg : "unknown")
                          << "); the file is probably a corrupted gzip stream");
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}
}  // namespace

IdxArray read_idx(const std::string& path) {
  GzPtr f(gzopen(path.c_str(), "rb"));
  GT_CHECK(f, "cannot open IDX file " << path << ": " << std::strerror(errno));
  uint8_t head[4];
  int64_t got = read_some(f.get(), head, 4, path);
  GT_CHECK(got == 4, "IDX file " << path << ": truncated header (" << got << " of 4 bytes)");
  GT_CHECK(head[0] == 0 && head[1] == 0, "IDX file " << path << ": bad magic number (first bytes 0x" << std::hex
                                                      << (int)head[0] << " 0x" << (int)head[1]
                                                      << ", expected 0x0 0x0): not an IDX file");
  GT_CHECK(head[2] == 0x08, "IDX file " << path << ": element type 0x" << std::hex << (int)head[2]
                                         << " is not supported (only 0x08, unsigned byte)");
  const int n = head[3];
  GT_CHECK(n >= 1 && n <= 4, "IDX file " << path << ": " << n << " dimensions (expected 1 to 4)");
  IdxArray a;
  int64_t total = 1;
  for (int i = 0; i < n; ++i) {
    uint8_t b[4];
    got = read_some(f.get(), b, 4, path);
    GT_CHECK(got == 4, "IDX file " << path << ": truncated header (dimension " << i << " missing)");
    int64_t d = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | (int64_t)b[3];
    GT_CHECK(d > 0, "IDX file " << path << ": dimension " << i << " is 0");
    GT_CHECK(total <= (int64_t(1) << 34) / d, "IDX file " << path << ": implausibly large dimensions");
    total *= d;
    a.dims.push_back(d);
  }
  a.data.resize((size_t)total);
  got = read_some(f.get(), a.data.data(), total, path);
  GT_CHECK(got == total, "IDX file " << path << ": truncated: the header promises " << total
                                      << " bytes of data, the file has " << got);
  uint8_t extra;
  GT_CHECK(read_some(f.get(), &extra, 1, path) == 0,
           "IDX file " << path << ": trailing bytes after the " << total << " bytes the header promises");
  return a;
}

void write_idx(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& data) {
  GT_CHECK(!dims.empty() && dims.size() <= 4, "write_idx " << path << ": " << dims.size() << " dimensions");
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  GT_CHECK(total == (int64_t)data.size(), "write_idx " << path << ": dims hold " << total << " bytes, data has "
                                                       << data.size());
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  // A temporary name unique to this process: two processes converting the same data set at once
  // (parallel tests on a fresh clone) each write a whole file and the last rename wins.
  const std::string tmp = path + ".tmp." + std::to_string((long)::getpid());
  {
    GzPtr f(gzopen(tmp.c_str(), gz ? "wb6" : "wbT"));
    GT_CHECK(f, "cannot write " << tmp << ": " << std::strerror(errno));
    std::vector<uint8_t> head = {0, 0, 0x08, (uint8_t)dims.size()};
    for (int64_t d : dims)
      for (int s = 24; s >= 0; s -= 8) head.push_back((uint8_t)(d >> s));
    bool ok = gzwrite(f.get(), head.data(), (unsigned)head.size()) == (int)head.size();
    if (ok && !data.empty()) ok = gzwrite(f.get(), data.data(), (unsigned)data.size()) == (int)data.size();
    ok = (gzclose(f.release()) == Z_OK) && ok;
    if (!ok) {
      std::remove(tmp.c_str());
      GT_FAIL("write_idx: writing " << tmp << " failed (disk full?)");
    }
  }
  GT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "write_idx: rename " << tmp << " -> " << path << ": "
                                                                            << std::strerror(errno));
}

}  // namespace gt::io
