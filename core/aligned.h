// aligned.h: std::vector storage on 64-byte boundaries, for the kernels' reused scratch buffers.
//
// std::vector<float>'s memory is only 16-byte aligned. A kernel whose 32- or 64-byte vector loads
// and stores then start 16 bytes into a cache line splits every other access across two lines:
// on this project's Zen 4 VM that alone made the Winograd weight gradient's worker thread 23% slower
// than the main thread, whose buffer happened to sit on a line boundary (3.9 vs 3.3 ms for 64 -> 64
// at 14 x 14, batch 64; docs/benchmarks.md). Every buffer a vector kernel walks is either a Tensor
// (the caching allocator aligns to 64) or an AlignedVector.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace gt {

constexpr std::size_t kBufferAlign = 64;  // a cache line, and one AVX-512 vector

template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kBufferAlign}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kBufferAlign}); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept { return false; }
};

using AlignedVector = std::vector<float, AlignedAllocator<float>>;

}  // namespace gt
