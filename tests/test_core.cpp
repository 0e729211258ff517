// test_core.cpp: the tensor core — shapes, views, copies, errors that name both sides, and the
// caching allocator's reuse and counters.
#include <catch2/catch.hpp>

#include "core/allocator.h"
#include "core/tensor.h"
#include "tests/op_table.h"

using namespace gt;

TEST_CASE("tensor: creation, shape facts and host copies", "[core]") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(t.dim() == 2);
  REQUIRE(t.size(0) == 2);
  REQUIRE(t.size(-1) == 3);
  REQUIRE(t.numel() == 6);
  REQUIRE(t.dtype() == DType::F32);
  REQUIRE(t.device() == Device::CPU);
  REQUIRE(t.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
  REQUIRE(Tensor::zeros({3}).to_vector() == std::vector<float>{0, 0, 0});
  REQUIRE(Tensor::full({2}, 2.5f).to_vector() == std::vector<float>{2.5f, 2.5f});
  REQUIRE(Tensor::scalar(7.f).item() == 7.f);
  REQUIRE(Tensor::scalar(7.f).dim() == 0);
  REQUIRE(Tensor::arange(4).to_vector() == std::vector<float>{0, 1, 2, 3});
  REQUIRE_THROWS_WITH(t.size(2), Catch::Contains("out of range") && Catch::Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(t.item(), Catch::Contains("one-element") && Catch::Contains("(2, 3)"));
  REQUIRE_THROWS_WITH(Tensor::from_vector({1, 2, 3}, {2, 2}), Catch::Contains("(2, 2)"));
  REQUIRE_THROWS_AS(Tensor::empty({2, -1}), Error);
}

TEST_CASE("tensor: view shares storage, clone does not", "[core]") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor v = t.view({3, -1});
  REQUIRE(v.shape() == Shape{3, 2});
  v.data()[0] = 42;
  REQUIRE(t.to_vector()[0] == 42);
  Tensor c = t.clone();
  c.data()[1] = -1;
  REQUIRE(t.to_vector()[1] == 2);
  REQUIRE_THROWS_WITH(t.view({4, 2}), Catch::Contains("(2, 3)") && Catch::Contains("(4, 2)"));
  REQUIRE_THROWS_WITH(t.view({-1, -1}), Catch::Contains("more than one -1"));
}

TEST_CASE("tensor: int32 index tensors and dtype errors", "[core]") {
  Tensor i = Tensor::from_indices({3, 1, 2}, {3});
  REQUIRE(i.dtype() == DType::I32);
  REQUIRE(i.to_vector_i32() == std::vector<int32_t>{3, 1, 2});
  REQUIRE_THROWS_WITH(i.data(), Catch::Contains("int32"));
  REQUIRE_THROWS_WITH(Tensor::zeros({2}).copy_(i.view({3})), Catch::Contains("shape mismatch"));
}

TEST_CASE("tensor: checks name both sides", "[core]") {
  Tensor a = Tensor::zeros({3, 4}), b = Tensor::zeros({5, 4});
  REQUIRE_THROWS_WITH(check_same_shape("add", a, b), Catch::Contains("add") && Catch::Contains("(3, 4)") &&
                                                         Catch::Contains("(5, 4)"));
  Tensor undefined;
  REQUIRE_FALSE(undefined.defined());
  REQUIRE_THROWS_AS(undefined.shape(), Error);
  REQUIRE_THROWS_WITH(check_defined("matmul", undefined, "the weight"), Catch::Contains("the weight"));
}

TEST_CASE("tensor: CUDA tensors without a GPU are refused with the reason", "[core]") {
  if (cuda_available()) return;  // covered by the [cuda] round trip below
  REQUIRE_THROWS_WITH(Tensor::zeros({2}, Device::CUDA), Catch::Contains("CUDA"));
  REQUIRE_THROWS_WITH(parse_device("cuda"), Catch::Contains("cuda"));
  REQUIRE(parse_device("auto") == Device::CPU);
  REQUIRE_THROWS_WITH(parse_device("tpu"), Catch::Contains("tpu"));
}

TEST_CASE("allocator: freed blocks are reused, counters add up", "[core][allocator]") {
  CachingAllocator& a = allocator(Device::CPU);
  a.empty_cache();
  AllocatorStats s0 = a.stats();
  { Tensor t = Tensor::empty({1000, 1000}); }  // 4 MB: allocated then cached
  AllocatorStats s1 = a.stats();
  REQUIRE(s1.system_allocs == s0.system_allocs + 1);
  REQUIRE(s1.bytes_cached >= 4000000);
  REQUIRE(s1.bytes_in_use == s0.bytes_in_use);
  REQUIRE(s1.peak_bytes_in_use >= s0.bytes_in_use + 4000000);
  // A "training loop": the same sizes every step never reach the system again.
  for (int step = 0; step < 10; ++step) {
    Tensor x = Tensor::empty({1000, 1000});
    Tensor y = Tensor::empty({128, 400});
    Tensor z = Tensor::empty({128, 400});
  }
  AllocatorStats s2 = a.stats();
  REQUIRE(s2.system_allocs == s1.system_allocs + 2);  // y and z's size once each, x's reused
  REQUIRE(s2.cache_hits >= s1.cache_hits + 28);
  a.empty_cache();
  REQUIRE(a.stats().bytes_cached == 0);
  REQUIRE(CachingAllocator::round_size(1) == 512);
  REQUIRE(CachingAllocator::round_size(513) == 1024);
  REQUIRE(CachingAllocator::round_size((1 << 20) + 1) == (1 << 20) + 65536);
}

TEST_CASE("allocator: out of memory names the request and the counters", "[core][allocator]") {
  // 2^60 bytes cannot exist; the error must say how much was asked and what is in use.
  REQUIRE_THROWS_AS(allocator(Device::CPU).allocate(size_t(1) << 60), OutOfMemory);
  try {
    allocator(Device::CPU).allocate(size_t(1) << 60);
  } catch (const OutOfMemory& e) {
    std::string m = e.what();
    REQUIRE(m.find("out of cpu memory") != std::string::npos);
    REQUIRE(m.find("in use") != std::string::npos);
    REQUIRE(m.find("cached") != std::string::npos);
  }
}

TEST_CASE("tensor + allocator on CUDA: round trip, fill, reuse", "[core][cuda]") {
  if (!test::cuda_or_skip()) return;
  Tensor h = Tensor::from_vector({1, 2, 3, 4, 5}, {5});
  Tensor d = h.to(Device::CUDA);
  REQUIRE(d.is_cuda());
  REQUIRE(d.to_vector() == h.to_vector());
  Tensor f = Tensor::full({7}, 3.5f, Device::CUDA);
  REQUIRE(f.to_vector() == std::vector<float>(7, 3.5f));
  REQUIRE(Tensor::zeros({9}, Device::CUDA).to_vector() == std::vector<float>(9, 0.f));
  REQUIRE(d.clone().cpu().to_vector() == h.to_vector());
  CachingAllocator& a = allocator(Device::CUDA);
  { Tensor t = Tensor::empty({1 << 20}, Device::CUDA); }
  size_t allocs = a.stats().system_allocs;
  for (int i = 0; i < 5; ++i) Tensor t = Tensor::empty({1 << 20}, Device::CUDA);
  REQUIRE(a.stats().system_allocs == allocs);
  REQUIRE_THROWS_WITH(check_same_device("add", h, d), Catch::Contains("cpu") && Catch::Contains("cuda"));
}

TEST_CASE("row: a view of one element along dim 0, sharing storage", "[core]") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor r = t.row(1);
  REQUIRE(r.shape() == Shape{2});
  REQUIRE(r.to_vector() == std::vector<float>{2, 3});
  r.fill_(9.f);  // writes through to t
  REQUIRE(t.to_vector() == std::vector<float>{0, 1, 9, 9, 4, 5});
  REQUIRE(t.row(1).row(0).to_vector() == std::vector<float>{9});  // (2,) -> ()
  Tensor i = Tensor::from_indices({7, 8, 9, 10}, {2, 2});
  REQUIRE(i.row(1).to_vector_i32() == std::vector<int32_t>{9, 10});
  REQUIRE_THROWS_WITH(t.row(3), Catch::Matchers::Contains("out of range") && Catch::Matchers::Contains("(3, 2)"));
  REQUIRE_THROWS_AS(t.row(-1), gt::Error);
}
