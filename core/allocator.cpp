// allocator.cpp: the size-binned caching allocator and its CPU backend.
#include "core/allocator.h"

#include <cstdlib>
#include <sstream>

#if defined(__GLIBC__)
#include <malloc.h>  // mallopt
#endif
#if defined(__linux__)
#include <sys/mman.h>  // madvise(MADV_HUGEPAGE)
#endif

#include "core/error.h"

namespace gt {

std::string to_string(const AllocatorStats& s) {
  std::ostringstream os;
  auto mib = [](size_t b) { return (double)b / (1024.0 * 1024.0); };
  os.precision(2);
  os << std::fixed << "in use " << mib(s.bytes_in_use) << " MiB, peak " << mib(s.peak_bytes_in_use)
     << " MiB, cached " << mib(s.bytes_cached) << " MiB, " << s.system_allocs << " system allocations, "
     << s.requests << " requests (" << s.cache_hits << " from cache)";
  return os.str();
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t small = 512, large = 64 * 1024;
  size_t q = bytes < (1u << 20) ? small : large;
  return (bytes + q - 1) / q * q;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.requests++;
  void* p = nullptr;
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.bytes_cached -= size;
    stats_.cache_hits++;
  } else {
    p = system_alloc(size);
    if (!p) {  // give everything cached back and try once more before failing
      release_cache_locked();
      p = system_alloc(size);
    }
    if (!p) {
      std::ostringstream os;
      os << "gentape: out of " << device_name(device_) << " memory allocating " << size
         << " bytes (" << to_string(stats_) << ")";
      throw OutOfMemory(os.str());
    }
    stats_.system_allocs++;
  }
  stats_.bytes_in_use += size;
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return p;
}

void CachingAllocator::deallocate(void* p, size_t bytes) {
  if (!p) return;
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  free_[size].push_back(p);
  stats_.bytes_in_use -= size;
  stats_.bytes_cached += size;
}

void CachingAllocator::release_cache_locked() {
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) {
      system_free(p);
      stats_.system_frees++;
      stats_.bytes_cached -= size;
    }
    blocks.clear();
  }
  free_.clear();
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cache_locked();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
  stats_.requests = 0;
  stats_.cache_hits = 0;
}

namespace {
// glibc's malloc policy for the blocks gentape does not allocate itself: Eigen's GEMM packs its
// operands into buffers it mallocs and frees on every call (400 KB for a 128 x 784 panel). By default
// glibc serves such blocks with mmap, or grows the heap with brk and trims it again on free, so
// every GEMM paid fresh page faults: the VAE's 128x400x784 product ran at 24-33 GFLOP/s instead of
// 230-250 in a loop (benchmarks/bench_sgemm), a whole VAE step took 7.2 ms instead of 2.7. Fixed thresholds
// keep freed blocks below 32 MiB in the heap for reuse (PyTorch's reference runs get the same
// effect from GLIBC_TUNABLES, benchmarks/reference/README.md). Applied once, when the first CPU
// tensor is allocated; blocks of 32 MiB and more are still mapped and returned to the system.
void tune_host_malloc() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);   // the largest value glibc accepts on 64-bit
  mallopt(M_TRIM_THRESHOLD, 256 << 20);  // keep up to 256 MiB of free heap top instead of 128 KiB
#endif
}

class CpuAllocator final : public CachingAllocator {
 public:
  CpuAllocator() : CachingAllocator(Device::CPU) { tune_host_malloc(); }

 protected:
  // 64-byte alignment: a cache line, and enough for AVX-512 loads. Blocks of 2 MiB and more are
  // 2 MiB-aligned and asked to be backed by transparent huge pages (where the kernel's THP mode is
  // "madvise", as on Debian): a random gather from a 188 MB dataset, or a sweep over a U-Net
  // activation, then misses the TLB once per 2 MiB instead of once per 4 KiB.
  void* system_alloc(size_t bytes) override {
    if (bytes < kHuge) return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    void* p = std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
    return p;
  }
  static constexpr size_t kHuge = size_t(2) << 20;
  void system_free(void* p) override { std::free(p); }
};
}  // namespace

namespace detail {
CachingAllocator& cuda_allocator();  // allocator_cuda.cu
}

CachingAllocator& allocator(Device device) {
  if (device == Device::CPU) {
    static CpuAllocator* a = new CpuAllocator();  // leaked on purpose: see header
    return *a;
  }
#if GENTAPE_HAS_CUDA
  return detail::cuda_allocator();
#else
  GT_FAIL("CUDA memory requested but " << cuda_unavailable_reason());
#endif
}

}  // namespace gt
