// fixtures.cpp: the reader of tests/fixtures/*.txt (format in fixtures.h). Values are parsed with
// strtod, so the float64 references keep every digit the generator printed.
#include "tests/fixtures.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"

#ifndef GENTAPE_FIXTURE_DIR
#error "GENTAPE_FIXTURE_DIR must be defined (tests/CMakeLists.txt sets it)"
#endif

namespace gt::test {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum((unsigned char)c) || c == '_')) return false;
  return true;
}

// "2,3,7" -> (2, 3, 7); "" -> (). Returns false on anything else.
bool parse_dims(const std::string& text, Shape* shape) {
  *shape = Shape();
  if (text.empty()) return true;
  std::stringstream ss(text);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    tok = trim(tok);
    if (tok.empty() || tok.find_first_not_of("0123456789") != std::string::npos) return false;
    if (shape->size() == Shape::kMaxDims) return false;
    shape->push_back(std::stoll(tok));
  }
  return true;
}

}  // namespace

const FixtureTensor& Fixture::get(const std::string& key) const {
  auto it = tensors.find(key);
  GT_CHECK(it != tensors.end(), "fixture '" << name << "' (" << path << ") has no tensor '" << key << "'");
  return it->second;
}

Tensor Fixture::tensor(const std::string& key, Device device) const {
  const FixtureTensor& t = get(key);
  std::vector<float> v(t.values.begin(), t.values.end());
  return Tensor::from_vector(v, t.shape, device);
}

const std::string& Fixture::attr(const std::string& key) const {
  auto it = attrs.find(key);
  GT_CHECK(it != attrs.end(), "fixture '" << name << "' (" << path << ") has no attribute '@" << key << "'");
  return it->second;
}

int Fixture::attr_int(const std::string& key) const {
  const std::string& s = attr(key);
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  GT_CHECK(errno == 0 && end != s.c_str() && *end == '\0',
           "fixture '" << name << "' (" << path << "): attribute '@" << key << "' is '" << s
                       << "', not an integer");
  return (int)v;
}

Fixture load_fixture_file(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  GT_CHECK(in.good(), "cannot open fixture file " << path << " (fixture '" << name
                                                  << "'; regenerate with /usr/bin/python3 tests/fixtures/make_fixtures.py)");
  Fixture f;
  f.name = name;
  f.path = path;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string s = trim(line);
    if (s.empty() || s[0] == '#') continue;
    auto where = [&]() { return path + ":" + std::to_string(lineno); };

    if (s[0] == '@') {  // @key value
      size_t sp = s.find_first_of(" \t");
      GT_CHECK(sp != std::string::npos, where() << ": malformed attribute line (expected '@key value'): '" << s << "'");
      std::string key = s.substr(1, sp - 1), value = trim(s.substr(sp));
      GT_CHECK(valid_name(key) && !value.empty(),
               where() << ": malformed attribute line (expected '@key value'): '" << s << "'");
      GT_CHECK(!f.attrs.count(key), where() << ": attribute '@" << key << "' given twice");
      f.attrs[key] = value;
      continue;
    }

    // name d0,d1,...: v0 v1 ...
    size_t colon = s.find(':');
    GT_CHECK(colon != std::string::npos,
             where() << ": malformed tensor line (expected 'name d0,d1,...: v0 v1 ...'): '" << s.substr(0, 60) << "'");
    std::string head = trim(s.substr(0, colon));
    size_t sp = head.find_first_of(" \t");
    std::string key = head.substr(0, sp);
    std::string dims = sp == std::string::npos ? "" : trim(head.substr(sp));
    FixtureTensor t;
    GT_CHECK(valid_name(key) && parse_dims(dims, &t.shape),
             where() << ": malformed tensor header '" << head << "' (expected 'name d0,d1,...')");
    GT_CHECK(!f.tensors.count(key), where() << ": tensor '" << key << "' given twice");

    const char* p = s.c_str() + colon + 1;
    while (true) {
      while (*p == ' ' || *p == '\t') ++p;
      if (*p == '\0') break;
      char* end = nullptr;
      double v = std::strtod(p, &end);
      GT_CHECK(end != p && (*end == '\0' || *end == ' ' || *end == '\t'),
               where() << ": tensor '" << key << "': value " << t.values.size() << " is not a number: '"
                       << std::string(p, std::min<size_t>(20, std::string(p).size())) << "'");
      t.values.push_back(v);
      p = end;
    }
    GT_CHECK((int64_t)t.values.size() == t.shape.numel(),
             where() << ": tensor '" << key << "' of shape " << t.shape << " needs " << t.shape.numel()
                     << " values, the line has " << t.values.size());
    f.tensors[key] = std::move(t);
  }
  GT_CHECK(!in.bad(), "error reading fixture file " << path);
  GT_CHECK(!f.tensors.empty(), "fixture file " << path << " holds no tensors");
  return f;
}

Fixture load_fixture(const std::string& name) {
  return load_fixture_file(std::string(GENTAPE_FIXTURE_DIR) + "/" + name + ".txt", name);
}

}  // namespace gt::test
