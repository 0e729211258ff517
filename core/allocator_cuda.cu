// allocator_cuda.cu: the CUDA backend of the caching allocator. All kernels run on one stream, so a
// block freed by a tensor can be handed to the next allocation without synchronising: any kernel
// that will use it is queued after every kernel that used it before.
#include "core/allocator.h"
#include "core/cuda_context.h"
#include "core/error.h"

namespace gt::detail {

namespace {
class CudaAllocator final : public CachingAllocator {
 public:
  CudaAllocator() : CachingAllocator(Device::CUDA) {}

 protected:
  void* system_alloc(size_t bytes) override {
    GT_CHECK(cuda_available(), "CUDA memory requested but " << cuda_unavailable_reason());
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear the out-of-memory error; the caller retries or reports
      return nullptr;
    }
    return p;
  }
  void system_free(void* p) override {
    // Cached blocks may still be in use by queued kernels: wait before returning them.
    cudaStreamSynchronize(cuda::stream());
    cudaFree(p);
  }
};
}  // namespace

CachingAllocator& cuda_allocator() {
  static CudaAllocator* a = new CudaAllocator();
  return *a;
}

}  // namespace gt::detail
