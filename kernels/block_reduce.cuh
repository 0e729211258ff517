// block_reduce.cuh: the block-wide sum shared by CUDA kernels that reduce one row per block
// (sum_to_shape in elementwise.cu, the per-sample VAE losses in vae.cu). Include from .cu files only.
#pragma once

namespace gt::cuda {

// Sum of v over the threads of a block (blockDim.x a multiple of 32, at most 1024); the result is
// valid in thread 0. Shuffles, then one shared-memory pass: a fixed order, so deterministic.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  }
  __syncthreads();  // warp_sums may be rewritten by the caller's next call
  return v;
}

}  // namespace gt::cuda
