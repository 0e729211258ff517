// parallel.h: the CPU kernels' one threading primitive. parallel_for splits [0, n) into contiguous
// pieces over OpenMP threads, but only when the loop is big enough to pay for waking them (on this
// project's 2-core VM a parallel region costs a few microseconds; small tensors run serially). The
// body is called on disjoint ranges [begin, end) that cover [0, n), possibly several per thread.
//
//   gt::parallel_for(n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
//     for (int64_t i = begin; i < end; ++i) out[i] = a[i] + b[i];
//   });
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include <omp.h>

namespace gt {

// Below this many elements a simple elementwise loop runs on one thread: ~32K floats take a few
// microseconds, about the cost of an OpenMP fork/join here.
constexpr int64_t kElementwiseGrain = 32768;

// Each thread owns a contiguous share of [0, n) (the same split as a static schedule, so a loop
// reads what the previous loop's thread wrote) and walks it in kParallelSplit pieces taken from its
// share's counter; a thread done with its own share then takes the remaining pieces of the others'.
// The two vCPUs of this project's VM do not run equally fast (the main thread spent 4-27% more
// cycles than the worker on identical pieces of work), so with fixed shares the faster one waited
// at the end of every loop. The pieces' boundaries depend only on n and the thread count, never
// on the timing, so a body that is a function of its indices gives the same results as before.
// 16 pieces per share rather than 4: the last piece a thread cannot hand over is then 1/32 of a
// 2-thread loop, and the OpenMP waits of a U-Net training step fell from 6.4% to 5.4% of its perf
// samples (most of the gain in GroupNorm-SiLU's backward); each piece costs one atomic add.
constexpr int kParallelSplit = 16;
constexpr int kParallelMaxThreads = 256;

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
  if (chunks > kParallelMaxThreads) chunks = kParallelMaxThreads;
  // Pieces per share: kParallelSplit, fewer when that would cut below the grain.
  const int64_t split = std::max<int64_t>(1, std::min<int64_t>(kParallelSplit, n / (chunks * grain)));
  std::atomic<int64_t> next[kParallelMaxThreads];
  for (int64_t t = 0; t < chunks; ++t) next[t].store(0, std::memory_order_relaxed);
#pragma omp parallel num_threads((int)chunks)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int64_t k = 0; k < nt; ++k) {
      const int64_t owner = (t + k) % nt;
      const int64_t s0 = n * owner / nt, s1 = n * (owner + 1) / nt, len = s1 - s0;
      for (int64_t p; (p = next[owner].fetch_add(1, std::memory_order_relaxed)) < split;) {
        const int64_t begin = s0 + len * p / split, end = s0 + len * (p + 1) / split;
        if (begin < end) fn(begin, end);
      }
    }
  }
}

}  // namespace gt
