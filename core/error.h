// error.h: gentape's errors. Every check throws gt::Error with the failing condition, the file and
// line, and a message that names the values involved (shapes, devices, file names).
//
//   GT_CHECK(a.shape() == b.shape(), "add: shape mismatch: a " << a.shape() << " vs b " << b.shape());
//   CUDA_CHECK(cudaMemcpyAsync(...));   // only in CUDA translation units
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gt {

// Every error gentape raises. Catch it, print what(), and nothing is lost: ops validate before
// they write, so a failed call leaves its inputs untouched.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when an allocator cannot get memory even after releasing its cache; the message carries
// the allocator's counters (in use, peak, cached) so the user sees why.
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace gt

#define GT_CHECK(cond, msg)                                           \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::ostringstream gt_check_os_;                                \
      gt_check_os_ << msg;                                            \
      ::gt::detail::throw_error(__FILE__, __LINE__, gt_check_os_.str()); \
    }                                                                 \
  } while (0)

#define GT_FAIL(msg) GT_CHECK(false, msg)

#if defined(__CUDACC__) || defined(GT_INCLUDE_CUDA_CHECK)
#include <cuda_runtime.h>
#define CUDA_CHECK(call)                                                                   \
  do {                                                                                     \
    cudaError_t gt_cuda_err_ = (call);                                                     \
    if (gt_cuda_err_ != cudaSuccess) {                                                     \
      ::gt::detail::throw_error(__FILE__, __LINE__,                                        \
                                std::string("CUDA error in ") + #call + ": " +             \
                                    cudaGetErrorString(gt_cuda_err_));                     \
    }                                                                                      \
  } while (0)
#endif
