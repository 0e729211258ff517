// cuda_context.h: the CUDA stream and cuBLAS handle shared by every kernel launch. Include only from
// .cu files or code compiled with GENTAPE_HAS_CUDA.
#pragma once
#if GENTAPE_HAS_CUDA
#include <cuda_runtime.h>

namespace gt::cuda {
// The one stream every gentape kernel runs on: ops are ordered by it, so no op needs to
// synchronise, and the caching allocator can reuse a freed block immediately.
cudaStream_t stream();
// Threads per block for 1-D elementwise launches and the grid size covering n elements.
constexpr int kBlock = 256;
inline unsigned grid_for(long long n) {
  long long g = (n + kBlock - 1) / kBlock;
  return (unsigned)(g < 1 ? 1 : (g > 65535LL * 32 ? 65535LL * 32 : g));
}
}  // namespace gt::cuda
#endif
