// allocator.h: caching allocators for CPU and CUDA memory.
//
// A training loop allocates the same tensor sizes every step. Returning those blocks to the system
// and asking again costs real time: glibc unmaps big blocks and the next step page-faults them back
// in (measured: it doubled a small autoencoder's step on this project's 2-core VM under PyTorch);
// cudaMalloc/cudaFree synchronise the device. So freed blocks go to a per-size free list and the
// next request of that size reuses one: in steady state a loop performs no system allocation at all.
//
// Sizes are rounded up (512 B under 1 MiB, 64 KiB above) so nearby sizes share a bin.
//
//   void* p = gt::allocator(gt::Device::CPU).allocate(bytes);
//   gt::allocator(gt::Device::CPU).deallocate(p, bytes);   // cached, not freed
//   gt::AllocatorStats s = gt::allocator(gt::Device::CPU).stats();
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/device.h"

namespace gt {

struct AllocatorStats {
  size_t bytes_in_use = 0;     // handed out to tensors now
  size_t peak_bytes_in_use = 0;
  size_t bytes_cached = 0;     // freed by tensors, kept for reuse
  size_t system_allocs = 0;    // calls to malloc/cudaMalloc (steady state: this stops growing)
  size_t system_frees = 0;
  size_t requests = 0;         // allocate() calls
  size_t cache_hits = 0;       // requests served from the cache
};

std::string to_string(const AllocatorStats& s);

class CachingAllocator {
 public:
  explicit CachingAllocator(Device device) : device_(device) {}
  virtual ~CachingAllocator() = default;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Returns a block of at least `bytes` bytes, 64-byte aligned (256 on CUDA). Zero bytes gives a
  // valid unique pointer. Throws gt::OutOfMemory (with the counters) when the system has none left,
  // after first releasing the cache and retrying.
  void* allocate(size_t bytes);
  // Returns the block to the cache. `bytes` is the size that was requested.
  void deallocate(void* p, size_t bytes);
  // Frees every cached block back to the system.
  void empty_cache();
  AllocatorStats stats() const;
  // Resets peak_bytes_in_use to the current use and zeroes the request/hit counters.
  void reset_peak();
  Device device() const { return device_; }

  static size_t round_size(size_t bytes);

 protected:
  virtual void* system_alloc(size_t bytes) = 0;  // nullptr on failure
  virtual void system_free(void* p) = 0;

 private:
  void release_cache_locked();
  Device device_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

// The process-wide allocator of a device. Never destroyed (tensors that outlive main's locals
// still return their blocks safely).
CachingAllocator& allocator(Device device);

}  // namespace gt
