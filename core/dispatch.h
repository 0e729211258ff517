// dispatch.h: GT_DISPATCH picks the CPU or the CUDA implementation of a kernel by device. In builds
// without CUDA the CUDA call is not even compiled, so CPU-only builds need no CUDA symbols; a CUDA
// tensor cannot exist there (Tensor::empty refuses), so the branch is never needed.
//
//   GT_DISPATCH(x.device(), add_forward_cpu(out, a, b, n), add_forward_cuda(out, a, b, n));
#pragma once
#include "core/device.h"
#include "core/error.h"

#if GENTAPE_HAS_CUDA
#define GT_DISPATCH(device, cpu_call, cuda_call) \
  do {                                           \
    if ((device) == ::gt::Device::CUDA) {        \
      cuda_call;                                 \
    } else {                                     \
      cpu_call;                                  \
    }                                            \
  } while (0)
#else
#define GT_DISPATCH(device, cpu_call, cuda_call)                                                     \
  do {                                                                                               \
    GT_CHECK((device) == ::gt::Device::CPU, "CUDA kernel requested but " << ::gt::cuda_unavailable_reason()); \
    cpu_call;                                                                                        \
  } while (0)
#endif
