// parallel.h: the CPU kernels' one threading primitive. parallel_for splits [0, n) into contiguous
// chunks over OpenMP threads, but only when the loop is big enough to pay for waking them (on this
// project's 2-core VM a parallel region costs a few microseconds; small tensors run serially).
//
//   gt::parallel_for(n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
//     for (int64_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
//   });
#pragma once

#include <cstdint>

#include <omp.h>

namespace gt {

// Below this many elements a simple elementwise loop runs on one thread: ~32K floats take a few
// microseconds, about the cost of an OpenMP fork/join here.
constexpr int64_t kElementwiseGrain = 32768;

template <class F>
inline void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  int threads = omp_get_max_threads();
  if (n < grain || threads <= 1 || omp_in_parallel()) {
    fn((int64_t)0, n);
    return;
  }
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks > threads) chunks = threads;
#pragma omp parallel num_threads((int)chunks)
  {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace gt
