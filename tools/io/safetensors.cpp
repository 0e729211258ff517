// safetensors.cpp: the format's writer and a validating reader (nlohmann/json for the header:
// a well-kept parser beats a hand-written one for untrusted input).
#include "tools/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

namespace gt::io {

using nlohmann::json;

namespace {
const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::I32: return "I32";
    default: GT_FAIL("safetensors: dtype " << t << " cannot be saved yet");
  }
}

void write_all(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    GT_CHECK(w > 0, "writing " << path << " failed: " << std::strerror(errno));
    c += w;
    n -= (size_t)w;
  }
}
}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<std::pair<const Tensor*, size_t>> order;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    GT_CHECK(name != "__metadata__", "safetensors: a tensor cannot be called __metadata__");
    check_defined("save_safetensors", t, name.c_str());
    size_t bytes = (size_t)t.numel() * dtype_size(t.dtype());
    header[name] = {{"dtype", st_dtype(t.dtype())}, {"shape", t.shape().vec()}, {"data_offsets", {offset, offset + bytes}}};
    order.push_back({&t, bytes});
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the data block starts 8-byte aligned
  uint64_t n = h.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = (uint8_t)(n >> (8 * i));

  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  GT_CHECK(fd >= 0, "cannot write checkpoint " << tmp << ": " << std::strerror(errno));
  try {
    write_all(fd, len, 8, tmp);
    write_all(fd, h.data(), h.size(), tmp);
    for (auto& [t, bytes] : order) {
      Tensor host = t->to(Device::CPU);
      const void* src = host.dtype() == DType::F32 ? (const void*)host.data() : (const void*)host.data_i32();
      write_all(fd, src, bytes, tmp);
    }
    GT_CHECK(::fsync(fd) == 0, "flushing " << tmp << " failed: " << std::strerror(errno));
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    GT_FAIL("cannot move " << tmp << " to " << path << ": " << std::strerror(e));
  }
}

Checkpoint load_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  GT_CHECK(f, "cannot open checkpoint " << path << ": " << std::strerror(errno));
  const uint64_t file_size = (uint64_t)f.tellg();
  f.seekg(0);
  GT_CHECK(file_size >= 8, "checkpoint " << path << ": " << file_size << " bytes is too short for a safetensors file");
  uint8_t len[8];
  f.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= (uint64_t)len[i] << (8 * i);
  GT_CHECK(n <= file_size - 8, "checkpoint " << path << ": header length " << n << " exceeds the file ("
                                             << file_size << " bytes); the file is truncated or not safetensors");
  std::string h((size_t)n, '\0');
  f.read(h.data(), (std::streamsize)n);
  json header;
  try {
    header = json::parse(h);
  } catch (const json::exception& e) {
    GT_FAIL("checkpoint " << path << ": the header is not valid JSON (" << e.what() << ")");
  }
  GT_CHECK(header.is_object(), "checkpoint " << path << ": the header is not a JSON object");
  const uint64_t data_size = file_size - 8 - n;
  Checkpoint c;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      GT_CHECK(v.is_object(), "checkpoint " << path << ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        GT_CHECK(m.value().is_string(), "checkpoint " << path << ": metadata '" << m.key() << "' is not a string");
        c.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    try {
      std::string dtype = v.at("dtype").get<std::string>();
      std::vector<int64_t> shape = v.at("shape").get<std::vector<int64_t>>();
      std::vector<uint64_t> off = v.at("data_offsets").get<std::vector<uint64_t>>();
      GT_CHECK(dtype == "F32" || dtype == "I32",
               "checkpoint " << path << ": tensor '" << name << "' has dtype " << dtype << " (gentape reads F32 and I32)");
      GT_CHECK(off.size() == 2 && off[0] <= off[1] && off[1] <= data_size,
               "checkpoint " << path << ": tensor '" << name << "' lies outside the data block (file truncated?)");
      Shape s(shape);
      DType dt = dtype == "F32" ? DType::F32 : DType::I32;
      GT_CHECK((uint64_t)s.numel() * 4 == off[1] - off[0],
               "checkpoint " << path << ": tensor '" << name << "' of shape " << s << " needs " << s.numel() * 4
                             << " bytes but its offsets span " << off[1] - off[0]);
      Tensor t = Tensor::empty(s, Device::CPU, dt);
      f.seekg((std::streamoff)(8 + n + off[0]));
      char* dst = dt == DType::F32 ? (char*)t.data() : (char*)t.data_i32();
      f.read(dst, (std::streamsize)(off[1] - off[0]));
      GT_CHECK(f, "checkpoint " << path << ": reading tensor '" << name << "' failed");
      spans.push_back({off[0], off[1]});
      c.tensors[name] = t;
    } catch (const json::exception& e) {
      GT_FAIL("checkpoint " << path << ": tensor '" << name << "' has a malformed entry (" << e.what() << ")");
    }
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    GT_CHECK(spans[i].first >= spans[i - 1].second, "checkpoint " << path << ": tensors overlap in the data block");
  return c;
}

}  // namespace gt::io
