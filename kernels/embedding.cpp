// embedding.cpp: CPU sinusoidal timestep embedding (kernels/embedding.h). B x dim is tiny (a few
// thousand numbers per step), so it runs on one thread.
#include "kernels/embedding.h"

namespace gt {

void timestep_embedding_cpu(float* out, const float* t, int64_t B, int64_t dim) {
  const int64_t half = dim / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < dim; ++j) out[b * dim + j] = timestep_embedding_value(t[b], j, half);
}

}  // namespace gt
