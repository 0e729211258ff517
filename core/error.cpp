// error.cpp: the single place errors are formatted, so every message has the same shape.
#include "core/error.h"

namespace gt::detail {

void throw_error(const char* file, int line, const std::string& msg) {
  std::string f(file);
  // Keep the path relative to the source tree: "core/tensor.cpp:42" rather than an absolute path.
  for (const char* top : {"/core/", "/kernels/", "/autograd/", "/models/", "/tools/", "/tests/", "/benchmarks/"}) {
    auto pos = f.rfind(top);
    if (pos != std::string::npos) {
      f = f.substr(pos + 1);
      break;
    }
  }
  throw Error("gentape: " + msg + " [" + f + ":" + std::to_string(line) + "]");
}

}  // namespace gt::detail
