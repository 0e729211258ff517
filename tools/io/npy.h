// npy.h: NumPy's .npy format (version 1.0 written; 1.x and 2.x read), for float32 and int32 arrays.
//
// Layout (numpy/lib/format.py, NEP 1): the magic "\x93NUMPY"; major and minor version bytes; the
// header length, a little-endian uint16 (version 1) or uint32 (version 2); the header, an ASCII
// Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and ended by '\n' so that magic + version + length + header is a multiple of
// 64 bytes; then the raw little-endian elements in C (row-major) order. The writer reproduces NumPy's
// bytes exactly, including the 21 - len(str(shape[0])) spaces NumPy (>= 1.24) reserves after the
// dict so the first axis can grow in place. The reader checks magic, version, header, dtype ('<f4',
// '<i4' only), order (C only), shape and that the data fills the file exactly, and throws gt::Error
// naming the file and the problem.
//
//   gt::io::save_npy("/tmp/x.npy", gt::Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
//   gt::Tensor x = gt::io::load_npy("/tmp/x.npy");   // (2, 3) float32 on the CPU
//   // python: np.load("/tmp/x.npy") -> array([[1., 2., 3.], [4., 5., 6.]], dtype=float32)
#pragma once

#include <string>

#include "core/tensor.h"

namespace gt::io {

// Writes t (float32 or int32, any device: copied to the host) as .npy version 1.0; atomically
// (a temp file unique to this process, then rename), so a reader never sees a partial file.
void save_npy(const std::string& path, const Tensor& t);
// Reads a float32 ('<f4') or int32 ('<i4') C-order .npy file into a CPU tensor of the same shape
// (0-d arrays become shape ()).
Tensor load_npy(const std::string& path);

}  // namespace gt::io
