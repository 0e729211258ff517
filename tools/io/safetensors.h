// safetensors.h: checkpoints in the safetensors format (Hugging Face), so PyTorch and NumPy users
// can read gentape's files with `safetensors.torch.load_file` or a 10-line parser:
//
//   [8 bytes: N, little-endian uint64] [N bytes: JSON header] [raw little-endian tensor data]
//   header = {"__metadata__": {"key": "value", ...},
//             "fc1.weight": {"dtype": "F32", "shape": [400, 784], "data_offsets": [begin, end]}, ...}
//
// Offsets are relative to the start of the data block. Saving is atomic: the file is written to
// "<path>.tmp", flushed to disk, then renamed over <path>, so an interrupted save never destroys the
// previous checkpoint. Loading validates the header against the file (sizes, dtypes, offsets inside
// the data, no overlaps) and names the file and tensor in every error.
//
//   gt::io::save_safetensors("run/model.safetensors", {{"fc1.weight", w}}, {{"config", json}});
//   gt::io::Checkpoint c = gt::io::load_safetensors("run/model.safetensors");
#pragma once

#include <map>
#include <string>

#include "core/tensor.h"

namespace gt::io {

struct Checkpoint {
  std::map<std::string, Tensor> tensors;         // on the CPU
  std::map<std::string, std::string> metadata;  // the "__metadata__" strings
};

// Tensors may live on any device (they are copied to the host to be written); float32 and int32.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
Checkpoint load_safetensors(const std::string& path);

}  // namespace gt::io
